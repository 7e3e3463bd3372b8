import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePrefix } from '../../shared/cidr.ts';
import { CoreError } from '../../cloud/core/errors.ts';
import { checkLanPrefixes } from '../../cloud/core/lan-prefixes.ts';

const ctx = {
  overlay: { v4: parsePrefix('203.0.113.128/25'), v6: parsePrefix('2001:db8:a0::/64') },
  gateways: [{ name: 'home', lanPrefixes: ['192.0.2.128/25', '2001:db8:1a::/64'] }],
  publicHost: '203.0.113.10',
};

const conflict = (fn: () => void, pattern: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof CoreError && e.code === 'conflict' && pattern.test(e.message));

test('prefixes clear of the overlay, the VM and other gateways pass', () => {
  checkLanPrefixes(['198.51.100.128/25', '2001:db8:1b::/64'], ctx);
  checkLanPrefixes([], ctx);
});

test('a prefix overlapping the overlay is refused, naming the field and the overlay', () => {
  conflict(() => checkLanPrefixes(['10.0.0.0/8', '203.0.113.0/24'], ctx), /^lanPrefixes\[1\]: .*overlay network 203\.0\.113\.128\/25/);
  conflict(() => checkLanPrefixes(['2001:db8:a0::/48'], ctx), /overlay network 2001:db8:a0::\/64/);
});

test('a prefix overlapping another gateway\'s home is refused, naming the gateway', () => {
  conflict(() => checkLanPrefixes(['192.0.2.0/24'], ctx), /192\.0\.2\.128\/25, a home prefix of gateway "home"/);
  conflict(() => checkLanPrefixes(['192.0.2.192/26'], ctx), /gateway "home"/);
  conflict(() => checkLanPrefixes(['2001:db8:1a::/64'], ctx), /gateway "home"/);
});

test('a prefix holding the VM\'s own public address is refused', () => {
  conflict(() => checkLanPrefixes(['203.0.113.0/25'], ctx), /VM's public address/);
  checkLanPrefixes(['203.0.113.0/25'], { ...ctx, publicHost: 'vm.example.org' }); // a name cannot be checked
});

test('a prefix overlapping one of the VM\'s own networks is refused, naming both', () => {
  const local = { ...ctx, localPrefixes: ['10.0.0.0/24', '2001:db8:203::/64'] };
  conflict(() => checkLanPrefixes(['10.0.0.0/24'], local), /^lanPrefixes\[0\]: 10\.0\.0\.0\/24 overlaps the VM's own network 10\.0\.0\.0\/24/);
  conflict(() => checkLanPrefixes(['198.51.100.0/24', '10.0.0.128/25'], local), /^lanPrefixes\[1\]: .*own network 10\.0\.0\.0\/24/);
  conflict(() => checkLanPrefixes(['2001:db8:200::/40'], local), /own network 2001:db8:203::\/64/);
  checkLanPrefixes(['10.0.1.0/24', '2001:db8:204::/64'], local); // neighbours are fine
  checkLanPrefixes(['10.0.0.0/24'], ctx); // without the VM's networks nothing to compare
});

test.run();
