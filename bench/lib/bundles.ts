import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../../test/lab/lib/lab.ts';

function newestSource(dir: string, depth = 0): number {
  let newest = 0;
  if (depth > 8) return newest;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestSource(path, depth + 1));
    else if (e.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Fails when a bundle is missing; warns when its sources changed after it
 * was built, because the figures would then describe old code.
 */
export function checkBundles(bundles: readonly { file: string; sources: readonly string[] }[]): void {
  for (const b of bundles) {
    let built: number;
    try {
      built = statSync(b.file).mtimeMs;
    } catch {
      throw new Error(`${relative(REPO_ROOT, b.file)} is missing: build it first (make build)`);
    }
    const newest = Math.max(...b.sources.map((s) => newestSource(join(REPO_ROOT, s))));
    if (newest > built) {
      process.stderr.write(`warning: ${relative(REPO_ROOT, b.file)} is older than its sources; run make build for current figures\n`);
    }
  }
}
