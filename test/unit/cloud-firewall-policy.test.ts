// The firewall policy in core: LAN hosts, policies, publishes and the SSH port,
// on an in-memory store; refused changes store nothing and emit nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createFirewallCore } from '../../cloud/core/firewall.ts';
import { createEventBus } from '../../cloud/events.ts';
import { openDatabase, type Store } from '../../cloud/store/store.ts';
import { throwsCore } from './throws-core.ts';
import { insertDeviceRow } from './device-rows.ts';
import { throwsValidation } from './throws-validation.ts';

const stores: Store[] = [];
test.after(() => stores.forEach((s) => s.close()));

const addDevice = insertDeviceRow;

/** Gateway "home" (192.0.2.128/25, 2001:db8:1a::/64), owner "phone", member "guest". */
function setup(portInUse?: (proto: 'tcp' | 'udp', port: number) => string | null) {
  const store = openDatabase(':memory:');
  stores.push(store);
  addDevice(store, 'home', 'gateway', 2, ['192.0.2.128/25', '2001:db8:1a::/64']);
  addDevice(store, 'phone', 'owner', 3);
  addDevice(store, 'guest', 'member', 4);
  const events = createEventBus((err) => {
    throw err;
  });
  const seen: string[] = [];
  events.on('firewall-changed', (e) => seen.push(e.reason));
  const fw = createFirewallCore({ store, config: { listenPort: 51820, pairingPort: 8443 }, events, now: () => 1_700_000_000_000, ...(portInUse && { portInUse }) });
  return { store, events, fw, seen };
}

/** Everything the policy stores, to compare before and after a refused change. */
const snapshot = (s: Store) => JSON.stringify([s.firewall.hosts(), s.firewall.policies(), s.firewall.publishes(), s.settings.all()]);

test('defaults: everyone may reach the internet, nobody is isolated, SSH on 22, nothing published', () => {
  const { fw } = setup();
  assert.equal(fw.policies.list(), [
    { name: 'guest', kind: 'member', policy: { internet: 'allow', isolated: false, lanAccess: false } },
    { name: 'home', kind: 'gateway', policy: { internet: 'allow', isolated: false, lanAccess: false } },
    { name: 'phone', kind: 'owner', policy: { internet: 'allow', isolated: false, lanAccess: false } },
  ]);
  assert.equal(fw.settings.get(), { sshPort: 22 });
  assert.equal(fw.publishes.list(), []);
  assert.equal(fw.hosts.list(), []);
});

test('LAN hosts: inside a home prefix, named in the shared name space, not overlapping each other', () => {
  const { store, fw, seen } = setup();
  store.mqtt.insertUser({ name: 'plug', prefix: 'home/plug/#', hash: new Uint8Array(32), salt: new Uint8Array(16), params: '{}', createdAt: 0 });
  assert.equal(fw.hosts.add({ name: 'camera', address: '192.0.2.140' }), { name: 'camera', addresses: ['192.0.2.140'], gateway: 'home' });
  assert.equal(fw.hosts.add({ name: 'iot', address: '2001:db8:1a::100/120' }), { name: 'iot', addresses: ['2001:db8:1a::100/120'], gateway: 'home' });
  assert.equal(seen, ['host-added', 'host-added']);
  const before = snapshot(store);

  throwsValidation(() => fw.hosts.add({ name: 'web', address: '198.51.100.7' }), 'address', /198\.51\.100\.7 is not inside any gateway's home prefix \(the home prefixes are 192\.0\.2\.128\/25, 2001:db8:1a::\/64\)/);
  throwsValidation(() => fw.hosts.add({ name: 'wide', address: '192.0.2.0/24' }), 'address', /not inside any gateway's home prefix/);
  throwsValidation(() => fw.hosts.add({ name: 'peer', address: '203.0.113.131' }), 'address', /not inside/);
  throwsValidation(() => fw.hosts.add({ name: 'Camera 2', address: '192.0.2.141' }), 'name', /expected a device name/);
  throwsValidation(() => fw.hosts.add({ name: 'cam2' }), 'address', /expected an IP address or prefix/);
  throwsValidation(() => fw.hosts.add({ name: 'cam2', address: '192.0.2.141', role: 'x' }), 'role', /unknown field/);
  throwsCore(() => fw.hosts.add({ name: 'phone', address: '192.0.2.141' }), 'conflict', /"phone" is already a device's name/);
  throwsCore(() => fw.hosts.add({ name: 'plug', address: '192.0.2.141' }), 'conflict', /"plug" is already an MQTT user's name/);
  throwsCore(() => fw.hosts.add({ name: 'camera', address: '192.0.2.141' }), 'conflict', /LAN host named "camera" already exists/);
  throwsCore(() => fw.hosts.add({ name: 'cams', address: '192.0.2.136/29' }), 'conflict', /address: 192\.0\.2\.136\/29 overlaps LAN host "camera" \(192\.0\.2\.140\)/);
  throwsCore(() => fw.hosts.add({ name: 'same', address: '192.0.2.140/32' }), 'conflict', /overlaps LAN host "camera"/);
  // One device, its IPv4 and IPv6 addresses together: one name, one policy.
  throwsValidation(() => fw.hosts.add({ name: 'tv', addresses: [] }), 'addresses', /1 to 8 addresses/);
  throwsValidation(() => fw.hosts.add({ name: 'tv', addresses: '192.0.2.150' }), 'addresses', /1 to 8 addresses/);
  throwsValidation(() => fw.hosts.add({ name: 'tv', address: '192.0.2.150', addresses: ['192.0.2.150'] }), 'addresses', /not both/);
  throwsValidation(() => fw.hosts.add({ name: 'tv', addresses: ['192.0.2.150', 'tv.lan'] }), 'addresses[1]', /expected an IP address or prefix/);
  throwsValidation(() => fw.hosts.add({ name: 'tv', addresses: ['192.0.2.150', '198.51.100.7'] }), 'addresses[1]', /not inside any gateway's home prefix/);
  throwsValidation(() => fw.hosts.add({ name: 'tv', addresses: ['192.0.2.144/28', '192.0.2.150'] }), 'addresses[1]', /overlaps 192\.0\.2\.144\/28, given before it/);
  throwsCore(() => fw.hosts.add({ name: 'tv', addresses: ['192.0.2.150', '192.0.2.140'] }), 'conflict', /addresses\[1\]: 192\.0\.2\.140 overlaps LAN host "camera"/);
  assert.is(snapshot(store), before, 'nothing stored');
  assert.equal(seen, ['host-added', 'host-added'], 'nothing emitted');
  assert.equal(fw.hosts.add({ name: 'tv', addresses: ['192.0.2.150', '2001:DB8:1a::250'] }), { name: 'tv', addresses: ['192.0.2.150', '2001:db8:1a::250'], gateway: 'home' });
  assert.equal(fw.subjects().find((x) => x.name === 'tv')?.addresses, ['192.0.2.150', '2001:db8:1a::250'], 'both to the firewall');

  const none = createFirewallCore({ store: openDatabase(':memory:'), config: { listenPort: 51820, pairingPort: 8443 }, events: createEventBus(), now: Date.now });
  throwsValidation(() => none.hosts.add({ name: 'cam', address: '192.0.2.140' }), 'address', /no router is paired yet/);
});

test('policies: set in parts, kept per subject, members alone have lan-access, gateways are not isolated', () => {
  const { store, fw, seen } = setup();
  fw.hosts.add({ name: 'camera', address: '192.0.2.140' });
  assert.equal(fw.policies.set('camera', { internet: 'block' }), { name: 'camera', kind: 'host', policy: { internet: 'block', isolated: false, lanAccess: false } });
  assert.equal(fw.policies.set('camera', { isolated: true }).policy, { internet: 'block', isolated: true, lanAccess: false }, 'a field left out keeps its value');
  assert.equal(fw.policies.set('guest', { lanAccess: true }).policy, { internet: 'allow', isolated: false, lanAccess: true });
  assert.equal(fw.policies.set('phone', { isolated: true, lanAccess: false }).policy.isolated, true);
  assert.equal(fw.policies.get('camera').policy, { internet: 'block', isolated: true, lanAccess: false });
  assert.equal(seen.filter((r) => r === 'policy-set').length, 4);
  const before = snapshot(store);
  const emitted = seen.length;

  throwsValidation(() => fw.policies.set('phone', { lanAccess: true }), 'lanAccess', /only members have this switch; "phone" is an owner/);
  throwsValidation(() => fw.policies.set('camera', { lanAccess: true }), 'lanAccess', /"camera" is a LAN host/);
  throwsValidation(() => fw.policies.set('home', { isolated: true }), 'isolated', /"home" is a gateway, which needs the VM's API/);
  throwsValidation(() => fw.policies.set('guest', { internet: 'deny' }), 'internet', /expected "allow" or "block"/);
  throwsValidation(() => fw.policies.set('guest', {}), 'body');
  throwsValidation(() => fw.policies.set('Guest!', { internet: 'block' }), 'name');
  throwsCore(() => fw.policies.set('nobody', { internet: 'block' }), 'not_found', /no device or LAN host named "nobody"/);
  throwsCore(() => fw.policies.get('nobody'), 'not_found', /no device or LAN host named "nobody"/);
  assert.is(snapshot(store), before, 'nothing stored');
  assert.is(seen.length, emitted, 'nothing emitted');
});

test('subjects for the renderer: devices with tunnel addresses (gateways with their homes) and hosts, by name', () => {
  const { fw } = setup();
  fw.hosts.add({ name: 'camera', address: '192.0.2.140' });
  fw.policies.set('camera', { isolated: true });
  fw.policies.set('guest', { lanAccess: true, internet: 'block' });
  assert.equal(fw.subjects(), [
    { name: 'camera', kind: 'host', addresses: ['192.0.2.140'], homePrefixes: [], policy: { internet: 'allow', isolated: true, lanAccess: false } },
    { name: 'guest', kind: 'member', addresses: ['203.0.113.132', '2001:db8:a0::4'], homePrefixes: [], policy: { internet: 'block', isolated: false, lanAccess: true } },
    { name: 'home', kind: 'gateway', addresses: ['203.0.113.130', '2001:db8:a0::2'], homePrefixes: ['192.0.2.128/25', '2001:db8:1a::/64'], policy: { internet: 'allow', isolated: false, lanAccess: false } },
    { name: 'phone', kind: 'owner', addresses: ['203.0.113.131', '2001:db8:a0::3'], homePrefixes: [], policy: { internet: 'allow', isolated: false, lanAccess: false } },
  ]);
});

test('publishes: to a home address, one per proto+port, never on a port the VM answers on itself', () => {
  const { store, fw, seen } = setup();
  assert.equal(fw.publishes.add({ name: 'web', port: 443, toAddress: '192.0.2.140', toPort: 8443 }), { name: 'web', proto: 'tcp', port: 443, toAddress: '192.0.2.140', toPort: 8443 });
  assert.equal(fw.publishes.add({ name: 'game', proto: 'udp', port: 443, toAddress: '2001:DB8:1a::140' }), { name: 'game', proto: 'udp', port: 443, toAddress: '2001:db8:1a::140', toPort: 443 }, 'udp beside tcp; to the same port by default');
  assert.ok(fw.publishes.add({ name: 'wg-home', proto: 'tcp', port: 51820, toAddress: '192.0.2.140' }), 'tcp on the WireGuard port is free');
  assert.ok(fw.publishes.add({ name: 'http', port: 80, toAddress: '192.0.2.140' }), 'the API answers on the tunnel only');
  assert.equal(seen, ['publish-added', 'publish-added', 'publish-added', 'publish-added']);
  const before = snapshot(store);

  throwsCore(() => fw.publishes.add({ name: 'web2', port: 443, toAddress: '192.0.2.141' }), 'conflict', /port: 443\/tcp is already published as "web" \(to 192\.0\.2\.140:8443\)/);
  throwsCore(() => fw.publishes.add({ name: 'web', port: 444, toAddress: '192.0.2.141' }), 'conflict', /a publish named "web" already exists/);
  throwsValidation(() => fw.publishes.add({ name: 'x', proto: 'udp', port: 51820, toAddress: '192.0.2.140' }), 'port', /51820\/udp is the VM's WireGuard port/);
  throwsValidation(() => fw.publishes.add({ name: 'x', port: 8443, toAddress: '192.0.2.140' }), 'port', /8443\/tcp is the VM's pairing port/);
  throwsValidation(() => fw.publishes.add({ name: 'x', port: 22, toAddress: '192.0.2.140' }), 'port', /22\/tcp is the VM's SSH port/);
  throwsValidation(() => fw.publishes.add({ name: 'x', port: 2222, toAddress: '198.51.100.7' }), 'toAddress', /198\.51\.100\.7 is not inside any gateway's home prefix/);
  throwsValidation(() => fw.publishes.add({ name: 'x', port: 2222, toAddress: '203.0.113.131' }), 'toAddress', /not inside/);
  throwsValidation(() => fw.publishes.add({ name: 'x', port: 2222, toAddress: '192.0.2.0/24' }), 'toAddress', /expected the IP address of a device behind the router, got "192\.0\.2\.0\/24"/);
  throwsValidation(() => fw.publishes.add({ name: 'x', port: 2222, toAddress: 'nas.lan' }), 'toAddress');
  throwsValidation(() => fw.publishes.add({ name: 'x', port: 0, toAddress: '192.0.2.140' }), 'port', /1 to 65535/);
  throwsValidation(() => fw.publishes.add({ name: 'x', port: 70000, toAddress: '192.0.2.140' }), 'port');
  throwsValidation(() => fw.publishes.add({ name: 'x', port: 2222, toAddress: '192.0.2.140', toPort: '22' }), 'toPort');
  throwsValidation(() => fw.publishes.add({ name: 'x', port: 2222, toAddress: '192.0.2.140', proto: 'sctp' }), 'proto');
  throwsValidation(() => fw.publishes.add({ name: 'x', port: 2222, to: '192.0.2.140:22' }), 'to', /unknown field/);
  throwsValidation(() => fw.publishes.add({ port: 2222, toAddress: '192.0.2.140' }), 'name');
  assert.is(snapshot(store), before, 'nothing stored');

  assert.equal(fw.publishes.remove('game'), { name: 'game', proto: 'udp', port: 443, toAddress: '2001:db8:1a::140', toPort: 443 });
  throwsCore(() => fw.publishes.remove('game'), 'not_found', /no publish named "game"/);
  assert.equal(fw.publishes.list().map((p) => p.name), ['http', 'web', 'wg-home']);
  assert.is(seen.at(-1), 'publish-removed');
});

test('a port a program of the VM listens on is not taken from it', () => {
  const asked: string[] = [];
  const { store, fw, seen } = setup((proto, port) => (asked.push(`${port}/${proto}`), port === 443 && proto === 'tcp' ? 'a program on the VM listens on every address port 443/tcp' : null));
  const before = snapshot(store);
  throwsValidation(() => fw.publishes.add({ name: 'web', port: 443, toAddress: '192.0.2.140' }), 'port', /443\/tcp is in use: a program on the VM listens on every address port 443\/tcp; publish the service on another public port or stop that program$/);
  assert.is(snapshot(store), before, 'nothing stored');
  assert.equal(seen, [], 'nothing to apply');
  assert.ok(fw.publishes.add({ name: 'game', proto: 'udp', port: 443, toAddress: '192.0.2.140' }), 'the other protocol is free');
  assert.equal(asked, ['443/tcp', '443/udp']);
});

test('the SSH port: off or a port no publish and no tunnel service uses', () => {
  const { store, fw, seen } = setup();
  fw.publishes.add({ name: 'web', port: 2222, toAddress: '192.0.2.140' });
  assert.equal(fw.settings.set({ sshPort: 2200 }), { sshPort: 2200 });
  assert.equal(fw.settings.get(), { sshPort: 2200 });
  assert.ok(fw.publishes.add({ name: 'old-ssh', port: 22, toAddress: '192.0.2.140' }), '22 is free once SSH moved');
  assert.equal(fw.settings.set({ sshPort: null }), { sshPort: null });
  assert.equal(fw.settings.get(), { sshPort: null });
  const before = snapshot(store);
  const emitted = seen.length;
  throwsCore(() => fw.settings.set({ sshPort: 2222 }), 'conflict', /sshPort: 2222\/tcp is published as "web"/);
  throwsValidation(() => fw.settings.set({ sshPort: 8443 }), 'sshPort', /pairing port/);
  throwsValidation(() => fw.settings.set({ sshPort: 80 }), 'sshPort', /API service on the tunnel/);
  throwsValidation(() => fw.settings.set({ sshPort: 53 }), 'sshPort', /DNS service/);
  throwsValidation(() => fw.settings.set({ sshPort: 1883 }), 'sshPort', /MQTT service/);
  throwsValidation(() => fw.settings.set({ sshPort: 'off' }), 'sshPort', /expected a port number/);
  throwsValidation(() => fw.settings.set({}), 'sshPort', /or null to close SSH/);
  throwsValidation(() => fw.settings.set({ ssh: 22 }), 'ssh', /unknown field/);
  assert.is(snapshot(store), before, 'nothing stored');
  assert.is(seen.length, emitted, 'nothing emitted');
});

test('a removed device takes its policy along; a removed gateway its hosts and publishes', () => {
  const { store, events, fw, seen } = setup();
  addDevice(store, 'office', 'gateway', 5, ['198.51.100.128/25']);
  fw.hosts.add({ name: 'camera', address: '192.0.2.140' });
  fw.hosts.add({ name: 'printer', address: '198.51.100.140' });
  throwsValidation(
    () => fw.hosts.add({ name: 'split', addresses: ['192.0.2.160', '198.51.100.150'] }),
    'addresses[1]',
    /198\.51\.100\.150 is in the home of "office", 192\.0\.2\.160 in that of "home": one device is behind one router/,
  );
  fw.policies.set('camera', { isolated: true });
  fw.policies.set('guest', { internet: 'block' });
  fw.publishes.add({ name: 'web', port: 443, toAddress: '192.0.2.140' });
  fw.publishes.add({ name: 'print', port: 631, toAddress: '198.51.100.140' });

  store.devices.remove('guest');
  events.emit('devices-changed', { reason: 'removed', name: 'guest' });
  assert.is(seen.at(-1), 'device-removed');
  addDevice(store, 'guest', 'member', 4);
  assert.equal(fw.policies.get('guest').policy.internet, 'allow', 'a new device of the same name starts with the defaults');

  store.devices.remove('home');
  events.emit('devices-changed', { reason: 'removed', name: 'home' });
  assert.equal(fw.hosts.list(), [{ name: 'printer', addresses: ['198.51.100.140'], gateway: 'office' }]);
  assert.equal(fw.publishes.list().map((p) => p.name), ['print']);
  assert.equal(store.firewall.policies().map((p) => p.subject), [], 'the host\'s policy went too');
  const emitted = seen.length;
  store.devices.remove('phone');
  events.emit('devices-changed', { reason: 'removed', name: 'phone' });
  assert.is(seen.length, emitted, 'nothing of the firewall changed, nothing emitted');
});

test('a host removed takes its policy; unknown names are not_found; bad names name the field', () => {
  const { store, fw } = setup();
  fw.hosts.add({ name: 'camera', address: '192.0.2.140' });
  fw.policies.set('camera', { internet: 'block' });
  assert.equal(fw.hosts.remove('camera'), { name: 'camera', addresses: ['192.0.2.140'], gateway: 'home' });
  assert.equal(store.firewall.policies(), []);
  throwsCore(() => fw.hosts.remove('camera'), 'not_found', /no LAN host named "camera"/);
  throwsValidation(() => fw.hosts.remove('../x'), 'name');
});

test.run();
