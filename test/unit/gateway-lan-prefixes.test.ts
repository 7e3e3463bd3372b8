import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRecordingRunner } from '../../shared/run.ts';
import { parseLanPrefixes, readLanPrefixes } from '../../gateway/lan-prefixes.ts';
import { defaultName } from '../../gateway/pair.ts';

// `ip -j addr show dev lan0` from iproute2 6.1, with a secondary and a link-local address.
const LAN0 = JSON.stringify([
  {
    ifindex: 3,
    ifname: 'lan0',
    addr_info: [
      { family: 'inet', local: '192.0.2.129', prefixlen: 25, scope: 'global' },
      { family: 'inet', local: '192.0.2.130', prefixlen: 25, scope: 'global', secondary: true },
      { family: 'inet6', local: '2001:db8:1a::1', prefixlen: 64, scope: 'global' },
      { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' },
    ],
  },
]);

test('the network of each global address, IPv4 and IPv6, once each', () => {
  assert.equal(parseLanPrefixes(LAN0, 'lan0'), [
    { prefix: '192.0.2.128/25', interface: 'lan0' },
    { prefix: '2001:db8:1a::/64', interface: 'lan0' },
  ]);
});

test('a missing interface or one without addresses is a clear error', async () => {
  const { run, calls } = createRecordingRunner({
    'ip -j addr show dev lan0': { stdout: LAN0 },
    'ip -j addr show dev br-lan': { code: 1, stderr: 'Device "br-lan" does not exist.\n' },
    'ip -j addr show dev empty0': { stdout: '[{"ifname":"empty0","addr_info":[]}]' },
  });
  assert.equal(await readLanPrefixes(run, ['lan0']), parseLanPrefixes(LAN0, 'lan0'));
  try {
    await readLanPrefixes(run, ['br-lan']);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /LAN interface br-lan: Device "br-lan" does not exist\.; name the LAN interfaces with --lan-interface/);
  }
  try {
    await readLanPrefixes(run, ['empty0']);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /empty0 has no global IPv4 or IPv6 address/);
  }
  const before = calls.length;
  try {
    await readLanPrefixes(run, ['lan0;reboot']);
    assert.unreachable();
  } catch (e) {
    assert.match((e as Error).message, /--lan-interface: interface name "lan0;reboot" may hold only/);
  }
  assert.is(calls.length, before, 'a bad name never reaches a command');
});

test('default device name from the host name', () => {
  assert.is(defaultName('OpenWrt'), 'openwrt');
  assert.is(defaultName('My_Router.lan'), 'my-router');
  assert.is(defaultName('---'), 'router');
  assert.is(defaultName('x'.repeat(40)), 'x'.repeat(32));
});

test.run();
