import { familyBits, type Family, type Prefix } from '../../shared/cidr.ts';

// Overlap questions over thousands of prefixes in O(n log n): a VM with a
// thousand devices must not compare every address with every other on each
// render (that was most of a 90 ms render).

const lastAddress = (p: Prefix) => p.network + (1n << BigInt(familyBits(p.family) - p.length)) - 1n;

/** Orders by family, then network, then the shorter (larger) prefix first. */
export function comparePrefixes(a: Prefix, b: Prefix): number {
  if (a.family !== b.family) return a.family - b.family;
  if (a.network !== b.network) return a.network < b.network ? -1 : 1;
  return a.length - b.length;
}

/**
 * The prefixes no other one holds, each once, sorted (nft refuses
 * overlapping intervals in one set). Two prefixes either nest or are
 * disjoint, so after sorting a prefix is held by another exactly when it
 * lies inside the last one kept.
 */
export function outermostPrefixes(prefixes: readonly Prefix[]): Prefix[] {
  const sorted = [...prefixes].sort(comparePrefixes);
  const kept: Prefix[] = [];
  for (const p of sorted) {
    const last = kept.at(-1);
    if (last && last.family === p.family && p.network <= lastAddress(last)) continue;
    kept.push(p);
  }
  return kept;
}

/**
 * Prefixes that do not overlap each other, each with a value (its owner),
 * sorted by network per family. Since they are disjoint, the only one that
 * can overlap a new prefix is the last that starts at or before its end.
 */
export class DisjointPrefixes<T> {
  private readonly byFamily: Record<Family, { p: Prefix; end: bigint; value: T }[]> = { 4: [], 6: [] };

  /** Index of the last entry whose network is <= `at`, or -1. */
  private lastAtOrBefore(family: Family, at: bigint): number {
    const list = this.byFamily[family];
    let lo = 0;
    let hi = list.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid]!.p.network <= at) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /** The value of an entry that overlaps `p`, or undefined. */
  find(p: Prefix): T | undefined {
    const i = this.lastAtOrBefore(p.family, lastAddress(p));
    const e = i < 0 ? undefined : this.byFamily[p.family][i];
    return e && e.end >= p.network ? e.value : undefined;
  }

  /** Adds `p`; the caller has made sure that find(p) is undefined. */
  add(p: Prefix, value: T): void {
    const i = this.lastAtOrBefore(p.family, p.network);
    this.byFamily[p.family].splice(i + 1, 0, { p, end: lastAddress(p), value });
  }
}
