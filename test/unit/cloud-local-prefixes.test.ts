import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRecordingRunner } from '../../shared/run.ts';
import { readLocalPrefixes } from '../../cloud/system/local-prefixes.ts';

const addr = (local: string, prefixlen: number, family = local.includes(':') ? 'inet6' : 'inet') => ({ family, local, prefixlen, scope: 'global' });

// `ip -j addr show` of a cloud VM behind 1:1 NAT, with the hub up and a container bridge.
const IP_ADDR = JSON.stringify([
  { ifindex: 1, ifname: 'lo', flags: ['LOOPBACK', 'UP', 'LOWER_UP'], link_type: 'loopback', addr_info: [addr('127.0.0.1', 8), addr('::1', 128)] },
  { ifindex: 2, ifname: 'eth0', flags: ['BROADCAST', 'UP'], link_type: 'ether', addr_info: [addr('198.51.100.5', 25), addr('2001:db8:203::10', 64), addr('2001:db8:203::11', 64)] },
  { ifindex: 3, ifname: 'docker0', flags: ['BROADCAST', 'UP'], link_type: 'ether', addr_info: [addr('192.0.2.1', 26)] },
  { ifindex: 4, ifname: 'eth1', flags: ['BROADCAST'], link_type: 'ether', addr_info: [] },
  { ifindex: 5, ifname: 'aerie0', flags: ['POINTOPOINT', 'UP'], link_type: 'none', addr_info: [addr('203.0.113.129', 25), addr('2001:db8:a0::1', 64)] },
]);

test('the networks of the VM\'s own addresses, without loopback and the hub', async () => {
  const { run, calls } = createRecordingRunner({ 'ip -j addr show': { stdout: IP_ADDR } });
  assert.equal(await readLocalPrefixes(run, ['aerie0']), ['198.51.100.0/25', '2001:db8:203::/64', '192.0.2.0/26']);
  assert.equal(calls.map((c) => c.argv), [['ip', '-j', 'addr', 'show']]);
});

test('without exclusions the hub\'s networks are listed too; no output is no networks', async () => {
  const { run } = createRecordingRunner({ 'ip -j addr show': { stdout: IP_ADDR } });
  assert.ok((await readLocalPrefixes(run)).includes('203.0.113.128/25'));
  assert.equal(await readLocalPrefixes(createRecordingRunner().run), []);
});

test('output that is not JSON is an error, not an empty list', async () => {
  const { run } = createRecordingRunner({ 'ip -j addr show': { stdout: '1: lo: <LOOPBACK,UP>' } });
  try {
    await readLocalPrefixes(run);
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.match((err as Error).message, /did not print JSON/);
  }
});

test.run();
