/**
 * The lab's fixed topology: six namespaces joined by veth pairs, addresses
 * from the documentation ranges only (RFC 5737, RFC 3849). Every test and the
 * demo use these names and addresses. `iot` is a second home network on the
 * router (an IoT SSID or VLAN); it is one of Aerie's LAN interfaces only in
 * the labs that pair with it.
 */

export const HOSTS = ['lan', 'router', 'internet', 'vm', 'phone', 'iot'] as const;
export type Host = (typeof HOSTS)[number];

export interface LinkEnd {
  host: Host;
  ifname: string;
  /** Interface addresses with prefix length. */
  addresses: readonly string[];
}

export interface Link {
  a: LinkEnd;
  b: LinkEnd;
}

export const LINKS: readonly Link[] = [
  {
    a: { host: 'lan', ifname: 'eth0', addresses: ['192.0.2.130/25', '2001:db8:1a::130/64'] },
    b: { host: 'router', ifname: 'lan0', addresses: ['192.0.2.129/25', '2001:db8:1a::1/64'] },
  },
  {
    a: { host: 'iot', ifname: 'eth0', addresses: ['198.51.100.140/26', '2001:db8:1c::140/64'] },
    b: { host: 'router', ifname: 'lan1', addresses: ['198.51.100.129/26', '2001:db8:1c::1/64'] },
  },
  {
    a: { host: 'router', ifname: 'wan0', addresses: ['198.51.100.2/25', '2001:db8:100::2/64'] },
    b: { host: 'internet', ifname: 'to-router', addresses: ['198.51.100.1/25', '2001:db8:100::1/64'] },
  },
  {
    a: { host: 'vm', ifname: 'eth0', addresses: ['203.0.113.10/25', '2001:db8:203::10/64'] },
    b: { host: 'internet', ifname: 'to-vm', addresses: ['203.0.113.1/25', '2001:db8:203::1/64'] },
  },
  {
    a: { host: 'phone', ifname: 'eth0', addresses: ['192.0.2.10/26', '2001:db8:192::10/64'] },
    b: { host: 'internet', ifname: 'to-phone', addresses: ['192.0.2.1/26', '2001:db8:192::1/64'] },
  },
];

/** Static routes, each tied to the interface its next hop is on. */
export interface StaticRoute {
  host: Host;
  dev: string;
  to: string;
  via: string;
}

export const ROUTES: readonly StaticRoute[] = [
  { host: 'lan', dev: 'eth0', to: 'default', via: '192.0.2.129' },
  { host: 'lan', dev: 'eth0', to: 'default', via: '2001:db8:1a::1' },
  { host: 'iot', dev: 'eth0', to: 'default', via: '198.51.100.129' },
  { host: 'iot', dev: 'eth0', to: 'default', via: '2001:db8:1c::1' },
  { host: 'router', dev: 'wan0', to: 'default', via: '198.51.100.1' },
  { host: 'router', dev: 'wan0', to: 'default', via: '2001:db8:100::1' },
  { host: 'vm', dev: 'eth0', to: 'default', via: '203.0.113.1' },
  { host: 'vm', dev: 'eth0', to: 'default', via: '2001:db8:203::1' },
  { host: 'phone', dev: 'eth0', to: 'default', via: '192.0.2.1' },
  { host: 'phone', dev: 'eth0', to: 'default', via: '2001:db8:192::1' },
  // A careless ISP routes the home LAN to the router: only the router's
  // firewall keeps the laptop unreachable from the internet.
  { host: 'internet', dev: 'to-router', to: '192.0.2.128/25', via: '198.51.100.2' },
  { host: 'internet', dev: 'to-router', to: '2001:db8:1a::/64', via: '2001:db8:100::2' },
];

/** Namespaces that forward packets. */
export const FORWARDERS: readonly Host[] = ['router', 'internet'];

/** The website's interface in the internet namespace. */
export const WEBSITE_IF = 'web';

/** Every address a test may want to name. */
export const ADDR = {
  laptop: { v4: '192.0.2.130', v6: '2001:db8:1a::130' },
  routerLan: { v4: '192.0.2.129', v6: '2001:db8:1a::1' },
  /** A device on the second home network (lan1), and the router there. */
  iot: { v4: '198.51.100.140', v6: '2001:db8:1c::140' },
  routerIot: { v4: '198.51.100.129', v6: '2001:db8:1c::1' },
  routerWan: { v4: '198.51.100.2', v6: '2001:db8:100::2' },
  ispRouter: { v4: '198.51.100.1', v6: '2001:db8:100::1' },
  vm: { v4: '203.0.113.10', v6: '2001:db8:203::10' },
  ispVm: { v4: '203.0.113.1', v6: '2001:db8:203::1' },
  phone: { v4: '192.0.2.10', v6: '2001:db8:192::10' },
  ispPhone: { v4: '192.0.2.1', v6: '2001:db8:192::1' },
  website: { v4: '192.0.2.80', v6: '2001:db8:80::80' },
  /** The lab's own DNS server for the "internet" names (lib/dns.ts), beside the website. */
  labDns: { v4: '192.0.2.83', v6: '2001:db8:80::53' },
  /** The VM's tunnel (overlay) addresses. */
  vmTunnel: { v4: '203.0.113.129', v6: '2001:db8:a0::1' },
} as const;

/** Prefixes passed to `aerie-cloud init` and reported by the router at pairing. */
export const PREFIX = {
  overlay: { v4: '203.0.113.128/25', v6: '2001:db8:a0::/64' },
  homeLan: { v4: '192.0.2.128/25', v6: '2001:db8:1a::/64' },
  iotLan: { v4: '198.51.100.128/26', v6: '2001:db8:1c::/64' },
} as const;

export const LAPTOP_PORT = 8080;
export const WEBSITE_PORT = 80;

export const URLS = {
  website4: `http://${ADDR.website.v4}/`,
  website6: `http://[${ADDR.website.v6}]/`,
  laptop4: `http://${ADDR.laptop.v4}:${LAPTOP_PORT}/`,
  laptop6: `http://[${ADDR.laptop.v6}]:${LAPTOP_PORT}/`,
} as const;

/** WireGuard interface names; wireguard-go's sockets are shared by all namespaces, so they differ. */
export const WG_IF = { vm: 'aerie0', router: 'aerie', phone: 'aerie-phone' } as const;

/** Both ends of the veth link that has this interface, or null (not a topology link). */
export function findLink(host: Host, ifname: string): { end: LinkEnd; peer: LinkEnd } | null {
  for (const { a, b } of LINKS) {
    if (a.host === host && a.ifname === ifname) return { end: a, peer: b };
    if (b.host === host && b.ifname === ifname) return { end: b, peer: a };
  }
  return null;
}

/**
 * The addresses and routes of one interface, as idempotent commands. Taking a
 * link down drops its routes (and, without keep_addr_on_down, its IPv6
 * addresses); these put them back when it comes up again.
 */
export function interfaceConfigCommands(ns: Record<Host, string>, end: LinkEnd): string[][] {
  const cmds: string[][] = [];
  for (const addr of end.addresses) cmds.push(['ip', '-n', ns[end.host], 'address', 'replace', addr, 'dev', end.ifname]);
  for (const r of ROUTES) {
    if (r.host !== end.host || r.dev !== end.ifname) continue;
    const family = r.via.includes(':') ? '-6' : '-4';
    cmds.push(['ip', '-n', ns[r.host], family, 'route', 'replace', r.to, 'via', r.via, 'dev', r.dev]);
  }
  return cmds;
}

/**
 * The argv lists that build the topology, in order, given the namespace names.
 * Every veth end is created directly inside its namespace, so nothing ever
 * appears in (or collides with) the host's own namespace.
 */
export function topologyCommands(ns: Record<Host, string>): string[][] {
  const cmds: string[][] = [];
  const inNs = (host: Host, ...argv: string[]) => cmds.push(['ip', '-n', ns[host], ...argv]);
  const sysctl = (host: Host, key: string, value: string) =>
    cmds.push(['ip', 'netns', 'exec', ns[host], 'sysctl', '-q', '-w', `${key}=${value}`]);

  for (const host of HOSTS) cmds.push(['ip', 'netns', 'add', ns[host]]);
  for (const host of HOSTS) {
    inNs(host, 'link', 'set', 'lo', 'up');
    // Set before any link exists, so every link inherits them. No duplicate
    // address detection (also for link-local addresses): addresses are usable
    // at once. Keep IPv6 addresses when a link goes down, as IPv4 does.
    for (const scope of ['default', 'all']) {
      sysctl(host, `net.ipv6.conf.${scope}.accept_dad`, '0');
      sysctl(host, `net.ipv6.conf.${scope}.keep_addr_on_down`, '1');
    }
  }
  for (const host of FORWARDERS) {
    sysctl(host, 'net.ipv4.ip_forward', '1');
    sysctl(host, 'net.ipv6.conf.all.forwarding', '1');
  }
  for (const { a, b } of LINKS) {
    inNs(a.host, 'link', 'add', a.ifname, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', ns[b.host]);
  }
  // The website's addresses (and the lab DNS server's, in the same 192.0.2.64/26
  // and 2001:db8:80::/64 blocks) sit on their own interface. A dummy link would do,
  // but test kernels often lack the dummy module, so it is a veth pair whose
  // other end stays, up and unaddressed, in the same namespace.
  inNs('internet', 'link', 'add', WEBSITE_IF, 'type', 'veth', 'peer', 'name', `${WEBSITE_IF}-peer`);
  inNs('internet', 'address', 'add', `${ADDR.website.v4}/32`, 'dev', WEBSITE_IF);
  inNs('internet', 'address', 'add', `${ADDR.website.v6}/128`, 'dev', WEBSITE_IF);
  inNs('internet', 'address', 'add', `${ADDR.labDns.v4}/32`, 'dev', WEBSITE_IF);
  inNs('internet', 'address', 'add', `${ADDR.labDns.v6}/128`, 'dev', WEBSITE_IF);
  inNs('internet', 'link', 'set', `${WEBSITE_IF}-peer`, 'up');
  inNs('internet', 'link', 'set', WEBSITE_IF, 'up');
  for (const { a, b } of LINKS) {
    for (const end of [a, b]) inNs(end.host, 'link', 'set', end.ifname, 'up');
  }
  for (const { a, b } of LINKS) for (const end of [a, b]) cmds.push(...interfaceConfigCommands(ns, end));
  return cmds;
}

/** The interfaces of each host that get an IPv6 link-local address. */
export function linkInterfaces(): Record<Host, string[]> {
  const out = Object.fromEntries(HOSTS.map((h) => [h, [] as string[]])) as Record<Host, string[]>;
  for (const { a, b } of LINKS) for (const end of [a, b]) out[end.host].push(end.ifname);
  out.internet.push(WEBSITE_IF);
  return out;
}
