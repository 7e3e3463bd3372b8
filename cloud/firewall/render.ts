import { ValidationError } from '../../shared/errors.ts';
import { formatPrefix, parsePrefix, prefixesOverlap, type Prefix } from '../../shared/cidr.ts';
import { checkInterfaceName } from '../../shared/interface-name.ts';

/** What the VM's firewall should do; the whole table is derived from it. */
export interface FirewallDesired {
  /** The interface towards the internet; NAT leaves by it. */
  wanInterface: string;
  /** The WireGuard hub interface. */
  tunnelInterface: string;
  /** Overlay and home prefixes (IPv4 and IPv6): NATed out of the WAN, reachable only through the tunnel. */
  natSources: string[];
}

/** Our one table; nothing else in the ruleset is ours. */
export const FIREWALL_FAMILY = 'inet';
export const FIREWALL_TABLE = 'aerie';

export interface CheckedFirewall {
  wan: string;
  tunnel: string;
  v4: string[];
  v6: string[];
}

/** Validates the input and reduces natSources to a sorted list without duplicates or nested prefixes. */
export function checkFirewallDesired(d: FirewallDesired): CheckedFirewall {
  if (typeof d !== 'object' || d === null) throw new ValidationError('firewall', 'expected an object');
  const wan = checkInterfaceName(d.wanInterface, 'wanInterface');
  const tunnel = checkInterfaceName(d.tunnelInterface, 'tunnelInterface');
  if (wan === tunnel) throw new ValidationError('tunnelInterface', `must differ from wanInterface (both are ${JSON.stringify(wan)})`);
  if (!Array.isArray(d.natSources)) throw new ValidationError('natSources', 'expected an array of IP prefixes');
  const parsed = d.natSources.map((text, i) => parsePrefix(text, `natSources[${i}]`));
  // nft refuses overlapping intervals in one set; a prefix inside another adds nothing.
  const kept = parsed.filter(
    (p, i) =>
      !parsed.some(
        (q, j) => j !== i && prefixesOverlap(p, q) && (q.length < p.length || (q.length === p.length && j < i)),
      ),
  );
  kept.sort(comparePrefixes);
  return {
    wan,
    tunnel,
    v4: kept.filter((p) => p.family === 4).map(formatPrefix),
    v6: kept.filter((p) => p.family === 6).map(formatPrefix),
  };
}

function comparePrefixes(a: Prefix, b: Prefix): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.network !== b.network) return a.network < b.network ? -1 : 1;
  return a.length - b.length;
}

const quote = (name: string) => `"${name}"`;
const set = (items: string[]) => `{ ${items.join(', ')} }`;

/**
 * The whole `table inet aerie` as nft text, every rule commented. Base chains
 * use policy accept: other tables on the VM keep deciding about traffic
 * that is not ours.
 */
export function renderFirewall(d: FirewallDesired): string {
  const { wan, tunnel, v4, v6 } = checkFirewallDesired(d);
  const perFamily = (emit: (match: 'ip' | 'ip6', items: string[], label: string) => string): string[] => [
    ...(v4.length ? [emit('ip', v4, 'IPv4')] : []),
    ...(v6.length ? [emit('ip6', v6, 'IPv6')] : []),
  ];

  const prerouting = perFamily(
    (m, items, label) =>
      `iifname != ${set([quote(tunnel), quote('lo')])} ${m} saddr ${set(items)} drop comment "overlay and home ${label} sources are genuine only from the tunnel: the API trusts them"`,
  );
  // The API (and later DNS and MQTT) listen on the VM's tunnel addresses; the
  // kernel would otherwise accept packets for them on any interface.
  const input = perFamily(
    (m, items, label) =>
      `iifname != ${set([quote(tunnel), quote('lo')])} ${m} daddr ${set(items)} drop comment "the VM's ${label} tunnel services answer only through the tunnel"`,
  );
  const forward = [
    // Clamping on the way into the tunnel: rt mtu is then the tunnel's MTU.
    `oifname ${quote(tunnel)} tcp flags & (syn | rst) == syn tcp option maxseg size set rt mtu comment "clamp TCP MSS to the tunnel path MTU"`,
    `iifname ${quote(tunnel)} accept comment "peers may go out and reach each other"`,
    `oifname ${quote(tunnel)} ct state established,related accept comment "replies back into the tunnel"`,
    `oifname ${quote(tunnel)} drop comment "no new connections from outside into the tunnel"`,
    ...perFamily(
      (m, items, label) =>
        `${m} daddr ${set(items)} drop comment "overlay and home ${label} are reached only through the tunnel"`,
    ),
  ];
  const postrouting = perFamily(
    (m, items, label) =>
      `oifname ${quote(wan)} ${m} saddr ${set(items)} masquerade comment "${m === 'ip6' ? 'NAT66' : 'NAT'} of overlay and home ${label} to the VM's address"`,
  );

  // A base chain without rules would still be called for every packet: leave it out.
  const chains = [
    ['prerouting', 'type filter hook prerouting priority raw; policy accept;', prerouting],
    ['input', 'type filter hook input priority filter; policy accept;', input],
    ['forward', 'type filter hook forward priority filter; policy accept;', forward],
    ['postrouting', 'type nat hook postrouting priority srcnat; policy accept;', postrouting],
  ] as const;
  const body = chains
    .filter(([, , rules]) => rules.length > 0)
    .map(([name, head, rules]) => [`\tchain ${name} {`, `\t\t${head}`, ...rules.map((r) => `\t\t${r}`), '\t}'].join('\n'));
  return [
    '# Written whole by aerie-cloud on every change; edits here are overwritten.',
    `table ${FIREWALL_FAMILY} ${FIREWALL_TABLE} {`,
    body.join('\n\n'),
    '}',
    '',
  ].join('\n');
}
