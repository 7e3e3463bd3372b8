// aerie-cloud: the VM side. The composition root: it wires store, core, the
// API apps and the platform adapters; nothing else imports this file.
import { createAdaptorServer } from '@hono/node-server';
import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ValidationError } from '../shared/errors.ts';
import { formatAddress, nthAddress } from '../shared/cidr.ts';
import { createRunner, type Runner } from '../shared/run.ts';
import { createSerialQueue } from '../shared/serial-queue.ts';
import type { AddDeviceRequest } from '../shared/schemas.ts';
import { createApi } from './api/api.ts';
import { identifyLocal, identifyOverlay } from './api/identify.ts';
import { createPublicApp } from './api/public.ts';
import { deviceTable, qr, statusText } from './cli/output.ts';
import { appTransport, connectControl, ControlError, createControlClient, CONTROL_SOCKET, type ControlClient } from './control/client.ts';
import { serveControl } from './control/server.ts';
import { homePrefixes, interfaceAddressesAt, overlayPrefixes, peerAllowedIps, VM_INDEX } from './core/addressing.ts';
import { createCore, type Core } from './core/core.ts';
import { createFirewall } from './firewall/apply.ts';
import { openStore, type Store } from './store/store.ts';
import { DEFAULT_STATE_DIR, initState, loadState, StateError, type CloudState } from './state-dir.ts';
import { ensureForwarding } from './system/forwarding.ts';
import { createHub, type HubDesired } from './wg/hub.ts';

const VERSION = '0.1.0';
const API_PORT = 80;
const TUNNEL_MTU = 1420;
// The VM keeps NAT mappings towards routers open and, after a restart, greets
// each router at its last address at once (a handshake from our side).
const GATEWAY_KEEPALIVE = 25;
const RECONCILE_EVERY_MS = 10_000;

const USAGE = `aerie-cloud ${VERSION}: the VM side of Aerie

Usage:
  aerie-cloud init --public-endpoint HOST[:PORT] [--wan-interface IF]
                   [--overlay-v4 CIDR] [--overlay-v6 CIDR] [--listen-port N] [--pairing-port N]
  aerie-cloud serve
  aerie-cloud pair [--ttl MINUTES]
  aerie-cloud device add NAME [--role owner|member] [--public-key KEY] [--split]
  aerie-cloud device list [--json]
  aerie-cloud device remove NAME
  aerie-cloud status [--json]

Every command takes --state-dir DIR (default ${DEFAULT_STATE_DIR}).
While the daemon runs, commands go through its control socket and take effect at once.`;

class UsageError extends Error {}

type Options = NonNullable<ParseArgsConfig['options']>;

function parse(args: string[], options: Options, positionals = 0) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...options, 'state-dir': { type: 'string' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (parsed.positionals.length !== positionals) {
    throw new UsageError(positionals === 0 ? `unexpected argument: ${parsed.positionals[0]}` : 'missing or extra arguments');
  }
  const stateDir = (parsed.values['state-dir'] as string | undefined) ?? DEFAULT_STATE_DIR;
  return { values: parsed.values as Record<string, string | boolean | undefined>, positionals: parsed.positionals, stateDir };
}

function port(text: string | boolean | undefined, field: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new ValidationError(field, 'expected a port number from 1 to 65535');
  return n;
}

/** The daemon's control socket if it runs, else the same API in-process on the state directory. */
async function client(stateDir: string): Promise<{ api: ControlClient; daemon: boolean; close(): void }> {
  const live = await connectControl(stateDir);
  if (live) return { api: live, daemon: true, close() {} };
  const store = openStore(stateDir);
  try {
    const core = createCore({ store, config: loadState(stateDir, store) });
    const api = createControlClient(appTransport(createApi({ core }, identifyLocal)));
    return { api, daemon: false, close: () => store.close() };
  } catch (err) {
    store.close();
    throw err;
  }
}

async function withClient<T>(stateDir: string, fn: (c: { api: ControlClient; daemon: boolean }) => Promise<T>): Promise<T> {
  const c = await client(stateDir);
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
    'listen-port': { type: 'string' },
    'pairing-port': { type: 'string' },
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
    ...(values['listen-port'] !== undefined && { listenPort: port(values['listen-port'], 'listen-port') }),
    ...(values['pairing-port'] !== undefined && { pairingPort: port(values['pairing-port'], 'pairing-port') }),
  });
  for (const line of result.report) console.log(line);
  console.log(result.created ? `Initialized ${stateDir}. Start the daemon with \`aerie-cloud serve\`.` : `State in ${stateDir} kept.`);
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

async function defaultRouteInterface(run: Runner): Promise<string> {
  for (const family of ['-4', '-6']) {
    const r = await run(['ip', '-j', family, 'route', 'show', 'default'], { allowFail: true });
    try {
      const dev = (JSON.parse(r.stdout || '[]') as { dev?: string }[])[0]?.dev;
      if (dev) return dev;
    } catch {
      // no JSON: try the next family
    }
  }
  throw new StateError('no default route, so no WAN interface to NAT through: run `aerie-cloud init --wan-interface IF`');
}

function listen(server: Server, p: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(p, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    (server as { closeAllConnections?: () => void }).closeAllConnections?.();
  });
}

function hubDesired(state: CloudState, core: Core, withEndpoints: boolean): HubDesired {
  const devices = core.devices.list();
  return {
    interface: state.interface,
    privateKey: state.privateKey,
    listenPort: state.listenPort,
    addresses: interfaceAddressesAt(state.overlay, VM_INDEX),
    mtu: TUNNEL_MTU,
    peers: devices.map((d) => ({
      publicKey: d.publicKey,
      allowedIps: peerAllowedIps(d),
      // Only when restoring: afterwards WireGuard follows a roaming router by itself.
      ...(d.role === 'gateway' && { keepalive: GATEWAY_KEEPALIVE }),
      ...(d.role === 'gateway' && withEndpoints && d.endpoint ? { endpoint: d.endpoint } : {}),
    })),
    routes: homePrefixes(devices),
  };
}

async function cmdServe(args: string[]) {
  const { stateDir } = parse(args, {});
  const run = createRunner();
  const store: Store = openStore(stateDir);
  const state = loadState(stateDir, store);
  const wan = state.wanInterface ?? (await defaultRouteInterface(run));
  const hub = createHub(run, { interface: state.interface });
  const firewall = createFirewall(run);
  const core = createCore({ store, config: state, peerStats: () => hub.show() });
  const log = (line: string) => console.log(`aerie-cloud: ${line}`);

  let restored = false;
  // Renders the whole desired state from the store and makes the OS match it.
  const apply = async () => {
    const devices = core.devices.list();
    await hub.set(hubDesired(state, core, !restored));
    restored = true;
    await firewall.set({
      wanInterface: wan,
      tunnelInterface: state.interface,
      natSources: [...overlayPrefixes(state.overlay), ...homePrefixes(devices)],
    });
  };
  // One at a time; a failure is logged and the next tick tries again.
  const serial = createSerialQueue();
  const reconcile = () => serial(apply).catch((err) => log(`could not apply the desired state: ${(err as Error).message}`));

  await ensureForwarding({ wanInterface: wan });
  await apply();
  core.events.on('devices-changed', () => void reconcile());

  const servers: Server[] = [];
  const api = createApi({ core }, identifyOverlay(core));
  for (const cidr of interfaceAddressesAt(state.overlay, VM_INDEX)) {
    const host = cidr.split('/')[0]!;
    const server = createAdaptorServer({ fetch: api.fetch }) as unknown as Server;
    await listen(server, API_PORT, host);
    servers.push(server);
  }
  const publicServer = createAdaptorServer({
    fetch: createPublicApp({ core, log }).fetch,
    createServer: createHttpsServer,
    serverOptions: { key: state.tls.keyPem, cert: state.tls.certPem },
  }) as unknown as Server;
  await listen(publicServer, state.pairingPort, '::').catch(() => listen(publicServer, state.pairingPort, '0.0.0.0'));
  servers.push(publicServer);
  const control = await serveControl(createApi({ core }, identifyLocal), join(stateDir, CONTROL_SOCKET));

  // Repairs drift (a peer or route removed by hand) and remembers where peers were last seen.
  const timer = setInterval(() => {
    void reconcile();
    void core.status().catch(() => {});
  }, RECONCILE_EVERY_MS);

  const v4 = formatAddress(nthAddress(state.overlay.v4, VM_INDEX));
  log(`hub ${state.interface} up on UDP ${state.listenPort}, ${core.devices.list().length} peer(s); API on http://${v4}:${API_PORT}; pairing on port ${state.pairingPort}; NAT out of ${wan}`);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: shutting down`);
    clearInterval(timer);
    await Promise.all([...servers.map(close), control.close()]);
    await serial(async () => {});
    await hub.set(null).catch((err) => log(`removing ${state.interface}: ${(err as Error).message}`));
    await firewall.set(null).catch((err) => log(`removing the firewall table: ${(err as Error).message}`));
    store.close();
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
  if (err instanceof UsageError) console.error('Run `aerie-cloud --help` for usage.');
  process.exit(err instanceof ControlError || err instanceof UsageError || err instanceof ValidationError || err instanceof StateError ? 1 : 2);
});
