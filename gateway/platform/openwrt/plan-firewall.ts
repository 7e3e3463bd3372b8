import { parseIsolated, ROUTER_SERVICES } from '../isolation.ts';
import type { GatewayDesired } from '../platform.ts';
import { KILL_SWITCH_ROUTES } from './plan-network.ts';
import { sectionsOfType, upstreamZones, zoneName, type SystemView } from './system-view.ts';
import type { SectionSpec } from './uci-diff.ts';

/**
 * Our sections of /etc/config/firewall (fw4; options as in the OpenWrt wiki,
 * docs/guide-user/firewall/firewall_configuration), and reading back whether
 * the kill switch and DNS interception are configured.
 */

export const ZONE = 'aerie';
const PREFIX = 'aerie_';
const INCLUDE = `${PREFIX}forward`;

export function planFirewall(d: GatewayDesired, lanZones: string[], includePath: string, out: Map<string, SectionSpec>): void {
  out.set(`${PREFIX}zone`, {
    type: 'zone',
    options: {
      name: ZONE,
      network: [d.interface],
      // The VM is the owner's hub: phones reach home through it (as on Linux, where input is not filtered).
      input: 'ACCEPT',
      output: 'ACCEPT',
      forward: 'REJECT',
      // fw4 clamps the MSS of TCP through the zone's devices to the route MTU.
      mtu_fix: '1',
    },
  });
  lanZones.forEach((zone, z) => {
    out.set(`${PREFIX}fwd_${z}`, { type: 'forwarding', options: { src: zone, dest: ZONE } });
    out.set(`${PREFIX}back_${z}`, { type: 'forwarding', options: { src: ZONE, dest: zone } });
  });
  if (d.dns.intercept) {
    lanZones.forEach((zone, z) => {
      // DNAT without dest_ip: fw4 redirects to the router itself, for IPv4 and IPv6 (family any).
      out.set(`${PREFIX}dns_${z}`, {
        type: 'redirect',
        options: {
          name: 'Aerie: LAN DNS to this router',
          src: zone,
          src_dport: '53',
          dest_port: '53',
          proto: 'tcp udp',
          target: 'DNAT',
          family: 'any',
        },
      });
      // REJECT: fw4 answers TCP with a reset and UDP with port unreachable, so clients fall back to port 53 at once.
      out.set(`${PREFIX}dot_${z}`, {
        type: 'rule',
        options: {
          name: 'Aerie: refuse DNS over TLS and QUIC from the LAN',
          src: zone,
          dest: '*',
          dest_port: '853',
          proto: 'tcp udp',
          target: 'REJECT',
        },
      });
    });
  }
  // Isolated devices reach only DNS, DHCP and time on the router (isolation.ts); the forward half is in the include.
  const isolated = parseIsolated(d.isolated);
  for (const family of [4, 6] as const) {
    if (isolated[family].length === 0) continue;
    lanZones.forEach((zone, z) => {
      const common = { src: zone, src_ip: isolated[family], family: `ipv${family}`, proto: 'tcp udp' };
      out.set(`${PREFIX}iso${family}_svc_${z}`, {
        type: 'rule',
        options: { name: `Aerie: isolated devices may ask this router for DNS, DHCP and time (IPv${family})`, ...common, dest_port: ROUTER_SERVICES.join(' '), target: 'ACCEPT' },
      });
      out.set(`${PREFIX}iso${family}_${z}`, {
        type: 'rule',
        options: { name: `Aerie: isolated devices reach nothing else on this router (IPv${family})`, ...common, target: 'DROP' },
      });
    });
  }
  // Whenever Aerie is on (anti-spoofing); with the kill switch the file holds its rules too (forward-include.ts).
  out.set(INCLUDE, {
    type: 'include',
    options: { type: 'nftables', path: includePath, position: 'chain-pre', chain: 'forward' },
  });
}

/**
 * For show(): the kill switch holds in UCI when our include is there, its fallback routes
 * are (they exist only with it: the include is there with the kill switch off too), and the
 * LAN's ways to the WAN zones are off.
 */
export function killSwitchConfigured(view: Pick<SystemView, 'firewall' | 'network'>): boolean {
  const inc = view.firewall.find((s) => s.name === INCLUDE && s.type === 'include');
  if (!inc || inc.options.enabled === '0') return false;
  const routed = KILL_SWITCH_ROUTES.every((r) => view.network.some((s) => s.name === r.name && s.type === r.type));
  if (!routed) return false;
  const lanZones = view.firewall
    .filter((s) => s.type === 'forwarding' && s.name.startsWith(`${PREFIX}fwd_`))
    .map((s) => s.options.src)
    .filter((z): z is string => typeof z === 'string');
  const upstream = upstreamZones(view.firewall, [...lanZones, ZONE]).map((z) => zoneName(z));
  return sectionsOfType(view.firewall, 'forwarding').every(
    (f) => f.name.startsWith(PREFIX) || !lanZones.includes(String(f.options.src)) || !upstream.includes(String(f.options.dest)) || f.options.enabled === '0',
  );
}

export function dnsInterceptConfigured(view: Pick<SystemView, 'firewall'>): boolean {
  return view.firewall.some((s) => s.type === 'redirect' && s.name.startsWith(`${PREFIX}dns_`) && s.options.enabled !== '0');
}

