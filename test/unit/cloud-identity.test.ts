import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { identifyAddress } from '../../cloud/core/identity.ts';
import { deviceRow } from './device-rows.ts';

const device = deviceRow;
const devices = [
  device('home', 'gateway', 2, ['192.0.2.128/25', '2001:db8:1a::/64']),
  device('phone', 'owner', 3),
  device('guest', 'member', 4),
];

test('an overlay address is its device, in either family', () => {
  assert.equal(identifyAddress(devices, '203.0.113.131'), { name: 'phone', role: 'owner', address: '203.0.113.131' });
  assert.equal(identifyAddress(devices, '2001:db8:a0::4'), { name: 'guest', role: 'member', address: '2001:db8:a0::4' });
  assert.is(identifyAddress(devices, '203.0.113.130')?.role, 'gateway');
});

test('an address in a gateway\'s home prefix is "lan", behind that gateway', () => {
  assert.equal(identifyAddress(devices, '192.0.2.130'), {
    name: 'home',
    role: 'lan',
    address: '192.0.2.130',
    gateway: 'home',
  });
  assert.is(identifyAddress(devices, '2001:db8:1a::130')?.role, 'lan');
});

test('unknown, the VM itself, and text that is no address are nobody', () => {
  for (const a of ['203.0.113.129', '203.0.113.140', '192.0.2.10', '2001:db8:a0::99', '198.51.100.2', '', 'x', '::ffff:zz']) {
    assert.is(identifyAddress(devices, a), null, a);
  }
  assert.is(identifyAddress([], '203.0.113.130'), null);
});

test('a member\'s address does not become "lan" even inside some prefix', () => {
  const odd = [device('m', 'member', 2, ['192.0.2.128/25'])];
  assert.is(identifyAddress(odd, '192.0.2.130'), null, 'only gateways route home prefixes');
});

test.run();
