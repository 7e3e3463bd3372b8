import { formatPrefix, parseInterfaceAddress } from '../../shared/cidr.ts';
import type { Runner } from '../../shared/run.ts';

interface IpAddrLink {
  ifname?: string;
  link_type?: string;
  flags?: string[];
  addr_info?: { local?: string; prefixlen?: number }[];
}

/**
 * The networks of the VM's own interface addresses ("10.0.0.5/24" → "10.0.0.0/24"),
 * from `ip -j addr show`, leaving out loopback and the interfaces named in
 * `exclude` (the hub, whose networks are the overlay). Home prefixes must not
 * overlap these: they would be routed into the tunnel.
 */
export async function readLocalPrefixes(run: Runner, exclude: readonly string[] = []): Promise<string[]> {
  const { stdout } = await run(['ip', '-j', 'addr', 'show']);
  let links: IpAddrLink[];
  try {
    links = JSON.parse(stdout || '[]') as IpAddrLink[];
  } catch {
    throw new Error('`ip -j addr show` did not print JSON');
  }
  const out = new Set<string>();
  for (const link of Array.isArray(links) ? links : []) {
    if (!link.ifname || exclude.includes(link.ifname)) continue;
    if (link.link_type === 'loopback' || link.flags?.includes('LOOPBACK')) continue;
    for (const a of link.addr_info ?? []) {
      if (typeof a.local !== 'string' || typeof a.prefixlen !== 'number') continue;
      try {
        out.add(formatPrefix(parseInterfaceAddress(`${a.local}/${a.prefixlen}`).prefix));
      } catch {
        // an address this code cannot read (none expected): skip it
      }
    }
  }
  return [...out];
}
