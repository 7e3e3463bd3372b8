/** What the VM's firewall should do; the whole `table inet aerie` is derived from it. */

export type InternetPolicy = 'allow' | 'block';

/** What one subject may start; replies to connections others start always pass. */
export interface FirewallPolicy {
  /** block: no new connection from it to the internet. */
  internet: InternetPolicy;
  /** Only the VM's DNS and MQTT on its tunnel addresses; nothing else new. */
  isolated: boolean;
  /** Members only: may reach the home prefixes. */
  lanAccess: boolean;
}

export interface FirewallSubject {
  name: string;
  /** 'host' = a LAN host behind a gateway. */
  kind: 'gateway' | 'owner' | 'member' | 'host';
  /** Tunnel addresses ("203.0.113.131", no length), or a LAN host's address or prefix. */
  addresses: string[];
  /** Gateways: their home prefixes; everyone else []. */
  homePrefixes: string[];
  policy: FirewallPolicy;
}

/** DNAT from the VM's public address(es) on proto/port to a LAN address:port. */
export interface FirewallPublish {
  name: string;
  proto: 'tcp' | 'udp';
  port: number;
  toAddress: string;
  toPort: number;
}

/**
 * The temporary egress address: new connections from `sources` leave with
 * v4/v6 instead of the VM's main address, except to `exceptPrefixes` (and to
 * what the daemon adds to the except sets, with timeouts, from resolver answers).
 */
export interface FirewallEgress {
  /** The current IPv4 pool address, or null: IPv4 keeps the main address. */
  v4: string | null;
  /** The current IPv6 pool address, or null. */
  v6: string | null;
  /** 'all': everything behind the tunnel; else subject names (a gateway stands for its homes). */
  sources: 'all' | string[];
  /** Destinations that keep the main address. */
  exceptPrefixes: string[];
  /**
   * The temporary addresses on the WAN (the IPv4 pool, the IPv6 picks still
   * there): nothing from outside reaches the VM or a published service at one,
   * so a website cannot probe the address it saw and find the VM behind it.
   */
  temporary?: string[];
}

export interface FirewallDesired {
  wanInterface: string;
  tunnelInterface: string;
  /** Overlay prefixes (IPv4 and IPv6). */
  overlay: string[];
  /** The VM's own tunnel addresses. */
  vmAddresses: string[];
  ports: { wireguard: number; pairing: number; api: number; dns: number; mqtt: number; ssh: number | null };
  subjects: FirewallSubject[];
  publishes: FirewallPublish[];
  /** Absent: everything leaves with the VM's main address. */
  egress?: FirewallEgress;
  /** Home prefixes the provider routes to the VM (global IPv6 /64s): they leave as they are, not NATed. */
  routed?: string[];
}

export interface FirewallCounters {
  rules: { chain: string; comment: string; packets: number; bytes: number }[];
  /** Per subject name: packets/bytes it sent (forward, from its addresses) and dropped for it. */
  subjects: Record<string, { outPackets: number; outBytes: number; droppedPackets: number; droppedBytes: number }>;
}

// The functions that work on these types (they import this file for types only, so no cycle at run time).
export { checkFirewallDesired, type CheckedFirewall, type Lists } from './check.ts';
export { renderFirewall } from './render.ts';
export { parseCounters } from './counters.ts';
