import { ValidationError } from './errors.ts';
import { decodeKey, publicKeyFromPrivate } from './keys.ts';
import { formatAddress, formatPrefix, hostPrefix, parseAddress, parsePrefix } from './cidr.ts';
import { formatEndpoint, parseEndpoint } from './pairing-code.ts';

/**
 * The configuration format of `wg setconf` / `wg syncconf` (wg(8),
 * "CONFIGURATION FILE FORMAT") and the parser of `wg show IF dump`. The text
 * holds the private key, so it never goes into argv: hand it to wg with
 * `wgSyncConf` (wg-syncconf.ts).
 */

export interface WgPeerConf {
  publicKey: string;
  allowedIps: string[];
  endpoint?: string;
  keepalive?: number;
}

export interface WgConf {
  privateKey: string;
  listenPort?: number;
  peers: WgPeerConf[];
}

export const DEFAULT_WG_PORT = 51820;

function checkRange(value: number, min: number, max: number, field: string, what: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ValidationError(field, `expected ${what} (${min}-${max}), got ${String(value)}`);
  }
  return value;
}

/**
 * One AllowedIPs entry in canonical form: a prefix with host bits clear, or a
 * bare address meaning just that host.
 */
export function canonicalAllowedIp(text: string, field = 'allowedIps'): string {
  if (typeof text === 'string' && !text.includes('/')) return formatPrefix(hostPrefix(parseAddress(text, field)));
  return formatPrefix(parsePrefix(text, field));
}

function allowedIpsOf(peer: WgPeerConf, field: string): string[] {
  if (!Array.isArray(peer.allowedIps)) {
    throw new ValidationError(`${field}.allowedIps`, 'expected a list of prefixes');
  }
  return [...new Set(peer.allowedIps.map((p, i) => canonicalAllowedIp(p, `${field}.allowedIps[${i}]`)))];
}

/** Validated and canonical peer lines, shared with the wg-quick renderer. */
export function renderPeer(peer: WgPeerConf, field: string, defaultPort = DEFAULT_WG_PORT): string[] {
  decodeKey(peer.publicKey, `${field}.publicKey`);
  const lines = ['[Peer]', `PublicKey = ${peer.publicKey}`];
  const allowed = allowedIpsOf(peer, field);
  if (allowed.length > 0) lines.push(`AllowedIPs = ${allowed.join(', ')}`);
  if (peer.endpoint !== undefined) {
    const { host, port } = parseEndpoint(peer.endpoint, defaultPort, `${field}.endpoint`);
    lines.push(`Endpoint = ${formatEndpoint(host, port)}`);
  }
  if (peer.keepalive !== undefined) {
    // 0 means off; wg(8) allows 1-65535 seconds.
    const k = checkRange(peer.keepalive, 0, 65535, `${field}.keepalive`, 'seconds');
    if (k > 0) lines.push(`PersistentKeepalive = ${k}`);
  }
  return lines;
}

/** Renders the interface and its peers; every value is checked so no input can add a line. */
export function renderWgConf(conf: WgConf): string {
  decodeKey(conf.privateKey, 'privateKey');
  const lines = ['[Interface]', `PrivateKey = ${conf.privateKey}`];
  if (conf.listenPort !== undefined) {
    lines.push(`ListenPort = ${checkRange(conf.listenPort, 0, 65535, 'listenPort', 'a port number')}`);
  }
  if (!Array.isArray(conf.peers)) throw new ValidationError('peers', 'expected a list of peers');
  const own = publicKeyFromPrivate(conf.privateKey);
  const keys = new Map<string, number>();
  const routes = new Map<string, number>();
  conf.peers.forEach((peer, i) => {
    const field = `peers[${i}]`;
    const peerLines = renderPeer(peer, field);
    // wg would merge duplicates and the kernel ignores a peer with our own key.
    if (peer.publicKey === own) throw new ValidationError(`${field}.publicKey`, 'is the interface\'s own public key');
    const first = keys.get(peer.publicKey);
    if (first !== undefined) throw new ValidationError(`${field}.publicKey`, `repeats peers[${first}]`);
    keys.set(peer.publicKey, i);
    // The same prefix on two peers would silently move to the later one (wg(8), AllowedIPs).
    for (const prefix of allowedIpsOf(peer, field)) {
      const owner = routes.get(prefix);
      if (owner !== undefined) {
        throw new ValidationError(`${field}.allowedIps`, `${prefix} is already routed to peers[${owner}]`);
      }
      routes.set(prefix, i);
    }
    lines.push('', ...peerLines);
  });
  return `${lines.join('\n')}\n`;
}

export interface WgPeerStats {
  publicKey: string;
  endpoint: string | null;
  allowedIps: string[];
  /** Unix seconds, 0 for never. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
  /** Seconds, 0 for off. */
  keepalive: number;
}

function counter(text: string, field: string, line: number): number {
  if (!/^[0-9]{1,16}$/.test(text)) throw new ValidationError(field, `expected a number on dump line ${line}`);
  return Number(text);
}

/**
 * Parses `wg show IF dump`: tab-separated, one interface line (private key,
 * public key, listen port, fwmark: skipped, and never echoed) then one line per
 * peer: public key, preshared key, endpoint, allowed ips, latest handshake,
 * rx, tx, persistent keepalive.
 */
export function parseWgDump(text: string): WgPeerStats[] {
  const peers: WgPeerStats[] = [];
  const lines = text.split('\n');
  lines.forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    if (line === '') return;
    const f = line.split('\t');
    if (f.length === 4) return; // the interface line
    const n = index + 1;
    if (f.length !== 8) throw new ValidationError('dump', `expected 4 or 8 tab-separated fields on line ${n}, got ${f.length}`);
    const [publicKey, , endpoint, allowed, handshake, rx, tx, keepalive] = f as [
      string, string, string, string, string, string, string, string,
    ];
    decodeKey(publicKey, 'dump');
    peers.push({
      publicKey,
      endpoint: endpoint === '(none)' ? null : endpoint,
      allowedIps: allowed === '(none)' || allowed === '' ? [] : allowed.split(','),
      latestHandshake: counter(handshake, 'latestHandshake', n),
      rxBytes: counter(rx, 'rxBytes', n),
      txBytes: counter(tx, 'txBytes', n),
      keepalive: keepalive === 'off' ? 0 : counter(keepalive, 'keepalive', n),
    });
  });
  return peers;
}
