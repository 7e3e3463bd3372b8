// The two aedes brokers of the MQTT benchmark run from ESM bundles built the
// way tsup builds dist/aerie-cloud.mjs (tsup.config.ts), as the daemon runs:
// run from .ts, Node's type stripping alone adds about 17 MB of RSS.
import { join, basename } from 'node:path';
import { build } from 'esbuild';

/** Bundles `entry` (a .ts file) into `outDir`; returns the .mjs path. */
export async function bundleEntry(entry: string, outDir: string): Promise<string> {
  const outfile = join(outDir, basename(entry).replace(/\.ts$/, '.mjs'));
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    minifySyntax: true,
    logLevel: 'error',
    // aedes' CommonJS dependencies require() Node's modules: an ESM bundle needs a real require.
    banner: { js: "import { createRequire as __benchCreateRequire } from 'node:module';\nconst require = __benchCreateRequire(import.meta.url);" },
  });
  return outfile;
}
