import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, unlinkSync } from 'node:fs';
import { createRunner, type Runner } from '../../shared/run.ts';
import { requireRoot } from './setup.ts';

/**
 * A throwaway WireGuard interface for checking rendered configs with the real
 * `wg`: wireguard-go in the foreground inside a fresh network namespace (so
 * nothing touches the host's network), removed again when `fn` ends. `wg`
 * reaches it through its control socket, which namespaces share.
 * Needs root, unshare, wireguard-go and wg; without them it throws.
 */
export async function withWgSandbox(fn: (iface: string, run: Runner) => Promise<void>): Promise<void> {
  requireRoot('a WireGuard sandbox', ['unshare', 'wireguard-go', 'wg']);
  const run = createRunner();

  // Unique per process; interface names are at most 15 characters.
  const iface = `aut${process.pid.toString(36)}${Math.floor(Math.random() * 36 ** 3).toString(36)}`.slice(0, 15);
  const socket = `/var/run/wireguard/${iface}.sock`;
  if (existsSync(socket)) throw new Error(`${iface} is already in use`);

  const child: ChildProcess = spawn('unshare', ['--net', 'wireguard-go', '-f', iface], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    // Bounded in time and count: on a busy machine wireguard-go may take a few seconds.
    let up = false;
    const deadline = Date.now() + 15_000;
    for (let i = 0; i < 300 && !up && Date.now() < deadline; i++) {
      if (child.exitCode !== null) break;
      up = (await run(['wg', 'show', iface], { allowFail: true })).code === 0;
      if (!up) await new Promise((r) => setTimeout(r, 50));
    }
    if (!up) {
      const how = child.exitCode !== null ? `it exited with ${child.exitCode}` : 'it still runs, but wg does not see it';
      throw new Error(`wireguard-go did not come up (${how}): ${stderr.trim().slice(-300)}`);
    }
    await fn(iface, run);
  } finally {
    if (child.exitCode === null && child.pid !== undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    // wireguard-go removes its socket on SIGTERM; after SIGKILL we must.
    if (existsSync(socket)) unlinkSync(socket);
  }
}
