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
