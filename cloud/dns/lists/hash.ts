// 64-bit hashes of domain names, as two 32-bit halves (hi, lo), computed the
// same way from a text name ("ads.example.com") and from a wire name
// (RFC 1035 §3.1: 3ads7example3com0), ASCII case-insensitively.
//
// The labels are fed from the right, each as its length and then its bytes,
// so the hash of every parent ("com", "example.com", …) is an intermediate
// state on the way to the hash of the whole name: a lookup walks the suffixes
// of a name in one pass, with no copies.
//
// Two lanes, each bijective in the next byte (xor or add, multiply by an odd
// constant, xorshift), with different constants, then a bijective finish that
// mixes both. Collisions are made negligible by the width: with n = 1,000,000
// stored names, a name that is not stored matches one of them with a
// probability of about n / 2^64 ≈ 5e-14 per probed suffix; at a few probes a
// query, a billion queries give about one chance in ten thousand of a single
// wrongly blocked answer. Two stored names share a hash with a probability of
// about n² / 2^65 ≈ 3e-8 (then only which list is named could be wrong: both
// are blocked anyway).

export const SEED_A = 0x2f1d3c5b;
export const SEED_B = 0x61c88647;

export function stepA(a: number, c: number): number {
  a = Math.imul(a ^ c, 0x01000193);
  return a ^ (a >>> 15);
}

export function stepB(b: number, c: number): number {
  b = Math.imul((b + c) | 0, 0x5bd1e995);
  return b ^ (b >>> 13);
}

/** The high half of the hash of what was fed so far (unsigned). */
export function finalHi(a: number, b: number): number {
  let h = a ^ Math.imul(b ^ (b >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The low half, given the high half: (a, b) → (hi, lo) is a bijection. */
export function finalLo(hi: number, b: number): number {
  let h = b ^ Math.imul(hi ^ (hi >>> 15), 0x2c1b3c6d);
  h = Math.imul(h ^ (h >>> 16), 0x297a2d39);
  h = Math.imul(h ^ (h >>> 15), 0x9e3779b1);
  return (h ^ (h >>> 16)) >>> 0;
}

/** ASCII A-Z → a-z; every other byte as it is (RFC 4343). */
export function lower(c: number): number {
  return c - 0x41 >>> 0 < 26 ? c | 0x20 : c;
}

const DOT = 0x2e;

/**
 * Hashes of every suffix of the text name in b[start, end) (no trailing dot,
 * no empty label: checked by the caller), from the top-level label down:
 * out[2j], out[2j + 1] = hi, lo of the suffix with j + 1 labels. Returns the
 * number of labels; `out` must hold 2 × that many (128 labels at most fit in
 * 253 characters).
 */
export function textSuffixHashes(b: Uint8Array, start: number, end: number, out: Uint32Array): number {
  let a = SEED_A;
  let h = SEED_B;
  let k = 0;
  let labelEnd = end;
  for (let i = end - 1; i >= start - 1; i--) {
    if (i >= start && b[i] !== DOT) continue;
    const s = i + 1;
    const len = labelEnd - s;
    a = stepA(a, len);
    h = stepB(h, len);
    for (let j = s; j < labelEnd; j++) {
      const c = lower(b[j]!);
      a = stepA(a, c);
      h = stepB(h, c);
    }
    const hi = finalHi(a, h);
    out[2 * k] = hi;
    out[2 * k + 1] = finalLo(hi, h);
    k++;
    labelEnd = i;
  }
  return k;
}

/** Longest wire name: 255 octets (RFC 1035 §2.3.4), so at most 127 labels. */
export const MAX_WIRE = 255;
export const MAX_LABELS = 127;

/**
 * Records where each label of the wire name at buf[offset] starts, in
 * `starts`; returns the number of labels, or -1 when the name is not a plain
 * uncompressed name inside buf (a compression pointer, a reserved label type,
 * over 255 octets, or cut short).
 */
export function wireLabels(buf: Uint8Array, offset: number, starts: Int32Array): number {
  let p = offset;
  let n = 0;
  const size = buf.length;
  for (;;) {
    if (p >= size) return -1;
    const len = buf[p]!;
    if (len === 0) return n;
    if (len > 63 || n === MAX_LABELS) return -1;
    starts[n++] = p;
    p += len + 1;
    if (p - offset >= MAX_WIRE) return -1;
  }
}

/** Like textSuffixHashes, for the wire name at buf[offset]; -1 if it is not one (see wireLabels). */
export function wireSuffixHashes(buf: Uint8Array, offset: number, out: Uint32Array): number {
  const starts = new Int32Array(MAX_LABELS);
  const n = wireLabels(buf, offset, starts);
  if (n < 0) return -1;
  let a = SEED_A;
  let h = SEED_B;
  for (let k = 0; k < n; k++) {
    const s = starts[n - 1 - k]!;
    const len = buf[s]!;
    a = stepA(a, len);
    h = stepB(h, len);
    for (let j = s + 1; j <= s + len; j++) {
      const c = lower(buf[j]!);
      a = stepA(a, c);
      h = stepB(h, c);
    }
    const hi = finalHi(a, h);
    out[2 * k] = hi;
    out[2 * k + 1] = finalLo(hi, h);
  }
  return n;
}
