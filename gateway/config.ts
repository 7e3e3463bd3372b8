import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import * as v from 'valibot';
import { ValidationError } from '../shared/errors.ts';
import { isValidKey } from '../shared/keys.ts';
import { DeviceName, Endpoint, InterfaceAddress, IpAddress, IpPrefix, Key, LanPrefix, parseWith } from '../shared/schemas.ts';
import { checkInterfaceName } from '../shared/interface-name.ts';
import { writeFileAtomic } from './atomic-file.ts';
import { checkResolvFilePath } from './platform/resolv-file.ts';

export { writeFileAtomic };

/**
 * The router's one config file (JSON). Everything the VM told us at pairing
 * lives under `vm`; the private key lives in its own 0600 file, never here.
 */

export const DEFAULT_CONFIG_PATH = '/etc/aerie/gateway.json';
export const KEY_FILE_NAME = 'gateway.key';

/** Adapts a shared parser that throws ValidationError into a valibot check with its message. */
function valid<T>(parse: (text: T, field: string) => unknown) {
  return v.rawCheck<T>(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    try {
      parse(dataset.value, '');
    } catch (e) {
      addIssue({ message: e instanceof Error ? e.message : String(e) });
    }
  });
}

const InterfaceName = v.pipe(v.string(), valid<string>(checkInterfaceName));
const int = (min: number, max: number, what: string) =>
  v.pipe(
    v.number(),
    v.check((n) => Number.isInteger(n) && n >= min && n <= max, `expected ${what} (an integer ${min}-${max})`),
  );

export const DEFAULT_TABLE = 7375;
export const DEFAULT_PRIORITY = 7375;
export const DEFAULT_INTERFACE = 'aerie';
export const DEFAULT_MTU = 1420;
export const DEFAULT_KEEPALIVE = 25;

export const GatewayConfigSchema = v.pipe(
  v.strictObject({
    name: DeviceName,
    enabled: v.optional(v.boolean(), true),
    /** LAN traffic may leave only through the tunnel (fails closed). */
    killSwitch: v.optional(v.boolean(), true),
    /** The LAN's DNS (port 53, to any address) goes to this router's resolver; DNS over TLS/QUIC is refused. */
    dnsIntercept: v.optional(v.boolean(), true),
    /** Home Assistant discovery of the router's state on the VM's broker (homeassistant/...). */
    homeAssistant: v.optional(v.boolean(), true),
    /**
     * A file this router's resolver reads its upstreams from (dnsmasq --resolv-file): written
     * with the VM's resolver addresses (vm.api). Absolute. Left in place when Aerie is
     * disabled or taken down, so that DNS fails closed.
     */
    dnsResolvFile: v.optional(v.pipe(v.string(), valid<string>(checkResolvFilePath))),
    interface: v.optional(InterfaceName, DEFAULT_INTERFACE),
    // 1280 is the IPv6 minimum link MTU (RFC 8200 §5).
    mtu: v.optional(int(1280, 9000, 'an MTU'), DEFAULT_MTU),
    lanInterfaces: v.pipe(v.array(InterfaceName), v.minLength(1, 'expected at least one LAN interface')),
    /** The home prefixes sent to the VM at pairing, each with the interface it lives on. */
    lanPrefixes: v.array(v.strictObject({ prefix: LanPrefix, interface: InterfaceName })),
    /** Absolute, or relative to the config file's directory. */
    privateKeyFile: v.optional(v.pipe(v.string(), v.minLength(1)), KEY_FILE_NAME),
    vm: v.strictObject({
      publicKey: Key,
      /** The VM's WireGuard endpoint, host:port (the host may be a DNS name). */
      endpoint: Endpoint,
      /** Our tunnel interface addresses, "203.0.113.130/25". */
      addresses: v.pipe(v.array(InterfaceAddress), v.minLength(1, 'expected at least one tunnel address')),
      /** The overlay prefixes; the router itself reaches them through the tunnel. */
      overlay: v.array(IpPrefix),
      /** The VM's API addresses on the overlay (health probe, whoami). */
      api: v.array(IpAddress),
      keepalive: v.optional(int(0, 65535, 'a keepalive in seconds'), DEFAULT_KEEPALIVE),
      /** The IPv6 /64 the VM gave the home: announced on the first LAN interface, routed through the tunnel. */
      homeV6: v.optional(IpPrefix),
    }),
    routing: v.optional(
      v.strictObject({
        // 0 and 253-255 are the kernel's unspec/default/main/local tables.
        table: v.pipe(
          int(1, 0xffffffff, 'a routing table number'),
          v.check((n) => n < 253 || n > 255, 'tables 253-255 belong to the kernel (default, main, local)'),
        ),
        // Below 32766, the main table's rule, so that LAN traffic is looked up here first.
        priority: int(1, 32765, 'an ip rule priority'),
      }),
      { table: DEFAULT_TABLE, priority: DEFAULT_PRIORITY },
    ),
  }),
  v.forward(
    v.check(
      (c) => c.lanPrefixes.every((p) => c.lanInterfaces.includes(p.interface)),
      'every LAN prefix must be on one of lanInterfaces',
    ),
    ['lanPrefixes'],
  ),
  v.forward(
    v.check((c) => !c.lanInterfaces.includes(c.interface), 'the tunnel interface cannot also be a LAN interface'),
    ['interface'],
  ),
);

export type GatewayConfig = v.InferOutput<typeof GatewayConfigSchema>;

/** Raised for a config file that cannot be read or parsed; names the file. */
export class ConfigError extends Error {
  readonly field: string;
  constructor(path: string, field: string, message: string) {
    super(`config ${path}: ${field ? `${field}: ` : ''}${message}`);
    this.name = 'ConfigError';
    this.field = field;
  }
}

export function parseConfig(data: unknown, path = 'gateway.json'): GatewayConfig {
  try {
    return parseWith(GatewayConfigSchema, data, 'config');
  } catch (e) {
    if (e instanceof ValidationError) throw new ConfigError(path, e.field, e.message.replace(`${e.field}: `, ''));
    throw e;
  }
}

/** Reads and validates the config; null when the file does not exist (not paired yet). */
export async function loadConfig(path: string): Promise<GatewayConfig | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ConfigError(path, '', (e as Error).message);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(path, '', `not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(data, path);
}

export function keyFilePath(configPath: string, config: Pick<GatewayConfig, 'privateKeyFile'>): string {
  const file = config.privateKeyFile;
  return isAbsolute(file) ? file : resolve(dirname(configPath), file);
}

/** The private key from its file; refuses a file other users can read. */
export async function readPrivateKey(configPath: string, config: GatewayConfig): Promise<string> {
  const file = keyFilePath(configPath, config);
  let text: string;
  try {
    const st = await stat(file);
    if ((st.mode & 0o077) !== 0) {
      throw new ConfigError(
        configPath,
        'privateKeyFile',
        `${file} is readable by other users (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
      );
    }
    text = (await readFile(file, 'utf8')).trim();
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError(configPath, 'privateKeyFile', `cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  // Never quote the file's content: it is (nearly) a private key.
  if (!isValidKey(text)) throw new ConfigError(configPath, 'privateKeyFile', `${file} does not hold a WireGuard private key`);
  return text;
}

/** The config as written to disk: defaults spelled out, so a person sees every switch. */
export function renderConfig(config: GatewayConfig): string {
  return `${JSON.stringify(config, null, 2)}\n`;
}

export async function saveConfig(path: string, config: GatewayConfig): Promise<void> {
  await writeFileAtomic(path, renderConfig(parseConfig(config, path)), 0o644);
}

export interface LoadedConfig {
  config: GatewayConfig;
  privateKey: string;
}

/**
 * A loader for the daemon: reads config and key again only when either file
 * changed (by inode, size and mtime), and otherwise returns the same object,
 * so `===` tells the caller whether anything changed.
 */
export function configSource(path: string): () => Promise<LoadedConfig | null> {
  let last: { stamp: string; value: LoadedConfig | null } | null = null;
  const stampOf = async (file: string) => {
    try {
      const s = await stat(file);
      return `${s.ino}:${s.size}:${s.mtimeMs}:${s.mode}`;
    } catch {
      return 'missing';
    }
  };
  return async () => {
    const configStamp = await stampOf(path);
    const keyStamp = last?.value ? await stampOf(keyFilePath(path, last.value.config)) : '';
    if (last && last.stamp === `${configStamp}|${keyStamp}`) return last.value;
    // Stamps are taken before reading, so a change during the read is seen on the next call.
    const config = await loadConfig(path);
    if (!config) {
      last = { stamp: `${configStamp}|`, value: null };
      return null;
    }
    const newKeyStamp = await stampOf(keyFilePath(path, config));
    const value = { config, privateKey: await readPrivateKey(path, config) };
    last = { stamp: `${configStamp}|${newKeyStamp}`, value };
    return value;
  };
}
