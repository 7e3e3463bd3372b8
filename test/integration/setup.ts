import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'uvu';

/**
 * Runs `setup` once, before the first test of `suite`, and fails every test
 * with its error when it fails. Not a plain test.before: uvu swallows an error
 * thrown there, reports "0 of N passed" and exits 0.
 */
export function setupOnce(suite: Test, setup: () => Promise<void>): void {
  let done: Promise<void> | null = null;
  suite.before.each(() => (done ??= setup()));
}

/**
 * Throws (so the tests fail, not skip) unless this process is root and every
 * tool is on PATH: a check that could not run must never count as a pass.
 * `make test` runs the integration tests as root and installs the tools.
 */
export function requireRoot(what: string, tools: string[]): void {
  if (process.getuid?.() !== 0) {
    throw new Error(`${what} needs root (it creates network namespaces or interfaces): run it as root, as \`make test\` does`);
  }
  const missing = tools.filter((t) => !onPath(t));
  if (missing.length > 0) {
    throw new Error(`${what} needs ${missing.join(', ')} on PATH (\`make deps\` installs them as root)`);
  }
}

function onPath(tool: string): boolean {
  return (process.env['PATH'] ?? '').split(':').some((dir) => {
    if (!dir) return false;
    try {
      accessSync(join(dir, tool), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
