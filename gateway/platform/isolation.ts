import { formatPrefix, hostPrefix, parseAddress, parsePrefix, type Family, type Prefix } from '../../shared/cidr.ts';
import { ValidationError } from '../../shared/errors.ts';

/**
 * The router's half of an "isolated" home device (the VM fences it off from
 * the internet and from everything of its own but DNS and MQTT). Traffic
 * between two home networks and to the router itself passes here and never
 * reaches the VM, so the router holds the rest of the fence:
 *
 * - forward: an isolated device starts no connection to another home
 *   network; it may answer those its owner's devices start (conntrack);
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
// Not `ct state != established,related`: nft reads that as one value (6), which every reply is not.
const NOT_A_REPLY = 'ct state & (established | related) == 0';

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
