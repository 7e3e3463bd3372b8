import { MAX_LABELS, textSuffixHashes } from './hash.ts';

// An immutable set of 64-bit name hashes, laid out for one cache miss per
// lookup: an ordered hash table (Knuth, TAOCP vol. 3, §6.4; Amble & Knuth
// 1974). Each name's (hi, lo) pair sits side by side in one typed array, in
// sorted order, at its home slot floor(hi × slots / 2^32) or just after it
// (linear probing). Home slots grow with hi, so the table is a sorted array
// with gaps: a lookup starts at the home slot and scans forward, and stops
// at an empty slot or a larger hash — a miss costs as little as a hit. At
// 80 % load that is about three slots, 24 bytes, usually one cache line.
//
// Memory: 8 bytes a slot for the hash, 1 for the source of the name (read by
// explain() only), 1.25 slots a name: about 11 bytes a name.
//
// An empty slot is (0, 0); a name whose 64-bit hash is 0 (chance 2^-64)
// would not be found.

/** Names per slot. */
const LOAD = 0.8;

export class HashTable {
  /** keys[2s], keys[2s + 1]: hi, lo of slot s; (0, 0) when empty. Ends with an empty slot. */
  readonly keys: Uint32Array;
  /** The list each slot's name came from (CompiledLists.sources). */
  readonly src: Uint8Array;
  /** home(hi) = floor(hi × scale). */
  readonly scale: number;
  readonly size: number;

  /** From hashes sorted by (hi, lo), without duplicates. */
  constructor(hi: Uint32Array, lo: Uint32Array, src: Uint8Array) {
    const n = hi.length;
    const slots = Math.max(1, Math.ceil(n / LOAD));
    this.scale = slots / 2 ** 32;
    this.size = n;
    // Where each name goes: its home, or the slot after the previous name.
    let last = -1;
    for (let i = 0; i < n; i++) last = Math.max(Math.floor(hi[i]! * this.scale), last + 1);
    const total = Math.max(slots, last + 1) + 1; // + the empty slot that ends every scan
    this.keys = new Uint32Array(2 * total);
    this.src = new Uint8Array(total);
    last = -1;
    for (let i = 0; i < n; i++) {
      const s = Math.max(Math.floor(hi[i]! * this.scale), last + 1);
      this.keys[2 * s] = hi[i]!;
      this.keys[2 * s + 1] = lo[i]!;
      this.src[s] = src[i]!;
      last = s;
    }
  }

  /** Every typed array this table holds. */
  get bytes(): number {
    return this.keys.buffer.byteLength + this.src.buffer.byteLength;
  }

  /** The slot of (hi, lo), or -1. */
  find(hi: number, lo: number): number {
    return findHash(this.keys, this.scale, hi, lo);
  }
}

/** The slot of (hi, lo) in a table's keys, or -1 (see HashTable). */
export function findHash(keys: Uint32Array, scale: number, hi: number, lo: number): number {
  for (let s = Math.floor(hi * scale); ; s++) {
    const h = keys[2 * s]!;
    if (h < hi) {
      if (h === 0 && keys[2 * s + 1] === 0) return -1; // empty
      continue;
    }
    if (h > hi) return -1;
    const l = keys[2 * s + 1]!;
    if ((h | l) === 0) return -1; // empty (when hi is 0)
    if (l === lo) return s;
    if (l > lo) return -1;
  }
}

export const EMPTY_TABLE = new HashTable(new Uint32Array(0), new Uint32Array(0), new Uint8Array(0));

/**
 * A small table (the allowlist, the custom blocks) from normalized names:
 * duplicates stored once, and a name under another listed name left out, as
 * its parent already covers it.
 */
export function smallTable(names: readonly string[]): HashTable {
  const out = new Uint32Array(2 * MAX_LABELS);
  const entries: { hi: number; lo: number; parents: number[] }[] = [];
  for (const name of names) {
    const bytes = Buffer.from(name, 'latin1');
    const k = textSuffixHashes(bytes, 0, bytes.length, out);
    entries.push({ hi: out[2 * k - 2]!, lo: out[2 * k - 1]!, parents: Array.from(out.subarray(0, 2 * k - 2)) });
  }
  const all = new Set(entries.map((e) => `${e.hi}:${e.lo}`));
  const kept = entries.filter((e) => {
    for (let j = 0; j < e.parents.length; j += 2) if (all.has(`${e.parents[j]}:${e.parents[j + 1]}`)) return false;
    return true;
  });
  kept.sort((x, y) => x.hi - y.hi || x.lo - y.lo);
  const unique = kept.filter((e, i) => i === 0 || e.hi !== kept[i - 1]!.hi || e.lo !== kept[i - 1]!.lo);
  return new HashTable(
    Uint32Array.from(unique, (e) => e.hi),
    Uint32Array.from(unique, (e) => e.lo),
    new Uint8Array(unique.length),
  );
}
