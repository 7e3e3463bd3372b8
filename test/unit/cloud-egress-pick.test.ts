import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseAddress, parsePrefix, prefixContains } from '../../shared/cidr.ts';
import { nextV4, pickV6 } from '../../cloud/egress/pick.ts';

/** A random source that returns the given 16-byte values in turn. */
function scripted(...values: bigint[]): () => Uint8Array {
  let i = 0;
  return () => {
    const v = values[Math.min(i++, values.length - 1)]!;
    const out = new Uint8Array(16);
    for (let b = 0; b < 16; b++) out[b] = Number((v >> BigInt((15 - b) * 8)) & 0xffn);
    return out;
  };
}

test('random picks stay inside the prefix, whatever the random bits above it', () => {
  const prefix = parsePrefix('2001:db8:203::/64');
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const a = pickV6('2001:db8:203::/64', []);
    assert.ok(prefixContains(prefix, parseAddress(a)), a);
    seen.add(a);
  }
  assert.ok(seen.size > 195, `only ${seen.size} different picks of 200`);
  // All ones above the prefix: the prefix bits win.
  assert.is(pickV6('2001:db8:203::/64', [], scripted((((1n << 64n) - 1n) << 64n) | 0x1234n)), '2001:db8:203::1234');
  assert.is(pickV6('2001:db8:203:5500::/56', [], scripted(((1n << 128n) - 1n) ^ 0xffn)), '2001:db8:203:55ff:ffff:ffff:ffff:ff00');
});

test("avoids the VM's own address and recent picks; never the all-zero, the low or the reserved anycast identifiers", () => {
  const own = '2001:db8:203::1010';
  const recent = '2001:db8:203::1020';
  // 0 (subnet-router anycast), ::1 (where the provider's router usually is), ::ff, the VM,
  // a recent pick, a reserved RFC 2526 one, then a free one.
  const r = scripted(0n, 1n, 0xffn, 0x1010n, 0x1020n, (1n << 64n) - 5n, 0x100n);
  assert.is(pickV6('2001:db8:203::/64', [own, recent, 'not an address'], r), '2001:db8:203::100');
});

test('a random source that never gives a free address ends in an error, not a loop', () => {
  assert.throws(() => pickV6('2001:db8:203::/64', ['2001:db8:203::10'], scripted(0x10n)), /no free address/);
  assert.throws(() => pickV6('203.0.113.0/24', []), /IPv6/);
});

test('IPv4 round robin: the next after the current, wrapping, skipping the current', () => {
  const pool = ['203.0.113.11', '203.0.113.12', '203.0.113.13'];
  assert.is(nextV4(pool, null), '203.0.113.11');
  assert.is(nextV4(pool, '203.0.113.11'), '203.0.113.12');
  assert.is(nextV4(pool, '203.0.113.13'), '203.0.113.11');
  assert.is(nextV4(pool, '198.51.100.1'), '203.0.113.11', 'a current no longer in the pool starts it over');
  assert.is(nextV4(['203.0.113.11'], '203.0.113.11'), '203.0.113.11', 'one address: nothing else to pick');
  assert.is(nextV4([], '203.0.113.11'), null);
});

test.run();
