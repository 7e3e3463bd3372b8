import type { DatabaseSync, SQLInputValue, SQLOutputValue, StatementSync } from 'node:sqlite';
import { Readable } from 'node:stream';
// CommonJS, and comes with aedes-persistence; a static import so the bundle carries it
import QlobberSub, { type QlobberSubValue } from 'qlobber/aedes/qlobber-sub.js';
import { DropEpisodes } from './drop-episodes.ts';
import { decodePacket, encodePacket, type EncodedPacket, type Packet } from './packet-codec.ts';
import { MqttStoreError, openMqttDatabase } from './schema.ts';
import { checkTopicFilter, checkTopicName, topicMatches } from '../../core/mqtt-topics.ts';

// An aedes persistence (the async shape of aedes-persistence 11's
// asyncPersistence.js) on node:sqlite, so retained messages, the sessions of
// clients that connect with clean=false (subscriptions, queued and in-flight
// QoS 1/2 messages) and wills survive a restart or a crash of the broker.
// sqlite is the truth; matching subscriptions by topic runs on an in-memory
// trie (the one aedes-persistence itself uses), rebuilt from sqlite on open.

export const DEFAULT_MAX_QUEUED_PER_CLIENT = 1000;
export const DEFAULT_MAX_STORED_BYTES = 64 * 1024 * 1024;

export interface SqlitePersistenceOptions {
  /** The database file, e.g. `<stateDir>/mqtt.db`. */
  path: string;
  log: (line: string) => void;
  /** Messages one client's queue may hold; newer ones are dropped past it. */
  maxQueuedPerClient?: number;
  /** Bytes of retained, queued and in-flight messages and wills together. */
  maxStoredBytes?: number;
}

export interface ClientRef {
  id: string;
}

/** A subscription as aedes hands it over (a SUBSCRIBE packet's entry). */
export interface SubscriptionIn {
  topic: string;
  qos: number;
  rh?: number;
  rap?: boolean;
  nl?: boolean;
  subscriptionIdentifier?: number;
}

export interface StoredSubscription {
  topic: string;
  qos: number;
  rh: number | undefined;
  rap: boolean | undefined;
  nl: boolean | undefined;
  subscriptionIdentifier?: number;
}

/** What the subscription trie holds and returns for a match. */
export type MatchedSubscription = QlobberSubValue;

/** The part of an aedes broker a persistence uses. */
export interface BrokerRef {
  id: string;
}

const TRIE_OPTIONS = { wildcard_one: '+', wildcard_some: '#', separator: '/' };

/** Rows read at a time by the streams, so a long queue is never all in memory. */
const PAGE = 64;
/** An episode of drops ends once usage is back under this share of where it began (not at once: no flapping). */
const RESUME_BELOW = 0.9;

const TOTAL = 'total';
const OVERSIZE = 'oversize';
const queueKey = (clientId: string) => `queue:${clientId}`;

type Row = Record<string, SQLOutputValue>;

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new MqttStoreError(`${name} must be a positive integer, got ${String(value)}`);
  return value;
}

function clientId(client: unknown): string {
  const id = (client as { id?: unknown } | null | undefined)?.id;
  if (typeof id !== 'string') throw new MqttStoreError('a client needs a string id');
  if (id.includes('\u0000')) throw new MqttStoreError(`client id ${JSON.stringify(id)} contains a NUL character (MQTT-1.5.4-2)`);
  return id;
}

/** messageId of a packet (or of anything aedes passes in its place), or null. */
function messageIdOf(packet: unknown): number | null {
  const id = (packet as { messageId?: unknown } | null | undefined)?.messageId;
  return typeof id === 'number' && Number.isSafeInteger(id) ? id : null;
}

const text = (v: SQLOutputValue | undefined): string | null => (typeof v === 'string' ? v : null);
const int = (v: SQLOutputValue | undefined): number | null => (typeof v === 'number' ? v : null);
const blob = (v: SQLOutputValue | undefined): Uint8Array | null => (v instanceof Uint8Array ? v : null);
const orNull = (v: unknown): SQLInputValue => (typeof v === 'string' || (typeof v === 'number' && Number.isSafeInteger(v)) ? v : null);
const flag = (v: unknown): number | null => (v === undefined || v === null ? null : v ? 1 : 0);
const unflag = (v: SQLOutputValue | undefined): boolean | undefined => (v === null || v === undefined ? undefined : v !== 0);
const undef = (v: number | null): number | undefined => (v === null ? undefined : v);

/** A queued packet's messageId lives in its own column (it changes on every send). */
function decodeQueued(row: Row): Packet {
  const packet = decodePacket(String(row['meta']), blob(row['payload']));
  const id = int(row['message_id']);
  if (id !== null || 'messageId' in packet) packet['messageId'] = undef(id);
  return packet;
}

/** A copy shaped like aedes-packet's Packet (so the same fields, in the same state). */
function asQueuedPacket(original: Packet, broker: BrokerRef | undefined, messageId?: number): Packet {
  const p: Packet = {};
  for (const key of ['clientId', 'nl', 'properties', 'messageExpiry']) {
    if (Object.hasOwn(original, key)) p[key] = original[key];
  }
  p['cmd'] = original['cmd'] || 'publish';
  p['brokerId'] = original['brokerId'] || broker?.id;
  p['brokerCounter'] = original['brokerCounter'] || 0;
  p['topic'] = original['topic'];
  p['payload'] = original['payload'] || Buffer.alloc(0);
  p['qos'] = original['qos'] || 0;
  p['retain'] = original['retain'] || false;
  p['dup'] = original['dup'] || false;
  // MQTT-2.3.1-5: only QoS > 0 publishes (and acks) carry a packet identifier
  if ((p['qos'] as number) > 0 || p['cmd'] !== 'publish') p['messageId'] = messageId;
  return p;
}

export class SqlitePersistence {
  readonly #db: DatabaseSync;
  readonly #log: (line: string) => void;
  readonly #maxQueued: number;
  readonly #maxBytes: number;
  readonly #episodes: DropEpisodes;
  readonly #trie = new QlobberSub(TRIE_OPTIONS);
  /** retained topics in insertion order, so a SUBSCRIBE need not read every payload */
  readonly #retainedTopics = new Set<string>();
  #storedBytes = 0;
  /** usage when the store last became full; the episode ends well below it */
  #fullAt = 0;
  #broker: BrokerRef | undefined;
  #destroyed = false;
  readonly #sql: Record<string, StatementSync>;

  constructor(opts: SqlitePersistenceOptions) {
    if (typeof opts?.log !== 'function') throw new MqttStoreError('the MQTT store needs a log function');
    this.#log = opts.log;
    this.#maxQueued = positiveInteger('maxQueuedPerClient', opts.maxQueuedPerClient, DEFAULT_MAX_QUEUED_PER_CLIENT);
    this.#maxBytes = positiveInteger('maxStoredBytes', opts.maxStoredBytes, DEFAULT_MAX_STORED_BYTES);
    this.#episodes = new DropEpisodes(this.#log);
    this.#db = openMqttDatabase(opts.path);
    const db = this.#db;
    const q = (sql: string) => db.prepare(sql);
    this.#sql = {
      retainedGet: q('SELECT meta, payload, bytes FROM retained WHERE topic = ?'),
      retainedPut: q(
        'INSERT INTO retained (topic, meta, payload, bytes) VALUES (?, ?, ?, ?) ' +
          'ON CONFLICT (topic) DO UPDATE SET meta = excluded.meta, payload = excluded.payload, bytes = excluded.bytes',
      ),
      retainedDel: q('DELETE FROM retained WHERE topic = ? RETURNING bytes'),
      subPut: q(
        'INSERT INTO subscriptions (client_id, topic, qos, rh, rap, nl, sub_id) VALUES (?, ?, ?, ?, ?, ?, ?) ' +
          'ON CONFLICT (client_id, topic) DO UPDATE SET qos = excluded.qos, rh = excluded.rh, rap = excluded.rap, nl = excluded.nl, sub_id = excluded.sub_id',
      ),
      subDel: q('DELETE FROM subscriptions WHERE client_id = ? AND topic = ? RETURNING topic'),
      subDelClient: q('DELETE FROM subscriptions WHERE client_id = ? RETURNING topic'),
      subsOfClient: q('SELECT topic, qos, rh, rap, nl, sub_id FROM subscriptions WHERE client_id = ? ORDER BY id'),
      subsAll: q('SELECT client_id, topic, qos, rh, rap, nl FROM subscriptions WHERE qos > 0 ORDER BY id'),
      clientsOfTopic: q('SELECT client_id FROM subscriptions WHERE topic = ? ORDER BY id'),
      countOffline: q('SELECT count(*) FILTER (WHERE qos > 0) AS subs, count(DISTINCT client_id) AS clients FROM subscriptions'),
      outCount: q('SELECT count(*) AS n FROM outgoing WHERE client_id = ?'),
      outPut: q('INSERT INTO outgoing (client_id, broker_id, broker_counter, message_id, meta, payload, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      // the first queued packet that outgoingUpdate means: the same message
      // (same broker and counter), or, from another broker or a PUBREL, the one
      // holding the same packet identifier
      outFind: q(
        'SELECT seq, broker_id IS ? AS same_broker FROM outgoing WHERE client_id = ? AND ' +
          '((broker_id IS ? AND broker_counter IS ?) OR (broker_id IS NOT ? AND message_id IS ?)) ORDER BY seq LIMIT 1',
      ),
      outSetId: q('UPDATE outgoing SET message_id = ? WHERE seq = ?'),
      outReplace: q(
        'UPDATE outgoing SET broker_id = ?, broker_counter = ?, message_id = ?, meta = ?, payload = ?, bytes = ? WHERE seq = ? RETURNING bytes',
      ),
      outBytes: q('SELECT bytes FROM outgoing WHERE seq = ?'),
      outClear: q(
        'DELETE FROM outgoing WHERE seq = (SELECT seq FROM outgoing WHERE client_id = ? AND message_id = ? ORDER BY seq LIMIT 1) ' +
          'RETURNING meta, payload, message_id, bytes',
      ),
      outLast: q('SELECT max(seq) AS seq FROM outgoing WHERE client_id = ?'),
      outPage: q('SELECT seq, meta, payload, message_id FROM outgoing WHERE client_id = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?'),
      inGet: q('SELECT meta, payload, bytes FROM incoming WHERE client_id = ? AND message_id = ?'),
      inPut: q(
        'INSERT INTO incoming (client_id, message_id, meta, payload, bytes) VALUES (?, ?, ?, ?, ?) ' +
          'ON CONFLICT (client_id, message_id) DO UPDATE SET meta = excluded.meta, payload = excluded.payload, bytes = excluded.bytes',
      ),
      inDel: q('DELETE FROM incoming WHERE client_id = ? AND message_id = ? RETURNING bytes'),
      inDelClient: q('DELETE FROM incoming WHERE client_id = ? RETURNING bytes'),
      willGet: q('SELECT meta, payload, bytes FROM wills WHERE client_id = ?'),
      willPut: q(
        'INSERT INTO wills (client_id, broker_id, meta, payload, bytes) VALUES (?, ?, ?, ?, ?) ' +
          'ON CONFLICT (client_id) DO UPDATE SET broker_id = excluded.broker_id, meta = excluded.meta, payload = excluded.payload, bytes = excluded.bytes',
      ),
      willDel: q('DELETE FROM wills WHERE client_id = ? RETURNING meta, payload, bytes'),
      willPage: q('SELECT rowid AS rid, broker_id, meta, payload FROM wills WHERE rowid > ? ORDER BY rowid LIMIT ?'),
    };
    this.#load();
  }

  /** Rebuilds what is kept in memory from the database. */
  #load(): void {
    for (const row of this.#db.prepare('SELECT topic FROM retained ORDER BY rowid').all()) this.#retainedTopics.add(String(row['topic']));
    for (const row of this.#sql['subsAll']!.all()) {
      const topic = String(row['topic']);
      this.#trie.add(topic, {
        clientId: String(row['client_id']),
        topic,
        qos: Number(row['qos']),
        rh: undef(int(row['rh'])),
        rap: unflag(row['rap']),
        nl: unflag(row['nl']),
      });
    }
    const total = this.#db
      .prepare(
        'SELECT (SELECT coalesce(sum(bytes), 0) FROM retained) + (SELECT coalesce(sum(bytes), 0) FROM outgoing) + ' +
          '(SELECT coalesce(sum(bytes), 0) FROM incoming) + (SELECT coalesce(sum(bytes), 0) FROM wills) AS total',
      )
      .get();
    this.#storedBytes = Number(total?.['total'] ?? 0);
  }

  #stmt(name: string): StatementSync {
    if (this.#destroyed) throw new MqttStoreError('the MQTT store was destroyed');
    return this.#sql[name]!;
  }

  #transaction<T>(fn: () => T): T {
    if (this.#destroyed) throw new MqttStoreError('the MQTT store was destroyed');
    const bytesBefore = this.#storedBytes; // fn counts as it goes; a rollback undoes that too
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      this.#db.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      this.#storedBytes = bytesBefore;
      throw err;
    }
  }

  /** Bytes in use and the cap, for a status page. */
  get usage(): { storedBytes: number; maxStoredBytes: number } {
    return { storedBytes: this.#storedBytes, maxStoredBytes: this.#maxBytes };
  }

  get broker(): BrokerRef | undefined {
    return this.#broker;
  }

  // aedes checks that setup is declared async (constructor.name === 'AsyncFunction').
  async setup(broker: BrokerRef): Promise<void> {
    this.#broker = broker;
  }

  // --- the size cap -------------------------------------------------------

  /** Whether `bytes` more fit under the cap; logs when an episode of drops starts. */
  #fits(bytes: number, what: string): boolean {
    if (bytes > this.#maxBytes) {
      this.#episodes.dropped(OVERSIZE, () => `mqtt store: ${what} of ${bytes} bytes is larger than the whole store (maxStoredBytes ${this.#maxBytes}); not stored`);
      return false;
    }
    this.#episodes.ended(OVERSIZE, (n) => `mqtt store: ${n} message(s) larger than the whole store were dropped`);
    if (this.#storedBytes + bytes <= this.#maxBytes) return true;
    if (!this.#episodes.isOpen(TOTAL)) this.#fullAt = this.#storedBytes;
    this.#episodes.dropped(
      TOTAL,
      () =>
        `mqtt store: full (${this.#storedBytes} of maxStoredBytes ${this.#maxBytes} bytes used); ` +
        'new queued and retained messages are dropped until clients take theirs',
    );
    return false;
  }

  #freed(bytes: number): void {
    this.#storedBytes -= bytes;
    if (this.#storedBytes <= this.#fullAt * RESUME_BELOW) {
      this.#episodes.ended(TOTAL, (n) => `mqtt store: storing messages again (${this.#storedBytes} bytes used); ${n} message(s) were dropped while it was full`);
    }
  }

  #sumFreed(rows: Row[]): void {
    let total = 0;
    for (const row of rows) total += Number(row['bytes']);
    if (total > 0) this.#freed(total);
  }

  // --- retained messages --------------------------------------------------

  async storeRetained(packet: Packet): Promise<void> {
    const topic = checkTopicName(packet?.['topic']);
    const payload = packet['payload'];
    if (payload === undefined || payload === null || (payload as { length?: number }).length === 0) {
      // an empty retained payload removes the retained message (MQTT-3.3.1-6, -7)
      this.#deleteRetained(topic);
      return;
    }
    const encoded = encodePacket(packet);
    const stored = this.#transaction(() => {
      const old = this.#stmt('retainedGet').get(topic);
      const oldBytes = old ? Number(old['bytes']) : 0;
      this.#storedBytes -= oldBytes;
      if (!this.#fits(encoded.bytes, `the retained message on ${JSON.stringify(topic)}`)) {
        // No stale value either: a subscriber would take it for the current one.
        this.#storedBytes += oldBytes;
        return false;
      }
      this.#stmt('retainedPut').run(topic, encoded.meta, encoded.payload, encoded.bytes);
      this.#storedBytes += encoded.bytes;
      return true;
    });
    if (stored) this.#retainedTopics.add(topic);
    else this.#deleteRetained(topic);
  }

  #deleteRetained(topic: string): void {
    const rows = this.#transaction(() => this.#stmt('retainedDel').all(topic));
    this.#retainedTopics.delete(topic);
    this.#sumFreed(rows);
  }

  /** Retained messages matching any of `patterns`, each message once. */
  createRetainedStreamCombi(patterns: string[]): Readable {
    return Readable.from(this.#retained(patterns));
  }

  createRetainedStream(pattern: string): Readable {
    return Readable.from(this.#retained([pattern]));
  }

  *#retained(patterns: string[]): Generator<Packet> {
    const filters = patterns.map((p) => checkTopicFilter(p));
    // a snapshot of the topics: storing or removing while streaming is fine
    for (const topic of [...this.#retainedTopics]) {
      if (!filters.some((f) => topicMatches(f, topic))) continue;
      const row = this.#stmt('retainedGet').get(topic);
      if (row) yield decodePacket(String(row['meta']), blob(row['payload']));
    }
  }

  // --- subscriptions of persistent sessions -------------------------------

  async addSubscriptions(client: ClientRef, subs: SubscriptionIn[]): Promise<void> {
    const id = clientId(client);
    if (!Array.isArray(subs)) throw new MqttStoreError('subscriptions must be an array');
    const clean = subs.map((s) => {
      const topic = checkTopicFilter(s?.topic);
      if (s.qos !== 0 && s.qos !== 1 && s.qos !== 2) throw new MqttStoreError(`subscription to ${JSON.stringify(topic)}: QoS must be 0, 1 or 2`);
      const sid = s.subscriptionIdentifier;
      // MQTT 5.0 section 3.8.2.1.2: a Subscription Identifier is 1 to 268,435,455
      if (sid !== undefined && (!Number.isSafeInteger(sid) || sid < 1 || sid > 268_435_455)) {
        throw new MqttStoreError(`subscription to ${JSON.stringify(topic)}: subscription identifier ${String(sid)} is not 1 to 268435455`);
      }
      const rh = Number.isSafeInteger(s.rh) ? s.rh : undefined;
      return { topic, qos: s.qos, rh, rap: unflag(flag(s.rap)), nl: unflag(flag(s.nl)), sid };
    });
    this.#transaction(() => {
      for (const s of clean) this.#stmt('subPut').run(id, s.topic, s.qos, s.rh ?? null, flag(s.rap), flag(s.nl), s.sid ?? null);
    });
    // QoS 0 subscriptions are restored on reconnect but never queue offline messages
    for (const s of clean) {
      if (s.qos > 0) this.#trie.add(s.topic, { clientId: id, topic: s.topic, qos: s.qos, rh: s.rh, rap: s.rap, nl: s.nl });
      else this.#trie.remove(s.topic, { clientId: id, topic: s.topic });
    }
  }

  async removeSubscriptions(client: ClientRef, topics: string[]): Promise<void> {
    const id = clientId(client);
    if (!Array.isArray(topics)) throw new MqttStoreError('topics to unsubscribe must be an array');
    const removed = this.#transaction(() => topics.flatMap((t) => this.#stmt('subDel').all(id, String(t))));
    for (const row of removed) this.#trie.remove(String(row['topic']), { clientId: id, topic: String(row['topic']) });
  }

  async subscriptionsByClient(client: ClientRef): Promise<StoredSubscription[]> {
    return this.#stmt('subsOfClient')
      .all(clientId(client))
      .map((row) => {
        const sub: StoredSubscription = {
          topic: String(row['topic']),
          qos: Number(row['qos']),
          rh: undef(int(row['rh'])),
          rap: unflag(row['rap']),
          nl: unflag(row['nl']),
        };
        const sid = int(row['sub_id']);
        if (sid !== null) sub.subscriptionIdentifier = sid;
        return sub;
      });
  }

  async countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    const row = this.#stmt('countOffline').get();
    return { subsCount: Number(row?.['subs'] ?? 0), clientsCount: Number(row?.['clients'] ?? 0) };
  }

  /** Persistent-session subscriptions (QoS > 0) that a publish on `topic` reaches. */
  async subscriptionsByTopic(topic: string): Promise<MatchedSubscription[]> {
    if (this.#destroyed) throw new MqttStoreError('the MQTT store was destroyed');
    const name = String(topic);
    const matched = this.#trie.match(name);
    return name.startsWith('$') ? matched.filter((s) => topicMatches(s.topic, name)) : matched;
  }

  async cleanSubscriptions(client: ClientRef): Promise<void> {
    const id = clientId(client);
    const removed = this.#transaction(() => this.#stmt('subDelClient').all(id));
    for (const row of removed) this.#trie.remove(String(row['topic']), { clientId: id, topic: String(row['topic']) });
  }

  /** Clients with a subscription to exactly this topic filter. */
  getClientList(topic: string): Readable {
    return Readable.from(this.#stmt('clientsOfTopic').all(String(topic)).map((row) => String(row['client_id'])));
  }

  // --- per-client queues of outgoing QoS 1/2 messages ---------------------

  async outgoingEnqueue(sub: { clientId: string }, packet: Packet): Promise<void> {
    await this.outgoingEnqueueCombi([sub], packet);
  }

  /**
   * Queues `packet` for each subscription's client. A client whose queue is
   * full, or any client while the store is full, misses it: the messages
   * already queued stay, as some may be in flight with an identifier the
   * client holds, and dropping those would break their QoS 1/2 exchange.
   */
  async outgoingEnqueueCombi(subs: { clientId: string }[], packet: Packet): Promise<void> {
    if (!Array.isArray(subs)) throw new MqttStoreError('subscriptions must be an array');
    // aedes asks for every QoS 1/2 publish, also with nobody offline to queue for (aedes.js enqueueOffline).
    if (subs.length === 0) return;
    const queued = asQueuedPacket(packet, this.#broker);
    const encoded = encodePacket(queued, ['messageId']);
    const brokerId = orNull(queued['brokerId']);
    const counter = orNull(queued['brokerCounter']);
    const ids = subs.map((s) => clientId({ id: s?.clientId }));
    this.#transaction(() => {
      for (const id of ids) {
        const n = Number(this.#stmt('outCount').get(id)?.['n'] ?? 0);
        const key = queueKey(id);
        if (n >= this.#maxQueued) {
          this.#episodes.dropped(
            key,
            () => `mqtt store: queue of client ${JSON.stringify(id)} is full (maxQueuedPerClient ${this.#maxQueued}); new messages for it are dropped until it takes some`,
          );
          continue;
        }
        if (n <= this.#maxQueued * RESUME_BELOW) {
          this.#episodes.ended(key, (d) => `mqtt store: queuing for client ${JSON.stringify(id)} again; ${d} message(s) for it were dropped`);
        }
        if (!this.#fits(encoded.bytes, `a message on ${JSON.stringify(queued['topic'])} for client ${JSON.stringify(id)}`)) continue;
        this.#stmt('outPut').run(id, brokerId, counter, null, encoded.meta, encoded.payload, encoded.bytes);
        this.#storedBytes += encoded.bytes;
      }
    });
  }

  /**
   * Records the packet identifier a queued message is sent with, or replaces
   * it by its PUBREL. A packet that is not queued (dropped by a limit, while
   * its client is online) is no error: aedes would drop the connection, and
   * the message still goes out, just not durably.
   */
  async outgoingUpdate(client: ClientRef, packet: Packet): Promise<void> {
    const id = clientId(client);
    if (packet === null || typeof packet !== 'object') throw new MqttStoreError('outgoingUpdate needs a packet');
    const brokerId = orNull(packet['brokerId']);
    const messageId = messageIdOf(packet);
    this.#transaction(() => {
      const row = this.#stmt('outFind').get(brokerId, id, brokerId, orNull(packet['brokerCounter']), brokerId, messageId);
      if (!row) return;
      const seq = Number(row['seq']);
      if (row['same_broker'] === 1) {
        this.#stmt('outSetId').run(messageId, seq);
        return;
      }
      const encoded: EncodedPacket = encodePacket(packet, ['messageId']);
      const before = Number(this.#stmt('outBytes').get(seq)?.['bytes'] ?? 0);
      this.#stmt('outReplace').run(brokerId, orNull(packet['brokerCounter']), messageId, encoded.meta, encoded.payload, encoded.bytes, seq);
      this.#storedBytes += encoded.bytes - before;
    });
  }

  /** Removes the queued packet with this identifier (on PUBACK/PUBCOMP) and returns it. */
  async outgoingClearMessageId(client: ClientRef, packet: Packet): Promise<Packet | undefined> {
    const id = clientId(client);
    const messageId = messageIdOf(packet);
    if (messageId === null) return undefined;
    const row = this.#transaction(() => this.#stmt('outClear').get(id, messageId));
    if (!row) return undefined;
    this.#freed(Number(row['bytes']));
    return decodeQueued(row);
  }

  /**
   * The client's queue as it is now, read a page at a time; messages queued
   * after this call are not in it, and ones cleared meanwhile are skipped.
   */
  outgoingStream(client: ClientRef): Readable {
    const id = clientId(client);
    const last = int(this.#stmt('outLast').get(id)?.['seq']) ?? 0;
    const pages = (function* (self: SqlitePersistence): Generator<Packet> {
      let after = 0;
      while (after < last) {
        const rows = self.#stmt('outPage').all(id, after, last, PAGE);
        if (rows.length === 0) return;
        for (const row of rows) {
          after = Number(row['seq']);
          yield decodeQueued(row);
        }
      }
    })(this);
    return Readable.from(pages);
  }

  // --- incoming QoS 2 messages awaiting PUBREL ----------------------------

  /**
   * Keeps a received QoS 2 publish until its PUBREL (MQTT-4.3.3-2). When the
   * store is full this rejects: aedes then sends no PUBREC and closes the
   * connection, so the sender keeps the message and sends it again later.
   */
  async incomingStorePacket(client: ClientRef, packet: Packet): Promise<void> {
    const id = clientId(client);
    const messageId = messageIdOf(packet);
    if (messageId === null) throw new MqttStoreError('an incoming QoS 2 packet needs a numeric messageId');
    checkTopicName(packet['topic']);
    const copy = asQueuedPacket(packet, undefined, messageId);
    const encoded = encodePacket(copy, ['messageId']);
    this.#transaction(() => {
      const old = this.#stmt('inGet').get(id, messageId);
      const oldBytes = old ? Number(old['bytes']) : 0;
      this.#storedBytes -= oldBytes;
      if (!this.#fits(encoded.bytes, `a QoS 2 message on ${JSON.stringify(copy['topic'])} from client ${JSON.stringify(id)}`)) {
        this.#storedBytes += oldBytes;
        throw new MqttStoreError(`the MQTT store is full (maxStoredBytes ${this.#maxBytes}); QoS 2 message ${messageId} from ${JSON.stringify(id)} not accepted`);
      }
      this.#stmt('inPut').run(id, messageId, encoded.meta, encoded.payload, encoded.bytes);
      this.#storedBytes += encoded.bytes;
    });
  }

  async incomingGetPacket(client: ClientRef, packet: Packet): Promise<Packet> {
    const id = clientId(client);
    const messageId = messageIdOf(packet);
    const row = messageId === null ? undefined : this.#stmt('inGet').get(id, messageId);
    if (!row) throw new MqttStoreError('no such packet');
    const found = decodePacket(String(row['meta']), blob(row['payload']));
    found['messageId'] = messageId;
    return found;
  }

  async incomingDelPacket(client: ClientRef, packet: Packet): Promise<void> {
    const id = clientId(client);
    const messageId = messageIdOf(packet);
    const rows = messageId === null ? [] : this.#transaction(() => this.#stmt('inDel').all(id, messageId));
    if (rows.length === 0) throw new MqttStoreError('no such packet');
    this.#sumFreed(rows);
  }

  /** Forgets a client's QoS 2 state when its session ends (MQTT-3.1.2-6). */
  async cleanIncoming(client: ClientRef): Promise<void> {
    const id = clientId(client);
    this.#sumFreed(this.#transaction(() => this.#stmt('inDelClient').all(id)));
  }

  // --- wills --------------------------------------------------------------

  /**
   * Stores a client's will, marking it (the packet itself, as aedes expects)
   * with the client and this broker. Wills are always kept: one per
   * connected client, and losing one would go unnoticed; they still count
   * towards the cap.
   */
  async putWill(client: ClientRef, packet: Packet): Promise<void> {
    const id = clientId(client);
    if (packet === null || typeof packet !== 'object') throw new MqttStoreError('a will must be a packet');
    checkTopicName(packet['topic']);
    packet['brokerId'] = this.#broker?.id;
    packet['clientId'] = id;
    const encoded = encodePacket(packet);
    this.#transaction(() => {
      const old = this.#stmt('willGet').get(id);
      this.#stmt('willPut').run(id, orNull(packet['brokerId']), encoded.meta, encoded.payload, encoded.bytes);
      this.#storedBytes += encoded.bytes - (old ? Number(old['bytes']) : 0);
    });
  }

  async getWill(client: ClientRef): Promise<Packet | undefined> {
    const row = this.#stmt('willGet').get(clientId(client));
    return row ? decodePacket(String(row['meta']), blob(row['payload'])) : undefined;
  }

  async delWill(client: ClientRef): Promise<Packet | undefined> {
    const id = clientId(client);
    const row = this.#transaction(() => this.#stmt('willDel').get(id));
    if (!row) return undefined;
    this.#freed(Number(row['bytes']));
    return decodePacket(String(row['meta']), blob(row['payload']));
  }

  /** Wills of brokers not in `brokers` (dead ones), to be published. */
  streamWill(brokers: Record<string, unknown> = {}): Readable {
    if (this.#destroyed) throw new MqttStoreError('the MQTT store was destroyed');
    const pages = (function* (self: SqlitePersistence): Generator<Packet> {
      let after = 0;
      for (;;) {
        const rows = self.#stmt('willPage').all(after, PAGE);
        if (rows.length === 0) return;
        for (const row of rows) {
          after = Number(row['rid']);
          const broker = text(row['broker_id']);
          if (broker !== null && Object.hasOwn(brokers, broker) && brokers[broker]) continue;
          yield decodePacket(String(row['meta']), blob(row['payload']));
        }
      }
    })(this);
    return Readable.from(pages);
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) throw new MqttStoreError('the MQTT store was destroyed twice');
    this.#destroyed = true;
    this.#db.close();
  }
}
