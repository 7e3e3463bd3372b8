import { scanAnswer } from './wire-scan.ts';
import { copyQuestion, replyFlags, truncatedReply, writeOpt } from './wire-reply.ts';
import { AD, FNV_PRIME, HEADER, lower, OPT_LENGTH, put16, put32, RCODE, TC, type Asker, type Query } from './wire.ts';

// The answer cache. An entry is the upstream's message as bytes (header,
// question, records; its OPT record dropped) plus where its TTLs are, so a
// hit is one copy and a few writes: the client's ID, flags and question
// (case preserved), TTLs minus the time spent in the cache.
//
// Keys are (name case-folded, type, DO bit). Entries sit in a Map by a 30-bit
// hash (small integers are the cheapest Map keys), chained on collision and
// compared byte by byte, and in a least-recently-used list for eviction.

export interface CacheOptions {
  /** Default 10 000. */
  maxEntries?: number;
  /** Bound on stored bytes, an estimate of the entries' overhead included. Default 16 MiB. */
  maxBytes?: number;
  /** TTL clamps for positive answers, seconds. Defaults 0 and 86 400. */
  minTtl?: number;
  maxTtl?: number;
  /** Cap on negative caching (RFC 2308 §5), seconds. Default 3600. */
  negativeMaxTtl?: number;
  now?: () => number;
}

export interface CacheEntry {
  hash: number;
  /** Lowercased wire name, then type (2 bytes) and the DO bit (1 byte). */
  key: Uint8Array;
  msg: Uint8Array;
  /** Pairs: offset of a TTL field in msg, the TTL to count down from. */
  ttls: Uint32Array;
  rcode: number;
  /** AD and TC as the upstream set them. */
  flags: number;
  storedAt: number;
  expiresAt: number;
  prev: CacheEntry | null;
  next: CacheEntry | null;
  /** Next entry with the same hash. */
  chain: CacheEntry | null;
}

export interface CacheKey {
  hash: number;
  key: Uint8Array;
  /** The lowercased wire name (a view into key). */
  name: Uint8Array;
  qtype: number;
}

export interface Cache {
  /** The fresh entry for q's name, type and DO bit, or null. */
  get(q: Query): CacheEntry | null;
  /**
   * An entry made from an upstream's answer, kept when it may be cached. null
   * when the answer is unusable: malformed, for another question, or an rcode
   * other than NOERROR / NXDOMAIN (the client then gets SERVFAIL).
   */
  put(key: CacheKey, answer: Uint8Array): CacheEntry | null;
  clear(): void;
  stats(): { entries: number; hits: number; misses: number };
}

// Object headers, typed-array headers and Map slot per entry, roughly.
const ENTRY_OVERHEAD = 256;

export function keyHash(nameHash: number, qtype: number, dnssecOk: boolean): number {
  return (Math.imul(nameHash ^ qtype, FNV_PRIME) ^ (dnssecOk ? 0x5bd1e995 : 0)) & 0x3fffffff;
}

/** The key for q, as a copy (it outlives the query buffer). */
export function cacheKey(q: Query): CacheKey {
  const n = q.nameEnd - HEADER;
  const key = new Uint8Array(n + 3);
  for (let i = 0; i < n; i++) key[i] = lower(q.buf[HEADER + i]!);
  put16(key, n, q.qtype);
  key[n + 2] = q.ednsDo ? 1 : 0;
  return { hash: keyHash(q.hash, q.qtype, q.ednsDo), key, name: key.subarray(0, n), qtype: q.qtype };
}

function matches(e: CacheEntry, q: Query): boolean {
  const key = e.key;
  const n = q.nameEnd - HEADER;
  if (key.length !== n + 3) return false;
  const buf = q.buf;
  for (let i = 0; i < n; i++) if (key[i] !== lower(buf[HEADER + i]!)) return false;
  return key[n] === q.qtype >>> 8 && key[n + 1] === (q.qtype & 0xff) && key[n + 2] === (q.ednsDo ? 1 : 0);
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function createCache(opts: CacheOptions = {}): Cache {
  // A busy home asks for tens of thousands of distinct names a day; maxBytes bounds the memory.
  const maxEntries = opts.maxEntries ?? 50_000;
  const maxBytes = opts.maxBytes ?? 16 * 1024 * 1024;
  const minTtl = opts.minTtl ?? 0;
  const maxTtl = opts.maxTtl ?? 86_400;
  const negativeMaxTtl = opts.negativeMaxTtl ?? 3600;
  const now = opts.now ?? Date.now;

  const table = new Map<number, CacheEntry>();
  let head: CacheEntry | null = null; // most recently used
  let tail: CacheEntry | null = null;
  let entries = 0;
  let bytes = 0;
  let hits = 0;
  let misses = 0;

  const unlink = (e: CacheEntry) => {
    if (e.prev) e.prev.next = e.next;
    else head = e.next;
    if (e.next) e.next.prev = e.prev;
    else tail = e.prev;
    e.prev = e.next = null;
  };
  const pushFront = (e: CacheEntry) => {
    e.next = head;
    if (head) head.prev = e;
    head = e;
    if (!tail) tail = e;
  };
  const remove = (e: CacheEntry) => {
    unlink(e);
    let first = table.get(e.hash) ?? null;
    if (first === e) {
      if (e.chain) table.set(e.hash, e.chain);
      else table.delete(e.hash);
    } else {
      while (first && first.chain !== e) first = first.chain;
      if (first) first.chain = e.chain;
    }
    e.chain = null;
    entries--;
    bytes -= e.msg.length + e.key.length + ENTRY_OVERHEAD;
  };
  const insert = (e: CacheEntry) => {
    let old = table.get(e.hash) ?? null;
    while (old && !sameKey(old.key, e.key)) old = old.chain;
    if (old) remove(old);
    e.chain = table.get(e.hash) ?? null;
    table.set(e.hash, e);
    pushFront(e);
    entries++;
    bytes += e.msg.length + e.key.length + ENTRY_OVERHEAD;
    while (tail && (entries > maxEntries || bytes > maxBytes)) remove(tail);
  };

  return {
    get(q) {
      let e = table.get(keyHash(q.hash, q.qtype, q.ednsDo)) ?? null;
      while (e && !matches(e, q)) e = e.chain;
      if (e && now() >= e.expiresAt) {
        remove(e);
        e = null;
      }
      if (!e) {
        misses++;
        return null;
      }
      hits++;
      if (head !== e) {
        unlink(e);
        pushFront(e);
      }
      return e;
    },

    put(key, answer) {
      const s = scanAnswer(answer, key.name, key.qtype);
      if (!s || s.extendedRcode !== 0 || (s.rcode !== RCODE.NOERROR && s.rcode !== RCODE.NXDOMAIN)) return null;
      const truncated = (s.flags & TC) !== 0;
      // RFC 2308 §5: negative answers live min(SOA TTL, SOA MINIMUM); without an SOA, not at all.
      const negative = s.rcode === RCODE.NXDOMAIN || !s.answered;
      const negativeTtl = s.negativeTtl < 0 ? -1 : Math.min(s.negativeTtl, negativeMaxTtl);
      const ttls = new Uint32Array(s.ttls.length);
      let lifetime = Number.POSITIVE_INFINITY;
      for (let i = 0; i < s.ttls.length; i += 2) {
        const ttl = s.ttls[i + 1]!;
        let base: number;
        if (!negative) base = Math.min(Math.max(ttl, minTtl), maxTtl);
        else base = negativeTtl < 0 ? ttl : Math.min(ttl, negativeTtl);
        ttls[i] = s.ttls[i]!;
        ttls[i + 1] = base;
        lifetime = Math.min(lifetime, base);
      }
      const msg = new Uint8Array(s.keep); // a copy: Buffer.slice would pin the upstream's whole buffer
      msg.set(answer.subarray(0, s.keep));
      put16(msg, 10, s.additional);
      const t = now();
      const cacheable = !truncated && (!negative || negativeTtl >= 0) && lifetime > 0 && lifetime !== Number.POSITIVE_INFINITY;
      const e: CacheEntry = {
        hash: key.hash,
        key: key.key,
        msg,
        ttls,
        rcode: s.rcode,
        flags: s.flags & (AD | TC),
        storedAt: t,
        expiresAt: cacheable ? t + lifetime * 1000 : t,
        prev: null,
        next: null,
        chain: null,
      };
      if (cacheable) insert(e);
      return e;
    },

    clear() {
      table.clear();
      head = tail = null;
      entries = bytes = 0;
    },

    stats: () => ({ entries, hits, misses }),
  };
}

/** The reply to a from entry e at time nowMs (ms), TTLs counted down. */
export function entryReply(e: CacheEntry, a: Asker, nowMs: number): Uint8Array {
  const size = e.msg.length + (a.edns ? OPT_LENGTH : 0);
  if (size > a.limit) return truncatedReply(a, e.rcode);
  const out = Buffer.allocUnsafe(size);
  out.set(e.msg, 0);
  put16(out, 0, a.id);
  // AD only for a client that asked for it or for DNSSEC data (RFC 6840 §5.7).
  const ad = (e.flags & AD) !== 0 && ((a.flags & AD) !== 0 || a.ednsDo) ? AD : 0;
  put16(out, 2, replyFlags(a, e.rcode, ad | (e.flags & TC)));
  copyQuestion(out, a);
  const elapsed = nowMs > e.storedAt ? Math.floor((nowMs - e.storedAt) / 1000) : 0;
  const ttls = e.ttls;
  for (let i = 0; i < ttls.length; i += 2) {
    const left = ttls[i + 1]! - elapsed;
    put32(out, ttls[i]!, left > 0 ? left : 0);
  }
  if (a.edns) {
    put16(out, 10, ((e.msg[10]! << 8) | e.msg[11]!) + 1);
    writeOpt(out, e.msg.length, e.rcode, a.ednsDo);
  }
  return out;
}
