import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkInterfaceName } from '../../shared/interface-name.ts';

export interface ForwardingOptions {
  /** Where procfs is mounted (tests point this at a temporary directory). */
  procRoot?: string;
  /**
   * The WAN interface. If it takes its IPv6 default route from router
   * advertisements (accept_ra = 1), enabling forwarding would make the
   * kernel ignore them and the route would expire; it is set to 2 first.
   */
  wanInterface?: string;
}

/** A sysctl (path under /proc/sys), the value it must have, and optionally the only value we replace. */
interface Wanted {
  path: string[];
  value: string;
  onlyFrom?: string;
}

/**
 * Makes the kernel forward IPv4 and IPv6 between interfaces. Writes only what
 * differs; returns the sysctl keys it changed. Forwarding is left on afterwards: other
 * software on the VM may rely on it too.
 */
export async function ensureForwarding(opts: ForwardingOptions = {}): Promise<string[]> {
  const wan = opts.wanInterface === undefined ? undefined : checkInterfaceName(opts.wanInterface, 'wanInterface');
  const root = opts.procRoot ?? '/proc';
  const file = (path: string[]) => join(root, 'sys', ...path);
  const v6Forwarding = ['net', 'ipv6', 'conf', 'all', 'forwarding'];
  const hasV6 = (await read(file(v6Forwarding))) !== null;
  const wanted: Wanted[] = [{ path: ['net', 'ipv4', 'ip_forward'], value: '1' }];
  if (hasV6) {
    if (wan !== undefined) {
      // Only 1 needs changing: 0 means RAs are not wanted, 2 already survives forwarding.
      wanted.push({ path: ['net', 'ipv6', 'conf', wan, 'accept_ra'], value: '2', onlyFrom: '1' });
    }
    wanted.push({ path: v6Forwarding, value: '1' });
  }
  const changed: string[] = [];
  for (const { path, value, onlyFrom } of wanted) {
    // sysctl(8) spelling: dots in an interface name become slashes.
    const key = path.map((p) => p.replaceAll('.', '/')).join('.');
    const current = await read(file(path));
    if (current === null) {
      if (onlyFrom !== undefined) continue; // the interface has no IPv6 (or does not exist yet)
      throw new Error(`${key}: ${file(path)} does not exist`);
    }
    if (current === value || (onlyFrom !== undefined && current !== onlyFrom)) continue;
    await writeFile(file(path), `${value}\n`);
    changed.push(key);
  }
  return changed;
}

async function read(file: string): Promise<string | null> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}
