import type { Prefix } from '../../shared/cidr.ts';
import type { Overlay } from './addressing.ts';

/** What core needs to know about the VM (a subset of the loaded state). */
export interface CoreConfig {
  /** The hub's WireGuard interface name. */
  interface: string;
  /** The VM's WireGuard public key. */
  publicKey: string;
  overlay: Overlay;
  publicHost: string;
  /** The WireGuard port peers connect to. */
  publicPort: number;
  listenPort: number;
  pairingPort: number;
  tls: { fingerprint: Uint8Array };
  /** A prefix the provider routes to the VM: homes get their IPv6 /64 from it, without NAT. */
  homeV6Prefix?: Prefix | null;
}

/** Keepalive for peers behind NAT: short enough for the usual 30 s UDP timeouts. */
export const KEEPALIVE_SECONDS = 25;
