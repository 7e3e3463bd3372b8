import { ValidationError } from '../../shared/errors.ts';
import {
  formatAddress,
  formatPrefix,
  isValidAddress,
  parseInterfaceAddress,
  parsePrefix,
  type Prefix,
} from '../../shared/cidr.ts';
import { canonicalAllowedIp, DEFAULT_WG_PORT, renderWgConf, type WgPeerConf } from '../../shared/wg-conf.ts';
import { formatEndpoint, parseEndpoint } from '../../shared/pairing-code.ts';
import { checkInterfaceName } from '../../shared/interface-name.ts';

/** A peer of the hub, as `wg syncconf` takes it. */
export type HubPeer = WgPeerConf;

/** Everything the hub interface should be; set() makes the OS match it. */
export interface HubDesired {
  interface: string;
  privateKey: string;
  listenPort: number;
  /** The VM's own tunnel addresses with their subnets: "203.0.113.129/25", "2001:db8:a0::1/64". */
  addresses: string[];
  mtu: number;
  peers: HubPeer[];
  /** Home prefixes routed to the interface. */
  routes: string[];
}

/** A checked peer in canonical form, as `wg show dump` would print it. */
export interface CheckedPeer {
  publicKey: string;
  allowedIps: string[];
  /** Canonical "host:port"; `literal` is false for a DNS name (wg shows the address it resolved to). */
  endpoint: { text: string; literal: boolean } | null;
  keepalive: number;
}

export interface CheckedHub {
  name: string;
  privateKey: string;
  listenPort: number;
  addresses: string[];
  mtu: number;
  peers: CheckedPeer[];
  routes: Prefix[];
  /** The `wg syncconf` text; holds the private key, so it never goes into argv or a log. */
  conf: string;
}

// IPv6 needs links of at least 1280 bytes (RFC 8200 §5); 9000 is the usual jumbo frame.
const MTU_MIN = 1280;
const MTU_MAX = 9000;

function list(value: unknown, field: string, what: string): unknown[] {
  if (!Array.isArray(value)) throw new ValidationError(field, `expected a list of ${what}`);
  return value;
}

/** Checks all of d (nothing is run before this passes) and puts it in canonical form. */
export function checkHubDesired(d: HubDesired): CheckedHub {
  if (typeof d !== 'object' || d === null) throw new ValidationError('hub', 'expected an object');
  const name = checkInterfaceName(d.interface, 'interface');
  if (!Number.isInteger(d.listenPort) || d.listenPort < 1 || d.listenPort > 65535) {
    throw new ValidationError('listenPort', `expected a port number 1-65535, got ${String(d.listenPort)}`);
  }
  if (!Number.isInteger(d.mtu) || d.mtu < MTU_MIN || d.mtu > MTU_MAX) {
    throw new ValidationError('mtu', `expected ${MTU_MIN}-${MTU_MAX}, got ${String(d.mtu)}`);
  }
  const addresses = unique(
    list(d.addresses, 'addresses', 'interface addresses').map((text, i) => {
      const { address, prefix } = parseInterfaceAddress(text as string, `addresses[${i}]`);
      return `${formatAddress(address)}/${prefix.length}`;
    }),
  );
  const routes = list(d.routes, 'routes', 'prefixes').map((text, i) => parsePrefix(text as string, `routes[${i}]`));
  // Validates keys, prefixes, endpoints and keepalives; refuses duplicate peers and prefixes on two peers.
  const conf = renderWgConf({ privateKey: d.privateKey, listenPort: d.listenPort, peers: d.peers });

  const peers = d.peers.map((p, i): CheckedPeer => {
    const allowedIps = unique(p.allowedIps.map((a, j) => canonicalAllowedIp(a, `peers[${i}].allowedIps[${j}]`)));
    let endpoint: CheckedPeer['endpoint'] = null;
    if (p.endpoint !== undefined) {
      const { host, port } = parseEndpoint(p.endpoint, DEFAULT_WG_PORT, `peers[${i}].endpoint`);
      endpoint = { text: formatEndpoint(host, port), literal: isValidAddress(host) };
    }
    return { publicKey: p.publicKey, allowedIps, endpoint, keepalive: p.keepalive ?? 0 };
  });
  return {
    name,
    privateKey: d.privateKey,
    listenPort: d.listenPort,
    addresses,
    mtu: d.mtu,
    peers,
    routes: uniquePrefixes(routes),
    conf,
  };
}

function unique(items: string[]): string[] {
  return [...new Set(items)].sort();
}

function uniquePrefixes(items: Prefix[]): Prefix[] {
  const seen = new Map(items.map((p) => [formatPrefix(p), p]));
  return [...seen.values()];
}
