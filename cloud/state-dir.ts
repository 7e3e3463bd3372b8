import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  formatPrefix,
  parsePrefix,
  prefixSize,
  prefixesOverlap,
  randomOverlayV4,
  randomUlaV6,
  type Prefix,
} from '../shared/cidr.ts';
import { ValidationError } from '../shared/errors.ts';
import { checkInterfaceName } from '../shared/interface-name.ts';
import { generateKeyPair, publicKeyFromPrivate } from '../shared/keys.ts';
import { formatEndpoint, formatFingerprint, parseEndpoint } from '../shared/pairing-code.ts';
import { checkZone, DNS_KEYS } from './core/dns-settings.ts';
import { DEFAULT_SOURCES } from './dns/lists/blocklist.ts';
import { formatUpstream, parseUpstream } from './dns/upstream/spec.ts';
import { openStore, type Store } from './store/store.ts';
import { certFingerprint, generateSelfSignedCert } from './tls-cert.ts';

// The VM's state directory: aerie.db (settings, devices, pairing codes), the
// WireGuard private key and the TLS key + certificate of the pairing listener.

export const DEFAULT_STATE_DIR = '/var/lib/aerie';
export const DEFAULT_LISTEN_PORT = 51820;
export const DEFAULT_PAIRING_PORT = 8443;
export const HUB_INTERFACE = 'aerie0';

export const FILES = {
  wireguardKey: 'wireguard.key',
  tlsKey: 'tls.key',
  tlsCert: 'tls.crt',
  controlSocket: 'control.sock',
} as const;

const S = {
  overlayV4: 'overlay_v4',
  overlayV6: 'overlay_v6',
  publicHost: 'public_host',
  publicPort: 'public_port',
  listenPort: 'listen_port',
  pairingPort: 'pairing_port',
  wanInterface: 'wan_interface',
  interface: 'interface',
  homeV6Prefix: 'home_v6_prefix',
} as const;

export interface CloudState {
  stateDir: string;
  /** The hub's WireGuard interface name. */
  interface: string;
  privateKey: string;
  publicKey: string;
  tls: { keyPem: string; certPem: string; fingerprint: Buffer };
  overlay: { v4: Prefix; v6: Prefix };
  /** Where peers reach the VM: WireGuard at publicHost:publicPort, pairing at publicHost:pairingPort. */
  publicHost: string;
  publicPort: number;
  /** The port the hub's WireGuard listens on (equals publicPort unless a NAT forwards). */
  listenPort: number;
  pairingPort: number;
  /** null: not configured, the daemon uses the interface of the default route. */
  wanInterface: string | null;
  /** A prefix the provider routes to the VM; homes get their IPv6 /64 from it, without NAT. null: beside the overlay, NATed. */
  homeV6Prefix: Prefix | null;
}

export interface InitOptions {
  stateDir: string;
  /** HOST or HOST:PORT; PORT is the WireGuard port peers connect to. */
  publicEndpoint: string;
  wanInterface?: string;
  overlayV4?: string;
  overlayV6?: string;
  /** Default: the port of publicEndpoint, else 51820. */
  listenPort?: number;
  pairingPort?: number;
  /** Upstreams of the VM's resolver ("udp:127.0.0.1", "dot:HOST@IP", …). */
  dnsUpstreams?: string[];
  dnsZone?: string;
  /** On first init: start with the default blocklists (default) or none. */
  dnsLists?: 'default' | 'none';
  /** A routed IPv6 prefix of the VM (a /40 to /60) that homes get their /64 from, without NAT. */
  homeV6Prefix?: string;
}

export interface InitResult {
  state: CloudState;
  /** True when there was no state before. */
  created: boolean;
  /** What was created, kept or changed, one line each, for a person to read. */
  report: string[];
}

/** The state directory is missing, incomplete or would be damaged by a request. */
export class StateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateError';
  }
}

/**
 * Creates the state, or completes and updates an existing one without
 * destroying it: keys and overlay prefixes are kept (asking for other prefixes
 * is an error); endpoint, ports and WAN interface are updated when given.
 */
export function initState(opts: InitOptions): InitResult {
  // Validate everything before touching the disk.
  const wanInterface = opts.wanInterface === undefined ? undefined : checkInterfaceName(opts.wanInterface, 'wanInterface');
  const overlayV4 = opts.overlayV4 === undefined ? undefined : checkOverlay(opts.overlayV4, 4, 'overlayV4');
  const overlayV6 = opts.overlayV6 === undefined ? undefined : checkOverlay(opts.overlayV6, 6, 'overlayV6');
  const homeV6Prefix = opts.homeV6Prefix === undefined ? undefined : checkHomeV6Prefix(opts.homeV6Prefix, 'homeV6Prefix');
  if (opts.listenPort !== undefined) checkPort(opts.listenPort, 'listenPort');
  if (opts.pairingPort !== undefined) checkPort(opts.pairingPort, 'pairingPort');
  const dnsUpstreams = opts.dnsUpstreams?.map((u, i) => formatUpstream(parseUpstream(u, `dnsUpstreams[${i}]`)));
  const dnsZone = opts.dnsZone === undefined ? undefined : checkZone(opts.dnsZone, 'dnsZone');
  let explicitPort = true;
  let endpoint: { host: string; port: number };
  try {
    endpoint = parseEndpoint(opts.publicEndpoint, undefined, 'publicEndpoint');
  } catch {
    explicitPort = false; // no port given (or bad input, which the next call reports)
    endpoint = parseEndpoint(opts.publicEndpoint, opts.listenPort ?? DEFAULT_LISTEN_PORT, 'publicEndpoint');
  }

  const dir = resolve(opts.stateDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700); // the directory holds private keys and the control socket
  const report: string[] = [];
  const store = openStore(dir);
  let created: boolean;
  try {
    created = store.settings.get(S.overlayV4) === undefined;
    store.transaction(() => {
      const set = (key: string, value: string, what: string) => {
        const old = store.settings.get(key);
        if (old === value) return;
        store.settings.set(key, value);
        if (old !== undefined) report.push(`${what} changed from ${old} to ${value}`);
      };
      if (created) {
        const v4 = overlayV4 ?? randomOverlayV4();
        const v6 = overlayV6 ?? randomUlaV6();
        store.settings.set(S.overlayV4, formatPrefix(v4));
        store.settings.set(S.overlayV6, formatPrefix(v6));
        store.settings.set(S.interface, HUB_INTERFACE);
        report.push(`created state in ${dir}`);
      } else {
        for (const [key, want, what] of [
          [S.overlayV4, overlayV4, 'IPv4'],
          [S.overlayV6, overlayV6, 'IPv6'],
        ] as const) {
          const have = store.settings.get(key)!;
          if (want && formatPrefix(want) !== have) {
            throw new StateError(
              `the overlay ${what} prefix of ${dir} is ${have}; changing it to ${formatPrefix(want)} would ` +
                `re-address every paired device. Leave --overlay-${what === 'IPv4' ? 'v4' : 'v6'} out to keep it, ` +
                `or start over with a new state directory`,
            );
          }
        }
        report.push(`kept existing state in ${dir}`);
      }
      const storedListen = store.settings.get(S.listenPort);
      const listenPort =
        opts.listenPort ?? (explicitPort ? endpoint.port : storedListen ? Number(storedListen) : DEFAULT_LISTEN_PORT);
      const publicPort = explicitPort ? endpoint.port : listenPort;
      set(S.publicHost, endpoint.host, 'public host');
      set(S.publicPort, String(publicPort), 'public WireGuard port');
      set(S.listenPort, String(listenPort), 'WireGuard listen port');
      if (opts.pairingPort !== undefined || store.settings.get(S.pairingPort) === undefined) {
        set(S.pairingPort, String(opts.pairingPort ?? DEFAULT_PAIRING_PORT), 'pairing port');
      }
      if (wanInterface !== undefined) set(S.wanInterface, wanInterface, 'WAN interface');
      if (homeV6Prefix !== undefined) {
        const overlay6 = parsePrefix(store.settings.get(S.overlayV6)!);
        if (prefixesOverlap(homeV6Prefix, overlay6)) {
          throw new ValidationError('homeV6Prefix', `${formatPrefix(homeV6Prefix)} overlaps the overlay ${formatPrefix(overlay6)}`);
        }
        const have = store.settings.get(S.homeV6Prefix);
        if (have !== undefined && have !== formatPrefix(homeV6Prefix) && store.devices.list().some((d) => d.role === 'gateway')) {
          throw new StateError(
            `the homes' IPv6 prefix is ${have} and routers are paired with /64s of it; changing it to ${formatPrefix(homeV6Prefix)} ` +
              'would take their addresses away. Remove the routers first, or start over with a new state directory',
          );
        }
        set(S.homeV6Prefix, formatPrefix(homeV6Prefix), "homes' IPv6 prefix");
      }
      if (dnsUpstreams?.length) set(DNS_KEYS.upstreams, JSON.stringify(dnsUpstreams), 'DNS upstreams');
      if (dnsZone !== undefined) set(DNS_KEYS.zone, dnsZone, 'DNS zone (a running daemon uses it after a restart)');
      if (store.settings.get(DNS_KEYS.listsSeeded) === undefined) {
        store.settings.set(DNS_KEYS.listsSeeded, '1');
        if (opts.dnsLists !== 'none') {
          for (const l of DEFAULT_SOURCES) {
            if (!store.dns.lists().some((r) => r.id === l.id || r.url === l.url)) {
              store.dns.addList({ id: l.id, url: l.url, enabled: true, addedAt: Date.now() });
            }
          }
          report.push(`added the default blocklists: ${DEFAULT_SOURCES.map((l) => l.id).join(', ')}`);
        }
      }
    });

    const keyPath = join(dir, FILES.wireguardKey);
    if (existsSync(keyPath)) {
      publicKeyFromPrivate(readKeyFile(keyPath)); // refuse to go on with a damaged key
      ensureMode(keyPath, 0o600, report);
      report.push('kept the existing WireGuard key');
    } else {
      writeSecretFile(keyPath, `${generateKeyPair().privateKey}\n`);
      report.push('created a WireGuard key pair');
    }

    const tlsKeyPath = join(dir, FILES.tlsKey);
    const tlsCertPath = join(dir, FILES.tlsCert);
    if (existsSync(tlsKeyPath) && existsSync(tlsCertPath) && tlsPairMatches(tlsKeyPath, tlsCertPath)) {
      ensureMode(tlsKeyPath, 0o600, report);
      report.push('kept the existing TLS certificate (routers pin it by fingerprint)');
    } else {
      const cert = generateSelfSignedCert({ host: endpoint.host });
      writeSecretFile(tlsKeyPath, cert.keyPem);
      writeFileAtomic(tlsCertPath, cert.certPem, 0o644);
      report.push('created a TLS key and self-signed certificate for the pairing listener');
    }

    const state = loadState(dir, store);
    report.push(
      `WireGuard public key ${state.publicKey}`,
      `overlay ${formatPrefix(state.overlay.v4)} and ${formatPrefix(state.overlay.v6)}`,
      `WireGuard endpoint ${formatEndpoint(state.publicHost, state.publicPort)} (listening on port ${state.listenPort})`,
      `pairing listener ${formatEndpoint(state.publicHost, state.pairingPort)}, certificate SHA-256 ${formatFingerprint(state.tls.fingerprint)}`,
      state.wanInterface ? `WAN interface ${state.wanInterface}` : 'WAN interface: the one of the default route',
    );
    return { state, created, report };
  } finally {
    store.close();
  }
}

/** Reads the state back; `store` (already open on the same directory) saves opening it twice. */
export function loadState(stateDir: string, store?: Store): CloudState {
  const dir = resolve(stateDir);
  const notInitialized = () =>
    new StateError(`${dir} holds no Aerie state; create it with: aerie-cloud init --public-endpoint HOST`);
  if (!existsSync(join(dir, 'aerie.db'))) throw notInitialized();
  const own = store ?? openStore(dir);
  try {
    const s = own.settings.all();
    if (s[S.overlayV4] === undefined) throw notInitialized();
    const need = (key: string): string => {
      const v = s[key];
      if (v === undefined) throw new StateError(`${dir} is incomplete (no ${key}); run aerie-cloud init again`);
      return v;
    };
    const read = (file: string): string => {
      try {
        return readFileSync(join(dir, file), 'utf8');
      } catch {
        throw new StateError(`${join(dir, file)} is missing; run aerie-cloud init again to recreate it`);
      }
    };
    // Like ssh with its keys: a private key others may read is refused, not used.
    const readSecret = (file: string): string => {
      const path = join(dir, file);
      const mode = existsSync(path) ? statSync(path).mode & 0o777 : 0;
      if ((mode & 0o077) !== 0) {
        throw new StateError(`${path} is readable by other users (mode ${mode.toString(8)}); fix it with: chmod 600 ${path}`);
      }
      return read(file);
    };
    const privateKey = readKeyFile(join(dir, FILES.wireguardKey), readSecret(FILES.wireguardKey));
    const certPem = read(FILES.tlsCert);
    return {
      stateDir: dir,
      interface: s[S.interface] ?? HUB_INTERFACE,
      privateKey,
      publicKey: publicKeyFromPrivate(privateKey),
      tls: { keyPem: readSecret(FILES.tlsKey), certPem, fingerprint: certFingerprint(certPem) },
      overlay: { v4: parsePrefix(need(S.overlayV4)), v6: parsePrefix(need(S.overlayV6)) },
      publicHost: need(S.publicHost),
      publicPort: Number(need(S.publicPort)),
      listenPort: Number(need(S.listenPort)),
      pairingPort: Number(s[S.pairingPort] ?? DEFAULT_PAIRING_PORT),
      wanInterface: s[S.wanInterface] ?? null,
      homeV6Prefix: s[S.homeV6Prefix] ? parsePrefix(s[S.homeV6Prefix]!) : null,
    };
  } finally {
    if (!store) own.close();
  }
}

/**
 * Opens the store of an existing state directory and loads the state. Checks
 * that the state exists first, so a mistyped directory is an error and not a
 * new, empty database.
 */
export function openState(stateDir: string): { store: Store; state: CloudState } {
  loadState(stateDir); // throws StateError, creating nothing, when there is no state
  const store = openStore(resolve(stateDir));
  try {
    return { store, state: loadState(stateDir, store) };
  } catch (err) {
    store.close();
    throw err;
  }
}

function checkOverlay(text: string, family: 4 | 6, field: string): Prefix {
  const p = parsePrefix(text, field);
  if (p.family !== family) throw new ValidationError(field, `expected an IPv${family} prefix, got ${text}`);
  // Room for the VM and at least one device (and IPv4's broadcast address).
  if (prefixSize(p) < 4n) throw new ValidationError(field, `${text} is too small: at least a /${family === 4 ? 30 : 126}`);
  if (family === 4 && prefixesOverlap(p, parsePrefix('127.0.0.0/8'))) {
    throw new ValidationError(field, `${text} is inside the loopback range`);
  }
  return p;
}

/** Room for many homes (a /64 each), and global: a ULA prefix needs no provider. */
function checkHomeV6Prefix(text: string, field: string): Prefix {
  const p = parsePrefix(text, field);
  if (p.family !== 6) throw new ValidationError(field, `expected an IPv6 prefix, got ${text}`);
  if (p.length < 40 || p.length > 60) throw new ValidationError(field, `expected a /40 to /60 (a /64 for each home), got /${p.length}`);
  return p;
}

function checkPort(port: number, field: string): void {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ValidationError(field, `expected a port number 1-65535, got ${port}`);
  }
}

function readKeyFile(path: string, text = readFileSync(path, 'utf8')): string {
  const key = text.trim();
  try {
    publicKeyFromPrivate(key);
  } catch {
    // Never print the file's content: it is (or was) a private key.
    throw new StateError(`${path} does not hold a valid WireGuard private key`);
  }
  return key;
}

function tlsPairMatches(keyPath: string, certPath: string): boolean {
  try {
    return new X509Certificate(readFileSync(certPath)).checkPrivateKey(createPrivateKey(readFileSync(keyPath)));
  } catch {
    return false;
  }
}

function ensureMode(path: string, mode: number, report: string[]): void {
  if ((statSync(path).mode & 0o777) !== mode) {
    chmodSync(path, mode);
    report.push(`set the mode of ${path} to ${mode.toString(8)}`);
  }
}

function writeSecretFile(path: string, content: string): void {
  writeFileAtomic(path, content, 0o600);
}

/** Writes a temporary file with its final mode from the start, then renames it into place. */
function writeFileAtomic(path: string, content: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  writeFileSync(tmp, content, { mode, flag: 'wx' });
  chmodSync(tmp, mode); // the umask may have taken bits away from `mode`
  renameSync(tmp, path);
}
