import { formatAddress, formatPrefix, parseAddress, parseInterfaceAddress, parsePrefix } from '../../shared/cidr.ts';
import type { Runner } from '../../shared/run.ts';
import type { WanView } from './pool.ts';

interface IpAddr {
  addr_info?: { local?: string; prefixlen?: number; scope?: string }[];
}

interface IpRoute {
  dst?: string;
  scope?: string;
  gateway?: string;
}

function parseJson<T>(text: string, what: string): T[] {
  try {
    const v = JSON.parse(text || '[]') as unknown;
    return Array.isArray(v) ? (v as T[]) : [];
  } catch {
    throw new Error(`\`${what}\` did not print JSON`);
  }
}

/**
 * The WAN interface's global addresses, and the prefixes on it: the networks
 * of those addresses and on-link routes out of it (a prefix the provider
 * routes to the VM is put there so). A route via a gateway leads to someone
 * else's network, so it is not one. From `ip -j`; input to checkEgressPool.
 */
export async function readWanView(run: Runner, iface: string): Promise<WanView> {
  const addrs = parseJson<IpAddr>((await run(['ip', '-j', 'addr', 'show', 'dev', iface])).stdout, 'ip -j addr show');
  const addresses = new Set<string>();
  const prefixes = new Set<string>();
  for (const a of addrs.flatMap((l) => l.addr_info ?? [])) {
    if (a.scope !== 'global' || typeof a.local !== 'string' || typeof a.prefixlen !== 'number') continue;
    try {
      const { address, prefix } = parseInterfaceAddress(`${a.local}/${a.prefixlen}`);
      addresses.add(formatAddress(address));
      prefixes.add(formatPrefix(prefix));
    } catch {
      // an address this code cannot read (none expected): skip it
    }
  }
  for (const family of ['-4', '-6']) {
    const r = await run(['ip', '-j', family, 'route', 'show', 'dev', iface], { allowFail: true });
    if (r.code !== 0) continue;
    for (const route of parseJson<IpRoute>(r.stdout, 'ip -j route show')) {
      if (!route.dst || route.dst === 'default' || route.dst.startsWith('fe80:') || route.gateway) continue;
      try {
        const text = route.dst.includes('/') ? route.dst : `${route.dst}/${route.dst.includes(':') ? 128 : 32}`;
        const p = parsePrefix(text);
        if (p.length > 0) prefixes.add(formatPrefix(p));
      } catch {
        // multicast, "local" and other special routes: not a routed prefix
      }
    }
  }
  return { addresses: [...addresses], prefixes: [...prefixes] };
}

/** The interface of the default route (IPv4 first), or null. */
export async function defaultRouteDevice(run: Runner): Promise<string | null> {
  for (const family of ['-4', '-6']) {
    const r = await run(['ip', '-j', family, 'route', 'show', 'default'], { allowFail: true });
    try {
      const dev = parseJson<{ dev?: string }>(r.stdout, 'ip -j route show default')[0]?.dev;
      if (dev) return dev;
    } catch {
      // no JSON: try the next family
    }
  }
  return null;
}
