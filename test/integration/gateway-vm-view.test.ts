// The router's copy of what the VM holds for it (gateway/vm-view.ts), against
// the VM's real API app, store and DNS settings; the file on disk as a
// restarted daemon or `aerie-gateway status` reads it.
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { vmCaller } from '../../gateway/vm-api.ts';
import { ALL_VM_VIEW_PARTS, createVmView, viewPartsFor, VM_VIEW_FILE } from '../../gateway/vm-view.ts';
import { generateKeyPair } from '../../shared/keys.ts';
import { vmApp } from './lib/vm-app.ts';
import { pairRequest, vmStates } from './vm-state.ts';

const fresh = vmStates(test, 'vm-view');
const GATEWAY = '203.0.113.130';

async function setup() {
  const vm = fresh();
  let reachable = true;
  const calls: string[] = [];
  const app = await vmApp(vm, GATEWAY, { calls, reachable: () => reachable });
  const home = app.core.pairing.redeem(pairRequest(app.core.pairing.createCode().code));
  let paired = true;
  const logs: string[] = [];
  const file = join(vm.dir, 'router', VM_VIEW_FILE);
  const make = () =>
    createVmView({
      vm: async () => (paired ? { call: vmCaller(['203.0.113.129'], 1000, app.request), name: home.name } : null),
      file,
      log: (m) => logs.push(m),
    });
  return {
    ...app,
    home,
    file,
    make,
    calls,
    logs,
    cut: (v: boolean) => void (reachable = !v),
    unpair: () => void (paired = false),
  };
}

test('a re-sync copies the VM-side switches and the devices; the file changes only when they do', async () => {
  const t = await setup();
  const view = t.make();
  await view.refresh(ALL_VM_VIEW_PARTS);
  const v = view.current();
  assert.equal(v.settings, { blocking: true, blockMode: 'null', upstreams: ['udp:127.0.0.1'], egress: null });
  assert.equal(v.devices?.map((d) => `${d.name} ${d.role}`), [`${t.home.name} gateway`]);
  assert.type(v.syncedAt, 'number');
  assert.is(statSync(t.file).mode & 0o777, 0o644);
  const first = statSync(t.file);

  await view.refresh(ALL_VM_VIEW_PARTS);
  assert.is(statSync(t.file).ino, first.ino, 'nothing changed: the flash is not written');

  // The owner changes things on the VM; the commands name the part.
  t.dns.setSettings({ blockMode: 'nxdomain' });
  t.dns.setDeviceBlocking(t.home.name, { blocking: false });
  t.core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey });
  await view.refresh(['settings']);
  assert.equal(view.current().settings, { blocking: false, blockMode: 'nxdomain', upstreams: ['udp:127.0.0.1'], egress: null });
  assert.is(view.current().devices?.length, 1, 'devices not asked for: not fetched');
  await view.refresh(['devices']);
  assert.equal(view.current().devices?.map((d) => d.name).sort(), [t.home.name, 'phone'].sort());

  // A restarted daemon starts from the file.
  const again = t.make();
  await again.load();
  assert.equal(again.current().settings, view.current().settings);
  assert.equal(again.current().devices, view.current().devices);
  assert.ok(!readFileSync(t.file, 'utf8').includes('privateKey'), 'only what the view holds');
});

test('the VM out of reach: the refresh fails and the last view stays; unpaired: an empty view', async () => {
  const t = await setup();
  const view = t.make();
  await view.refresh(ALL_VM_VIEW_PARTS);
  const before = view.current();
  t.cut(true);
  try {
    await view.refresh(['settings']);
    assert.unreachable('expected a failure');
  } catch (e) {
    assert.match((e as Error).message, /the VM does not answer through the tunnel/);
  }
  assert.equal(view.current(), before);
  t.cut(false);
  t.unpair();
  await view.refresh(ALL_VM_VIEW_PARTS);
  assert.equal(view.current(), { settings: null, devices: null, firewall: null, syncedAt: null });
});

test("the home's isolated devices: only this router's, only while isolated; kept in the file", async () => {
  const t = await setup();
  const other = t.core.pairing.redeem(pairRequest(t.core.pairing.createCode().code, { name: 'cabin', lanPrefixes: ['198.51.100.128/26'] }));
  t.core.firewall.hosts.add({ name: 'camera', addresses: ['192.0.2.140', '2001:db8:1a::140'] });
  t.core.firewall.hosts.add({ name: 'plugs', address: '2001:db8:1a::40/124' });
  t.core.firewall.hosts.add({ name: 'tv', address: '192.0.2.150' });
  t.core.firewall.hosts.add({ name: 'shed', address: '198.51.100.140' });
  for (const name of ['camera', 'plugs', 'shed']) t.core.firewall.policies.set(name, { isolated: true });
  const view = t.make();
  await view.refresh(['firewall']);
  assert.equal(view.current().firewall, { isolated: ['192.0.2.140', '2001:db8:1a::140', '2001:db8:1a::40/124'] }, `not the tv, not ${other.name}'s shed`);
  assert.is(view.current().syncedAt, null, 'settings and devices not fetched yet');
  const again = t.make();
  await again.load();
  assert.equal(again.current().firewall, view.current().firewall, 'a restarted daemon fences them in before it reaches the VM');
  t.core.firewall.policies.set('camera', { isolated: false });
  t.core.firewall.hosts.remove('plugs');
  await view.refresh(['firewall']);
  assert.equal(view.current().firewall, { isolated: [] });
});

test('what does not read as an address never reaches the rules: from the VM or from the file', async () => {
  const t = await setup();
  const hostile = {
    hosts: [
      { name: 'camera', addresses: ['192.0.2.140'], gateway: t.home.name },
      { name: 'evil', addresses: ['192.0.2.0/24 } accept'], gateway: t.home.name },
      { name: 'wide', addresses: ['192.0.2.1/33'], gateway: t.home.name },
      { name: 'odd', addresses: [42, null], gateway: t.home.name },
      { name: 'flat', addresses: '192.0.2.150', gateway: t.home.name },
    ],
    policies: ['camera', 'evil', 'wide', 'odd', 'flat'].map((name) => ({ name, kind: 'host', policy: { isolated: true } })),
  };
  const view = createVmView({
    vm: async () => ({ call: async () => hostile, name: t.home.name }),
    file: t.file,
    log: () => {},
  });
  await view.refresh(['firewall']);
  assert.equal(view.current().firewall, { isolated: ['192.0.2.140'] });
  writeFileSync(t.file, JSON.stringify({ firewall: { isolated: ['192.0.2.140', '"; flush ruleset', '2001:db8:1a::/64'] } }));
  const fromFile = t.make();
  await fromFile.load();
  assert.equal(fromFile.current().firewall, { isolated: ['192.0.2.140', '2001:db8:1a::/64'] });
});

test('which parts a command from the VM makes stale', () => {
  assert.equal(viewPartsFor('settings-changed', { keys: ['firewall'] }), ['firewall']);
  assert.equal(viewPartsFor('settings-changed', { keys: ['blockMode', 'egress'] }), ['settings']);
  assert.equal(viewPartsFor('settings-changed', { keys: ['blockMode', 'firewall'] }), ['settings', 'firewall']);
  assert.equal(viewPartsFor('settings-changed', { keys: [] }), ['settings', 'firewall'], 'no keys: the VM does not know which');
  assert.equal(viewPartsFor('devices-changed', { devices: ['phone'] }), ['devices']);
});

test('a broken or foreign file is an empty view, not a crash', async () => {
  const t = await setup();
  for (const content of ['{not json', '[]', '{"settings": 5, "devices": "x"}', '{"settings": {"blocking": "yes"}}', '{"firewall": {"isolated": "192.0.2.140"}}']) {
    mkdirSync(join(t.file, '..'), { recursive: true });
    writeFileSync(t.file, content);
    const view = t.make();
    await view.load();
    const v = view.current();
    assert.is(v.settings, null, content);
    assert.is(v.devices, null, content);
    assert.is(v.firewall, null, content);
    assert.is(v.syncedAt, null, content);
  }
});

test.run();
