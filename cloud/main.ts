// aerie-cloud: the VM side. The composition root: it wires store, core, the
// API apps and the platform adapters; nothing else imports this file.
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ValidationError } from '../shared/errors.ts';
import { createRunner } from '../shared/run.ts';
import type { AddDeviceRequest } from '../shared/schemas.ts';
import { createApi } from './api/api.ts';
import { identifyLocal } from './api/identify.ts';
import { DNS_USAGE, DnsUsageError, runDns } from './cli/dns.ts';
import { EGRESS_USAGE, runEgress } from './cli/egress.ts';
import { FIREWALL_USAGE, runFirewall, runPublish } from './cli/firewall.ts';
import { MQTT_USAGE, MqttUsageError, runMqtt } from './cli/mqtt.ts';
import { mqttSub } from './cli/mqtt-sub.ts';
import { deviceTable, qr, statusText } from './cli/output.ts';
import { appTransport, connectControl, ControlError, createControlClient, MQTT_SOCKET, type ControlClient } from './control/client.ts';
import { createCore } from './core/core.ts';
import { createDnsControl, ownNames, toListSources } from './dns/control.ts';
import { createListManager } from './dns/lists/blocklist.ts';
import { startDaemon } from './daemon.ts';
import { createFirewall } from './firewall/apply.ts';
import { portInUseCheck } from './firewall/listening.ts';
import type { WanView } from './egress/pool.ts';
import { defaultRouteDevice, readWanView } from './egress/wan.ts';
import { DEFAULT_STATE_DIR, initState, openState, StateError } from './state-dir.ts';
import { ensureForwarding } from './system/forwarding.ts';
import { createHub } from './wg/hub.ts';

const VERSION = '0.1.0';

const USAGE = `aerie-cloud ${VERSION}: the VM side of Aerie

Usage:
  aerie-cloud init --public-endpoint HOST[:PORT] [--wan-interface IF]
                   [--overlay-v4 CIDR] [--overlay-v6 CIDR] [--listen-port N] [--pairing-port N]
                   [--dns-upstream SPEC]... [--dns-zone ZONE] [--dns-lists default|none]
                   [--home-v6-prefix CIDR]   a routed IPv6 prefix homes get their /64 from, without NAT
  aerie-cloud serve
  aerie-cloud pair [--ttl MINUTES]
  aerie-cloud device add NAME [--role owner|member] [--public-key KEY] [--split]
  aerie-cloud device list [--json]
  aerie-cloud device remove NAME
  aerie-cloud status [--json]
${DNS_USAGE}
${MQTT_USAGE}
${FIREWALL_USAGE}
${EGRESS_USAGE}

Every command takes --state-dir DIR (default ${DEFAULT_STATE_DIR}).
While the daemon runs, commands go through its control socket and take effect at once.`;

class UsageError extends DnsUsageError {}

type Options = NonNullable<ParseArgsConfig['options']>;

function parse(args: string[], options: Options, positionals = 0) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...options, 'state-dir': { type: 'string' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  // -1: any number of positionals (the subcommand checks them)
  if (positionals >= 0 && parsed.positionals.length !== positionals) {
    throw new UsageError(positionals === 0 ? `unexpected argument: ${parsed.positionals[0]}` : 'missing or extra arguments');
  }
  const stateDir = (parsed.values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR;
  return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals, stateDir };
}

function port(text: unknown, field: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new ValidationError(field, 'expected a port number from 1 to 65535');
  return n;
}

/**
 * The daemon's control socket if it runs, else the same API in-process on the
 * state directory (with `dns`, the blocklists are loaded from their copies too).
 */
async function client(stateDir: string, opts: ClientOptions = {}): Promise<{ api: ControlClient; daemon: boolean; close(): void }> {
  const live = await connectControl(stateDir);
  if (live) return { api: live, daemon: true, close() {} };
  const { store, state } = openState(stateDir);
  try {
    // The egress pool is checked against the WAN's addresses; unreadable, setting it says so.
    let wan: WanView | undefined;
    if (opts.egress) {
      const run = createRunner();
      const iface = state.wanInterface ?? (await defaultRouteDevice(run).catch(() => null));
      wan = iface === null ? undefined : await readWanView(run, iface).catch(() => undefined);
    }
    const core = createCore({ store, config: state, portInUse: portInUseCheck(state.overlay), ...(wan && { egressWan: () => wan }) });
    let dns;
    if (opts.dns) {
      const lists = createListManager({ dir: join(stateDir, 'lists'), sources: toListSources(store.dns.lists()), ...ownNames(store) });
      await lists.load();
      dns = createDnsControl({ store, lists });
    }
    const api = createControlClient(appTransport(createApi({ core, ...(dns && { dns }) }, identifyLocal)));
    return { api, daemon: false, close: () => store.close() };
  } catch (err) {
    store.close();
    throw err;
  }
}

interface ClientOptions {
  /** Load the blocklists (dns commands). */
  dns?: boolean;
  /** Read the WAN interface's addresses (egress commands). */
  egress?: boolean;
}

async function withClient<T>(
  stateDir: string,
  fn: (c: { api: ControlClient; daemon: boolean }) => Promise<T>,
  opts: ClientOptions = {},
): Promise<T> {
  const c = await client(stateDir, opts);
  try {
    return await fn(c);
  } finally {
    c.close();
  }
}

const tty = () => process.stdout.isTTY === true;

async function cmdInit(args: string[]) {
  const { values, stateDir } = parse(args, {
    'public-endpoint': { type: 'string' },
    'wan-interface': { type: 'string' },
    'overlay-v4': { type: 'string' },
    'overlay-v6': { type: 'string' },
    'home-v6-prefix': { type: 'string' },
    'listen-port': { type: 'string' },
    'pairing-port': { type: 'string' },
    'dns-upstream': { type: 'string', multiple: true },
    'dns-zone': { type: 'string' },
    'dns-lists': { type: 'string' },
  });
  const publicEndpoint = values['public-endpoint'];
  if (typeof publicEndpoint !== 'string') throw new UsageError('init needs --public-endpoint HOST[:PORT] (the address routers and phones reach this VM at)');
  const opt = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const result = initState({
    stateDir,
    publicEndpoint,
    ...(opt('wan-interface') && { wanInterface: opt('wan-interface') }),
    ...(opt('overlay-v4') && { overlayV4: opt('overlay-v4') }),
    ...(opt('overlay-v6') && { overlayV6: opt('overlay-v6') }),
    ...(opt('home-v6-prefix') && { homeV6Prefix: opt('home-v6-prefix') }),
    ...(values['listen-port'] !== undefined && { listenPort: port(values['listen-port'], 'listen-port') }),
    ...(values['pairing-port'] !== undefined && { pairingPort: port(values['pairing-port'], 'pairing-port') }),
    ...(Array.isArray(values['dns-upstream']) && { dnsUpstreams: values['dns-upstream'] as string[] }),
    ...(opt('dns-zone') && { dnsZone: opt('dns-zone') }),
    ...(opt('dns-lists') && { dnsLists: dnsLists(opt('dns-lists')!) }),
  });
  for (const line of result.report) console.log(line);
  console.log(result.created ? `Initialized ${stateDir}. Start the daemon with \`aerie-cloud serve\`.` : `State in ${stateDir} kept.`);
}

function dnsLists(text: string): 'default' | 'none' {
  if (text === 'default' || text === 'none') return text;
  throw new ValidationError('dns-lists', `expected "default" or "none", got ${JSON.stringify(text)}`);
}

async function cmdDns(args: string[]) {
  const { values, positionals, stateDir } = parse(
    args,
    { json: { type: 'boolean' }, id: { type: 'string' }, force: { type: 'boolean' }, off: { type: 'boolean' } },
    -1,
  );
  const [sub, ...rest] = positionals;
  await withClient(
    stateDir,
    ({ api, daemon }) =>
      runDns(
        {
          api,
          daemon,
          json: values.json === true,
          tty: process.stderr.isTTY === true,
          out: (text) => console.log(text),
          progress: (text) => process.stderr.write(`\r\x1b[K${text}`),
        },
        sub,
        rest,
        {
          ...(typeof values.id === 'string' && { id: values.id }),
          ...(values.force === true && { force: true }),
          ...(values.off === true && { off: true }),
        },
      ),
    { dns: true },
  );
}

async function cmdMqtt(args: string[]) {
  const { values, positionals, stateDir } = parse(args, { json: { type: 'boolean' }, prefix: { type: 'string' }, count: { type: 'string' } }, -1);
  const [sub, ...rest] = positionals;
  if (sub === 'sub') {
    if (rest.length !== 1 || !rest[0]) throw new MqttUsageError('expected: mqtt sub FILTER [--count N] [--json]');
    const count = values.count === undefined ? undefined : Number(values.count);
    if (count !== undefined && !(Number.isInteger(count) && count > 0)) throw new MqttUsageError('--count: expected a whole number above 0');
    const stop = new AbortController();
    process.once('SIGINT', () => stop.abort());
    process.once('SIGTERM', () => stop.abort());
    await mqttSub({
      socketPath: join(stateDir, MQTT_SOCKET),
      filter: rest[0],
      json: values.json === true,
      out: (line) => console.log(line),
      signal: stop.signal,
      ...(count !== undefined && { count }),
    });
    return;
  }
  if (values.count !== undefined) throw new MqttUsageError('--count goes with mqtt sub only');
  const flags = typeof values.prefix === 'string' ? { prefix: values.prefix } : {};
  await withClient(stateDir, ({ api }) => runMqtt({ api, json: values.json === true, out: (text) => console.log(text) }, sub, rest, flags));
}

async function cmdFirewall(args: string[]) {
  const { values, positionals, stateDir } = parse(
    args,
    { json: { type: 'boolean' }, internet: { type: 'string' }, isolated: { type: 'string' }, 'lan-access': { type: 'string' } },
    -1,
  );
  const [sub, ...rest] = positionals;
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const flags = {
    ...(str('internet') !== undefined && { internet: str('internet')! }),
    ...(str('isolated') !== undefined && { isolated: str('isolated')! }),
    ...(str('lan-access') !== undefined && { lanAccess: str('lan-access')! }),
  };
  await withClient(stateDir, ({ api, daemon }) => runFirewall({ api, daemon, json: values.json === true, out: (text) => console.log(text) }, sub, rest, flags));
}

async function cmdPublish(cmd: 'publish' | 'unpublish' | 'publishes', args: string[]) {
  const { values, positionals, stateDir } = parse(
    args,
    { json: { type: 'boolean' }, port: { type: 'string' }, to: { type: 'string' }, proto: { type: 'string' } },
    -1,
  );
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const flags = {
    ...(str('port') !== undefined && { port: str('port')! }),
    ...(str('to') !== undefined && { to: str('to')! }),
    ...(str('proto') !== undefined && { proto: str('proto')! }),
  };
  await withClient(stateDir, ({ api, daemon }) => runPublish({ api, daemon, json: values.json === true, out: (text) => console.log(text) }, cmd, positionals, flags));
}

async function cmdEgress(args: string[]) {
  const { values, positionals, stateDir } = parse(
    args,
    { json: { type: 'boolean' }, device: { type: 'string' }, 'v6-prefix': { type: 'string' }, v4: { type: 'string', multiple: true } },
    -1,
  );
  const [sub, ...rest] = positionals;
  const flags = {
    ...(typeof values.device === 'string' && { device: values.device }),
    ...(typeof values['v6-prefix'] === 'string' && { v6Prefix: values['v6-prefix'] }),
    ...(Array.isArray(values.v4) && { v4: values.v4 as string[] }),
  };
  await withClient(stateDir, ({ api }) => runEgress({ api, json: values.json === true, out: (text) => console.log(text) }, sub, rest, flags), { egress: true });
}

async function cmdPair(args: string[]) {
  const { values, stateDir } = parse(args, { ttl: { type: 'string' } });
  let ttlSeconds: number | undefined;
  if (values.ttl !== undefined) {
    const minutes = Number(values.ttl);
    if (!Number.isFinite(minutes) || minutes <= 0) throw new ValidationError('ttl', 'expected a number of minutes, e.g. 15');
    ttlSeconds = Math.round(minutes * 60);
  }
  const { code, expiresAt } = await withClient(stateDir, ({ api }) => api.createPairingCode(ttlSeconds === undefined ? {} : { ttlSeconds }));
  if (!tty()) {
    console.log(code);
    return;
  }
  console.log(`Pairing code (single use, valid until ${new Date(expiresAt).toLocaleTimeString()}):\n\n${code}\n`);
  console.log(qr(code));
  console.log(`On the router: aerie-gateway pair ${code}`);
}

async function cmdDevice(args: string[]) {
  const [sub, ...rest] = args;
  if (sub === 'add') {
    const { values, positionals, stateDir } = parse(rest, { role: { type: 'string' }, 'public-key': { type: 'string' }, split: { type: 'boolean' } }, 1);
    const req: Record<string, unknown> = { name: positionals[0] };
    if (values.role !== undefined) req.role = values.role;
    if (values['public-key'] !== undefined) req.publicKey = values['public-key'];
    if (values.split) req.split = true;
    const res = await withClient(stateDir, ({ api }) => api.addDevice(req as AddDeviceRequest));
    if (!tty()) {
      if (res.config) process.stdout.write(res.config);
      else console.log(res.device.addresses.join(' '));
      return;
    }
    console.log(`Added ${res.device.name} (${res.device.role}): ${res.device.addresses.join(', ')}`);
    if (res.config) {
      console.log(`\nWireGuard configuration for ${res.device.name}. It holds the device's private key and is shown only now:\n`);
      console.log(res.config);
      console.log(qr(res.config));
    } else {
      console.log('Configure the device with its own private key, these addresses, and this VM as its peer (see `aerie-cloud status`).');
    }
    return;
  }
  if (sub === 'list') {
    const { values, stateDir } = parse(rest, { json: { type: 'boolean' } });
    const devices = await withClient(stateDir, ({ api }) => api.listDevices());
    console.log(values.json ? JSON.stringify(devices, null, 2) : deviceTable(devices));
    return;
  }
  if (sub === 'remove') {
    const { positionals, stateDir } = parse(rest, {}, 1);
    const device = await withClient(stateDir, ({ api }) => api.removeDevice(positionals[0]!));
    console.log(`Removed ${device.name}; its key can no longer send through the tunnel.`);
    return;
  }
  throw new UsageError('device needs one of: add, list, remove');
}

async function cmdStatus(args: string[]) {
  const { values, stateDir } = parse(args, { json: { type: 'boolean' } });
  await withClient(stateDir, async ({ api, daemon }) => {
    const s = await api.status();
    console.log(values.json ? JSON.stringify({ daemon, ...s }, null, 2) : statusText(s, daemon));
  });
}

// ---- the daemon ----

async function cmdServe(args: string[]) {
  const { stateDir } = parse(args, {});
  const run = createRunner();
  const { store, state } = openState(stateDir);
  const log = (line: string) => console.log(`aerie-cloud: ${line}`);
  const daemon = await startDaemon({
    stateDir,
    state,
    store,
    run,
    hub: createHub(run, { interface: state.interface }),
    firewall: createFirewall(run),
    ensureForwarding: (wanInterface) => ensureForwarding({ wanInterface }),
    log,
  });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: shutting down`);
    await daemon.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

async function main(argv: string[]): Promise<void> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'init':
      return cmdInit(rest);
    case 'serve':
      return cmdServe(rest);
    case 'pair':
      return cmdPair(rest);
    case 'device':
      return cmdDevice(rest);
    case 'status':
      return cmdStatus(rest);
    case 'dns':
      return cmdDns(rest);
    case 'mqtt':
      return cmdMqtt(rest);
    case 'firewall':
      return cmdFirewall(rest);
    case 'publish':
    case 'unpublish':
    case 'publishes':
      return cmdPublish(cmd, rest);
    case 'egress':
      return cmdEgress(rest);
    case '--version':
      console.log(VERSION);
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return;
    default:
      throw new UsageError(`unknown command: ${cmd}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  console.error(`aerie-cloud: ${message}`);
  if (err instanceof DnsUsageError) console.error('Run `aerie-cloud --help` for usage.');
  process.exit(err instanceof ControlError || err instanceof DnsUsageError || err instanceof ValidationError || err instanceof StateError ? 1 : 2);
});
