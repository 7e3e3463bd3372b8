import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MqttClient, type IClientOptions, type ISubscriptionGrant, type Packet } from 'mqtt';
import type { Test } from 'uvu';
import { parsePrefix } from '../../../shared/cidr.ts';
import { generateKeyPair } from '../../../shared/keys.ts';
import { createCore, type Core } from '../../../cloud/core/core.ts';
import { createMqttBroker, type MqttBroker } from '../../../cloud/mqtt/broker.ts';
import type { MqttLimits } from '../../../cloud/mqtt/limits.ts';
import { SqlitePersistence } from '../../../cloud/mqtt/persistence/sqlite-persistence.ts';
import { initState, loadState, type CloudState } from '../../../cloud/state-dir.ts';
import { openStore, type Store } from '../../../cloud/store/store.ts';
import { pairRequest } from '../vm-state.ts';

// Brokers on a loopback overlay: the VM's overlay is 127.77.0.0/24, so the
// broker listens on 127.77.0.1 and a test client binds the address of the
// device it plays (localAddress) — the broker sees that address on the socket
// exactly as it would see a tunnel peer's, and identifies it by that alone.

export const OVERLAY = { v4: '127.77.0.0/24', v6: 'fd00:77::/64' };
export const VM = '127.77.0.1';
export const GATEWAY = '127.77.0.2'; // the router "home"
export const OWNER = '127.77.0.3'; // "phone"
export const MEMBER = '127.77.0.4'; // "guest"
/** No device has it: a device behind the router logs in with a user name. */
export const STRANGER = '127.77.0.9';

/** Loopback overlay config for createCore (also used by the broker child process). */
export function loopbackConfig(state: CloudState): CloudState {
  return { ...state, overlay: { v4: parsePrefix(OVERLAY.v4), v6: parsePrefix(OVERLAY.v6) } };
}

export interface MqttVm {
  dir: string;
  stateDir: string;
  dbPath: string;
  store: Store;
  core: Core;
  logs: string[];
  /** A broker on this VM's store and mqtt.db, listening on VM (a free port); closed after the test. */
  start(opts?: { limits?: Partial<MqttLimits> }): Promise<MqttBroker>;
  /** Runs `fn` after the test, with the other clean-ups. */
  track(fn: () => unknown): void;
}

/**
 * Fresh VMs with the gateway "home", the owner "phone" and the member "guest"
 * paired; everything they start (stores, brokers, clients, temp dirs) is closed
 * and removed after each test, failed or not.
 */
export function mqttVms(suite: Test, name: string): () => MqttVm {
  const cleanups: (() => unknown)[] = [];
  suite.after.each(async () => {
    await endClients();
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch {
        // keep cleaning
      }
    }
  });
  return () => {
    const dir = mkdtempSync(join(tmpdir(), `aerie-${name}-`));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const stateDir = join(dir, 'state');
    initState({ stateDir, publicEndpoint: '203.0.113.10', overlayV4: '203.0.113.128/25', overlayV6: '2001:db8:a0::/64', dnsLists: 'none' });
    const store = openStore(stateDir);
    cleanups.push(() => store.close());
    const core = createCore({ store, config: loopbackConfig(loadState(stateDir, store)) });
    core.pairing.redeem(pairRequest(core.pairing.createCode().code));
    core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey });
    core.devices.add({ name: 'guest', role: 'member', publicKey: generateKeyPair().publicKey });
    const dbPath = join(dir, 'mqtt.db');
    const logs: string[] = [];
    return {
      dir,
      stateDir,
      dbPath,
      store,
      core,
      logs,
      async start(opts = {}) {
        const persistence = new SqlitePersistence({ path: dbPath, log: (l) => logs.push(l) });
        const broker = await createMqttBroker({
          authenticate: core.mqtt.authenticate,
          access: core.mqtt.access,
          persistence,
          log: (l) => logs.push(l),
          // Tests open many connections from one address; the limits test sets its own.
          limits: { connectionsPerMinutePerSource: 10_000, ...opts.limits },
        });
        cleanups.push(() => broker.close());
        await broker.listen([VM], 0);
        return broker;
      },
      track: (fn) => void cleanups.push(fn),
    };
  };
}

export const portOf = (broker: MqttBroker) => broker.listening()[0]!.port;

/** Rejects after `ms`, so no wait can hang the file. */
export function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const openClients = new Set<MqttClient>();
/** Ends every client a test opened (call in after.each). */
export async function endClients(): Promise<void> {
  await Promise.all([...openClients].map((c) => new Promise((r) => c.end(true, {}, () => r(undefined)))));
  openClients.clear();
}

/**
 * An MQTT.js client whose socket comes from `from` (a device's overlay
 * address) to the broker; resolves on CONNACK 0, rejects with the refusal
 * (err.code is the CONNACK return code).
 */
export function connectFrom(port: number, from: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const client = new MqttClient(() => createConnection({ host: VM, port, localAddress: from }), {
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    keepalive: 30,
    ...opts,
  });
  openClients.add(client);
  return within(
    6000,
    `connect from ${from}`,
    new Promise<MqttClient>((resolve, reject) => {
      client.once('connect', () => resolve(client));
      client.once('error', reject);
      client.once('close', () => reject(new Error('closed before CONNACK')));
    }),
  );
}

/** The return code of a refused CONNECT. */
export async function refusal(p: Promise<MqttClient>): Promise<number> {
  try {
    await p;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
  throw new Error('expected the CONNECT to be refused');
}

/** Collects messages a client receives. */
export function inbox(client: MqttClient) {
  const got: { topic: string; payload: string; retain: boolean; qos: number }[] = [];
  client.on('message', (topic, payload, packet: Packet) => {
    const p = packet as { retain?: boolean; qos?: number };
    got.push({ topic, payload: payload.toString(), retain: !!p.retain, qos: p.qos ?? 0 });
  });
  return {
    got,
    /** Waits until `n` messages arrived (or fails after `ms`). */
    async wait(n: number, ms = 3000) {
      const until = Date.now() + ms;
      while (got.length < n && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      if (got.length < n) throw new Error(`expected ${n} messages, got ${got.length}: ${JSON.stringify(got)}`);
      return got;
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The SUBACK return codes for `filters`, 0x80 (128) included (MQTT.js rejects then, with the packet). */
export async function subscribe(client: MqttClient, filters: string[], qos: 0 | 1 | 2 = 1): Promise<number[]> {
  try {
    const granted: ISubscriptionGrant[] = await client.subscribeAsync(filters, { qos });
    return granted.map((g) => g.qos);
  } catch (err) {
    const packet = (err as { packet?: { granted?: number[] } }).packet;
    if (!packet?.granted) throw err;
    return packet.granted;
  }
}
