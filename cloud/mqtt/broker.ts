import { once, type EventEmitter } from 'node:events';
import { createServer, type AddressInfo, type Server } from 'node:net';
import type { Duplex } from 'node:stream';
import { Aedes, type Client, type PublishPacket } from 'aedes';
import { normalizeRemoteAddress } from '../../shared/cidr.ts';
import { checkTopicName } from '../core/mqtt-topics.ts';
import type { Mqtt } from '../core/mqtt.ts';
import { callerLabel, createHooks } from './hooks.ts';
import { dropPacketNumberCache, slimParser } from './lean-clients.ts';
import { createConnectionGate, createLogThrottle, createPacketSizeGuard, resolveLimits, type MqttLimits } from './limits.ts';
import { persistenceView } from './persistence-view.ts';
import type { SqlitePersistence } from './persistence/sqlite-persistence.ts';

// The VM's MQTT broker (../shared/DESIGN.md §5): aedes with our sqlite
// persistence, identities and topic rules from core.mqtt, and limits in front.
// MQTT 3.1.1 (aedes 1.2 refuses MQTT 5 CONNECTs with return code 1).

export interface MqttBrokerDeps {
  authenticate: Mqtt['authenticate'];
  access: Mqtt['access'];
  persistence: SqlitePersistence;
  log: (message: string) => void;
  limits?: Partial<MqttLimits>;
  now?: () => number;
}

export interface MqttClientInfo {
  id: string;
  /** "gateway:home", "owner:phone", "member:guest" or "user:plug". */
  caller: string;
  address: string;
  since: number;
}

export interface MqttBrokerStats {
  clients: number;
  deniedPublishes: number;
  deniedSubscriptions: number;
  /** Connections closed before or at CONNECT: limits, bad logins. */
  refusedConnections: number;
}

export interface MqttBroker {
  /** Serves one connection (TCP socket or WebSocket stream) from `address` (its remote address). */
  handle(stream: Duplex, address: string): void;
  /** TCP listeners on the given addresses (the VM's overlay addresses), port 1883 by default. */
  listen(addresses: string[], port?: number): Promise<void>;
  /** Where the TCP listeners are (port 0 picks a free one). */
  listening(): { address: string; port: number }[];
  /** Publishes as the VM itself (commands to routers: aerie/gw/<id>/cmd/<name>), bypassing the ACL. */
  publish(topic: string, payload: string | Uint8Array, opts?: { qos?: 0 | 1; retain?: boolean }): Promise<void>;
  clients(): MqttClientInfo[];
  stats(): MqttBrokerStats;
  readonly limits: MqttLimits;
  /** Closes the listeners, the connections, aedes and then the persistence. */
  close(): Promise<void>;
}

type PublishFn = (packet: PublishPacket, client: Client | null | ((err?: Error | null) => void), done?: (err?: Error | null) => void) => void;

export async function createMqttBroker(deps: MqttBrokerDeps): Promise<MqttBroker> {
  const limits = resolveLimits(deps.limits);
  const now = deps.now ?? Date.now;
  const { log, persistence } = deps;
  const gate = createConnectionGate(limits, now);
  dropPacketNumberCache();
  const shouldLog = createLogThrottle(now);
  const addresses = new WeakMap<object, string>();
  let aedes: Aedes | undefined;
  const clientTable = () => (aedes as unknown as { clients: Record<string, Client> } | undefined)?.clients ?? {};

  const guard = createHooks({
    authenticate: deps.authenticate,
    access: deps.access,
    log,
    now,
    addressOf: (client) => addresses.get(client.conn) ?? 'unknown',
    clientById: (id) => clientTable()[id],
    forgetSubscription: (client, topic) => {
      persistence.removeSubscriptions(client, [topic]).catch((err: Error) => log(`mqtt: could not forget a subscription: ${err.message}`));
    },
  });

  aedes = await Aedes.createBroker({
    persistence: persistenceView(persistence, guard.mayStore),
    queueLimit: limits.queueBeforeConnack,
    maxInflightInbound: limits.maxInflightInbound,
    maxTopicLevels: limits.maxTopicLevels,
    connectTimeout: limits.connectTimeoutMs,
    // A subscriber that stops reading is dropped instead of stalling every delivery.
    drainTimeout: 30_000,
    ...guard.hooks,
  });
  const broker = aedes;
  (broker as unknown as EventEmitter).on('error', (err: Error) => log(`mqtt: broker error: ${err.message}`));

  // A denied PUBLISH was acknowledged by aedes as usual (see hooks.ts); here it stops before
  // being retained, queued or routed. Every client publish passes through broker.publish.
  const publishAll = broker.publish.bind(broker) as unknown as PublishFn;
  (broker as unknown as { publish: PublishFn }).publish = (packet, client, done) => {
    if (!guard.isDropped(packet)) return publishAll(packet, client, done);
    const cb = typeof client === 'function' ? client : done;
    setImmediate(() => cb?.(null));
  };

  const servers: Server[] = [];
  /** Every connection handed to aedes and still open: close() ends them, handshake or not. */
  const streams = new Set<Duplex>();
  let closing = false;

  function handle(stream: Duplex, address: string): void {
    const from = normalizeRemoteAddress(address);
    stream.on('error', () => {}); // aedes reports errors of clients it serves; before that, nobody listens
    const admitted = closing ? { allowed: false as const, key: from, reason: 'the broker is closing' } : gate.admit(from);
    if (!admitted.allowed) {
      guard.counters.refusedConnections++;
      if (shouldLog(admitted.key)) log(`mqtt: refused a connection from ${from}: ${admitted.reason} (more from ${admitted.key} this minute are not logged)`);
      stream.destroy();
      return;
    }
    gate.opened();
    stream.once('close', gate.closed);
    addresses.set(stream, from);
    // Every byte aedes parses comes through read(): check packet sizes before the parser buffers them.
    const feed = createPacketSizeGuard(limits.maxPacketBytes);
    const read = stream.read.bind(stream);
    stream.read = (size?: number) => {
      const chunk: unknown = read(size);
      if (chunk instanceof Uint8Array) {
        const bad = feed(chunk);
        if (bad) {
          log(`mqtt: closed the connection from ${from}: it sent ${bad}`);
          stream.destroy();
          return null;
        }
      }
      return chunk;
    };
    streams.add(stream);
    stream.once('close', () => streams.delete(stream));
    broker.handle(stream);
    slimParser(stream);
  }

  return {
    handle,
    limits,

    async listen(bindAddresses, port = 1883) {
      const started: Server[] = [];
      try {
        for (const host of bindAddresses) {
          // Nagle's algorithm stays on, as in aedes and mosquitto by default: a packet to an idle
          // connection leaves at once, and under load many small packets share one TCP segment
          // (1→50 fan-out: 1.5× the deliveries per broker CPU-second, bench/mqtt.ts).
          const server = createServer((socket) => handle(socket, socket.remoteAddress ?? ''));
          started.push(server);
          server.listen({ host, port });
          await once(server, 'listening');
        }
      } catch (err) {
        for (const s of started) s.close();
        throw err;
      }
      servers.push(...started);
    },

    listening: () =>
      servers.flatMap((s) => {
        const a = s.address() as AddressInfo | null;
        return a ? [{ address: a.address, port: a.port }] : [];
      }),

    async publish(topic, payload, opts = {}) {
      checkTopicName(topic, 'topic');
      const packet = {
        cmd: 'publish' as const,
        topic,
        payload: Buffer.from(payload),
        qos: opts.qos ?? 0,
        retain: opts.retain ?? false,
        dup: false,
      };
      await new Promise<void>((resolve, reject) => publishAll(packet, null, (err) => (err ? reject(err) : resolve())));
    },

    clients() {
      const out = [];
      for (const client of Object.values(clientTable())) {
        const session = guard.sessionOf(client);
        if (session) out.push({ id: client.id, caller: callerLabel(session.caller), address: session.address, since: session.since });
      }
      return out;
    },

    stats: () => ({ clients: broker.connectedClients, ...guard.counters }),

    async close() {
      if (closing) return;
      closing = true;
      const stopped = servers.map((s) => new Promise((resolve) => s.close(resolve)));
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      // aedes closes the clients it registered; one still logging in (say, in scrypt) is ours to end.
      for (const stream of streams) stream.destroy();
      await Promise.all(stopped);
      await persistence.destroy();
    },
  };
}
