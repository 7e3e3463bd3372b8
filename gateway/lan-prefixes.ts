import { formatPrefix, parseInterfaceAddress } from '../shared/cidr.ts';
import type { Runner } from '../shared/run.ts';
import { checkInterfaceName } from '../shared/interface-name.ts';

export interface LanPrefix {
  prefix: string;
  interface: string;
}

interface IpAddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
  scope?: string;
}

/** Global-scope networks (IPv4 and IPv6) from one interface's `ip -j addr show dev IF`. */
export function parseLanPrefixes(json: string, iface: string): LanPrefix[] {
  const links = JSON.parse(json || '[]') as { addr_info?: IpAddrInfo[] }[];
  const seen = new Set<string>();
  const out: LanPrefix[] = [];
  for (const a of links.flatMap((l) => l.addr_info ?? [])) {
    if (a.scope !== 'global' || (a.family !== 'inet' && a.family !== 'inet6') || !a.local || a.prefixlen === undefined) continue;
    const prefix = formatPrefix(parseInterfaceAddress(`${a.local}/${a.prefixlen}`, iface).prefix);
    if (!seen.has(prefix)) {
      seen.add(prefix);
      out.push({ prefix, interface: iface });
    }
  }
  return out;
}

/** The LAN prefixes of the given interfaces; a missing interface or one without a global address is an error. */
export async function readLanPrefixes(run: Runner, interfaces: string[]): Promise<LanPrefix[]> {
  const out: LanPrefix[] = [];
  for (const name of interfaces) {
    checkInterfaceName(name, '--lan-interface');
    const r = await run(['ip', '-j', 'addr', 'show', 'dev', name], { allowFail: true });
    if (r.code !== 0) {
      throw new Error(`LAN interface ${name}: ${r.stderr.trim().split('\n')[0] || 'not found'}; name the LAN interfaces with --lan-interface`);
    }
    const found = parseLanPrefixes(r.stdout, name);
    if (found.length === 0) throw new Error(`LAN interface ${name} has no global IPv4 or IPv6 address, so there is no home prefix to route`);
    out.push(...found);
  }
  return out;
}
