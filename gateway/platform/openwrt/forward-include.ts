import { formatPrefix, parsePrefix, type Family, type Prefix } from '../../../shared/cidr.ts';
import { checkInterfaceName } from '../../../shared/interface-name.ts';
import { isolationForwardRules, parseIsolated } from '../isolation.ts';

/**
 * The nft rules of the fw4 include `aerie_forward` (type nftables, position
 * chain-pre, chain forward): fw4 pastes the file at the top of its `forward`
 * chain, before `ct state vmap { established : accept, … }`, so every packet
 * is judged, not only a flow's first. They only drop: a drop is final in
 * nftables, so nothing later in the ruleset can undo it.
 *
 * Always, while Aerie is enabled: anti-spoofing (BCP 38, RFC 2827). The VM
 * trusts a source address inside what it routes to us, the router's own
 * overlay address among them, so a LAN packet into the tunnel must come
 * from a LAN prefix. The rules are those of the Linux adapter
 * (kill-switch.ts): the prefixes of all LANs, any LAN device; a family with
 * no LAN prefix has no legitimate source at all.
 *
 * Why an include and not fw4 `rule` sections with `src_ip '!…'`: fw4 takes
 * one negated value per rule, and a LAN may have several prefixes per family
 * (two negated rules would drop every source); one `saddr != { … }` set per
 * family says it whole. fw4's rules also come after its `ct state` accept,
 * while these see every packet, as the Linux adapter's do. And the UCI store
 * gains a single section of ours, which set(null) deletes with the file.
 *
 * With the kill switch on, also: the LAN's forwardings to the WAN zones are
 * disabled, so no new flow can go that way; these rules stop the flows that
 * were open before, in both directions. When no WAN device is known the rules
 * drop everything between the LAN and any device that is neither the tunnel
 * nor the LAN.
 *
 * Isolated devices (isolation.ts) start no connection to another home
 * network; their input half is a pair of fw4 rules (plan-firewall.ts).
 *
 * Devices are matched by name (iifname/oifname), so the rules load while a
 * device is absent.
 */

export const ANTI_SPOOF_MARK = 'aerie anti-spoofing:';
export const KILL_SWITCH_INCLUDE_MARK = 'aerie kill switch:';

export interface ForwardIncludeInput {
  tunnel: string;
  lanDevices: string[];
  /** The home prefixes, of all LANs: the only sources LAN packets into the tunnel may have. */
  lanPrefixes: string[];
  /** The WAN devices when the kill switch is on; null when it is off. */
  wanDevices: string[] | null;
  /** Home devices the owner isolated: they start no connection to another home network (isolation.ts). */
  isolated?: string[];
}

const set = (names: string[]) => `{ ${names.map((n) => `"${n}"`).join(', ')} }`;

/** Names fw4 zones may hold that are not plain device names (wildcards like "eth+") are left out. */
function plainNames(names: string[]): string[] {
  return [...new Set(names.filter((n) => /^[A-Za-z0-9_.-]{1,15}$/.test(n) && !n.startsWith('-')))].sort();
}

/** A family's prefixes, each once (nft merges overlapping ones in an anonymous set). */
const sources = (prefixes: Prefix[], family: Family) => [...new Set(prefixes.filter((p) => p.family === family).map(formatPrefix))];

export function renderForwardInclude(input: ForwardIncludeInput): string {
  const tunnel = checkInterfaceName(input.tunnel, 'interface');
  const lan = [...new Set(input.lanDevices.map((d, i) => checkInterfaceName(d, `lan[${i}].interface`)))].sort();
  const prefixes = input.lanPrefixes.map((p, i) => parsePrefix(p, `lanPrefixes[${i}]`));
  const fromLan = `iifname ${set(lan)} oifname "${tunnel}"`;
  const spoof = (family: Family) => {
    const list = sources(prefixes, family);
    const match = list.length ? `${family === 4 ? 'ip' : 'ip6'} saddr != { ${list.join(', ')} }` : `meta nfproto ${family === 4 ? 'ipv4' : 'ipv6'}`;
    const why = list.length ? 'whose source is not a LAN address' : 'as the LAN has no prefix of that family';
    return `${fromLan} ${match} drop comment "${ANTI_SPOOF_MARK} IPv${family} from the LAN into the tunnel ${why}"`;
  };
  return [
    `# Written by aerie-gateway for fw4 (config include 'aerie_forward'). Edits are overwritten.`,
    spoof(4),
    spoof(6),
    ...isolationForwardRules(set(lan), parseIsolated(input.isolated)),
    ...(input.wanDevices ? killSwitchRules(tunnel, lan, plainNames(input.wanDevices)) : []),
    '',
  ].join('\n');
}

function killSwitchRules(tunnel: string, lan: string[], wanDevices: string[]): string[] {
  const wan = wanDevices.filter((d) => d !== tunnel && !lan.includes(d));
  if (wan.length === 0) {
    const inside = set([tunnel, ...lan]);
    return [
      `iifname ${set(lan)} oifname != ${inside} drop comment "${KILL_SWITCH_INCLUDE_MARK} no WAN device known: LAN traffic leaves only through the tunnel"`,
      `iifname != ${inside} oifname ${set(lan)} drop comment "${KILL_SWITCH_INCLUDE_MARK} no WAN device known: only the tunnel reaches the LAN"`,
    ];
  }
  return [
    `iifname ${set(lan)} oifname ${set(wan)} drop comment "${KILL_SWITCH_INCLUDE_MARK} LAN flows opened before it are cut, every packet"`,
    `iifname ${set(wan)} oifname ${set(lan)} drop comment "${KILL_SWITCH_INCLUDE_MARK} and their replies too"`,
  ];
}
