import { formatPrefix, parsePrefix } from '../../shared/cidr.ts';
import { ValidationError } from '../../shared/errors.ts';
import { checkInterfaceName } from '../../shared/interface-name.ts';
import { dnsForwardRules, dnsRedirectChain, overlayGuardChain } from './dns-intercept.ts';
import { isolationForwardRules, isolationInputChain, parseIsolated } from './isolation.ts';

/** Our own nft table on the router; nothing else in the ruleset is ours. */
export const KILL_SWITCH_TABLE = 'inet aerie_gw';

export interface KillSwitchInput {
  tunnel: string;
  lanInterfaces: string[];
  /** The home prefixes: the only sources LAN packets into the tunnel may have. */
  lanPrefixes: string[];
  killSwitch: boolean;
  /** The tunnel's MTU, for clamping the MSS of connections that come in through it. */
  mtu: number;
  /** LAN DNS redirected to this router, DNS over TLS/QUIC refused (default off). */
  dnsIntercept?: boolean;
  /** Overlay prefixes: the router's own packets to them leave only by the tunnel (none: no guard). */
  overlay?: string[];
  /** Home devices the owner fenced in (addresses or prefixes): isolation.ts. */
  isolated?: string[];
}

const q = (name: string) => `"${name}"`;

/** Marks the rules that exist only with the kill switch on; `show` looks for it in nft's listing. */
export const KILL_SWITCH_MARK = 'kill switch:';
const set = (names: string[]) => `{ ${names.map(q).join(', ')} }`;

/**
 * The whole `table inet aerie_gw` as nft text, every rule commented: the
 * kill switch (forward chain) and, when asked, DNS interception and the
 * overlay guard (dns-intercept.ts) and the fence of isolated devices
 * (isolation.ts).
 *
 * The forward chain has policy accept and only ever drops: in nftables a drop
 * in any base chain is final while an accept is not, so other firewalls on the
 * router cannot undo the kill switch and we do not override theirs.
 *
 * Matching is by interface name (iifname/oifname), not index, so the rules
 * load and hold while the tunnel interface does not exist. No conntrack state
 * lets LAN traffic past: every packet is judged, so flows that were open when
 * the tunnel fell are cut as well.
 */
export function renderKillSwitch(input: KillSwitchInput): string {
  const tunnel = checkInterfaceName(input.tunnel, 'interface');
  if (!Array.isArray(input.lanInterfaces) || input.lanInterfaces.length === 0) {
    throw new ValidationError('lanInterfaces', 'expected at least one LAN interface');
  }
  const lan = [...new Set(input.lanInterfaces.map((n, i) => checkInterfaceName(n, `lanInterfaces[${i}]`)))].sort();
  if (lan.includes(tunnel)) throw new ValidationError('interface', 'the tunnel cannot also be a LAN interface');
  if (!Number.isInteger(input.mtu) || input.mtu < 1280 || input.mtu > 9000) {
    throw new ValidationError('mtu', `expected an integer 1280-9000, got ${String(input.mtu)}`);
  }
  if (!Array.isArray(input.lanPrefixes)) throw new ValidationError('lanPrefixes', 'expected a list of prefixes');
  if (input.overlay !== undefined && !Array.isArray(input.overlay)) throw new ValidationError('overlay', 'expected a list of prefixes');
  const prefixes = input.lanPrefixes.map((p, i) => parsePrefix(p, `lanPrefixes[${i}]`));
  const isolated = parseIsolated(input.isolated);
  const sources = (family: 4 | 6) => [...new Set(prefixes.filter((p) => p.family === family).map(formatPrefix))];
  // MSS = MTU - IP header - TCP header (RFC 879): 20 + 20 for IPv4, 40 + 20 for IPv6.
  const mss4 = input.mtu - 40;
  const mss6 = input.mtu - 60;
  const syn = 'tcp flags & (syn | rst) == syn';

  // Anti-spoofing (BCP 38, RFC 2827): the VM trusts a source address inside what it routes to us,
  // and that includes the router's own overlay address, which it treats as the admin gateway.
  // A family with no LAN prefix has no legitimate source at all.
  const spoof = (family: 4 | 6) => {
    const list = sources(family);
    const match = list.length
      ? `${family === 4 ? 'ip' : 'ip6'} saddr != { ${list.join(', ')} }`
      : `meta nfproto ${family === 4 ? 'ipv4' : 'ipv6'}`;
    const why = list.length ? 'whose source is not a LAN address' : 'when the LAN has no prefix of that family';
    return `iifname ${set(lan)} oifname ${q(tunnel)} ${match} drop comment "IPv${family} from the LAN into the tunnel ${why} (anti-spoofing)"`;
  };

  const rules = [
    `oifname ${q(tunnel)} ${syn} tcp option maxseg size set rt mtu comment "clamp MSS of connections into the tunnel to the path MTU"`,
    `iifname ${q(tunnel)} meta nfproto ipv4 ${syn} tcp option maxseg size > ${mss4} tcp option maxseg size set ${mss4} comment "clamp MSS of IPv4 connections from the tunnel to its MTU"`,
    `iifname ${q(tunnel)} meta nfproto ipv6 ${syn} tcp option maxseg size > ${mss6} tcp option maxseg size set ${mss6} comment "clamp MSS of IPv6 connections from the tunnel to its MTU"`,
    spoof(4),
    spoof(6),
    ...isolationForwardRules(set(lan), isolated),
    `iifname ${set(lan)} oifname ${set(lan)} accept comment "LAN to LAN stays at home"`,
    `iifname ${q(tunnel)} oifname ${set(lan)} accept comment "the tunnel may reach the LAN (phones reaching home)"`,
    // With the kill switch off too: DNS enforcement does not depend on it.
    ...(input.dnsIntercept ? dnsForwardRules(set(lan)) : []),
    ...(input.killSwitch
      ? [
          `iifname ${set(lan)} oifname ${q(tunnel)} accept comment "LAN traffic leaves through the tunnel"`,
          `iifname ${set(lan)} drop comment "${KILL_SWITCH_MARK} LAN traffic leaves by no other way, every packet of every flow"`,
          `oifname ${set(lan)} drop comment "${KILL_SWITCH_MARK} nothing but the tunnel reaches the LAN, not even replies to older flows"`,
        ]
      : [
          `oifname ${set(lan)} ct state established,related accept comment "replies to LAN flows that left by the WAN (kill switch off)"`,
          `oifname ${set(lan)} drop comment "nothing else from outside the tunnel reaches the LAN"`,
        ]),
  ];

  return [
    `# Written whole by aerie-gateway; removed only by 'aerie-gateway down'. Edits are overwritten.`,
    `table ${KILL_SWITCH_TABLE} {`,
    ...(input.dnsIntercept ? dnsRedirectChain(set(lan)) : []),
    `\tchain forward {`,
    // Before the usual filter priority (0), so our verdict comes first; a later accept elsewhere cannot undo our drop.
    `\t\ttype filter hook forward priority filter - 10; policy accept;`,
    ...rules.map((r) => `\t\t${r}`),
    `\t}`,
    ...isolationInputChain(set(lan), isolated),
    ...overlayGuardChain(tunnel, input.overlay ?? []),
    `}`,
    '',
  ].join('\n');
}
