import type { GatewayDesired } from '../../../gateway/platform/platform.ts';
import { encodeKey, publicKeyFromPrivate } from '../../../shared/keys.ts';
import type { Fixture, NetifdOverride } from './fake-uci.ts';

// A router as OpenWrt 24.10 sets it up (LAN on a bridge, DHCP on eth1), with
// documentation addresses, and the desired state Aerie pushes to it. Fixed keys
// so that golden files do not change from run to run.

const key = (seed: number) => encodeKey(Uint8Array.from({ length: 32 }, (_, i) => (seed + i * 7) & 0xff));
export const ROUTER_PRIVATE = key(1);
export const VM_PUBLIC = publicKeyFromPrivate(key(101));

export function openwrtDefaults(): Fixture {
  return {
    network: [
      { name: 'loopback', type: 'interface', options: { device: 'lo', proto: 'static', ipaddr: '127.0.0.1', netmask: '255.0.0.0' } },
      { name: 'globals', type: 'globals', options: { ula_prefix: 'fd12:3456:789a::/48', packet_steering: '1' } },
      { type: 'device', options: { name: 'br-lan', type: 'bridge', ports: ['lan1', 'lan2'] } },
      { name: 'lan', type: 'interface', options: { device: 'br-lan', proto: 'static', ipaddr: '192.0.2.1', netmask: '255.255.255.0', ip6assign: '60' } },
      { name: 'wan', type: 'interface', options: { device: 'eth1', proto: 'dhcp' } },
      { name: 'wan6', type: 'interface', options: { device: 'eth1', proto: 'dhcpv6' } },
    ],
    firewall: [
      { type: 'defaults', options: { syn_flood: '1', input: 'REJECT', output: 'ACCEPT', forward: 'REJECT' } },
      { type: 'zone', options: { name: 'lan', network: ['lan'], input: 'ACCEPT', output: 'ACCEPT', forward: 'ACCEPT' } },
      { type: 'zone', options: { name: 'wan', network: ['wan', 'wan6'], input: 'REJECT', output: 'ACCEPT', forward: 'REJECT', masq: '1', mtu_fix: '1' } },
      { type: 'forwarding', options: { src: 'lan', dest: 'wan' } },
      { type: 'rule', options: { name: 'Allow-DHCP-Renew', src: 'wan', proto: 'udp', dest_port: '68', target: 'ACCEPT', family: 'ipv4' } },
      { type: 'rule', options: { name: 'Allow-Ping', src: 'wan', proto: 'icmp', icmp_type: 'echo-request', family: 'ipv4', target: 'ACCEPT' } },
    ],
    dhcp: [
      {
        type: 'dnsmasq',
        options: {
          domainneeded: '1',
          localise_queries: '1',
          rebind_protection: '1',
          local: '/lan/',
          domain: 'lan',
          expandhosts: '1',
          authoritative: '1',
          readethers: '1',
          leasefile: '/tmp/dhcp.leases',
          resolvfile: '/tmp/resolv.conf.d/resolv.conf.auto',
          localservice: '1',
          ednspacket_max: '1232',
        },
      },
      { name: 'lan', type: 'dhcp', options: { interface: 'lan', start: '100', limit: '150', leasetime: '12h', dhcpv4: 'server' } },
      { name: 'wan', type: 'dhcp', options: { interface: 'wan', ignore: '1' } },
      { name: 'odhcpd', type: 'odhcpd', options: { maindhcp: '0', leasefile: '/tmp/hosts/odhcpd', loglevel: '4' } },
    ],
  };
}

/** netifd's view: the bridge is up, DHCP on eth1. */
export function openwrtNetifd(): Record<string, NetifdOverride> {
  return { loopback: { device: 'lo', l3_device: 'lo' }, lan: { device: 'br-lan', l3_device: 'br-lan' }, wan: { device: 'eth1', l3_device: 'eth1' }, wan6: { device: 'eth1', l3_device: 'eth1' } };
}

/** The same router with a guest network on its own bridge and zone, which may reach the WAN. */
export function openwrtWithGuest(): Fixture {
  const f = openwrtDefaults();
  f.network!.push(
    { type: 'device', options: { name: 'br-guest', type: 'bridge', ports: ['lan3'] } },
    { name: 'guest', type: 'interface', options: { device: 'br-guest', proto: 'static', ipaddr: '198.51.100.1', netmask: '255.255.255.0' } },
  );
  f.firewall!.push(
    { type: 'zone', options: { name: 'guest', network: ['guest'], input: 'REJECT', output: 'ACCEPT', forward: 'REJECT' } },
    { type: 'forwarding', options: { src: 'guest', dest: 'wan' } },
  );
  return f;
}

export function openwrtNetifdWithGuest(): Record<string, NetifdOverride> {
  return { ...openwrtNetifd(), guest: { device: 'br-guest', l3_device: 'br-guest' } };
}

export function openwrtDesired(): GatewayDesired {
  return {
    interface: 'aerie',
    privateKey: ROUTER_PRIVATE,
    addresses: ['203.0.113.130/25', '2001:db8:a0::2/64'],
    mtu: 1420,
    peer: { publicKey: VM_PUBLIC, endpoint: '203.0.113.10:51820', allowedIps: ['0.0.0.0/0', '::/0'], keepalive: 25, generation: 0 },
    overlay: ['203.0.113.128/25', '2001:db8:a0::/64'],
    lan: [{ interface: 'br-lan', prefixes: ['192.0.2.0/24', '2001:db8:1a::/64'] }],
    table: 7375,
    rulePriority: 7375,
    killSwitch: true,
    dns: { intercept: true, servers: ['203.0.113.129', '2001:db8:a0::1'], resolvFile: null },
  };
}

/**
 * The same router with Aerie configured, written by hand the way the OpenWrt
 * wiki documents each piece (netifd WireGuard, rules, routes, fw4), for the
 * readback test: this UCI in, openwrtDesired() out.
 */
export function openwrtConfigured(includePath: string): Fixture {
  const f = openwrtDefaults();
  f.network!.push(
    {
      name: 'aerie',
      type: 'interface',
      options: {
        proto: 'wireguard',
        private_key: ROUTER_PRIVATE,
        addresses: ['203.0.113.130/25', '2001:db8:a0::2/64'],
        mtu: '1420',
        ip4table: '7375',
        ip6table: '7375',
      },
    },
    {
      name: 'aerie_peer',
      type: 'wireguard_aerie',
      options: {
        description: 'Aerie VM',
        public_key: VM_PUBLIC,
        endpoint_host: '203.0.113.10',
        endpoint_port: '51820',
        persistent_keepalive: '25',
        route_allowed_ips: '1',
        allowed_ips: ['0.0.0.0/0', '::/0'],
      },
    },
    { name: 'aerie_rule_0', type: 'rule', options: { in: 'lan', lookup: '7375', priority: '7375' } },
    { name: 'aerie_rule6_0', type: 'rule6', options: { in: 'lan', lookup: '7375', priority: '7375' } },
    { name: 'aerie_lan_0_0', type: 'route', options: { interface: 'lan', target: '192.0.2.0/24', table: '7375' } },
    { name: 'aerie_lan_0_1', type: 'route6', options: { interface: 'lan', target: '2001:db8:1a::/64', table: '7375' } },
    { name: 'aerie_overlay_0', type: 'route', options: { interface: 'aerie', target: '203.0.113.128/25', table: 'main' } },
    { name: 'aerie_overlay_1', type: 'route6', options: { interface: 'aerie', target: '2001:db8:a0::/64', table: 'main' } },
    { name: 'aerie_unreachable', type: 'route', options: { interface: 'loopback', type: 'unreachable', target: '0.0.0.0/0', table: '7375', metric: '65535' } },
    { name: 'aerie_unreachable6', type: 'route6', options: { interface: 'loopback', type: 'unreachable', target: '::/0', table: '7375', metric: '65535' } },
  );
  f.firewall!.find((s) => s.type === 'forwarding')!.options!.enabled = '0';
  f.firewall!.push(
    { name: 'aerie_zone', type: 'zone', options: { name: 'aerie', network: ['aerie'], input: 'ACCEPT', output: 'ACCEPT', forward: 'REJECT', mtu_fix: '1' } },
    { name: 'aerie_fwd_0', type: 'forwarding', options: { src: 'lan', dest: 'aerie' } },
    { name: 'aerie_dns_0', type: 'redirect', options: { src: 'lan', src_dport: '53', proto: 'tcp udp', target: 'DNAT', family: 'any' } },
    { name: 'aerie_forward', type: 'include', options: { type: 'nftables', path: includePath, position: 'chain-pre', chain: 'forward' } },
  );
  Object.assign(f.dhcp![0]!.options!, { server: ['203.0.113.129', '2001:db8:a0::1'], noresolv: '1' });
  return f;
}
