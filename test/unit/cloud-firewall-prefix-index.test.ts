// The firewall's prefix index against the obvious pairwise answers, on
// random prefixes of both families (a fixed seed, a bounded count).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { comparePrefixes, DisjointPrefixes, outermostPrefixes } from '../../cloud/firewall/prefix-index.ts';
import { formatPrefix, parseAddress, prefixesOverlap, type Prefix } from '../../shared/cidr.ts';

/** A small xorshift generator: the same prefixes on every run. */
function random(seed: number) {
  let x = seed;
  return (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

/** Prefixes crowded into 198.51.100.0/24 and 2001:db8::/120, so that many nest or repeat. */
function prefixes(count: number, seed: number): Prefix[] {
  const r = random(seed);
  return Array.from({ length: count }, () => {
    const v6 = r(2) === 1;
    const length = (v6 ? 120 : 24) + r(9);
    const text = v6 ? `2001:db8::${r(256).toString(16)}/${length}` : `198.51.100.${r(256)}/${length}`;
    const a = parseAddress(text.replace(/\/\d+$/, ''));
    const host = BigInt((v6 ? 128 : 32) - length);
    return { family: a.family, network: (a.value >> host) << host, length };
  });
}

const text = (list: Prefix[]) => list.map(formatPrefix);

test('outermost prefixes: the same as dropping every prefix another one holds, pairwise', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const input = prefixes(60, seed);
    const expected = input
      .filter((p, i) => !input.some((q, j) => j !== i && prefixesOverlap(p, q) && (q.length < p.length || (q.length === p.length && j < i))))
      .sort(comparePrefixes);
    assert.equal(text(outermostPrefixes(input)), text(expected), `seed ${seed}`);
  }
  assert.equal(outermostPrefixes([]), []);
});

test('disjoint prefixes: find answers as a pairwise search does; what overlaps is never added', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const index = new DisjointPrefixes<number>();
    const added: { p: Prefix; i: number }[] = [];
    prefixes(80, seed).forEach((p, i) => {
      const pairwise = added.find((a) => prefixesOverlap(a.p, p));
      const found = index.find(p);
      assert.is(found === undefined, pairwise === undefined, `seed ${seed}, ${formatPrefix(p)}`);
      // Disjoint entries: at most one can overlap a prefix that is not larger than them all, but any answer must overlap.
      if (found !== undefined) assert.ok(prefixesOverlap(added.find((a) => a.i === found)!.p, p));
      else {
        index.add(p, i);
        added.push({ p, i });
      }
    });
    assert.ok(added.length > 5, `seed ${seed}: some were added`);
  }
});

test.run();
