/**
 * The one interface between the reconciler and the operating system. An
 * adapter (`linux` here; `openwrt` with UCI later) makes the system match a
 * complete desired state; it is told nothing incremental.
 */

export interface GatewayDesired {
  /** The WireGuard interface (at most 15 characters). */
  interface: string;
  /** Base64; goes to the system on stdin only, never in argv. */
  privateKey: string;
  /** Our tunnel addresses with their prefix length, "203.0.113.130/25". */
  addresses: string[];
  mtu: number;
  peer: {
    publicKey: string;
    /** "ip:port" (already resolved), or null while the VM's name does not resolve. */
    endpoint: string | null;
    /** What the VM may send us: everything, since it is our exit. */
    allowedIps: string[];
    keepalive: number;
    /**
     * Changing it makes the adapter drop the peer and add it again, which
     * discards a stale session so that a new handshake starts at once.
     */
    generation: number;
  };
  /** Overlay prefixes the router itself reaches through the tunnel (main table). */
  overlay: string[];
  /** LAN interfaces with their prefixes: the sources of policy-routed traffic. */
  lan: { interface: string; prefixes: string[] }[];
  /** The routing table for LAN traffic and the priority of its ip rules. */
  table: number;
  rulePriority: number;
  /** Fail closed: LAN traffic leaves only through the tunnel. */
  killSwitch: boolean;
  /**
   * Home devices the owner fenced in on the VM (addresses or prefixes): the
   * router keeps them from other home networks and its own services.
   */
  isolated?: string[];
  /** The VM's IPv6 /64 for the home: on this LAN interface, announced to its devices; null: none. */
  homeV6?: { interface: string; prefix: string } | null;
  dns: {
    /** The LAN's DNS (port 53, to any address) goes to this router's resolver; DNS over TLS/QUIC is refused. */
    intercept: boolean;
    /** The VM's resolver: its overlay addresses, port 53. */
    servers: string[];
    /**
     * Absolute path of a resolv file that gets `nameserver` lines for `servers`, for the
     * router's own resolver (dnsmasq --resolv-file); null: none. set(null) leaves it.
     */
    resolvFile: string | null;
  };
}

/** What the adapter owns, so that set(null) can remove it even in a fresh process. */
export interface Ownership {
  interface: string;
  table: number;
}

export interface PeerState {
  publicKey: string;
  endpoint: string | null;
  /** Unix seconds; 0 when there has never been a handshake. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
}

export interface TunnelState {
  /** The interface exists. */
  present: boolean;
  /** It is administratively up. */
  up: boolean;
  peers: PeerState[];
  /** The kill switch is in force in the kernel (whether or not a daemon runs). */
  killSwitch: boolean;
  /** DNS interception is in force in the kernel. */
  dnsIntercept: boolean;
}

export interface Platform {
  readonly name: string;
  /**
   * Makes the system match `desired`; calling it again with the same state
   * changes nothing. null removes everything this adapter owns. The linux
   * adapter leaves the resolv file: the router's resolver keeps asking the
   * VM and gets no answer, so DNS fails closed rather than falling back to
   * the ISP. The openwrt adapter restores dnsmasq's UCI options as they were
   * (disabling or removing the package must give the router back as found).
   */
  set(desired: GatewayDesired | null): Promise<void>;
  /** Reads the tunnel's state and whether the kill switch holds (never fails for a missing interface). */
  show(iface: string): Promise<TunnelState>;
}
