// Mutated recorded frames and random bytes: the decoder either decodes or
// throws a UbusError; it never crashes with another error and never hangs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeNodes, decodeTable } from '../../gateway/ubus/blobmsg.ts';
import { UbusError } from '../../gateway/ubus/error.ts';
import { decodeAttrs, decodeMessage, FrameReader } from '../../gateway/ubus/message.ts';
import { loadVectors } from './ubus-vectors.ts';

const ROUNDS = 20_000;
const TIME_LIMIT_MS = 30_000;

/** mulberry32: a small seeded PRNG, so a failure can be replayed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Decodes everything a client would decode; returns 'ok' or 'refused', rethrows anything else. */
function decodeAll(frame: Uint8Array): 'ok' | 'refused' {
  try {
    const m = decodeMessage(frame);
    for (const b of [m.attrs.data, m.attrs.signature, m.monitor?.data]) {
      if (!b) continue;
      try {
        decodeTable(b);
        decodeNodes(b, false);
      } catch (e) {
        if (!(e instanceof UbusError)) throw e;
        decodeAttrs(b); // what `ubus monitor` puts in DATA; may throw UbusError too
      }
    }
    return 'ok';
  } catch (e) {
    if (e instanceof UbusError) return 'refused';
    throw new Error(`not a UbusError for ${Buffer.from(frame).toString('hex')}: ${(e as Error).stack}`);
  }
}

function mutate(r: () => number, src: Uint8Array, other: Uint8Array): Uint8Array {
  const pick = (n: number) => Math.floor(r() * n);
  let b = src.slice();
  switch (pick(6)) {
    case 0: // flip a few bytes
      for (let i = 0, n = 1 + pick(4); i < n; i++) b[pick(b.length)] = pick(256);
      break;
    case 1: // truncate
      b = b.slice(0, pick(b.length));
      break;
    case 2: // trailing garbage
      b = new Uint8Array([...b, ...Array.from({ length: 1 + pick(16) }, () => pick(256))]);
      break;
    case 3: { // rewrite an attribute length (aligned offsets after the header are where headers sit)
      const off = 12 + 4 * pick(Math.max(1, (b.length - 12) >> 2));
      if (off + 4 <= b.length) new DataView(b.buffer).setUint32(off, (b[off]! << 24) | pick(0x1000), false);
      break;
    }
    case 4: // splice two frames
      b = new Uint8Array([...b.subarray(0, pick(b.length)), ...other.subarray(pick(other.length))]);
      break;
    default: { // fix up the frame length so the blob itself is what is malformed
      for (let i = 0, n = 1 + pick(3); i < n; i++) b[12 + pick(Math.max(1, b.length - 12))] = pick(256);
      if (b.length >= 12) new DataView(b.buffer).setUint32(8, b.length - 8);
    }
  }
  if (b.length >= 12 && r() < 0.5) new DataView(b.buffer).setUint32(8, b.length - 8); // often a consistent frame length
  return b;
}

const { frames } = loadVectors();

test(`${ROUNDS} mutated recorded frames: decoded or refused with a UbusError, never a crash`, () => {
  const r = rng(0xaee1e);
  const start = Date.now();
  const tally = { ok: 0, refused: 0 };
  for (let i = 0; i < ROUNDS; i++) {
    const a = frames[Math.floor(r() * frames.length)]!.bytes;
    const b = frames[Math.floor(r() * frames.length)]!.bytes;
    tally[decodeAll(mutate(r, a, b))]++;
    if (Date.now() - start > TIME_LIMIT_MS) assert.unreachable(`too slow: ${i} rounds in ${TIME_LIMIT_MS} ms`);
  }
  assert.ok(tally.ok > 0 && tally.refused > 0, JSON.stringify(tally));
});

test('random bytes through the frame reader: frames or a UbusError, nothing else', () => {
  const r = rng(42);
  let refused = 0;
  for (let i = 0; i < 2000; i++) {
    const len = Math.floor(r() * 200);
    const buf = Uint8Array.from({ length: len }, () => Math.floor(r() * 256));
    if (len >= 12 && r() < 0.7) new DataView(buf.buffer).setUint32(8, Math.floor(r() * (len - 4)) + 4); // plausible length
    const reader = new FrameReader();
    try {
      for (let off = 0; off < len; off += 7) for (const f of reader.push(buf.subarray(off, off + 7))) decodeAll(f);
    } catch (e) {
      if (!(e instanceof UbusError)) throw e;
      refused++;
    }
  }
  assert.ok(refused < 2000);
});

test.run();
