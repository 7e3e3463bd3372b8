import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  formatAddress,
  formatInterfaceAddress,
  formatPrefix,
  hostPrefix,
  isMappedV4,
  nthAddress,
  normalizeRemoteAddress,
  parseAddress,
  parseInterfaceAddress,
  parsePrefix,
  prefixContains,
  prefixesOverlap,
  prefixSize,
  randomOverlayV4,
  randomUlaV6,
  unmapAddress,
} from '../../shared/cidr.ts';
import { throwsValidation } from './throws-validation.ts';

const roundTrip = (s: string) => formatAddress(parseAddress(s));

test('IPv4 addresses parse to numbers and format back', () => {
  assert.equal(parseAddress('192.0.2.1'), { family: 4, value: 0xc0000201n });
  assert.equal(parseAddress('0.0.0.0'), { family: 4, value: 0n });
  assert.equal(parseAddress('255.255.255.255'), { family: 4, value: 0xffffffffn });
  assert.is(roundTrip('203.0.113.130'), '203.0.113.130');
});

test('malformed IPv4 is refused with the field named', () => {
  for (const bad of [
    '', '1.2.3', '1.2.3.4.5', '256.0.0.1', '1.2.3.-4', '01.2.3.4', '1.2.3.04', '1..3.4', '1.2.3.4 ',
    ' 1.2.3.4', '0x7f.0.0.1', '1e2.0.0.1', '1.2.3.4\n', '１.2.3.4', '1.2.3.1000', '4294967295',
  ]) {
    throwsValidation(() => parseAddress(bad, 'lan'), 'lan', /expected an IPv4 or IPv6 address/);
  }
});

test('IPv6 addresses format canonically (RFC 5952)', () => {
  const cases: [string, string][] = [
    ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // first of equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run wins
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['fe80::1:2', 'fe80::1:2'],
    ['::ffff:192.0.2.1', '::ffff:192.0.2.1'],
    ['::ffff:c000:0201', '::ffff:192.0.2.1'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['ABCD:EF01:2345:6789:ABCD:EF01:2345:6789', 'abcd:ef01:2345:6789:abcd:ef01:2345:6789'],
  ];
  for (const [input, out] of cases) assert.is(roundTrip(input), out, input);
});

test('malformed IPv6 is refused', () => {
  for (const bad of [
    ':', ':::', '1:::2', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', 'g::1', '::1.2.3',
    '::256.1.1.1', '1:2:3:4:5:6:7:1.2.3.4', '1::2:3:4:5:6:7:8', ':1::', '::1:', '[::1]', '2001:db8::/32',
  ]) {
    throwsValidation(() => parseAddress(bad), 'address', /expected an IPv4 or IPv6 address/);
  }
});

test('zones, wrong types and huge input are refused without echoing the input', () => {
  throwsValidation(() => parseAddress('fe80::1%eth0'), 'address', /without a zone/);
  throwsValidation(() => parseAddress(5 as unknown as string), 'address', /got number/);
  throwsValidation(() => parseAddress(null as unknown as string), 'address', /got null/);
  const huge = '1'.repeat(100_000);
  const err = throwsValidation(() => parseAddress(huge), 'address', /100000 characters/);
  assert.ok(err.message.length < 200);
});

test('prefixes parse, format and refuse host bits with the right network', () => {
  assert.equal(parsePrefix('192.0.2.0/24'), { family: 4, network: 0xc0000200n, length: 24 });
  assert.is(formatPrefix(parsePrefix('2001:DB8:0::/32')), '2001:db8::/32');
  assert.is(formatPrefix(parsePrefix('0.0.0.0/0')), '0.0.0.0/0');
  assert.is(formatPrefix(parsePrefix('::/0')), '::/0');
  assert.is(formatPrefix(parsePrefix('192.0.2.1/32')), '192.0.2.1/32');
  throwsValidation(() => parsePrefix('192.0.2.1/24', 'lanPrefixes[0]'), 'lanPrefixes[0]', /host bits set; did you mean 192\.0\.2\.0\/24\?/);
  throwsValidation(() => parsePrefix('2001:db8::1/64'), 'prefix', /did you mean 2001:db8::\/64\?/);
  throwsValidation(() => parsePrefix('10.1.2.3/0'), 'prefix', /did you mean 0\.0\.0\.0\/0/);
});

test('malformed prefixes are refused', () => {
  for (const bad of [
    '192.0.2.0', '192.0.2.0/', '192.0.2.0/33', '2001:db8::/129', '192.0.2.0/024', '192.0.2.0/-1', '192.0.2.0/24/24',
    '/24', '192.0.2.0/ 24', '192.0.2.0/2x', 'fe80::%1/64', 'x/8', '192.0.2.0/1e1',
  ]) {
    throwsValidation(() => parsePrefix(bad), 'prefix', /./);
  }
  throwsValidation(() => parsePrefix('1'.repeat(5000)), 'prefix', /5000 characters/);
});

test('interface addresses keep the host and give the subnet', () => {
  const { address, prefix } = parseInterfaceAddress('203.0.113.130/25');
  assert.is(formatAddress(address), '203.0.113.130');
  assert.is(formatPrefix(prefix), '203.0.113.128/25');
  const six = parseInterfaceAddress('2001:db8:a0::2/64');
  assert.is(formatAddress(six.address), '2001:db8:a0::2');
  assert.is(formatPrefix(six.prefix), '2001:db8:a0::/64');
  assert.is(formatInterfaceAddress(six.address, 64), '2001:db8:a0::2/64');
  throwsValidation(() => parseInterfaceAddress('203.0.113.130', 'addresses[0]'), 'addresses[0]', /no \/length/);
  throwsValidation(() => parseInterfaceAddress('203.0.113.130/40'), 'address', /length above 32/);
});

test('containment and overlap respect family and length', () => {
  const lan = parsePrefix('192.0.2.128/25');
  assert.ok(prefixContains(lan, parseAddress('192.0.2.130')));
  assert.ok(prefixContains(lan, parseAddress('192.0.2.255')));
  assert.not.ok(prefixContains(lan, parseAddress('192.0.2.127')));
  // An IPv4-mapped address is IPv6, not the IPv4 address it maps.
  assert.not.ok(prefixContains(lan, parseAddress('::ffff:192.0.2.130')));
  assert.ok(prefixContains(lan, unmapAddress(parseAddress('::ffff:192.0.2.130'))));
  assert.ok(prefixContains(parsePrefix('0.0.0.0/0'), parseAddress('203.0.113.1')));
  assert.not.ok(prefixContains(parsePrefix('::/0'), parseAddress('203.0.113.1')));

  const overlap = (a: string, b: string) => prefixesOverlap(parsePrefix(a), parsePrefix(b));
  assert.ok(overlap('192.0.2.0/24', '192.0.2.128/25'));
  assert.ok(overlap('192.0.2.128/25', '192.0.2.0/24'));
  assert.ok(overlap('192.0.2.0/24', '192.0.2.0/24'));
  assert.ok(overlap('0.0.0.0/0', '198.51.100.0/24'));
  assert.not.ok(overlap('192.0.2.0/25', '192.0.2.128/25'));
  assert.not.ok(overlap('192.0.2.0/24', '::/0'));
  assert.not.ok(overlap('::ffff:192.0.2.0/120', '192.0.2.0/24'));
  assert.ok(overlap('2001:db8::/32', '2001:db8:1a::/64'));
  assert.not.ok(overlap('2001:db8:1a::/64', '2001:db8:1b::/64'));
});

test('sizes and n-th addresses, with range errors outside the prefix', () => {
  const p = parsePrefix('203.0.113.128/25');
  assert.is(prefixSize(p), 128n);
  assert.is(prefixSize(parsePrefix('::/0')), 1n << 128n);
  assert.is(formatAddress(nthAddress(p, 1)), '203.0.113.129');
  assert.is(formatAddress(nthAddress(p, 127n)), '203.0.113.255');
  assert.is(formatAddress(nthAddress(parsePrefix('2001:db8:a0::/64'), 1)), '2001:db8:a0::1');
  assert.is(formatAddress(nthAddress(parsePrefix('2001:db8:a0::/64'), (1n << 64n) - 1n)), '2001:db8:a0:0:ffff:ffff:ffff:ffff');
  assert.throws(() => nthAddress(p, 128), (e: unknown) => e instanceof RangeError);
  assert.throws(() => nthAddress(p, -1), (e: unknown) => e instanceof RangeError);
  assert.throws(() => nthAddress(p, 1.5), (e: unknown) => e instanceof RangeError);
  assert.throws(() => nthAddress(p, Number.NaN), (e: unknown) => e instanceof RangeError);
  assert.throws(() => nthAddress(parsePrefix('192.0.2.7/32'), 1), (e: unknown) => e instanceof RangeError);
});

test('host prefixes are /32 and /128', () => {
  assert.is(formatPrefix(hostPrefix(parseAddress('192.0.2.7'))), '192.0.2.7/32');
  assert.is(formatPrefix(hostPrefix(parseAddress('2001:db8::7'))), '2001:db8::7/128');
});

test('random overlay prefixes are /22s inside 100.64.0.0/10 and differ', () => {
  const cgnat = parsePrefix('100.64.0.0/10');
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const p = randomOverlayV4();
    assert.is(p.family, 4);
    assert.is(p.length, 22);
    assert.ok(prefixesOverlap(cgnat, p) && prefixContains(cgnat, nthAddress(p, 1023)), formatPrefix(p));
    // It must survive a round trip, i.e. have no host bits.
    assert.equal(parsePrefix(formatPrefix(p)), p);
    seen.add(formatPrefix(p));
  }
  assert.ok(seen.size > 150, `only ${seen.size} distinct prefixes in 200 draws`);
});

test('random ULA prefixes are fd00::/8 /64s with a random global ID (RFC 4193)', () => {
  const fd = parsePrefix('fd00::/8');
  const ids = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const p = randomUlaV6();
    assert.is(p.length, 64);
    assert.ok(prefixContains(fd, nthAddress(p, 0)));
    assert.equal(parsePrefix(formatPrefix(p)), p);
    ids.add(((p.network >> 80n) & 0xffffffffffn).toString(16));
  }
  assert.is(ids.size, 50);
});

test('remote addresses are normalized for identity lookups', () => {
  assert.is(normalizeRemoteAddress('::ffff:203.0.113.130'), '203.0.113.130');
  assert.is(normalizeRemoteAddress('::FFFF:CB00:7182'), '203.0.113.130');
  assert.is(normalizeRemoteAddress('203.0.113.130'), '203.0.113.130');
  assert.is(normalizeRemoteAddress('fe80::1%eth0'), 'fe80::1');
  assert.is(normalizeRemoteAddress('2001:DB8:A0:0:0:0:0:2'), '2001:db8:a0::2');
  // ::1 and IPv4-compatible addresses are not mapped IPv4.
  assert.is(normalizeRemoteAddress('::1'), '::1');
  assert.is(normalizeRemoteAddress('::203.0.113.130'), '::cb00:7182');
  assert.is(normalizeRemoteAddress('not an address'), 'not an address');
  assert.ok(isMappedV4(parseAddress('::ffff:0.0.0.0')));
  assert.not.ok(isMappedV4(parseAddress('::fffe:1.2.3.4')));
});

test.run();
