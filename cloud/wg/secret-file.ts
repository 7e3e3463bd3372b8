import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// tmpfs: the text lives in memory only, never on a disk.
const MEMORY_DIR = '/dev/shm';

/**
 * Lends `text` to fn as a file readable by root only, removed as soon as fn
 * settles. For tools that take a secret only as a file name (`wg syncconf`):
 * the Runner's stdin is a socket, which `/dev/stdin` cannot open (ENXIO).
 */
export async function withSecretFile<T>(text: string, fn: (path: string) => Promise<T>): Promise<T> {
  const base = (await stat(MEMORY_DIR).then((s) => s.isDirectory(), () => false)) ? MEMORY_DIR : tmpdir();
  const dir = await mkdtemp(join(base, 'aerie-')); // mode 0700
  try {
    const path = join(dir, 'secret');
    await writeFile(path, text, { mode: 0o600, flag: 'wx' });
    return await fn(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
