import { ValidationError } from '../../shared/errors.ts';
import { answerReply, cacheKey, createCache, type Answer, type CacheKey } from './cache.ts';
import type { LocalNames } from './local-names.ts';
import { createDeviceStats, createRecentRing, type DeviceCounters, type QueryResult, type RecentQuery } from './stats.ts';
import { emptyReply, prependLabel, soaRdata, synthReply, writeHeader, writeOpt, type OwnRecord } from './wire-reply.ts';
import {
  CLASS_IN,
  createQuery,
  EDNS_SIZE,
  HEADER,
  nameEquals,
  nameToText,
  nameToWire,
  OPT_LENGTH,
  parseQuery,
  Q_DROP,
  Q_OK,
  RCODE,
  RD,
  rcodeName,
  TYPE,
  typeName,
  type Asker,
  type Query,
} from './wire.ts';

export type { DeviceCounters, RecentQuery } from './stats.ts';
export type { LocalNames } from './local-names.ts';

// The pipeline for one query (DESIGN §7): local names → canaries →
// allow/blocklist → cache → upstream. Everything but the upstream is
// synchronous, and the cache-hit and blocked paths make no object but the
// reply itself.

export interface DnsClient {
  /** Device name for counters. */
  key: string;
  /** false: this device opted out of blocking. */
  blocking: boolean;
}

/** H2 implements; rejects when every upstream failed. */
export interface Upstream {
  exchange(query: Uint8Array, opts?: { timeoutMs?: number }): Promise<Uint8Array>;
}

export interface ResolverOptions {
  zone: string;
  /** 'null': 0.0.0.0 / :: answers. */
  blockMode: 'null' | 'nxdomain';
  /** Default 10 s. */
  blockedTtl?: number;
  cache?: { maxEntries?: number; minTtl?: number; maxTtl?: number; negativeMaxTtl?: number; maxBytes?: number };
  upstream: Upstream;
  /** Source address (normalized: no ::ffff:, no %zone) → client, or null: not ours (drop silently). */
  identify(address: string): DnsClient | null;
  /** Hot path; wire-format name at buf[offset] (the question name). */
  isBlocked(buf: Uint8Array, offset: number): boolean;
  localNames: LocalNames;
  now?: () => number;
  /** Largest UDP reply whatever the client offers (default 1232, DNS Flag Day 2020). */
  maxUdpSize?: number;
  /** A query still waiting for the upstream after this long gets SERVFAIL (default 10 s). */
  upstreamTimeoutMs?: number;
  /** Distinct queries waiting for the upstream at most; beyond, SERVFAIL at once (default 4096). */
  maxPending?: number;
  /**
   * Each answer to an A or AAAA question, from the upstream or the cache, with
   * the name asked (made only when called for): the egress exceptions follow
   * them. A promise holds the reply until it settles.
   */
  onAddressAnswer?: (name: () => string, answer: Uint8Array) => void | Promise<void>;
}

export interface Resolver {
  /**
   * One query message in → the reply to send, or null to send nothing. Sync
   * when it can (cache hit, blocked, local, error). `from` is read during the
   * call only, so a server may reuse one object.
   */
  answer(query: Uint8Array, from: { address: string; transport: 'udp' | 'tcp' }): Uint8Array | null | Promise<Uint8Array | null>;
  stats(): { devices: Record<string, DeviceCounters>; cache: { entries: number; hits: number; misses: number } };
  recent: { enable(device: string, size?: number): void; disable(): void; list(): RecentQuery[]; device(): string | null };
  clearCache(): void;
  /** The owner switched how blocked names are answered; counters and cache stay. */
  setBlockMode(mode: 'null' | 'nxdomain'): void;
}

/**
 * Browsers and OSes look these up to decide whether to bypass the local
 * resolver with their own encrypted DNS; NXDOMAIN keeps them on ours.
 * (Firefox: use-application-dns.net; Apple iCloud Private Relay: mask*.icloud.com.)
 */
const CANARIES = ['use-application-dns.net', 'mask.icloud.com', 'mask-h2.icloud.com'].map((n) => nameToWire(n));

/** A client's query waiting for an upstream answer: its own copy of what the reply needs. */
interface Waiter extends Asker {
  qtype: number;
  at: number;
  counters: DeviceCounters;
  device: string;
  resolve: (reply: Uint8Array | null) => void;
}

interface Pending {
  key: CacheKey;
  waiters: Waiter[];
  timer: ReturnType<typeof setTimeout> | null;
  done: boolean;
}

const MAX_WAITERS = 1024;

export function createResolver(opts: ResolverOptions): Resolver {
  const local = opts.localNames;
  if (nameToText(nameToWire(opts.zone, 'zone'), 0) !== local.zone) {
    throw new ValidationError('zone', `expected the zone of localNames (${local.zone}), got ${opts.zone}`);
  }
  const now = opts.now ?? Date.now;
  const blockedTtl = opts.blockedTtl ?? 10;
  let nxdomainMode = opts.blockMode === 'nxdomain';
  const maxUdp = Math.max(512, opts.maxUdpSize ?? EDNS_SIZE);
  const upstreamTimeoutMs = opts.upstreamTimeoutMs ?? 10_000;
  const maxPending = opts.maxPending ?? 4096;
  const { identify, isBlocked, upstream } = opts;
  const cache = createCache({ ...opts.cache, now });
  const devices = createDeviceStats();
  const ring = createRecentRing();
  const q = createQuery();
  const pending = new Map<string, Pending>();

  // Blocked and canary names get an SOA of our zone so clients cache the answer for blockedTtl.
  const zoneWire = nameToWire(local.zone, 'zone');
  const blockSoa = soaRdata(prependLabel('ns', zoneWire), prependLabel('hostmaster', zoneWire), 1, blockedTtl);
  const ZERO_A: readonly OwnRecord[] = [{ type: TYPE.A, rdata: new Uint8Array(4) }];
  const ZERO_AAAA: readonly OwnRecord[] = [{ type: TYPE.AAAA, rdata: new Uint8Array(16) }];
  const NONE: readonly OwnRecord[] = [];

  const remember = (device: string, result: QueryResult, rcode: number, qtype: number, name: string, at: number) => {
    ring.push(device, { at, name, type: typeName(qtype), result, rcode: rcodeName(rcode) });
  };
  // Only for the one watched device: the text of a name is made nowhere else.
  const record = (client: DnsClient, result: QueryResult, rcode: number) => {
    if (ring.watching !== client.key) return;
    remember(client.key, result, rcode, q.end > 0 ? q.qtype : 0, q.end > 0 ? nameToText(q.buf, HEADER) : '', now());
  };

  const blockedReply = (): Uint8Array => {
    if (nxdomainMode) return synthReply(q, RCODE.NXDOMAIN, false, NONE, 0, blockSoa, HEADER, blockedTtl);
    if (q.qtype === TYPE.A) return synthReply(q, RCODE.NOERROR, false, ZERO_A, blockedTtl, null, 0, 0);
    if (q.qtype === TYPE.AAAA) return synthReply(q, RCODE.NOERROR, false, ZERO_AAAA, blockedTtl, null, 0, 0);
    return synthReply(q, RCODE.NOERROR, false, NONE, 0, blockSoa, HEADER, blockedTtl);
  };

  const isCanary = (): boolean => {
    const len = q.nameEnd - HEADER;
    for (let i = 0; i < CANARIES.length; i++) {
      const c = CANARIES[i]!;
      if (c.length === len && nameEquals(q.buf, HEADER, c)) return true;
    }
    return false;
  };

  const finish = (p: Pending, answer: Uint8Array | null) => {
    if (p.done) {
      // An answer after the clients were given SERVFAIL still serves the next ones.
      if (answer) cache.put(p.key, answer);
      return;
    }
    p.done = true;
    if (p.timer) clearTimeout(p.timer);
    pending.delete(latin1(p.key.key));
    let entry: Answer | null = null;
    if (answer) entry = cache.put(p.key, answer);
    // Replies are made now: the cache may reuse this entry's blocks while a hook holds them.
    const t = now();
    const replies = p.waiters.map((w) => {
      const failed = !entry;
      if (failed) w.counters.failed++;
      else w.counters.forwarded++;
      if (ring.watching === w.device) {
        remember(w.device, failed ? 'failed' : 'forwarded', failed ? RCODE.SERVFAIL : entry!.rcode, w.qtype, nameToText(w.buf, HEADER), w.at);
      }
      return entry ? answerReply(entry, w, t) : emptyReply(w, RCODE.SERVFAIL);
    });
    const deliver = () => p.waiters.forEach((w, i) => w.resolve(replies[i]!));
    const first = p.waiters[0];
    const hold =
      answer && opts.onAddressAnswer && first && (first.qtype === TYPE.A || first.qtype === TYPE.AAAA)
        ? opts.onAddressAnswer(() => nameToText(first.buf, HEADER), answer)
        : undefined;
    // A hook that returns a promise holds the reply until it settles (an egress exception in place first).
    if (hold) void hold.then(deliver, deliver);
    else deliver();
  };

  const forward = (client: DnsClient, counters: DeviceCounters): Uint8Array | null | Promise<Uint8Array | null> => {
    const key = cacheKey(q);
    const id = latin1(key.key);
    let p = pending.get(id);
    if (!p) {
      if (pending.size >= maxPending) {
        counters.failed++;
        const reply = emptyReply(q, RCODE.SERVFAIL);
        record(client, 'failed', RCODE.SERVFAIL);
        return reply;
      }
      p = { key, waiters: [], timer: null, done: false };
      pending.set(id, p);
      const started = p;
      started.timer = setTimeout(() => finish(started, null), upstreamTimeoutMs);
      started.timer.unref?.();
      let sent: Promise<Uint8Array>;
      try {
        sent = upstream.exchange(upstreamQuery(q));
      } catch (e) {
        sent = Promise.reject(e);
      }
      sent.then(
        (answer) => finish(started, answer),
        () => finish(started, null),
      );
    } else if (p.waiters.length >= MAX_WAITERS) {
      return null; // the same question a thousand times at once: let clients retry
    }
    const waiting = p;
    return new Promise<Uint8Array | null>((resolve) => {
      waiting.waiters.push({
        buf: Uint8Array.prototype.slice.call(q.buf, 0, q.end), // a copy (Buffer#slice would be a view)
        id: q.id,
        flags: q.flags,
        end: q.end,
        edns: q.edns,
        ednsDo: q.ednsDo,
        limit: q.limit,
        qtype: q.qtype,
        at: now(),
        counters,
        device: client.key,
        resolve,
      });
    });
  };

  const answer: Resolver['answer'] = (query, from) => {
    const client = identify(from.address);
    if (!client) return null;
    const status = parseQuery(query, q);
    if (status === Q_DROP) return null;
    const counters = devices.counters(client.key);
    counters.queries++;
    q.limit = from.transport === 'tcp' ? 0xffff : q.edns ? Math.min(q.ednsSize, maxUdp) : 512;

    let refusal = -1;
    if (status !== Q_OK) refusal = status;
    else if (q.edns && q.ednsVersion > 0) refusal = RCODE.BADVERS; // RFC 6891 §6.1.3
    else if (q.qclass !== CLASS_IN) refusal = RCODE.REFUSED;
    else if (q.qtype === TYPE.OPT) refusal = RCODE.FORMERR;
    else if (q.qtype === TYPE.AXFR || q.qtype === TYPE.IXFR) refusal = RCODE.REFUSED; // no zone transfers
    else if (q.qtype === TYPE.MAILA || q.qtype === TYPE.MAILB) refusal = RCODE.NOTIMP;
    if (refusal >= 0) {
      const reply = emptyReply(q, refusal);
      record(client, 'refused', refusal);
      return reply;
    }

    const own = local.answer(q);
    if (own) {
      counters.local++;
      record(client, 'local', own[3]! & 0x0f);
      return own;
    }
    if (isCanary()) {
      counters.local++;
      const reply = synthReply(q, RCODE.NXDOMAIN, false, NONE, 0, blockSoa, HEADER, blockedTtl);
      record(client, 'local', RCODE.NXDOMAIN);
      return reply;
    }
    if (client.blocking && isBlocked(query, HEADER)) {
      counters.blocked++;
      const reply = blockedReply();
      record(client, 'blocked', reply[3]! & 0x0f);
      return reply;
    }
    const cached = cache.reply(q);
    if (cached) {
      counters.cached++;
      record(client, 'cached', cached[3]! & 0x0f);
      // A cached answer may be the first for a name excepted since: it holds the reply like an upstream one.
      const hook = opts.onAddressAnswer;
      const hold = hook && (q.qtype === TYPE.A || q.qtype === TYPE.AAAA) ? hook(() => nameToText(query, HEADER), cached) : undefined;
      return hold ? hold.then(() => cached, () => cached) : cached;
    }
    return forward(client, counters);
  };

  return {
    answer,
    stats: () => ({ devices: devices.snapshot(), cache: cache.stats() }),
    recent: {
      enable: (device, size) => ring.enable(device, size),
      disable: () => ring.disable(),
      list: () => ring.list(),
      device: () => ring.device(),
    },
    clearCache: () => cache.clear(),
    setBlockMode: (mode) => {
      nxdomainMode = mode === 'nxdomain';
    },
  };
}

/**
 * The query we send upstream: a fresh message (the upstream layer sets its
 * ID), RD=1, the client's question as it was sent, and our OPT record.
 */
export function upstreamQuery(q: Query): Uint8Array {
  const out = new Uint8Array(q.end + OPT_LENGTH);
  writeHeader(out, 0, RD, 1, 0, 0, 1);
  for (let i = HEADER; i < q.end; i++) out[i] = q.buf[i]!;
  writeOpt(out, q.end, 0, q.ednsDo);
  return out;
}

// Map keys for queries in flight: the cache key's bytes as a string.
function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}
