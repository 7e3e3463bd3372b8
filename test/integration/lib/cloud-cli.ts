import { spawn } from 'node:child_process';
import { join } from 'node:path';
import * as assert from 'uvu/assert';
import { createApi } from '../../../cloud/api/api.ts';
import { identifyLocal } from '../../../cloud/api/identify.ts';
import { serveControl } from '../../../cloud/control/server.ts';
import type { Core } from '../../../cloud/core/core.ts';

// `aerie-cloud …` run from source as a user would, on a state directory.

const MAIN = join(import.meta.dirname, '../../../cloud/main.ts');

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the CLI (async: a daemon in this process must keep answering); killed after 20 s. */
export function runCloudCli(dir: string, ...args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args, '--state-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('error', reject);
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** Runs the CLI and fails the test unless it exits 0 with nothing on stderr; its stdout. */
export async function cloudCliOk(dir: string, ...args: string[]): Promise<string> {
  const r = await runCloudCli(dir, ...args);
  assert.is(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
  assert.is(r.stderr, '');
  return r.stdout;
}

/**
 * The daemon's control socket in `dir`, serving the API on `core` (and `extra`
 * live parts, such as the firewall's) while fn runs; fn gets the requests
 * seen so far ("POST /v1/…").
 */
export async function withControlSocket(
  dir: string,
  core: Core,
  fn: (seen: string[]) => Promise<void>,
  extra: Omit<Parameters<typeof createApi>[0], 'core'> = {},
): Promise<void> {
  const app = createApi({ core, ...extra }, identifyLocal);
  const seen: string[] = [];
  const fetch = (req: Request) => {
    seen.push(`${req.method} ${new URL(req.url).pathname}`);
    return app.fetch(req);
  };
  const server = await serveControl({ fetch }, join(dir, 'control.sock'));
  try {
    await fn(seen);
  } finally {
    await server.close();
  }
}

/**
 * Runs each case and asserts what a user sees of a refusal: exit 1, nothing on
 * stdout, one line on stderr matching the pattern; `usage` mistakes add the
 * line that points at --help.
 */
export async function cloudCliRefuses(dir: string, cases: [string[], RegExp][], opts: { usage?: boolean } = {}): Promise<void> {
  for (const [args, message] of cases) {
    const r = await runCloudCli(dir, ...args);
    assert.is(r.status, 1, args.join(' '));
    assert.is(r.stdout, '', `${args.join(' ')}: nothing on stdout`);
    const lines = r.stderr.trimEnd().split('\n');
    assert.is(lines.length, opts.usage ? 2 : 1, r.stderr);
    assert.match(lines[0]!, message);
    if (opts.usage) assert.is(lines[1], 'Run `aerie-cloud --help` for usage.');
  }
}
