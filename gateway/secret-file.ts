import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Hands `text` (holding a private key) to a command that only reads files:
 * `wg syncconf` cannot read /dev/stdin here because a spawned child's stdin
 * is a socket, which open(2) refuses (ENXIO). The file lives in a fresh 0700
 * directory on a RAM file system where there is one (/dev/shm; /tmp is RAM
 * on OpenWrt) and is gone when fn settles.
 */
export async function withSecretFile<T>(text: string, fn: (path: string) => Promise<T>): Promise<T> {
  const shm = await stat('/dev/shm').then((s) => s.isDirectory(), () => false);
  const dir = await mkdtemp(join(shm ? '/dev/shm' : tmpdir(), 'aerie-gw-'));
  try {
    const file = join(dir, 'wg.conf');
    await writeFile(file, text, { mode: 0o600, flag: 'wx' });
    return await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
