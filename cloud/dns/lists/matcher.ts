import type { Blocklist } from './blocklist.ts';
import type { CompiledLists } from './compile.ts';
import { finalHi, finalLo, MAX_LABELS, SEED_A, SEED_B, stepA, stepB, textSuffixHashes, wireLabels } from './hash.ts';
import { normalizeDomain } from './names.ts';
import { findHash, type HashTable } from './table.ts';

// The Blocklist the resolver asks: the compiled lists (big, shared between
// Blocklist objects) plus the allowlist and the custom blocks (small, rebuilt
// in microseconds when the owner changes them). Immutable: a change makes a
// new Blocklist, and a query holding the old one finishes with it.
//
// A name is blocked when it or a parent is on a list or in the custom blocks,
// and neither it nor a parent is on the allowlist.

export const CUSTOM_SOURCE = 'custom';

/** Label starts of the name being looked up; one array for all lookups (JS runs one at a time). */
const starts = new Int32Array(MAX_LABELS);
const suffixes = new Uint32Array(2 * MAX_LABELS);

export function createBlocklist(lists: CompiledLists, allow: HashTable, custom: HashTable): Blocklist {
  const listKeys = lists.table.keys;
  const listScale = lists.table.scale;
  const listN = lists.table.size;
  const allowKeys = allow.keys;
  const allowScale = allow.scale;
  const allowN = allow.size;
  const customKeys = custom.keys;
  const customScale = custom.scale;
  const customN = custom.size;

  let customOnly = 0;
  for (let s = 0; 2 * s < customKeys.length; s++) {
    const hi = customKeys[2 * s]!;
    const lo = customKeys[2 * s + 1]!;
    if ((hi | lo) !== 0 && lists.table.find(hi, lo) < 0) customOnly++;
  }

  function isBlocked(buf: Uint8Array, offset: number): boolean {
    const n = wireLabels(buf, offset, starts);
    if (n <= 0) return false;
    let a = SEED_A;
    let b = SEED_B;
    let hit = false;
    for (let k = n - 1; k >= 0; k--) {
      const s = starts[k]!;
      const end = s + 1 + buf[s]!;
      a = stepA(a, buf[s]!);
      b = stepB(b, buf[s]!);
      for (let j = s + 1; j < end; j++) {
        let c = buf[j]!;
        if (c - 0x41 >>> 0 < 26) c |= 0x20;
        a = stepA(a, c);
        b = stepB(b, c);
      }
      const hi = finalHi(a, b);
      const lo = finalLo(hi, b);
      if (allowN !== 0 && findHash(allowKeys, allowScale, hi, lo) >= 0) return false;
      if (hit) continue;
      // No list entry is a single label: the top-level label is only looked up in the custom blocks.
      if (
        (listN !== 0 && k < n - 1 && findHash(listKeys, listScale, hi, lo) >= 0) ||
        (customN !== 0 && findHash(customKeys, customScale, hi, lo) >= 0)
      ) {
        if (allowN === 0) return true;
        hit = true; // unless a longer suffix is allowed
      }
    }
    return hit;
  }

  return {
    isBlocked,
    explain(text) {
      const name = normalizeDomain(text, 'name');
      const bytes = Buffer.from(name, 'latin1');
      const k = textSuffixHashes(bytes, 0, bytes.length, suffixes);
      const labels = name.split('.');
      // Suffix j has j + 1 labels; the broadest match is the one reported.
      const suffix = (j: number) => labels.slice(labels.length - 1 - j).join('.');
      let allowed = -1;
      let customized = -1;
      let listed = -1;
      let listSource = -1;
      for (let j = 0; j < k; j++) {
        const hi = suffixes[2 * j]!;
        const lo = suffixes[2 * j + 1]!;
        if (allowed < 0 && allow.find(hi, lo) >= 0) allowed = j;
        if (customized < 0 && custom.find(hi, lo) >= 0) customized = j;
        if (listed < 0) {
          const at = lists.table.find(hi, lo);
          if (at >= 0) {
            listed = j;
            listSource = lists.table.src[at]!;
          }
        }
      }
      if (allowed >= 0) return { name, blocked: false, reason: 'allowlist', matched: suffix(allowed), list: null };
      if (customized >= 0) return { name, blocked: true, reason: 'custom', matched: suffix(customized), list: CUSTOM_SOURCE };
      if (listed >= 0) return { name, blocked: true, reason: 'blocklist', matched: suffix(listed), list: lists.sources[listSource] ?? null };
      return { name, blocked: false, reason: 'none', matched: null, list: null };
    },
    names: listN + customOnly,
    bytes: lists.table.bytes + allow.bytes + custom.bytes,
  };
}
