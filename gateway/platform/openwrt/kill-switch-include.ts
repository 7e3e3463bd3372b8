import { checkInterfaceName } from '../../../shared/interface-name.ts';

/**
 * The nft rules of the fw4 include `aerie_kill_switch` (type nftables,
 * position chain-pre, chain forward): fw4 pastes the file at the top of its
 * `forward` chain, before `ct state vmap { established : accept, … }`.
 *
 * With the kill switch on, the LAN's forwardings to the WAN zones are
 * disabled, so no new flow can go that way; these rules stop the flows that
 * were open before, in both directions, every packet. A drop is final in
 * nftables, so nothing later in the ruleset can undo it.
 *
 * Devices are matched by name (iifname/oifname), so the rules load while a
 * device is absent. When no WAN device is known the rules drop everything
 * between the LAN and any device that is neither the tunnel nor the LAN.
 */

export const KILL_SWITCH_INCLUDE_MARK = 'aerie kill switch:';

export interface KillSwitchIncludeInput {
  tunnel: string;
  lanDevices: string[];
  wanDevices: string[];
}

const set = (names: string[]) => `{ ${names.map((n) => `"${n}"`).join(', ')} }`;

/** Names fw4 zones may hold that are not plain device names (wildcards like "eth+") are left out. */
function plainNames(names: string[]): string[] {
  return [...new Set(names.filter((n) => /^[A-Za-z0-9_.-]{1,15}$/.test(n) && !n.startsWith('-')))].sort();
}

export function renderKillSwitchInclude(input: KillSwitchIncludeInput): string {
  const tunnel = checkInterfaceName(input.tunnel, 'interface');
  const lan = [...new Set(input.lanDevices.map((d, i) => checkInterfaceName(d, `lan[${i}].interface`)))].sort();
  const wan = plainNames(input.wanDevices).filter((d) => d !== tunnel && !lan.includes(d));
  const header = `# Written by aerie-gateway for fw4 (config include 'aerie_kill_switch'). Edits are overwritten.`;
  if (wan.length === 0) {
    const inside = set([tunnel, ...lan]);
    return [
      header,
      `iifname ${set(lan)} oifname != ${inside} drop comment "${KILL_SWITCH_INCLUDE_MARK} no WAN device known: LAN traffic leaves only through the tunnel"`,
      `iifname != ${inside} oifname ${set(lan)} drop comment "${KILL_SWITCH_INCLUDE_MARK} no WAN device known: only the tunnel reaches the LAN"`,
      '',
    ].join('\n');
  }
  return [
    header,
    `iifname ${set(lan)} oifname ${set(wan)} drop comment "${KILL_SWITCH_INCLUDE_MARK} LAN flows opened before it are cut, every packet"`,
    `iifname ${set(wan)} oifname ${set(lan)} drop comment "${KILL_SWITCH_INCLUDE_MARK} and their replies too"`,
    '',
  ].join('\n');
}
