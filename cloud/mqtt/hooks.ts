import type { AedesOptions, AedesPublishPacket, Client, PublishPacket } from 'aedes';
import type { Mqtt } from '../core/mqtt.ts';
import type { AccessDecision, MqttCaller } from '../core/mqtt-access.ts';
import { topicMatches } from '../core/mqtt-topics.ts';

// aedes' authentication and authorization hooks on top of core.mqtt: who a
// connection is (by its address or its user name and password) and what it
// may publish, subscribe to and be sent.

export interface Session {
  caller: MqttCaller;
  address: string;
  since: number;
  /**
   * Decisions by topic, so a busy topic is not checked against the store on
   * every delivery or publish. Made on first use: an idle connection has none.
   */
  reads: DecisionCache | null;
  writes: DecisionCache | null;
  deniedLogged: boolean;
}

type DecisionCache = Map<string, { decision: AccessDecision; at: number }>;

export interface HookDeps {
  authenticate: Mqtt['authenticate'];
  access: Mqtt['access'];
  log: (message: string) => void;
  now: () => number;
  /** The address a connection was handed over with (see MqttBroker.handle). */
  addressOf: (client: Client) => string;
  /** The connected client with this id, if any (for take-overs). */
  clientById: (id: string) => Client | undefined;
  /** Forget a persistent client's stored subscription that is no longer allowed. */
  forgetSubscription: (client: Client, topic: string) => void;
}

export interface HookCounters {
  deniedPublishes: number;
  deniedSubscriptions: number;
  refusedConnections: number;
}

/** How long a decision is reused: a revoked grant or a removed user stops deliveries and publishes within this time. */
const DECISION_CACHE_MS = 2000;
const DECISION_CACHE_ENTRIES = 256;

/** The highest QoS among the client's subscriptions that match `topic`. */
function grantedQos(client: Client, topic: string): number {
  const subs = (client as unknown as { subscriptions: Record<string, { qos: number }> }).subscriptions;
  let max = -1;
  for (const filter in subs) if (subs[filter]!.qos > max && topicMatches(filter, topic)) max = subs[filter]!.qos;
  return max;
}

export const callerLabel = (c: MqttCaller): string => (c.kind === 'peer' ? `${c.role}:${c.name}` : `${c.kind}:${c.name}`);

type Hooks = Required<Pick<AedesOptions, 'preConnect' | 'authenticate' | 'authorizePublish' | 'authorizeSubscribe' | 'authorizeForward'>>;

export function createHooks(deps: HookDeps) {
  const sessions = new WeakMap<Client, Session>();
  const wills = new WeakMap<Client, string>();
  /** PUBLISH packets that were denied: acknowledged as usual, then never routed (see isDropped). */
  const dropped = new WeakSet<object>();
  const counters: HookCounters = { deniedPublishes: 0, deniedSubscriptions: 0, refusedConnections: 0 };

  /** core.mqtt.access costs two store queries; a device publishing many messages a second would pay them on each. */
  const decide = (session: Session, action: 'publish' | 'subscribe', topic: string): AccessDecision => {
    const t = deps.now();
    const cache = action === 'publish' ? (session.writes ??= new Map()) : (session.reads ??= new Map());
    const hit = cache.get(topic);
    if (hit && t - hit.at < DECISION_CACHE_MS) return hit.decision;
    if (cache.size >= DECISION_CACHE_ENTRIES) cache.clear();
    const decision = deps.access(session.caller, action, topic);
    cache.set(topic, { decision, at: t });
    return decision;
  };

  const hooks: Hooks = {
    preConnect(client, packet, callback) {
      if (packet.will) wills.set(client, packet.will.topic);
      callback(null, true);
    },

    authenticate(client, username, password, callback) {
      const address = deps.addressOf(client);
      // CONNACK return codes, MQTT v3.1.1 §3.2.2.3: 2 identifier rejected, 3 server unavailable, 4 bad user name or password, 5 not authorized.
      const refuse = (returnCode: 2 | 3 | 4 | 5, reason: string) => {
        counters.refusedConnections++;
        deps.log(`mqtt: refused login from ${address} (CONNACK ${returnCode}): ${reason}`);
        callback(Object.assign(new Error(reason), { returnCode }), null);
      };
      // mqtt-packet's parser keeps the CONNECT packet for the life of the connection
      // (parser.js, settings): once checked, the password is wiped from it.
      const wipe = () => void (password instanceof Uint8Array && password.fill(0));
      deps.authenticate({ address, username, password }).then(
        (result) => {
          wipe();
          if (!result.ok) return refuse(result.returnCode, result.reason);
          const { caller } = result;
          // A will is published later in the client's name, maybe by a later run of the broker: check it now.
          const willTopic = wills.get(client);
          if (willTopic !== undefined) {
            const decision = deps.access(caller, 'publish', willTopic);
            if (!decision.allowed) return refuse(5, `${callerLabel(caller)} may not leave a will there: ${decision.reason}`);
          }
          // MQTT-3.1.4-2 lets a new connection take over a client id; only its own owner may.
          const holder = client.id ? deps.clientById(client.id) : undefined;
          const held = holder && holder !== client ? sessions.get(holder) : undefined;
          if (held && callerLabel(held.caller) !== callerLabel(caller)) {
            return refuse(2, `client id ${JSON.stringify(client.id.slice(0, 64))} is in use by another login`);
          }
          sessions.set(client, { caller, address, since: deps.now(), reads: null, writes: null, deniedLogged: false });
          callback(null, true);
        },
        (err: unknown) => {
          wipe();
          refuse(3, `the login check failed: ${err instanceof Error ? err.message : String(err)}`);
        },
      );
    },

    // MQTT-3.3.5-2: a server that does not authorize a PUBLISH either acknowledges it as usual or closes
    // the connection. aedes closes it on an error here, so a denied packet passes and is dropped instead.
    authorizePublish(client, packet, callback) {
      // A will left by an earlier run of the broker: its topic was checked when the client connected.
      if (!client) return callback(null);
      const session = sessions.get(client);
      const decision = session ? decide(session, 'publish', packet.topic) : { allowed: false, reason: 'not logged in' };
      if (!decision.allowed) {
        counters.deniedPublishes++;
        dropped.add(packet);
        // One line per connection: a device stuck in a loop must not flood the log.
        if (session && !session.deniedLogged) {
          session.deniedLogged = true;
          deps.log(`mqtt: dropped a publish by ${callerLabel(session.caller)} (${client.id}): ${decision.reason}`);
        }
      }
      callback(null);
    },

    // A null subscription makes aedes answer 0x80 for that filter (MQTT v3.1.1 §3.9.3), and the connection stays.
    authorizeSubscribe(client, sub, callback) {
      const session = sessions.get(client);
      const decision = session ? deps.access(session.caller, 'subscribe', sub.topic) : { allowed: false, reason: 'not logged in' };
      if (decision.allowed) return callback(null, sub);
      counters.deniedSubscriptions++;
      // A persistent session resumed after a grant was revoked: forget the stored subscription too.
      if (!client.clean) deps.forgetSubscription(client, sub.topic);
      callback(null, null);
    },

    // Every delivery, live or queued while the client was away, is checked against the current rules.
    authorizeForward(client, packet) {
      const session = sessions.get(client);
      if (!session || !decide(session, 'subscribe', packet.topic).allowed) return null;
      // MQTT-3.8.4-6: at most the granted QoS. aedes lowers it only for a filter equal to the topic
      // (lib/client.js deliverQoS); this packet is the client's own copy, so lowering it here is safe.
      if (packet.qos === 2 && grantedQos(client, packet.topic) === 1) packet.qos = 1;
      return packet;
    },
  };

  return {
    hooks,
    counters,
    sessionOf: (client: Client) => sessions.get(client),
    /** May this client hold a subscription to `topic` (for what aedes stores of a SUBSCRIBE)? */
    mayStore: (client: Client, topic: string) => {
      const session = sessions.get(client);
      return !!session && deps.access(session.caller, 'subscribe', topic).allowed;
    },
    isDropped: (packet: PublishPacket | AedesPublishPacket) => dropped.has(packet),
  };
}
