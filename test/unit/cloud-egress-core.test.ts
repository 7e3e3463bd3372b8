// core.egress on an in-memory store: the pool, on/off per device, rotation,
// the schedule and exceptions; refused changes store nothing and emit nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createEgressCore } from '../../cloud/core/egress.ts';
import { createFirewallCore } from '../../cloud/core/firewall.ts';
import { createEventBus } from '../../cloud/events.ts';
import { openDatabase, type Store } from '../../cloud/store/store.ts';
import { throwsCore } from './throws-core.ts';
import { insertDeviceRow } from './device-rows.ts';
import { throwsValidation } from './throws-validation.ts';

const stores: Store[] = [];
test.after(() => stores.forEach((s) => s.close()));

const WAN = {
  addresses: ['203.0.113.10', '203.0.113.11', '203.0.113.12', '2001:db8:203::10'],
  prefixes: ['203.0.113.0/25', '2001:db8:203::/64'],
};

const addDevice = insertDeviceRow;

/** Interface identifiers 0x101, 0x102, …: past the low 256 a pick never takes. */
function counting() {
  let n = 0;
  return () => {
    const b = new Uint8Array(16);
    b[14] = 0x01;
    b[15] = ++n;
    return b;
  };
}

function setup(opts: { wan?: boolean } = {}) {
  const store = openDatabase(':memory:');
  stores.push(store);
  addDevice(store, 'home', 'gateway', 2, ['192.0.2.128/25', '2001:db8:1a::/64']);
  addDevice(store, 'phone', 'owner', 3);
  const events = createEventBus((err) => {
    throw err;
  });
  const seen: string[] = [];
  events.on('egress-changed', (e) => seen.push(e.reason));
  let clock = 1_700_000_000_000;
  const now = () => clock;
  const fw = createFirewallCore({ store, config: { listenPort: 51820, pairingPort: 8443 }, events, now });
  const eg = createEgressCore({ store, events, now, random: counting(), ...(opts.wan !== false && { wan: () => WAN }) });
  return { store, events, fw, eg, seen, tick: (ms: number) => (clock += ms) };
}

const snapshot = (s: Store) => JSON.stringify([s.egress.get(), s.egress.subjects(), s.egress.exceptions(), s.egress.recentV6()]);

test('defaults: off, no pool, no schedule, nothing for the firewall or the WAN', () => {
  const { eg } = setup();
  assert.equal(eg.get(), {
    mode: 'off',
    devices: [],
    pool: { v6Prefix: null, v4: [] },
    current: { v4: null, v6: null },
    rotatedAt: null,
    schedule: 'off',
    nextRotationAt: null,
    exceptions: { domains: [], prefixes: [] },
  });
  assert.is(eg.firewall(), undefined);
  assert.equal(eg.wanV6(), []);
});

test("setting the pool picks current addresses (never the VM's own), still off", () => {
  const { eg, seen } = setup();
  const info = eg.setPool({ v6Prefix: '2001:db8:203::/64', v4: ['203.0.113.11', '203.0.113.12'] });
  assert.equal(info.pool, { v6Prefix: '2001:db8:203::/64', v4: ['203.0.113.11', '203.0.113.12'] });
  assert.equal(info.current, { v4: '203.0.113.11', v6: '2001:db8:203::101' });
  assert.is(info.mode, 'off');
  assert.is(eg.firewall(), undefined, 'off: nobody is SNATed');
  assert.equal(seen, ['pool-set']);
});

test("pool checks: prefixes and addresses not the VM's, unknown fields, no WAN view; nothing stored", () => {
  const { eg, store, seen } = setup();
  const before = snapshot(store);
  throwsValidation(() => eg.setPool({ v6Prefix: '2001:db8:99::/64' }), 'v6Prefix', /not the VM's/);
  throwsValidation(() => eg.setPool({ v4: ['198.51.100.7'] }), 'v4[0]', /not an address of the VM's WAN/);
  throwsValidation(() => eg.setPool({ v6: '2001:db8:203::/64' }), 'v6');
  throwsCore(() => setup({ wan: false }).eg.setPool({ v4: ['203.0.113.11'] }), 'unavailable', /WAN addresses/);
  assert.is(snapshot(store), before);
  assert.equal(seen, []);
});

test('on for everyone: SNAT of all sources; rotate gives a new IPv6 and the next IPv4; old picks stay on the WAN a while', () => {
  const { eg, seen } = setup();
  eg.setPool({ v6Prefix: '2001:db8:203::/64', v4: ['203.0.113.11', '203.0.113.12'] });
  const on = eg.enable({});
  assert.is(on.mode, 'global');
  assert.equal(eg.firewall(), { v4: '203.0.113.11', v6: '2001:db8:203::101', sources: 'all', exceptPrefixes: [] });
  const r = eg.rotate();
  assert.equal([r.v4, r.v6], ['203.0.113.12', '2001:db8:203::102']);
  assert.is(eg.rotate().v4, '203.0.113.11', 'round robin wraps');
  assert.equal(eg.wanV6(), ['2001:db8:203::103', '2001:db8:203::102', '2001:db8:203::101']);
  for (let i = 0; i < 5; i++) eg.rotate();
  assert.is(eg.wanV6().length, 4);
  assert.equal(seen, ['pool-set', 'enabled', 'rotated', 'rotated', 'rotated', 'rotated', 'rotated', 'rotated', 'rotated']);
  eg.disable({});
  assert.is(eg.get().mode, 'off');
  assert.equal(eg.wanV6(), []);
  assert.is(eg.firewall(), undefined);
});

test('rotation never comes back to one of the last 16 picks', () => {
  const store = openDatabase(':memory:');
  stores.push(store);
  // A random source that keeps offering the same three identifiers, then a new one.
  const offers = [1, 2, 3];
  let i = 0;
  const random = () => {
    const b = new Uint8Array(16);
    b[14] = 0x01;
    b[15] = i < 40 ? offers[i % 3]! : 9;
    i++;
    return b;
  };
  const eg = createEgressCore({ store, events: createEventBus(), now: () => 0, wan: () => WAN, random });
  eg.setPool({ v6Prefix: '2001:db8:203::/64' });
  const picks = [eg.get().current.v6, eg.rotate().v6, eg.rotate().v6];
  assert.equal(picks, ['2001:db8:203::101', '2001:db8:203::102', '2001:db8:203::103']);
  assert.is(eg.rotate().v6, '2001:db8:203::109');
});

test('per device: only named devices and LAN hosts; unknown names and a missing pool are clear errors', () => {
  const { eg, fw, store, seen } = setup();
  const before = snapshot(store);
  throwsCore(() => eg.enable({ device: 'phone' }), 'conflict', /no egress pool yet/);
  eg.setPool({ v4: ['203.0.113.11'] });
  seen.length = 0;
  const mid = snapshot(store);
  throwsCore(() => eg.enable({ device: 'nobody' }), 'not_found', /no device or LAN host named "nobody"/);
  throwsValidation(() => eg.enable({ device: 'Bad Name' }), 'device');
  throwsValidation(() => eg.enable({ devices: 'phone' }), 'devices');
  throwsCore(() => eg.disable({ device: 'phone' }), 'not_found', /does not use/);
  assert.is(snapshot(store), mid);
  assert.is.not(mid, before);
  assert.equal(seen, []);

  fw.hosts.add({ name: 'camera', address: '192.0.2.150' });
  eg.enable({ device: 'phone' });
  eg.enable({ device: 'camera' });
  assert.is(eg.get().mode, 'devices');
  assert.equal(eg.firewall(), { v4: '203.0.113.11', v6: null, sources: ['camera', 'phone'], exceptPrefixes: [] });
  // Removing the host takes it out of the list.
  fw.hosts.remove('camera');
  assert.equal(eg.get().devices, ['phone']);
  eg.disable({ device: 'phone' });
  assert.is(eg.get().mode, 'off');
  // Global on: one device cannot be taken out.
  eg.enable({});
  throwsCore(() => eg.disable({ device: 'phone' }), 'conflict', /on for everyone/);
  throwsCore(() => eg.setPool({}), 'conflict', /turn it off/);
});

test('a removed device no longer uses the temporary address', () => {
  const { eg, events, store } = setup();
  eg.setPool({ v4: ['203.0.113.11'] });
  eg.enable({ device: 'phone' });
  store.devices.remove('phone');
  events.emit('devices-changed', { reason: 'removed', name: 'phone' });
  assert.equal(eg.get().devices, []);
  assert.is(eg.firewall(), undefined);
});

test('schedule: stored, shown with the next rotation, and rotateIfDue rotates only when due and on', () => {
  const { eg, tick } = setup();
  eg.setPool({ v6Prefix: '2001:db8:203::/64' });
  throwsValidation(() => eg.setSchedule({ every: '1m' }), 'every', /5 minutes/);
  throwsValidation(() => eg.setSchedule({}), 'every');
  assert.is(eg.setSchedule({ every: '1h' }).schedule, '1h');
  assert.is(eg.get().nextRotationAt, null, 'off: nothing is scheduled');
  assert.is(eg.rotateIfDue(), false);
  eg.enable({});
  const first = eg.get().current.v6;
  assert.is(eg.get().nextRotationAt, new Date(1_700_000_000_000 + 3_600_000).toISOString());
  tick(3_599_000);
  assert.is(eg.rotateIfDue(), false);
  tick(1000);
  assert.is(eg.rotateIfDue(), true);
  assert.is.not(eg.get().current.v6, first);
  // The clock set back a day (a VM that booted with a wrong clock, then NTP): the next rotation is an hour from now, not a day.
  tick(-86_400_000);
  assert.is(eg.get().nextRotationAt, new Date(1_700_000_000_000 + 3_600_000 - 86_400_000 + 3_600_000).toISOString());
  assert.is(eg.setSchedule({ every: 'off' }).nextRotationAt, null);
});

test('exceptions: domains and prefixes, canonical, no duplicates; prefixes go to the firewall, domains to the resolver', () => {
  const { eg, store, seen } = setup();
  assert.equal(eg.exceptions.add({ value: 'Example-Bank.com' }), { kind: 'domain', value: 'example-bank.com' });
  assert.equal(eg.exceptions.add({ value: '198.51.100.0/24' }), { kind: 'prefix', value: '198.51.100.0/24' });
  const before = snapshot(store);
  throwsCore(() => eg.exceptions.add({ value: 'example-bank.com.' }), 'conflict', /already an exception/);
  throwsValidation(() => eg.exceptions.add({ value: '198.51.100.1/24' }), 'value', /198\.51\.100\.0\/24/);
  throwsCore(() => eg.exceptions.remove('203.0.113.0/24'), 'not_found', /not an exception/);
  assert.is(snapshot(store), before);
  assert.equal(eg.exceptions.list(), { domains: ['example-bank.com'], prefixes: ['198.51.100.0/24'] });
  assert.equal(eg.exceptDomains(), ['example-bank.com']);
  eg.setPool({ v4: ['203.0.113.11'] });
  eg.enable({});
  assert.equal(eg.firewall()?.exceptPrefixes, ['198.51.100.0/24']);
  assert.equal(eg.exceptions.remove('EXAMPLE-BANK.COM'), { kind: 'domain', value: 'example-bank.com' });
  assert.equal(seen, ['exception-added', 'exception-added', 'pool-set', 'enabled', 'exception-removed']);
});

test('the store keeps the newest 16 IPv6 picks, newest first', () => {
  const store = openDatabase(':memory:');
  stores.push(store);
  for (let i = 1; i <= 20; i++) store.egress.pushRecentV6(`2001:db8:203::${i}`, i);
  const recent = store.egress.recentV6();
  assert.is(recent.length, 16);
  assert.is(recent[0], '2001:db8:203::20');
  assert.is(recent[15], '2001:db8:203::5');
});

test('the state survives reopening the database file', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'aerie-egress-'));
  try {
    const a = openDatabase(join(dir, 'aerie.db'));
    const eg = createEgressCore({ store: a, events: createEventBus(), now: () => 5, wan: () => WAN, random: counting() });
    eg.setPool({ v6Prefix: '2001:db8:203::/64', v4: ['203.0.113.12', '203.0.113.11'] });
    eg.enable({});
    eg.setSchedule({ every: '1d' });
    eg.exceptions.add({ value: '2001:db8:5::/48' });
    const info = eg.get();
    a.close();
    const b = openDatabase(join(dir, 'aerie.db'));
    assert.equal(createEgressCore({ store: b, events: createEventBus(), now: () => 5 }).get(), info);
    b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
