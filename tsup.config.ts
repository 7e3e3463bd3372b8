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
  // Some dependencies (aedes' and MQTT.js's) are CommonJS and require() Node's
  // modules; in an ESM bundle that needs a real require.
  banner: {
    js: "#!/usr/bin/env node\nimport { createRequire as __aerieCreateRequire } from 'node:module';\nconst require = __aerieCreateRequire(import.meta.url);",
  },
  outExtension: () => ({ js: '.mjs' }),
  minifySyntax: true,
  // node:sqlite exists only under its prefixed name.
  removeNodeProtocol: false,
};

export default defineConfig([
  {
    ...common,
    entry: { 'aerie-gateway': 'gateway/main.ts' },
    target: 'node20',
    // A router's flash is small (budget 400 KB). MQTT.js's streams come from the
    // readable-stream package, a copy of Node's own: Node's is used instead.
    minify: true,
    esbuildOptions(options) {
      options.alias = { 'readable-stream': 'node:stream' };
    },
  },
  { ...common, entry: { 'aerie-cloud': 'cloud/main.ts' }, target: 'node22' },
]);
