import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPair } from '../../shared/keys.ts';
import { parseConfig } from '../../gateway/config.ts';
import { buildDesired } from '../../gateway/desired.ts';
import { sampleConfig } from './gateway-fixtures.ts';

const privateKey = generateKeyPair().privateKey;

test('one desired state from config and runtime facts', () => {
  const config = parseConfig({ ...sampleConfig(), lanInterfaces: ['lan0', 'guest'] });
  const d = buildDesired(config, { privateKey, endpoint: '203.0.113.10:51820', generation: 3, isolated: ['192.0.2.140'] })!;
  assert.equal(d, {
    interface: 'aerie',
    privateKey,
    addresses: ['203.0.113.130/25', '2001:db8:a0::2/64'],
    mtu: 1420,
    peer: {
      publicKey: config.vm.publicKey,
      endpoint: '203.0.113.10:51820',
      allowedIps: ['0.0.0.0/0', '::/0'],
      keepalive: 25,
      generation: 3,
    },
    overlay: ['203.0.113.128/25', '2001:db8:a0::/64'],
    lan: [
      { interface: 'lan0', prefixes: ['192.0.2.128/25', '2001:db8:1a::/64'] },
      // A LAN interface without a prefix of its own is still policy-routed and guarded.
      { interface: 'guest', prefixes: [] },
    ],
    table: 7375,
    rulePriority: 7375,
    killSwitch: true,
    // What the VM's owner isolated in this home, fenced in here too.
    isolated: ['192.0.2.140'],
    // The VM's resolver is on its overlay addresses, like its API.
    dns: { intercept: true, servers: ['203.0.113.129', '2001:db8:a0::1'], resolvFile: null },
    homeV6: null,
  });
});

test('the VM\'s IPv6 /64 for the home goes on the first LAN interface and is policy-routed from there', () => {
  const base = sampleConfig() as { vm: Record<string, unknown> };
  const config = parseConfig({ ...base, lanInterfaces: ['lan0', 'guest'], vm: { ...base.vm, homeV6: '2001:db8:a0:2::/64' } });
  const d = buildDesired(config, { privateKey, endpoint: null, generation: 0 })!;
  assert.equal(d.homeV6, { interface: 'lan0', prefix: '2001:db8:a0:2::/64' });
  assert.equal(d.lan, [
    { interface: 'lan0', prefixes: ['192.0.2.128/25', '2001:db8:1a::/64', '2001:db8:a0:2::/64'] },
    { interface: 'guest', prefixes: [] },
  ]);
  assert.throws(() => parseConfig({ ...base, vm: { ...base.vm, homeV6: 'not a prefix' } }), /homeV6/);
});

test('switches and routing settings flow through', () => {
  const config = parseConfig({ ...sampleConfig(), killSwitch: false, mtu: 1380, routing: { table: 42, priority: 99 } });
  const d = buildDesired(config, { privateKey, endpoint: null, generation: 0 })!;
  assert.is(d.killSwitch, false);
  assert.is(d.mtu, 1380);
  assert.is(d.table, 42);
  assert.is(d.rulePriority, 99);
  assert.is(d.peer.endpoint, null);
  const dns = buildDesired(parseConfig({ ...sampleConfig(), dnsIntercept: false, dnsResolvFile: '/tmp/resolv.conf.d/aerie' }), {
    privateKey,
    endpoint: null,
    generation: 0,
  })!.dns;
  assert.equal(dns, { intercept: false, servers: ['203.0.113.129', '2001:db8:a0::1'], resolvFile: '/tmp/resolv.conf.d/aerie' });
});

test('disabled means nothing of ours should exist', () => {
  const config = parseConfig({ ...sampleConfig(), enabled: false });
  assert.is(buildDesired(config, { privateKey, endpoint: null, generation: 0 }), null);
});

test.run();
