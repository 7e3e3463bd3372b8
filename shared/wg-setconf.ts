import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ValidationError } from './errors.ts';
import type { Runner } from './run.ts';

/**
 * Hands a rendered config (see wg-conf.ts) to `wg setconf` or `wg syncconf`.
 *
 * Not through "/dev/stdin": Node gives a child a socket, not a pipe, as its
 * standard input, and opening /dev/stdin on a socket fails with ENXIO, so wg
 * cannot read it. The config (it holds the private key) goes instead into a
 * file only we can read, in a fresh private directory, removed as soon as wg
 * has read it. Keep `dir` on tmpfs (OpenWrt's /tmp, /run on the VM).
 */
export async function wgSetConf(
  run: Runner,
  iface: string,
  conf: string,
  opts: { sync?: boolean; dir?: string } = {},
): Promise<void> {
  // Linux interface names: at most 15 bytes; no leading dash so wg cannot read it as an option.
  if (typeof iface !== 'string' || !/^(?!\.\.?$)[A-Za-z0-9_=+.][A-Za-z0-9_=+.-]{0,14}$/.test(iface)) {
    throw new ValidationError('interface', 'expected an interface name of 1-15 letters, digits or _=+.-');
  }
  const dir = await mkdtemp(join(opts.dir ?? tmpdir(), 'aerie-wg-'));
  try {
    const file = join(dir, 'wg.conf');
    await writeFile(file, conf, { mode: 0o600, flag: 'wx' });
    await run(['wg', opts.sync ? 'syncconf' : 'setconf', iface, file]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
