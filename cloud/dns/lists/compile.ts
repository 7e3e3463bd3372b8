import { open } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { MAX_LABELS, textSuffixHashes } from './hash.ts';
import { createListParser, type ParseCounts } from './parse.ts';
import { HashTable } from './table.ts';

// Compiles lists into one HashTable: every name hashed once, duplicates
// across lists stored once (the first list in order names it), and a name
// under a listed parent dropped (the parent blocks it already). Sources are
// read one at a time, in chunks; no name is ever a JS string. Transient
// arrays during the compile: about 30 bytes a name.
//
// The work runs in slices of a few milliseconds with the event loop let in
// between, so DNS queries keep being answered (from the previous Blocklist)
// while a big compile runs.

export interface ListInput {
  id: string;
  read(): AsyncIterable<Uint8Array>;
}

export interface CompiledLists {
  table: HashTable;
  /** table.src[i] indexes this. */
  sources: readonly string[];
  counts: ReadonlyMap<string, ParseCounts>;
  /** Names parsed in all, before merging. */
  parsed: number;
  /** Time taken, in all and by step (for the benchmark and the log). */
  ms: number;
  steps: { parseMs: number; sortMs: number; parentsMs: number; buildMs: number };
}

export const EMPTY_LISTS: CompiledLists = Object.freeze({
  table: new HashTable(new Uint32Array(0), new Uint32Array(0), new Uint8Array(0)),
  sources: Object.freeze([]) as readonly string[],
  counts: new Map(),
  parsed: 0,
  ms: 0,
  steps: { parseMs: 0, sortMs: 0, parentsMs: 0, buildMs: 0 },
});

/** A table's src is one byte. */
export const MAX_SOURCES = 255;

const CHUNK = 512 * 1024;

export async function* fileChunks(path: string): AsyncGenerator<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    // One buffer, reused: the parser copies the unfinished last line.
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await fh.close();
  }
}

export async function* byteChunks(data: Uint8Array): AsyncGenerator<Uint8Array> {
  for (let s = 0; s < data.length; s += CHUNK) yield data.subarray(s, s + CHUNK);
}

/** Lets the event loop in every `sliceMs` of work. */
function pacer(sliceMs: number): () => Promise<void> {
  let deadline = performance.now() + sliceMs;
  return async () => {
    if (performance.now() < deadline) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    deadline = performance.now() + sliceMs;
  };
}

/** A growing array of 32-bit words. */
class U32s {
  a = new Uint32Array(1 << 16);
  n = 0;
  /** Makes room for `more` pushes. */
  reserve(more: number): void {
    if (this.n + more <= this.a.length) return;
    const b = new Uint32Array(Math.max(this.a.length * 2, this.n + more));
    b.set(this.a);
    this.a = b;
  }
}

class U8s {
  a = new Uint8Array(1 << 16);
  n = 0;
  reserve(more: number): void {
    if (this.n + more <= this.a.length) return;
    const b = new Uint8Array(Math.max(this.a.length * 2, this.n + more));
    b.set(this.a);
    this.a = b;
  }
}

/** Buckets of about four names for the sort (and the parent lookups during the compile); at least two, so that the shift stays below 32. */
function bucketBits(n: number): number {
  let bits = 1;
  while (bits < 28 && 2 ** bits * 4 < n) bits++;
  return bits;
}

/** Position of (hi, lo) in hashes sorted by (hi, lo) with a bucket index on the top bits of hi, or -1. */
function findSorted(his: Uint32Array, los: Uint32Array, index: Uint32Array, shift: number, hi: number, lo: number): number {
  const bucket = hi >>> shift;
  const end = index[bucket + 1]!;
  for (let i = index[bucket]!; i < end; i++) {
    const h = his[i]!;
    if (h === hi) {
      if (los[i] === lo) return i;
    } else if (h > hi) {
      return -1;
    }
  }
  return -1;
}

export async function compileLists(inputs: readonly ListInput[], opts: { sliceMs?: number } = {}): Promise<CompiledLists> {
  if (inputs.length > MAX_SOURCES) throw new Error(`at most ${MAX_SOURCES} lists can be compiled together, got ${inputs.length}`);
  const started = performance.now();
  const pace = pacer(opts.sliceMs ?? 8);

  // 1. Parse: per name, its hash, its list, and the hashes of its parents of
  //    two labels or more (no list entry is a single label).
  const hi = new U32s();
  const lo = new U32s();
  const src = new U8s();
  const parentCount = new U8s();
  const parentHi = new U32s();
  const parentLo = new U32s();
  const out = new Uint32Array(2 * MAX_LABELS);
  const counts = new Map<string, ParseCounts>();
  let source = 0;
  const sink = (name: Uint8Array, len: number) => {
    const k = textSuffixHashes(name, 0, len, out);
    const i = hi.n++;
    if (i === hi.a.length) {
      // Grow the four side by side (only hi.n counts).
      for (const g of [hi, lo, src, parentCount]) {
        g.n = i;
        g.reserve(1);
      }
      hi.n = i + 1;
    }
    hi.a[i] = out[2 * k - 2]!;
    lo.a[i] = out[2 * k - 1]!;
    src.a[i] = source;
    parentCount.a[i] = k - 2;
    if (k > 2) {
      parentHi.reserve(k - 2);
      parentLo.reserve(k - 2);
      for (let j = 1; j < k - 1; j++) {
        const t = parentHi.n++;
        parentHi.a[t] = out[2 * j]!;
        parentLo.a[t] = out[2 * j + 1]!;
      }
      parentLo.n = parentHi.n;
    }
  };
  for (const input of inputs) {
    const parser = createListParser(sink);
    for await (const chunk of input.read()) {
      parser.push(chunk);
      await pace();
    }
    counts.set(input.id, parser.end());
    source++;
  }
  const parsedAt = performance.now();
  const n = hi.n;
  const H = hi.a;
  const L = lo.a;

  // 2. Sort by (hi, lo): a counting sort on the top bits scatters the hashes
  //    into buckets (about four names each), then an insertion sort orders
  //    each bucket. Stable, so among equal hashes the first list stays first.
  //    perm[i] is where sorted entry i was parsed.
  const bits = bucketBits(n);
  const shift = 32 - bits;
  const buckets = 2 ** bits;
  const index = new Uint32Array(buckets + 1);
  for (let i = 0; i < n; i++) index[(H[i]! >>> shift) + 1]!++;
  for (let b = 0; b < buckets; b++) index[b + 1]! += index[b]!;
  const fill = index.slice(0, buckets);
  const sortedHi = new Uint32Array(n);
  const sortedLo = new Uint32Array(n);
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const h = H[i]!;
    const at = fill[h >>> shift]!++;
    sortedHi[at] = h;
    sortedLo[at] = L[i]!;
    perm[at] = i;
  }
  await pace();
  for (let b = 0; b < buckets; b++) {
    const start = index[b]!;
    const end = index[b + 1]!;
    for (let i = start + 1; i < end; i++) {
      const h = sortedHi[i]!;
      const l = sortedLo[i]!;
      const p = perm[i]!;
      let j = i - 1;
      while (j >= start) {
        const hj = sortedHi[j]!;
        if (hj < h || (hj === h && sortedLo[j]! <= l)) break;
        sortedHi[j + 1] = hj;
        sortedLo[j + 1] = sortedLo[j]!;
        perm[j + 1] = perm[j]!;
        j--;
      }
      sortedHi[j + 1] = h;
      sortedLo[j + 1] = l;
      perm[j + 1] = p;
    }
    if ((b & 0x3fff) === 0) await pace();
  }
  const sortedAt = performance.now();

  // 3. Drop every name with a listed parent.
  const dropped = new Uint8Array(n);
  const PH = parentHi.a;
  const PL = parentLo.a;
  const PC = parentCount.a;
  for (let i = 0, c = 0; i < n; i++) {
    const k = PC[i]!;
    for (let t = c; t < c + k; t++) {
      if (findSorted(sortedHi, sortedLo, index, shift, PH[t]!, PL[t]!) >= 0) {
        dropped[i] = 1;
        break;
      }
    }
    c += k;
    if ((i & 0x3fff) === 0) await pace();
  }

  const parentsAt = performance.now();

  // 4. Keep the first of each hash, compacted in place.
  const S = src.a;
  const keptSrc = new Uint8Array(n);
  let m = 0;
  for (let i = 0; i < n; i++) {
    const p = perm[i]!;
    if (dropped[p] === 1) continue;
    const h = sortedHi[i]!;
    const l = sortedLo[i]!;
    if (m > 0 && sortedHi[m - 1] === h && sortedLo[m - 1] === l) continue;
    sortedHi[m] = h;
    sortedLo[m] = l;
    keptSrc[m] = S[p]!;
    m++;
  }
  // Exact-size copies: the table's memory is what it reports.
  const table = new HashTable(sortedHi.slice(0, m), sortedLo.slice(0, m), keptSrc.slice(0, m));
  return {
    table,
    sources: inputs.map((i) => i.id),
    counts,
    parsed: n,
    ms: performance.now() - started,
    steps: {
      parseMs: parsedAt - started,
      sortMs: sortedAt - parsedAt,
      parentsMs: parentsAt - sortedAt,
      buildMs: performance.now() - parentsAt,
    },
  };
}
