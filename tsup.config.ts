import { defineConfig, type Options } from 'tsup';

// One self-contained ESM file per side. The gateway runs on the router's Node 20
// (OpenWrt 24.10), the cloud on Node >= 22.13 for node:sqlite.
const common: Options = {
  format: ['esm'],
  bundle: true,
  splitting: false,
  sourcemap: true,
  clean: false,
  noExternal: [/.*/],
  platform: 'node',
  banner: { js: '#!/usr/bin/env node' },
  outExtension: () => ({ js: '.mjs' }),
  minifySyntax: true,
  // node:sqlite exists only under its prefixed name.
  removeNodeProtocol: false,
};

export default defineConfig([
  { ...common, entry: { 'aerie-gateway': 'gateway/main.ts' }, target: 'node20' },
  { ...common, entry: { 'aerie-cloud': 'cloud/main.ts' }, target: 'node22' },
]);
