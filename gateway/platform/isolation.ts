import { formatPrefix, hostPrefix, isValidPrefix, parseAddress, parsePrefix, prefixContains, type Family, type Prefix } from '../../shared/cidr.ts';
import { ValidationError } from '../../shared/errors.ts';

/**
 * The router's half of an "isolated" home device (the VM fences it off from
 * the internet and from everything of its own but DNS and MQTT). Traffic
 * between two home networks and to the router itself passes here and never
 * reaches the VM, so the router holds the rest of the fence:
 *
 * - forward: an isolated device starts no connection to another home
 *   network, and one it had open stops; it may answer those its owner's
 *   devices start (conntrack's direction);
 * - input: of the router's own services it reaches DNS, DHCP (v4 and v6) and
 *   time, not the admin pages or SSH.
 *
 * Devices on one bridge or one Wi-Fi network reach each other without
 * passing any firewall (the switch chip or the radio forwards their frames),
 * so the fence between devices holds between networks: an IoT device goes on
 * its own network (SSID or VLAN) that is one of the LAN interfaces.
 */

export const ISOLATION_MARK = 'isolated device:';

/** DNS (RFC 1035), DHCP (RFC 2131), DHCPv6 (RFC 8415), NTP (RFC 5905). */
export const ROUTER_SERVICES: readonly number[] = [53, 67, 123, 547];

/** The isolated hosts' addresses and prefixes by family, checked (field `isolated[i]`). */
export function parseIsolated(list: readonly string[] | undefined): Record<Family, string[]> {
  if (list !== undefined && !Array.isArray(list)) throw new ValidationError('isolated', 'expected a list of addresses or prefixes');
  const prefixes: Prefix[] = (list ?? []).map((text, i) => {
    if (typeof text !== 'string') throw new ValidationError(`isolated[${i}]`, 'expected an address or a prefix');
    return text.includes('/') ? parsePrefix(text, `isolated[${i}]`) : hostPrefix(parseAddress(text, `isolated[${i}]`));
  });
  const of = (family: Family) => [...new Set(prefixes.filter((p) => p.family === family).map(formatPrefix))].sort();
  return { 4: of(4), 6: of(6) };
}

const saddr = (family: Family, list: string[]) => `${family === 4 ? 'ip' : 'ip6'} saddr { ${list.join(', ')} }`;
// Every packet the device sends in the direction of a connection it started, new or open since before
// it was isolated; answers to connections others started are the reply direction and pass.
const NOT_A_REPLY = 'ct direction original';

/** Forward rules, before the LAN-to-LAN accept: `lanSet` is the nft set of LAN interface names. */
export function isolationForwardRules(lanSet: string, isolated: Record<Family, string[]>): string[] {
  return ([4, 6] as const).flatMap((family) =>
    isolated[family].length === 0
      ? []
      : [
          `iifname ${lanSet} oifname ${lanSet} ${saddr(family, isolated[family])} ${NOT_A_REPLY} drop comment "${ISOLATION_MARK} starts no connection to another home network (IPv${family}); it may answer"`,
        ],
  );
}

/** Input rules: an isolated device reaches only DNS, DHCP and time on this router. */
export function isolationInputRules(lanSet: string, isolated: Record<Family, string[]>): string[] {
  const ports = `{ ${ROUTER_SERVICES.join(', ')} }`;
  return ([4, 6] as const).flatMap((family) =>
    isolated[family].length === 0
      ? []
      : [
          `iifname ${lanSet} ${saddr(family, isolated[family])} ${NOT_A_REPLY} meta l4proto { tcp, udp } th dport != ${ports} drop comment "${ISOLATION_MARK} reaches only DNS, DHCP and time on this router (IPv${family})"`,
        ],
  );
}

/** The input chain of our table, or nothing when no device is isolated. */
export function isolationInputChain(lanSet: string, isolated: Record<Family, string[]>): string[] {
  const rules = isolationInputRules(lanSet, isolated);
  if (rules.length === 0) return [];
  return [`\tchain input {`, `\t\ttype filter hook input priority filter - 10; policy accept;`, ...rules.map((r) => `\t\t${r}`), `\t}`];
}

/**
 * The isolated entries that share a LAN network with devices that are not
 * isolated: those reach each other there without passing the router's
 * firewall. An entry that is a LAN prefix whole (an IoT network) is alone.
 */
export function isolatedSharingNetworks(
  isolated: readonly string[],
  lan: readonly { prefix: string; interface: string }[],
): { address: string; interface: string; network: string }[] {
  const fenced = isolated.flatMap((text) => {
    try {
      return [{ text, p: text.includes('/') ? parsePrefix(text) : hostPrefix(parseAddress(text)) }];
    } catch {
      return [];
    }
  });
  const networks = lan.filter((l) => isValidPrefix(l.prefix)).map((l) => ({ ...l, p: parsePrefix(l.prefix) }));
  return fenced.flatMap(({ text, p }) => {
    const home = networks.find((n) => n.p.family === p.family && n.p.length <= p.length && prefixContains(n.p, { family: p.family, value: p.network }));
    // Outside every LAN prefix (a stale entry): nothing to say about its neighbours.
    if (!home || home.p.length === p.length) return [];
    // Only an entry for the whole network is known to leave nobody else there (pieces adding up to it are not summed).
    const covered = fenced.some((f) => f.p.family === home.p.family && f.p.length === home.p.length && f.p.network === home.p.network);
    return covered ? [] : [{ address: text, interface: home.interface, network: formatPrefix(home.p) }];
  });
}
