import { formatEndpoint } from '../../../shared/pairing-code.ts';
import type { GatewayDesired } from '../platform.ts';
import { dnsInterceptConfigured, killSwitchConfigured } from './plan-firewall.ts';
import { devicesOfNetwork, sectionsOfType, type SystemView } from './system-view.ts';
import { optionList, type UciSection } from './uci.ts';

/**
 * The desired state that the router's UCI holds: the inverse of plan.ts, for
 * reading back what is configured (and for testing that nothing is lost on
 * the way). What UCI does not hold comes back as a default: the peer
 * generation as 0 and no resolv file. null when no Aerie tunnel is configured.
 */
export function readDesiredFromUci(view: SystemView): GatewayDesired | null {
  const peer = view.network.find((s) => s.name === 'aerie_peer' && s.type.startsWith('wireguard_'));
  if (!peer) return null;
  const iface = view.network.find((s) => s.type === 'interface' && s.name === peer.type.slice('wireguard_'.length));
  if (!iface) return null;
  const str = (s: UciSection, k: string) => (typeof s.options[k] === 'string' ? (s.options[k] as string) : '');
  const ordered = (prefix: RegExp) =>
    view.network
      .map((s) => ({ s, m: prefix.exec(s.name) }))
      .filter((x): x is { s: UciSection; m: RegExpExecArray } => x.m !== null)
      .sort((a, b) => Number(a.m[1]) - Number(b.m[1]) || Number(a.m[2] ?? 0) - Number(b.m[2] ?? 0));

  const rules = ordered(/^aerie_rule_(\d+)$/).map((x) => x.s);
  const lanRoutes = ordered(/^aerie_lan_(\d+)_(\d+)$/);
  const lan = rules.map((r) => {
    const net = str(r, 'in');
    return {
      interface: devicesOfNetwork(view, net)[0] ?? net,
      prefixes: lanRoutes.filter((x) => str(x.s, 'interface') === net).map((x) => str(x.s, 'target')),
    };
  });
  const host = str(peer, 'endpoint_host');
  const dnsmasq = view.dhcp ? sectionsOfType(view.dhcp, 'dnsmasq')[0] : undefined;
  return {
    interface: iface.name,
    privateKey: str(iface, 'private_key'),
    addresses: optionList(iface.options.addresses),
    mtu: Number(str(iface, 'mtu') || 1420),
    peer: {
      publicKey: str(peer, 'public_key'),
      endpoint: host ? formatEndpoint(host, Number(str(peer, 'endpoint_port') || 51820)) : null,
      allowedIps: optionList(peer.options.allowed_ips),
      keepalive: Number(str(peer, 'persistent_keepalive') || 0),
      generation: 0,
    },
    overlay: ordered(/^aerie_overlay_(\d+)$/).map((x) => str(x.s, 'target')),
    lan,
    table: Number(str(iface, 'ip4table')),
    rulePriority: Number(rules[0] ? str(rules[0], 'priority') : 0),
    killSwitch: killSwitchConfigured(view),
    dns: {
      intercept: dnsInterceptConfigured(view),
      servers: dnsmasq ? optionList(dnsmasq.options.server) : [],
      resolvFile: null,
    },
  };
}
