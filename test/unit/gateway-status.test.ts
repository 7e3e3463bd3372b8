import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseConfig } from '../../gateway/config.ts';
import type { Platform, TunnelState } from '../../gateway/platform/platform.ts';
import { formatStatus, readStatus } from '../../gateway/status.ts';
import { sampleConfig } from './gateway-fixtures.ts';

const config = parseConfig(sampleConfig());
const now = 1_700_000_000_000;

function platform(state: TunnelState): Platform {
  return { name: 'fake', set: async () => {}, show: async () => state };
}

const live: TunnelState = {
  present: true,
  up: true,
  killSwitch: true,
  dnsIntercept: true,
  peers: [{ publicKey: config.vm.publicKey, endpoint: '203.0.113.10:51820', latestHandshake: now / 1000 - 42, rxBytes: 123456, txBytes: 789 }],
};

test('up: handshake, bytes and the VM\'s view of us', async () => {
  const asked: string[] = [];
  const s = await readStatus({
    configPath: '/etc/aerie/gateway.json',
    config,
    platform: platform(live),
    now: () => now,
    get: async (address, path) => {
      asked.push(`${address}${path}`);
      return { status: 200, body: { name: 'home', role: 'gateway', address: '203.0.113.130' } };
    },
  });
  assert.equal(asked, ['203.0.113.129/v1/whoami']);
  assert.is(s.tunnel, 'up');
  assert.is(s.handshakeAgeSeconds, 42);
  assert.is(s.rxBytes, 123456);
  assert.equal(s.whoami, { name: 'home', role: 'gateway', address: '203.0.113.130' });
  const text = formatStatus(s);
  assert.match(text, /^name: +home$/m);
  assert.match(text, /^tunnel: +up \(interface aerie\)$/m);
  assert.match(text, /^kill switch: +on$/m);
  assert.is(s.killSwitchActive, true);
  assert.match(text, /^handshake: +42 s ago$/m);
  assert.match(text, /^transfer: +120\.6 KiB received, 789 B sent$/m);
  assert.match(text, /^vm sees us as: +home \(gateway\) at 203\.0\.113\.130$/m);
  assert.is(s.dnsInterceptActive, true);
  assert.equal(s.dnsServers, ['203.0.113.129', '2001:db8:a0::1']);
  assert.match(text, /^dns: +intercepted: the LAN's DNS goes to this router's resolver, DNS over TLS\/QUIC refused$/m);
  assert.match(text, /^vm resolver: +203\.0\.113\.129, 2001:db8:a0::1 port 53, through the tunnel$/m);
  assert.match(text, /^vm settings: +not known yet/m);
});

test('the VM-side settings as the daemon last copied them', async () => {
  const view = {
    settings: { blocking: true, blockMode: 'nxdomain', upstreams: ['udp:127.0.0.1'], egress: { v4: '203.0.113.11', v6: '2001:db8:203::77' } },
    devices: [{ name: 'home', role: 'gateway', addresses: [] }, { name: 'phone', role: 'owner', addresses: [] }],
    firewall: { isolated: ['198.51.100.140'] },
    syncedAt: Date.UTC(2026, 10, 27, 12, 0, 5),
  };
  const s = await readStatus({ configPath: 'x', config, platform: platform(live), now: () => now, view });
  assert.equal(s.vm, view);
  assert.match(formatStatus(s), /^vm settings: +ad blocking on \(blocked names answered NXDOMAIN\); 2 devices; fetched at 2026-11-27T12:00:05Z$/m);
  assert.match(formatStatus(s), /^websites see: +203\.0\.113\.11, 2001:db8:203::77 \(temporary addresses of the VM\)$/m);
  assert.match(formatStatus(s), /^isolated: +198\.51\.100\.140: reach DNS and MQTT on the VM, and on this router only DNS, DHCP and time$/m);
  // One device among others on the LAN: the status says they reach it there.
  const among = { ...view, firewall: { isolated: ['192.0.2.140'] } };
  const shared = formatStatus(await readStatus({ configPath: 'x', config, platform: platform(live), now: () => now, view: among }));
  assert.match(shared, /^isolated: +192\.0\.2\.140: reach DNS and MQTT on the VM, and on this router only DNS, DHCP and time; isolated 192\.0\.2\.140 is on lan0 \(192\.0\.2\.128\/25\), where other devices reach it without passing a firewall: isolate that whole network or give it one of its own$/m);
  assert.match(formatStatus(await readStatus({ configPath: 'x', config, platform: platform(live), now: () => now, view: { ...view, firewall: null } })), /vm settings/);
  assert.not.match(formatStatus(await readStatus({ configPath: 'x', config, platform: platform(live), now: () => now, view: { ...view, firewall: null } })), /^isolated:/m);
  const off = { ...view, settings: { ...view.settings, blocking: false, egress: null } };
  assert.match(formatStatus(await readStatus({ configPath: 'x', config, platform: platform(live), now: () => now, view: off })), /^vm settings: +ad blocking off; 2 devices/m);
  assert.match(formatStatus(await readStatus({ configPath: 'x', config, platform: platform(live), now: () => now, view: off })), /^websites see: +the VM's own address 203\.0\.113\.10$/m);
});

test('DNS: read from the kernel, compared with the config; the resolv file named', async () => {
  const get = async () => ({ status: 200, body: { name: 'home', role: 'gateway', address: '203.0.113.130' } });
  const withFile = parseConfig({ ...sampleConfig(), dnsResolvFile: '/tmp/resolv.conf.d/aerie' });
  const notLoaded = await readStatus({ configPath: 'x', config: withFile, platform: platform({ ...live, dnsIntercept: false }), get, now: () => now });
  assert.is(notLoaded.dnsIntercept, true);
  assert.is(notLoaded.dnsInterceptActive, false);
  assert.is(notLoaded.dnsResolvFile, '/tmp/resolv.conf.d/aerie');
  const text = formatStatus(notLoaded);
  assert.match(text, /^dns: +configured on, but not in the kernel/m);
  assert.match(text, /^vm resolver: +203\.0\.113\.129, 2001:db8:a0::1 port 53, through the tunnel; written to \/tmp\/resolv\.conf\.d\/aerie$/m);
  const off = parseConfig({ ...sampleConfig(), dnsIntercept: false });
  assert.match(formatStatus(await readStatus({ configPath: 'x', config: off, platform: platform({ ...live, dnsIntercept: false }), get, now: () => now })), /^dns: +not intercepted \(dnsIntercept is off\)$/m);
  assert.match(formatStatus(await readStatus({ configPath: 'x', config: off, platform: platform(live), get, now: () => now })), /^dns: +intercepted.*\(still in the kernel, though the config turns it off\)$/m);
});

test('connecting: interface there, no handshake; whoami error shown, next API address tried', async () => {
  const asked: string[] = [];
  const s = await readStatus({
    configPath: 'x',
    config,
    platform: platform({ ...live, peers: [{ ...live.peers[0]!, latestHandshake: 0 }] }),
    now: () => now,
    get: async (address) => {
      asked.push(address);
      throw new Error(`no answer from ${address} within 3000 ms`);
    },
  });
  assert.equal(asked, ['203.0.113.129', '2001:db8:a0::1']);
  assert.is(s.tunnel, 'connecting');
  assert.is(s.handshakeAgeSeconds, null);
  assert.match(formatStatus(s), /handshake: +never/);
  assert.match(formatStatus(s), /vm sees us as: +unknown \(no answer from 2001:db8:a0::1 within 3000 ms\)/);
});

test('a malformed whoami answer is not shown as fact', async () => {
  const s = await readStatus({
    configPath: 'x',
    config,
    platform: platform(live),
    now: () => now,
    get: async () => ({ status: 200, body: { name: 'home', role: 'king', address: 'x' } }),
  });
  assert.is(s.whoami, null);
  assert.match(s.whoamiError!, /role/);
});

test('down, disabled, unpaired', async () => {
  const get = async () => ({ status: 200, body: null });
  const down = await readStatus({ configPath: 'x', config, platform: platform({ present: false, up: false, peers: [], killSwitch: true, dnsIntercept: true }), get });
  assert.is(down.tunnel, 'down');
  assert.match(formatStatus(down), /kill switch: +on$/m, 'the daemon is not running, the kill switch still holds');
  const none = await readStatus({ configPath: 'x', config, platform: platform({ present: false, up: false, peers: [], killSwitch: false, dnsIntercept: false }), get });
  assert.match(formatStatus(none), /kill switch: +configured on, but not in the kernel/);
  const disabled = await readStatus({ configPath: 'x', config: { ...config, enabled: false }, platform: platform({ ...live, killSwitch: false, dnsIntercept: false }), get });
  assert.is(disabled.tunnel, 'disabled');
  assert.match(formatStatus(disabled), /kill switch: +off \(Aerie is disabled\)/);
  const unpaired = await readStatus({ configPath: '/etc/aerie/gateway.json', config: null, platform: platform(live), get });
  assert.is(unpaired.tunnel, 'unpaired');
  assert.match(formatStatus(unpaired), /not paired .*aerie-gateway pair CODE/);
});

test.run();
