// What the router publishes on aerie/gw/<name>/state, from the kernel's view
// of the tunnel, the WAN's default routes and the VM's copy of its settings.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRecordingRunner } from '../../shared/run.ts';
import { parseConfig } from '../../gateway/config.ts';
import { createControlState } from '../../gateway/control-state.ts';
import type { TunnelState } from '../../gateway/platform/platform.ts';
import type { VmView } from '../../gateway/vm-view.ts';
import { readWan } from '../../gateway/wan-state.ts';
import { sampleConfig } from './gateway-fixtures.ts';

const loaded = { config: parseConfig(sampleConfig()), privateKey: 'unused' };
const now = 1_700_000_000_000;

function setup(tunnel: Partial<TunnelState> = {}) {
  let clock = now;
  let view: VmView = { settings: null, devices: null, firewall: null, syncedAt: null };
  let asked = 0;
  const state: TunnelState = {
    present: true,
    up: true,
    killSwitch: true,
    dnsIntercept: true,
    peers: [{ publicKey: loaded.config.vm.publicKey, endpoint: '203.0.113.10:51820', latestHandshake: now / 1000 - 10, rxBytes: 500, txBytes: 700 }],
    ...tunnel,
  };
  const read = createControlState({
    configPath: 'x',
    load: async () => loaded,
    platform: { name: 'fake', set: async () => {}, show: async () => state },
    view: () => view,
    wan: async (iface) => ({ up: iface === 'aerie', interfaces: iface === 'aerie' ? ['eth0'] : [] }),
    blockedQueries: async () => (asked++, 40 + asked),
    now: () => clock,
  });
  return { read, setView: (v: VmView) => void (view = v), tick: (ms: number) => void (clock += ms), asked: () => asked };
}

test('tunnel, kill switch, WAN and counters; ad blocking as the VM last said', async () => {
  const t = setup();
  assert.equal(await t.read(), {
    tunnel: 'up',
    killSwitch: true,
    blocking: null,
    wan: { up: true, interfaces: ['eth0'] },
    counters: { blockedQueries: 41, rxBytes: 500, txBytes: 700 },
  });
  t.setView({ settings: { blocking: false, blockMode: 'null', upstreams: [], egress: null }, devices: [], firewall: null, syncedAt: now });
  const again = await t.read();
  assert.is(again.blocking, false);
  assert.is(again.counters.blockedQueries, 41, 'the VM is asked at most every 10 s');
  t.tick(10_000);
  assert.is((await t.read()).counters.blockedQueries, 42);
});

test('a tunnel without a recent handshake: connecting, and the VM is not asked', async () => {
  const t = setup({ peers: [], killSwitch: false });
  const s = await t.read();
  assert.is(s.tunnel, 'connecting');
  assert.is(s.killSwitch, false);
  assert.is(s.counters.blockedQueries, 0);
  assert.is(t.asked(), 0);
});

test('the WAN: default routes of the main table, not the tunnel\'s, not unreachable ones', async () => {
  const { run, calls } = createRecordingRunner({
    'ip -j -4 route show default': {
      stdout: JSON.stringify([
        { dst: 'default', gateway: '192.0.2.1', dev: 'wan', flags: [] },
        { dst: 'default', dev: 'aerie', flags: [] },
        { type: 'unreachable', dst: 'default', flags: [] },
      ]),
    },
    'ip -j -6 route show default': { stdout: JSON.stringify([{ dst: 'default', gateway: 'fe80::1', dev: 'wan6', flags: [] }]) },
  });
  assert.equal(await readWan(run, 'aerie'), { up: true, interfaces: ['wan', 'wan6'] });
  assert.equal(calls.length, 2);
  const none = createRecordingRunner({ 'ip -j -4 route show default': { stdout: '[]' }, 'ip -j -6 route show default': { code: 2, stderr: 'no IPv6' } });
  assert.equal(await readWan(none.run, 'aerie'), { up: false, interfaces: [] });
});

test.run();
