// The daemon behind `aerie-cloud serve`: makes the OS match the store (hub,
// routes, firewall), serves the overlay API, the pairing listener and the
// control socket, and keeps reconciling. Adapters are passed in, so that a test
// can start and stop it without touching the host.
import { createAdaptorServer } from '@hono/node-server';
import { createServer as createHttpsServer } from 'node:https';
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import { createServer as createNetServer, type Server } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatAddress, isValidAddress, nthAddress, parseAddress, parsePrefix, prefixesOverlap } from '../shared/cidr.ts';
import type { Runner } from '../shared/run.ts';
import { createSerialQueue } from '../shared/serial-queue.ts';
import { createApi } from './api/api.ts';
import { identifyLocal, identifyOverlay } from './api/identify.ts';
import { createPublicApp } from './api/public.ts';
import { CONTROL_SOCKET, MQTT_SOCKET } from './control/client.ts';
import { listenPrivateSocket, serveControl, type ControlServer } from './control/server.ts';
import { homePrefixes, interfaceAddressesAt, overlayPrefixes, peerAllowedIps, vmAddresses, VM_INDEX } from './core/addressing.ts';
import { createCore, type Core } from './core/core.ts';
import { LOCAL_MQTT_ADDRESS } from './core/mqtt.ts';
import { answerAddresses } from './dns/answer-addresses.ts';
import { DNS_PORT, startDns, type DnsRuntime } from './dns/runtime.ts';
import { createEgressAddresses } from './egress/addresses.ts';
import { coveredBy } from './egress/exceptions.ts';
import type { WanView } from './egress/pool.ts';
import { readWanView } from './egress/wan.ts';
import { MQTT_PORT } from './api/mqtt.ts';
import { createMqttBroker, type MqttBroker } from './mqtt/broker.ts';
import { SqlitePersistence } from './mqtt/persistence/sqlite-persistence.ts';
import { createRouterCommands } from './mqtt/router-commands.ts';
import { attachMqttWebSocket } from './mqtt/websocket.ts';
import { hostOriginGuard } from './api/request-guard.ts';
import { collectGarbage } from './node-flags.ts';
import type { Firewall } from './firewall/apply.ts';
import type { FirewallDesired, FirewallEgress } from './firewall/desired.ts';
import { portInUseCheck } from './firewall/listening.ts';
import { renderFirewall } from './firewall/render.ts';
import { DEFAULT_PAIRING_PORT, StateError, type CloudState } from './state-dir.ts';
import type { Store } from './store/store.ts';
import { readLocalPrefixes } from './system/local-prefixes.ts';
import type { Hub, HubDesired } from './wg/hub.ts';

export const API_PORT = 80;
const TUNNEL_MTU = 1420;
// The VM keeps NAT mappings towards routers open and, after a restart, greets
// each router at its last address at once (a handshake from our side).
const GATEWAY_KEEPALIVE = 25;
const RECONCILE_EVERY_MS = 10_000;
const MQTT_DATABASE_FILE = 'mqtt.db';
/** Which IPv6 pool addresses the daemon put on the WAN interface (so a restart can take them away). */
const EGRESS_ADDRESSES_FILE = 'egress-addresses.json';

const withEgress = (egress: FirewallEgress | undefined) => (egress ? { egress } : {});

/** How long an address the resolver gave for an excepted name stays excepted, at least. */
const RESOLVED_EXCEPTION_MIN_S = 900;

/** The gateways' home prefixes inside the routed homeV6Prefix (none without one). */
function routedHomes(state: CloudState, devices: readonly { role: string; lanPrefixes: string[] }[]): string[] {
  const routed = state.homeV6Prefix;
  if (!routed) return [];
  return devices
    .filter((d) => d.role === 'gateway')
    .flatMap((d) => d.lanPrefixes)
    .filter((p) => {
      const prefix = parsePrefix(p);
      return prefix.family === 6 && prefix.length >= routed.length && prefixesOverlap(prefix, routed);
    });
}

export interface DaemonDeps {
  stateDir: string;
  state: CloudState;
  /** Closed by stop(), and when the start fails. */
  store: Store;
  run: Runner;
  hub: Hub;
  firewall: Firewall;
  /** Turns on IP forwarding (out of the WAN interface given). */
  ensureForwarding: (wanInterface: string) => Promise<unknown>;
  log: (line: string) => void;
  /** Port of the overlay API (default 80). */
  apiPort?: number;
  reconcileEveryMs?: number;
  /** Port of the resolver on the overlay addresses (default 53). */
  dnsPort?: number;
  /** For blocklist downloads (tests inject one). */
  fetch?: typeof fetch;
  /** Fetch blocklists at start (default true). */
  dnsUpdateAtStart?: boolean;
  /** Port of the MQTT broker on the overlay addresses (default 1883). */
  mqttPort?: number;
}

export interface Daemon {
  core: Core;
  /** Closes the listeners, removes hub and firewall table, closes the store; safe to call twice. */
  stop(): Promise<void>;
}

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
    server.close(() => resolve()); // also called (with an error) for a server that never listened
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
      ...(d.role === 'gateway' && { keepalive: GATEWAY_KEEPALIVE }),
      // Only when restoring: afterwards WireGuard follows a roaming router by itself.
      ...(d.role === 'gateway' && withEndpoints && d.endpoint ? { endpoint: d.endpoint } : {}),
    })),
    routes: homePrefixes(devices),
  };
}

/**
 * Starts everything. If any step fails after the hub was first set up (a port
 * already taken, say), hub and firewall table are removed again before the
 * error is thrown: a daemon that is not running leaves nothing behind.
 */
export async function startDaemon(deps: DaemonDeps): Promise<Daemon> {
  const { state, store, run, hub, firewall, log } = deps;
  const apiPort = deps.apiPort ?? API_PORT;

  // The VM's own networks, kept fresh by the reconcile tick; pairing refuses home prefixes overlapping them.
  let localPrefixes: string[] = [];
  const refreshLocalPrefixes = async () => {
    localPrefixes = await readLocalPrefixes(run, [state.interface]);
    if (wan) wanView = await readWanView(run, wan);
  };
  // The WAN's addresses and prefixes: what the egress pool may use.
  let wanView: WanView = { addresses: [], prefixes: [] };
  const core = createCore({
    store,
    config: state,
    peerStats: () => hub.show(),
    localPrefixes: () => localPrefixes,
    egressWan: () => wanView,
    portInUse: portInUseCheck(state.overlay),
  });
  // Temporary addresses of the IPv6 pool live on the WAN interface while connections may use them.
  const egressAddresses = createEgressAddresses(run, { stateFile: join(deps.stateDir, EGRESS_ADDRESSES_FILE) });
  let egressV6: string[] = [];
  // Addresses the resolver gave for names on the egress exception list, until they expire (Unix ms).
  const resolvedExceptions = new Map<string, number>();
  /**
   * An answer for a name on the egress exception list: its addresses join the
   * exception set at once (so the first connection already keeps the stable
   * address), and the next render carries them until they expire. Clients keep
   * an address a while past its TTL: ten minutes more, a quarter of an hour at least.
   */
  // The excepted domains while the temporary address is in use ([] otherwise): the resolver asks on
  // every A/AAAA answer, so they are read from the store only when something they depend on changes.
  let exceptDomains: string[] = [];
  // An address inside an excepted prefix is excepted already, and nft refuses it as an overlap.
  let excepted = coveredBy([]);
  const readExceptDomains = () => {
    const e = core.egress.firewall();
    exceptDomains = e ? core.egress.exceptDomains() : [];
    excepted = coveredBy(e?.exceptPrefixes ?? []);
  };
  readExceptDomains();
  // Who uses the temporary address depends on devices and LAN hosts as well as on egress itself.
  for (const event of ['egress-changed', 'devices-changed', 'firewall-changed'] as const) core.events.on(event, readExceptDomains);
  const exceptResolved = (name: () => string, answer: Uint8Array): Promise<void> | undefined => {
    if (exceptDomains.length === 0) return undefined;
    const lower = name().toLowerCase();
    if (!exceptDomains.some((d) => lower === d || lower.endsWith(`.${d}`))) return undefined;
    const { addresses, ttl } = answerAddresses(answer);
    // RFC 2181 §8: a TTL with the top bit set counts as 0; a day is long enough for anything else.
    const seconds = Math.min(Math.max((ttl > 0x7fffffff ? 0 : ttl) + 600, RESOLVED_EXCEPTION_MIN_S), 86_400);
    const fresh = addresses.filter((a) => !resolvedExceptions.has(a) && !excepted(a));
    for (const a of addresses) resolvedExceptions.set(a, Date.now() + seconds * 1000);
    if (fresh.length === 0) return undefined;
    // Bounded: a slow nft must not hold the answer for long.
    // The next pass renders them into the table (it sees the set changed); no full apply per answer.
    return Promise.race([firewall.addEgressExceptions(fresh, seconds), sleep(1000)]).then(
      () => undefined,
      (err: Error) => log(`egress: could not add the exception addresses: ${err.message}`),
    );
  };
  /** `v6Placed` false: the pool's IPv6 addresses are not on the WAN, so IPv6 is not SNATed to them. */
  const egressDesired = (v6Placed: boolean): FirewallEgress | undefined => {
    const e = core.egress.firewall();
    if (!e) return undefined;
    const v6 = v6Placed ? e.v6 : null;
    if (e.v4 === null && v6 === null) return undefined;
    const t = Date.now();
    for (const [a, until] of resolvedExceptions) if (until <= t) resolvedExceptions.delete(a);
    // The public endpoint is the VM's known face (peers, pairing codes): never fenced off, even if in the pool.
    const face = isValidAddress(state.publicHost) ? formatAddress(parseAddress(state.publicHost)) : null;
    const temporary = [...core.egress.get().pool.v4, ...(v6Placed ? core.egress.wanV6() : [])].filter((a) => a !== face);
    return { ...e, v6, exceptPrefixes: [...e.exceptPrefixes, ...resolvedExceptions.keys()], temporary };
  };

  // Applies run one at a time; a failure is logged and the next tick tries again.
  const serial = createSerialQueue();
  const servers: Server[] = [];
  let control: ControlServer | null = null;
  let dns: DnsRuntime | null = null;
  let broker: MqttBroker | null = null;
  let timer: ReturnType<typeof setInterval> | undefined;
  let applied = false;
  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      clearInterval(timer);
      await Promise.all([...servers.map(close), control?.close(), dns?.stop(), broker?.close()]);
      await serial(async () => {}); // let a running apply finish first
      if (applied) {
        // Where each router was last seen, so the next start can greet it there at once.
        await core.status().catch(() => {});
        await hub.set(null).catch((err) => log(`removing ${state.interface}: ${(err as Error).message}`));
        await firewall.set(null).catch((err) => log(`removing the firewall table: ${(err as Error).message}`));
        await egressAddresses.set(null).catch((err) => log(`removing the egress addresses: ${(err as Error).message}`));
      }
      store.close();
    })());

  let wan = '';
  let restored = false;
  // Renders the whole desired state from the store and makes the OS match it.
  // The whole firewall, from the store: devices, LAN hosts, policies, publishes.
  const firewallDesired = (v6Placed = true): FirewallDesired => ({
    wanInterface: wan,
    tunnelInterface: state.interface,
    overlay: overlayPrefixes(state.overlay),
    vmAddresses: vmAddresses(state.overlay),
    // Port 0 (tests: a free port each) names no port to open; the standard one stands in.
    ports: {
      wireguard: state.listenPort,
      pairing: state.pairingPort || DEFAULT_PAIRING_PORT,
      api: apiPort || API_PORT,
      dns: deps.dnsPort || DNS_PORT,
      mqtt: deps.mqttPort || MQTT_PORT,
      ssh: core.firewall.settings.get().sshPort,
    },
    subjects: core.firewall.subjects(),
    publishes: core.firewall.publishes.list(),
    ...withEgress(egressDesired(v6Placed)),
    // Homes' /64s from the provider's routed prefix keep their own addresses on the internet.
    routed: routedHomes(state, core.devices.list()),
  });
  const apply = async () => {
    applied = true; // from here on, a failure may leave a half-made hub or table behind
    await hub.set(hubDesired(state, core, !restored));
    restored = true;
    // New pool addresses before the rules that use them, old ones only after the rules left them.
    // They are not the firewall's: when they cannot be placed, IPv6 leaves by the VM's own address
    // and the policy is applied all the same.
    const v6 = core.egress.firewall() ? core.egress.wanV6() : [];
    let placed = true;
    await egressAddresses.set({ interface: wan, v6: [...new Set([...egressV6, ...v6])] }).catch((err: Error) => {
      placed = false;
      log(`egress: could not put the temporary IPv6 addresses on ${wan}, IPv6 leaves by the VM's own address: ${err.message}`);
    });
    await firewall.set(firewallDesired(placed));
    if (!placed) return;
    await egressAddresses.set({ interface: wan, v6 }).then(
      () => void (egressV6 = v6),
      (err: Error) => log(`egress: could not take old temporary IPv6 addresses off ${wan}: ${err.message}`),
    );
  };
  const reconcile = () => serial(apply).catch((err) => log(`could not apply the desired state: ${(err as Error).message}`));

  try {
    wan = state.wanInterface ?? (await defaultRouteInterface(run));
    await refreshLocalPrefixes();
    await deps.ensureForwarding(wan);
    // What an earlier run's resolver added to the exception sets: clients may still hold those answers.
    for (const a of await firewall.egressExceptions().catch(() => [])) {
      if (!excepted(a)) resolvedExceptions.set(a, Date.now() + RESOLVED_EXCEPTION_MIN_S * 1000);
    }
    await serial(apply);
    core.events.on('devices-changed', () => void reconcile());
    core.events.on('firewall-changed', () => void reconcile());
    core.events.on('egress-changed', () => void reconcile());

    // The hub is up, so the overlay addresses exist to listen on.
    dns = await startDns({
      store,
      overlay: state.overlay,
      listsDir: join(deps.stateDir, 'lists'),
      log,
      ...(deps.dnsPort !== undefined && { port: deps.dnsPort }),
      ...(deps.fetch && { fetch: deps.fetch }),
      ...(deps.dnsUpdateAtStart !== undefined && { updateAtStart: deps.dnsUpdateAtStart }),
      // A compile of a million names leaves tens of MB of garbage: hand it back now, not whenever V8 likes.
      onListsCompiled: collectGarbage,
      onSettingsChanged: (keys) => core.events.emit('settings-changed', { keys }),
      onAddressAnswer: (name, answer) => exceptResolved(name, answer),
    });
    const dnsRuntime = dns;
    core.events.on('devices-changed', () => dnsRuntime.devicesChanged());

    // The broker's own database: its fsync per message stays out of the store's way.
    broker = await createMqttBroker({
      authenticate: core.mqtt.authenticate,
      access: core.mqtt.access,
      persistence: new SqlitePersistence({ path: join(deps.stateDir, MQTT_DATABASE_FILE), log }),
      log,
    });
    await broker.listen(vmAddresses(state.overlay), deps.mqttPort ?? MQTT_PORT);
    const mqttBroker = broker;
    // Routers hear of changes at once on the control channel (and re-sync over HTTP).
    const routerCommands = createRouterCommands({
      publish: (topic, payload, opts) => mqttBroker.publish(topic, payload, opts),
      routers: () => core.devices.list().flatMap((d) => (d.role === 'gateway' ? [d.name] : [])),
      log,
    });
    core.events.on('settings-changed', ({ keys }) => routerCommands.settingsChanged(keys));
    core.events.on('devices-changed', ({ name }) => routerCommands.devicesChanged([name]));
    // The router shows the temporary address its home leaves by.
    core.events.on('egress-changed', () => routerCommands.settingsChanged(['egress']));
    // Routers fence their isolated devices in on their side too (what never crosses the VM).
    core.events.on('firewall-changed', () => routerCommands.settingsChanged(['firewall']));
    // `aerie-cloud mqtt sub` on the VM: root's socket, read-only (core's "local" caller).
    const localMqtt = createNetServer((socket) => mqttBroker.handle(socket, LOCAL_MQTT_ADDRESS));
    servers.push(localMqtt);
    await listenPrivateSocket(localMqtt, join(deps.stateDir, MQTT_SOCKET));

    // Only the VM's overlay addresses as Host: a web page that rebinds a DNS name to them is refused.
    // `aerie-cloud firewall print|apply|stats`: what would be applied, a pass now (its error to the caller), the kernel's counters.
    const firewallLive = { print: () => renderFirewall(firewallDesired()), stats: () => firewall.counters(), apply: () => serial(apply) };
    const api = createApi(
      { core, allowedHosts: vmAddresses(state.overlay), dns: dns.control, mqtt: mqttBroker, firewall: firewallLive },
      identifyOverlay(core),
    );
    const guard = hostOriginGuard(vmAddresses(state.overlay));
    const upgradeCheck = (req: IncomingMessage) => {
      const problem = guard(req.headers.host, req.headers.origin);
      return problem && { status: problem.status, message: problem.message };
    };
    for (const host of vmAddresses(state.overlay)) {
      const server = createAdaptorServer({ fetch: api.fetch }) as unknown as HttpServer;
      servers.push(server);
      // MQTT over WebSocket at /mqtt, the caller known by its tunnel address as on the API.
      attachMqttWebSocket(server, mqttBroker, (req) => req.socket.remoteAddress ?? '', upgradeCheck);
      await listen(server, apiPort, host);
    }
    const publicServer = createAdaptorServer({
      fetch: createPublicApp({ core, log }).fetch,
      createServer: createHttpsServer,
      serverOptions: { key: state.tls.keyPem, cert: state.tls.certPem },
    }) as unknown as Server;
    servers.push(publicServer);
    await listen(publicServer, state.pairingPort, '::').catch(() => listen(publicServer, state.pairingPort, '0.0.0.0'));
    control = await serveControl(
      createApi({ core, dns: dns.control, mqtt: mqttBroker, firewall: firewallLive }, identifyLocal),
      join(deps.stateDir, CONTROL_SOCKET),
    );
  } catch (err) {
    await stop();
    throw err;
  }

  // Repairs drift (a peer or route removed by hand) and remembers where peers were last seen.
  timer = setInterval(() => {
    void reconcile();
    void refreshLocalPrefixes().catch((err) => log(`could not read the VM's own addresses: ${(err as Error).message}`));
    void core.status().catch(() => {});
    // A due rotation emits egress-changed, which applies it.
    core.egress.rotateIfDue();
  }, deps.reconcileEveryMs ?? RECONCILE_EVERY_MS);

  const v4 = formatAddress(nthAddress(state.overlay.v4, VM_INDEX));
  log(
    `hub ${state.interface} up on UDP ${state.listenPort}, ${core.devices.list().length} peer(s); ` +
      `API on http://${v4}:${apiPort}; MQTT on port ${deps.mqttPort ?? MQTT_PORT}; pairing on port ${state.pairingPort}; NAT out of ${wan}`,
  );
  return { core, stop };
}
