import { formatAddress, formatPrefix, parseInterfaceAddress, parsePrefix } from '../../../shared/cidr.ts';
import { parseEndpoint } from '../../../shared/pairing-code.ts';
import { canonicalAllowedIp } from '../../../shared/wg-conf.ts';
import type { GatewayDesired } from '../platform.ts';
import type { SystemView } from './system-view.ts';
import type { SectionSpec } from './uci-diff.ts';
import type { UciOption } from './uci.ts';

/**
 * Our sections of /etc/config/network (layout in plan.ts). Options as the
 * OpenWrt wiki documents them: WireGuard interface and peer
 * (docs/guide-user/network/wireguard/basics; read by proto/wireguard.sh of
 * wireguard-tools), rule/rule6 and route/route6 with `table`, `type`,
 * `metric` (docs/guide-user/network/routing/ip_rules, routes_configuration).
 */

const PREFIX = 'aerie_';
/** Behind every real route (netifd gives the tunnel's routes the interface metric, 0 by default). */
const FALLBACK_METRIC = '65535';
/** The kill switch's fallback routes, which exist only while it is on. */
export const KILL_SWITCH_ROUTES = [
  { name: `${PREFIX}unreachable`, type: 'route' },
  { name: `${PREFIX}unreachable6`, type: 'route6' },
] as const;

export function planNetwork(d: GatewayDesired, nets: string[], view: SystemView, out: Map<string, SectionSpec>): void {
  const table = String(d.table);
  const addresses = [...new Set(d.addresses.map((a) => {
    const { address, prefix } = parseInterfaceAddress(a);
    return `${formatAddress(address)}/${prefix.length}`;
  }))];
  out.set(d.interface, {
    type: 'interface',
    options: {
      proto: 'wireguard',
      // How OpenWrt stores a WireGuard key (proto/wireguard.sh reads it from UCI); never logged.
      private_key: d.privateKey,
      addresses,
      mtu: String(d.mtu),
      ip4table: table,
      ip6table: table,
    },
  });
  const peer: Record<string, UciOption> = { description: 'Aerie VM', public_key: d.peer.publicKey };
  if (d.peer.endpoint !== null) {
    const { host, port } = parseEndpoint(d.peer.endpoint, undefined, 'peer.endpoint');
    peer.endpoint_host = host;
    peer.endpoint_port = String(port);
  }
  if (d.peer.keepalive > 0) peer.persistent_keepalive = String(d.peer.keepalive);
  peer.route_allowed_ips = '1';
  peer.allowed_ips = [...new Set(d.peer.allowedIps.map((p) => canonicalAllowedIp(p)))];
  // netifd reads the peers of interface X from sections of type wireguard_X.
  out.set(`${PREFIX}peer`, { type: `wireguard_${d.interface}`, options: peer });

  const seen = new Set<string>();
  nets.forEach((net, i) => {
    if (seen.has(net)) return;
    seen.add(net);
    const rule = { in: net, lookup: table, priority: String(d.rulePriority) };
    out.set(`${PREFIX}rule_${i}`, { type: 'rule', options: rule });
    out.set(`${PREFIX}rule6_${i}`, { type: 'rule6', options: { ...rule } });
  });
  d.lan.forEach((l, i) => {
    l.prefixes.forEach((text, j) => {
      const p = parsePrefix(text);
      out.set(`${PREFIX}lan_${i}_${j}`, {
        type: p.family === 4 ? 'route' : 'route6',
        options: { interface: nets[i]!, target: formatPrefix(p), table },
      });
    });
  });
  // netifd puts every route of an interface with ip4table into that table, its on-link prefix too,
  // so the router's own way to the overlay is declared in main explicitly.
  const loopback = view.network.find((s) => s.type === 'interface' && (s.name === 'loopback' || s.options.device === 'lo'));
  const anchor = loopback?.name ?? nets[0]!;
  d.overlay.forEach((text, k) => {
    const p = parsePrefix(text);
    const type = p.family === 4 ? 'route' : 'route6';
    out.set(`${PREFIX}overlay_${k}`, { type, options: { interface: d.interface, target: formatPrefix(p), table: 'main' } });
    out.set(`${PREFIX}guard_${k}`, {
      type,
      options: { interface: anchor, type: 'unreachable', target: formatPrefix(p), table: 'main', metric: FALLBACK_METRIC },
    });
  });
  if (d.killSwitch) {
    // On the loopback interface, which is always up: a route on the tunnel would go when the tunnel does.
    const base = { interface: anchor, type: 'unreachable', table, metric: FALLBACK_METRIC };
    out.set(KILL_SWITCH_ROUTES[0].name, { type: KILL_SWITCH_ROUTES[0].type, options: { ...base, target: '0.0.0.0/0' } });
    out.set(KILL_SWITCH_ROUTES[1].name, { type: KILL_SWITCH_ROUTES[1].type, options: { ...base, target: '::/0' } });
  }
}
