// Which isolated devices share a LAN network with others (gateway/platform/isolation.ts):
// the router says so, since those reach each other without passing its firewall.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isolatedSharingNetworks } from '../../gateway/platform/isolation.ts';

const lan = [
  { prefix: '192.0.2.128/25', interface: 'br-lan' },
  { prefix: '2001:db8:1a::/64', interface: 'br-lan' },
  { prefix: '198.51.100.128/26', interface: 'br-iot' },
  { prefix: '2001:db8:1c::/64', interface: 'br-iot' },
];

test('a device among others is said to share its network; a whole isolated network is not', () => {
  assert.equal(isolatedSharingNetworks(['192.0.2.140', '2001:db8:1a::140'], lan), [
    { address: '192.0.2.140', interface: 'br-lan', network: '192.0.2.128/25' },
    { address: '2001:db8:1a::140', interface: 'br-lan', network: '2001:db8:1a::/64' },
  ]);
  assert.equal(isolatedSharingNetworks(['198.51.100.128/26', '2001:db8:1c::/64'], lan), [], 'the IoT network whole');
  assert.equal(isolatedSharingNetworks(['198.51.100.128/26', '198.51.100.140'], lan), [], 'a device inside an isolated network');
  assert.equal(isolatedSharingNetworks(['192.0.2.144/28'], lan), [{ address: '192.0.2.144/28', interface: 'br-lan', network: '192.0.2.128/25' }]);
});

test('entries outside every LAN prefix, or that do not read, say nothing', () => {
  assert.equal(isolatedSharingNetworks(['203.0.113.7', 'not an address', '192.0.2.0/33'], lan), []);
  assert.equal(isolatedSharingNetworks(['192.0.2.140'], [{ prefix: 'bad', interface: 'br-lan' }]), []);
  assert.equal(isolatedSharingNetworks([], lan), []);
});

test.run();
