import { Buffer } from 'node:buffer';
import { scanAnswer } from './wire-scan.ts';
import { copyQuestion, replyFlags, truncatedReply, writeOpt } from './wire-reply.ts';
import { AD, FNV_PRIME, HEADER, lower, OPT_LENGTH, put16, put32, RCODE, TC, u16, type Asker, type Query } from './wire.ts';

// The answer cache. An entry is the upstream's message as bytes (header,
// question, records; its OPT record dropped) plus where its TTLs are, so a
// hit is one copy and a few writes: the client's ID, flags and question
// (case preserved), TTLs minus the time spent in the cache.
//
// Tens of thousands of small entries as JS objects and typed arrays would
// cost over a kilobyte each (bench/dns-cache.ts), so the cache holds
// no object per entry: the bytes live in one arena of fixed-size blocks
// chained per entry, and what else an entry has sits in parallel typed
// arrays indexed by its slot. Slots and blocks count from 1 (0 is "none").
// The key is (name case-folded, type, DO bit); the name is the one in the
// stored question, compared without regard to case.

export interface CacheOptions {
  /** Default 50 000. */
  maxEntries?: number;
  /** Size of the arena holding the messages. Default 16 MiB. */
  maxBytes?: number;
  /** TTL clamps for positive answers, seconds. Defaults 0 and 86 400. */
  minTtl?: number;
  maxTtl?: number;
  /** Cap on negative caching (RFC 2308 §5), seconds. Default 3600. */
  negativeMaxTtl?: number;
  now?: () => number;
}

/** An upstream's answer, checked, as the clients waiting for it are answered from it. */
export interface Answer {
  /** The message up to its OPT record. */
  msg: Uint8Array;
  /** Pairs: offset of a TTL field in msg, the TTL to count down from. */
  ttls: Uint32Array;
  rcode: number;
  /** AD and TC as the upstream set them. */
  flags: number;
  storedAt: number;
}

export interface CacheKey {
  hash: number;
  /** Lowercased wire name, then type (2 bytes) and the DO bit (1 byte). */
  key: Uint8Array;
  /** The lowercased wire name (a view into key). */
  name: Uint8Array;
  qtype: number;
}

export interface Cache {
  /** The reply to q from a fresh entry for its name, type and DO bit, or null. */
  reply(q: Query): Uint8Array | null;
  /**
   * The upstream's answer, checked, kept when it may be cached. null when it
   * is unusable: malformed, for another question, or an rcode other than
   * NOERROR / NXDOMAIN (the client then gets SERVFAIL). Takes `answer` over:
   * the result is a view of it.
   */
  put(key: CacheKey, answer: Uint8Array): Answer | null;
  clear(): void;
  stats(): { entries: number; hits: number; misses: number };
}

const BLOCK = 64;
// Bits of an entry's info byte besides the 4-bit rcode.
const INFO_AD = 0x10;
const INFO_DO = 0x20;

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

/** The arena and the per-slot arrays; made at the first put, dropped by clear. */
function createSlots(maxEntries: number, blocks: number) {
  let buckets = 1;
  while (buckets < maxEntries) buckets *= 2;
  const n = maxEntries + 1;
  // Zero-filled memory is mapped lazily: untouched blocks and slots cost nothing.
  return {
    arena: Buffer.alloc(blocks * BLOCK),
    nextBlock: new Int32Array(blocks + 1),
    bucketMask: buckets - 1,
    buckets: new Int32Array(buckets),
    hash: new Int32Array(n),
    chain: new Int32Array(n),
    prev: new Int32Array(n),
    next: new Int32Array(n),
    first: new Int32Array(n),
    msgLen: new Uint16Array(n),
    nameLen: new Uint8Array(n),
    ttlPairs: new Uint16Array(n),
    info: new Uint8Array(n),
    storedAt: new Float64Array(n),
    expiresAt: new Float64Array(n),
  };
}
type Slots = ReturnType<typeof createSlots>;

const blocksFor = (msgLen: number, pairs: number) => Math.ceil((msgLen + pairs * 8) / BLOCK);

// TTL pairs of a hit are read into this array (grown when an entry has more).
let ttlScratch = new Uint32Array(64);
let ttlScratchBytes = new Uint8Array(ttlScratch.buffer);

export function createCache(opts: CacheOptions = {}): Cache {
  // A busy home asks for tens of thousands of distinct names a day; maxBytes bounds the memory.
  const maxEntries = Math.max(1, opts.maxEntries ?? 50_000);
  const blocks = Math.max(1, Math.floor((opts.maxBytes ?? 16 * 1024 * 1024) / BLOCK));
  const minTtl = opts.minTtl ?? 0;
  const maxTtl = opts.maxTtl ?? 86_400;
  const negativeMaxTtl = opts.negativeMaxTtl ?? 3600;
  const now = opts.now ?? Date.now;

  let s: Slots | null = null;
  let head = 0; // most recently used
  let tail = 0;
  let entries = 0;
  let freshSlot = 0; // slots above this were never used
  let freeSlot = 0; // stack of released slots, linked through chain
  let freshBlock = 0;
  let freeBlock = 0; // list of released blocks, linked through nextBlock
  let freeBlocks = blocks;
  let hits = 0;
  let misses = 0;

  /** Whether slot x holds (src[off .. off+n) case-folded, qtype, DO). */
  const matches = (t: Slots, x: number, src: Uint8Array, off: number, n: number, qtype: number, dnssecOk: boolean): boolean => {
    if (t.nameLen[x] !== n || ((t.info[x]! & INFO_DO) !== 0) !== dnssecOk) return false;
    const arena = t.arena;
    let b = t.first[x]!;
    let base = (b - 1) * BLOCK;
    let at = HEADER;
    // The stored question: name, then type.
    for (let i = 0; i < n + 2; i++, at++) {
      if (at === BLOCK) {
        b = t.nextBlock[b]!;
        base = (b - 1) * BLOCK;
        at = 0;
      }
      const want = i < n ? lower(src[off + i]!) : i === n ? qtype >>> 8 : qtype & 0xff;
      const have = i < n ? lower(arena[base + at]!) : arena[base + at]!;
      if (have !== want) return false;
    }
    return true;
  };

  const find = (t: Slots, hash: number, src: Uint8Array, off: number, n: number, qtype: number, dnssecOk: boolean): number => {
    let x = t.buckets[hash & t.bucketMask]!;
    while (x !== 0 && (t.hash[x] !== hash || !matches(t, x, src, off, n, qtype, dnssecOk))) x = t.chain[x]!;
    return x;
  };

  const unlink = (t: Slots, x: number) => {
    const p = t.prev[x]!;
    const nx = t.next[x]!;
    if (p !== 0) t.next[p] = nx;
    else head = nx;
    if (nx !== 0) t.prev[nx] = p;
    else tail = p;
    t.prev[x] = t.next[x] = 0;
  };
  const pushFront = (t: Slots, x: number) => {
    t.next[x] = head;
    if (head !== 0) t.prev[head] = x;
    head = x;
    if (tail === 0) tail = x;
  };

  const remove = (t: Slots, x: number) => {
    unlink(t, x);
    const bucket = t.hash[x]! & t.bucketMask;
    let y = t.buckets[bucket]!;
    if (y === x) t.buckets[bucket] = t.chain[x]!;
    else {
      while (y !== 0 && t.chain[y] !== x) y = t.chain[y]!;
      if (y !== 0) t.chain[y] = t.chain[x]!;
    }
    // The entry's blocks go to the free list as they are chained.
    const count = blocksFor(t.msgLen[x]!, t.ttlPairs[x]!);
    const first = t.first[x]!;
    let last = first;
    for (let i = 1; i < count; i++) last = t.nextBlock[last]!;
    t.nextBlock[last] = freeBlock;
    freeBlock = first;
    freeBlocks += count;
    t.chain[x] = freeSlot;
    freeSlot = x;
    entries--;
  };

  const takeBlock = (t: Slots): number => {
    if (freeBlock !== 0) {
      const b = freeBlock;
      freeBlock = t.nextBlock[b]!;
      return b;
    }
    return ++freshBlock;
  };

  /** Writes src at byte `at` of the entry whose chain starts at block b. */
  const write = (t: Slots, b: number, at: number, src: Uint8Array) => {
    while (at >= BLOCK) {
      b = t.nextBlock[b]!;
      at -= BLOCK;
    }
    for (let done = 0; done < src.length; ) {
      const n = Math.min(BLOCK - at, src.length - done);
      t.arena.set(src.subarray(done, done + n), (b - 1) * BLOCK + at);
      done += n;
      at = 0;
      b = t.nextBlock[b]!;
    }
  };

  /** Copies len bytes from byte `at` of slot x's chain into dst at pos. */
  const read = (t: Slots, x: number, at: number, len: number, dst: Uint8Array, pos: number) => {
    let b = t.first[x]!;
    while (at >= BLOCK) {
      b = t.nextBlock[b]!;
      at -= BLOCK;
    }
    while (len > 0) {
      const n = Math.min(BLOCK - at, len);
      const from = (b - 1) * BLOCK + at;
      t.arena.copy(dst, pos, from, from + n);
      pos += n;
      len -= n;
      at = 0;
      b = t.nextBlock[b]!;
    }
  };

  const store = (key: CacheKey, x: Answer, expiresAt: number) => {
    const pairs = x.ttls.length / 2;
    const count = blocksFor(x.msg.length, pairs);
    if (count > blocks) return;
    const t = (s ??= createSlots(maxEntries, blocks));
    const n = key.name.length;
    const dnssecOk = key.key[n + 2] === 1;
    const old = find(t, key.hash, key.name, 0, n, key.qtype, dnssecOk);
    if (old !== 0) remove(t, old);
    while (tail !== 0 && (entries >= maxEntries || freeBlocks < count)) remove(t, tail);

    let slot = freeSlot;
    if (slot !== 0) freeSlot = t.chain[slot]!;
    else slot = ++freshSlot;
    const first = takeBlock(t);
    let b = first;
    for (let i = 1; i < count; i++) {
      const nb = takeBlock(t);
      t.nextBlock[b] = nb;
      b = nb;
    }
    freeBlocks -= count;
    t.first[slot] = first;
    write(t, first, 0, x.msg);
    write(t, first, x.msg.length, new Uint8Array(x.ttls.buffer, x.ttls.byteOffset, x.ttls.byteLength));
    t.hash[slot] = key.hash;
    t.msgLen[slot] = x.msg.length;
    t.nameLen[slot] = n;
    t.ttlPairs[slot] = pairs;
    t.info[slot] = (x.rcode & 0x0f) | (x.flags & AD ? INFO_AD : 0) | (dnssecOk ? INFO_DO : 0);
    t.storedAt[slot] = x.storedAt;
    t.expiresAt[slot] = expiresAt;
    const bucket = key.hash & t.bucketMask;
    t.chain[slot] = t.buckets[bucket]!;
    t.buckets[bucket] = slot;
    pushFront(t, slot);
    entries++;
  };

  return {
    reply(q) {
      const t = s;
      const x = t ? find(t, keyHash(q.hash, q.qtype, q.ednsDo), q.buf, HEADER, q.nameEnd - HEADER, q.qtype, q.ednsDo) : 0;
      if (x === 0 || now() >= t!.expiresAt[x]!) {
        if (x !== 0) remove(t!, x);
        misses++;
        return null;
      }
      hits++;
      if (head !== x) {
        unlink(t!, x);
        pushFront(t!, x);
      }
      return slotReply(t!, x, q, now());
    },

    put(key, answer) {
      const r = scanAnswer(answer, key.name, key.qtype);
      if (!r || r.extendedRcode !== 0 || (r.rcode !== RCODE.NOERROR && r.rcode !== RCODE.NXDOMAIN)) return null;
      const truncated = (r.flags & TC) !== 0;
      // RFC 2308 §5: negative answers live min(SOA TTL, SOA MINIMUM); without an SOA, not at all.
      const negative = r.rcode === RCODE.NXDOMAIN || !r.answered;
      const negativeTtl = r.negativeTtl < 0 ? -1 : Math.min(r.negativeTtl, negativeMaxTtl);
      const ttls = new Uint32Array(r.ttls.length);
      let lifetime = Number.POSITIVE_INFINITY;
      for (let i = 0; i < r.ttls.length; i += 2) {
        const ttl = r.ttls[i + 1]!;
        let base: number;
        if (!negative) base = Math.min(Math.max(ttl, minTtl), maxTtl);
        else base = negativeTtl < 0 ? ttl : Math.min(ttl, negativeTtl);
        ttls[i] = r.ttls[i]!;
        ttls[i + 1] = base;
        lifetime = Math.min(lifetime, base);
      }
      const msg = answer.subarray(0, r.keep);
      put16(msg, 10, r.additional);
      const t = now();
      const x: Answer = { msg, ttls, rcode: r.rcode, flags: r.flags & (AD | TC), storedAt: t };
      const cacheable = !truncated && (!negative || negativeTtl >= 0) && lifetime > 0 && lifetime !== Number.POSITIVE_INFINITY;
      if (cacheable) store(key, x, t + lifetime * 1000);
      return x;
    },

    clear() {
      s = null; // the arena's memory goes back with it
      head = tail = entries = 0;
      freshSlot = freeSlot = freshBlock = freeBlock = 0;
      freeBlocks = blocks;
    },

    stats: () => ({ entries, hits, misses }),
  };

  function slotReply(t: Slots, x: number, a: Asker, nowMs: number): Uint8Array {
    const len = t.msgLen[x]!;
    const info = t.info[x]!;
    const rcode = info & 0x0f;
    if (len + (a.edns ? OPT_LENGTH : 0) > a.limit) return truncatedReply(a, rcode);
    const out = Buffer.allocUnsafe(len + (a.edns ? OPT_LENGTH : 0));
    read(t, x, 0, len, out, 0);
    const words = t.ttlPairs[x]! * 2;
    if (words > ttlScratch.length) {
      ttlScratch = new Uint32Array(2 ** Math.ceil(Math.log2(words)));
      ttlScratchBytes = new Uint8Array(ttlScratch.buffer);
    }
    read(t, x, len, words * 4, ttlScratchBytes, 0);
    return finishReply(out, len, rcode, info & INFO_AD ? AD : 0, ttlScratch, words, t.storedAt[x]!, a, nowMs);
  }
}

/** The reply to a from an upstream's answer x at time nowMs (ms). */
export function answerReply(x: Answer, a: Asker, nowMs: number): Uint8Array {
  const len = x.msg.length;
  if (len + (a.edns ? OPT_LENGTH : 0) > a.limit) return truncatedReply(a, x.rcode);
  const out = Buffer.allocUnsafe(len + (a.edns ? OPT_LENGTH : 0));
  out.set(x.msg, 0);
  return finishReply(out, len, x.rcode, x.flags, x.ttls, x.ttls.length, x.storedAt, a, nowMs);
}

/** out holds the stored message: the client's ID, flags and question go in, TTLs are counted down. */
function finishReply(
  out: Buffer, len: number, rcode: number, flags: number, ttls: Uint32Array, words: number, storedAt: number, a: Asker, nowMs: number,
): Uint8Array {
  put16(out, 0, a.id);
  // AD only for a client that asked for it or for DNSSEC data (RFC 6840 §5.7).
  const ad = (flags & AD) !== 0 && ((a.flags & AD) !== 0 || a.ednsDo) ? AD : 0;
  put16(out, 2, replyFlags(a, rcode, ad | (flags & TC)));
  copyQuestion(out, a);
  const elapsed = nowMs > storedAt ? Math.floor((nowMs - storedAt) / 1000) : 0;
  for (let i = 0; i < words; i += 2) {
    const left = ttls[i + 1]! - elapsed;
    put32(out, ttls[i]!, left > 0 ? left : 0);
  }
  if (a.edns) {
    put16(out, 10, u16(out, 10) + 1);
    writeOpt(out, len, rcode, a.ednsDo);
  }
  return out;
}
