import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePrefix } from '../../shared/cidr.ts';
import {
  addressesAt,
  allocateIndex,
  homePrefixes,
  homeV6At,
  interfaceAddressesAt,
  maxHostIndex,
  overlayPrefixes,
  peerAllowedIps,
  vmAddresses,
} from '../../cloud/core/addressing.ts';

const lab = { v4: parsePrefix('203.0.113.128/25'), v6: parsePrefix('2001:db8:a0::/64') };

test('the VM is the first address of both prefixes', () => {
  assert.equal(vmAddresses(lab), ['203.0.113.129', '2001:db8:a0::1']);
  assert.equal(overlayPrefixes(lab), ['203.0.113.128/25', '2001:db8:a0::/64']);
});

test('devices get the lowest free index, the same in both families', () => {
  assert.is(allocateIndex([], 126), 2);
  assert.is(allocateIndex([2, 3, 4], 126), 5);
  assert.is(allocateIndex([2, 4], 126), 3, 'a removed device frees its index');
  assert.equal(addressesAt(lab, 3), { v4: '203.0.113.131', v6: '2001:db8:a0::3' });
  assert.equal(interfaceAddressesAt(lab, 2), ['203.0.113.130/25', '2001:db8:a0::2/64']);
});

test('the IPv4 broadcast address is never handed out and a full overlay says so', () => {
  assert.is(maxHostIndex(lab), 126);
  const all = Array.from({ length: 125 }, (_, i) => i + 2);
  assert.is(allocateIndex(all, 126), null);
  assert.is(allocateIndex(all.slice(0, -1), 126), 126);
  assert.is(addressesAt(lab, 126).v4, '203.0.113.254');
  const tiny = { v4: parsePrefix('192.0.2.0/30'), v6: parsePrefix('2001:db8::/126') };
  assert.is(maxHostIndex(tiny), 2, 'a /30 holds the VM and one device');
  assert.is(maxHostIndex({ v4: parsePrefix('100.64.0.0/22'), v6: parsePrefix('fd00:1::/64') }), 1022);
  assert.is(maxHostIndex({ v4: parsePrefix('100.64.0.0/22'), v6: parsePrefix('fd00:1::/120') }), 255, 'the smaller prefix limits both');
});

test('a peer is allowed its host addresses and, for a gateway, its home prefixes', () => {
  const gw = { addressV4: '203.0.113.130', addressV6: '2001:db8:a0::2', lanPrefixes: ['192.0.2.128/25', '2001:db8:1a::/64'] };
  assert.equal(peerAllowedIps(gw), ['203.0.113.130/32', '2001:db8:a0::2/128', '192.0.2.128/25', '2001:db8:1a::/64']);
  assert.equal(homePrefixes([gw, { lanPrefixes: [] }, { lanPrefixes: ['198.51.100.128/25'] }]), [
    '192.0.2.128/25',
    '2001:db8:1a::/64',
    '198.51.100.128/25',
  ]);
});

test('each router\'s home IPv6 /64 sits beside the overlay in its /48, never the overlay itself', () => {
  assert.is(homeV6At(lab, 2), '2001:db8:a0:2::/64');
  assert.is(homeV6At(lab, 126), '2001:db8:a0:7e::/64');
  // A ULA overlay whose subnet ID is not zero: the IDs move on from it, wrapping within the /48.
  const ula = { v4: lab.v4, v6: parsePrefix('fd12:3456:789a:fffe::/64') };
  assert.is(homeV6At(ula, 1), 'fd12:3456:789a:ffff::/64');
  assert.is(homeV6At(ula, 2), 'fd12:3456:789a::/64');
  assert.is(homeV6At({ v4: lab.v4, v6: parsePrefix('2001:db8:a0::/56') }, 2), null, 'only a /64 overlay');
  // From a prefix the provider routes to the VM: the index-th /64 of it.
  const routed = parsePrefix('2001:db8:b00::/56');
  assert.is(homeV6At(lab, 2, routed), '2001:db8:b00:2::/64');
  assert.is(homeV6At(lab, 255, routed), '2001:db8:b00:ff::/64');
  assert.is(homeV6At(lab, 256, routed), null, 'a /56 has 256 of them');
});

test.run();
