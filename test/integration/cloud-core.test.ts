import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePrefix } from '../../shared/cidr.ts';
import { ValidationError } from '../../shared/errors.ts';
import { generateKeyPair } from '../../shared/keys.ts';
import { decodePairingCode, encodeSecret, formatFingerprint } from '../../shared/pairing-code.ts';
import { createCore } from '../../cloud/core/core.ts';
import { CoreError } from '../../cloud/core/errors.ts';
import { createEventBus, type CloudEvents } from '../../cloud/events.ts';
import { pairRequest, vmStates } from './vm-state.ts';

const freshVm = vmStates(test, 'core');

function setup(opts: { peerStats?: () => unknown[] } = {}) {
  const { dir, store, state, openAgain } = freshVm();
  let t = Date.parse('2025-03-01T12:00:00Z');
  const clock = { now: () => t, advance: (ms: number) => void (t += ms) };
  const events = createEventBus();
  const seen: string[] = [];
  for (const name of ['devices-changed', 'pairing-codes-changed'] as const) {
    events.on(name, (e: CloudEvents[typeof name]) => seen.push(`${name}:${e.reason}`));
  }
  const core = createCore({ store, config: state, events, now: clock.now, peerStats: opts.peerStats as never });
  return { dir, store, core, clock, seen, state, openAgain };
}

const coreError = (code: string, pattern: RegExp) => (e: unknown) =>
  e instanceof CoreError && e.code === code && pattern.test(e.message);

test('a pairing code carries the endpoint, the pairing port and the certificate fingerprint', () => {
  const { core, state, clock, seen, store } = setup();
  const { code, expiresAt } = core.pairing.createCode();
  const decoded = decodePairingCode(code);
  assert.is(decoded.host, '203.0.113.10');
  assert.is(decoded.port, 8443);
  assert.is(formatFingerprint(decoded.fingerprint), formatFingerprint(state.tls.fingerprint));
  assert.is(expiresAt, new Date(clock.now() + 15 * 60_000).toISOString());
  assert.equal(seen, ['pairing-codes-changed:created']);
  const stored = store.pairingCodes.all()[0]!;
  assert.not.ok(Buffer.from(stored.secretHash).equals(Buffer.from(decoded.secret)), 'only a hash is stored');
  assert.is(stored.secretHash.length, 32);
  assert.is(core.pairing.createCode({ ttlSeconds: 3600 }).expiresAt, new Date(clock.now() + 3600_000).toISOString());
  assert.throws(() => core.pairing.createCode({ ttlSeconds: 5 }), (e: unknown) => e instanceof ValidationError && e.field === 'ttlSeconds');
});

test('redeeming a code creates the gateway and answers with its addresses', () => {
  const { core, state, seen, store } = setup();
  const { code } = core.pairing.createCode();
  const req = pairRequest(code);
  const res = core.pairing.redeem(req);
  assert.equal(res, {
    name: 'home',
    vmPublicKey: state.publicKey,
    endpoint: '203.0.113.10:51820',
    addresses: ['203.0.113.130/25', '2001:db8:a0::2/64'],
    overlay: ['203.0.113.128/25', '2001:db8:a0::/64'],
    services: { api: ['203.0.113.129', '2001:db8:a0::1'] },
    keepalive: 25,
    // The home's IPv6 /64 from the VM: beside the overlay, by the router's index.
    homeV6: '2001:db8:a0:2::/64',
  });
  const gw = store.devices.get('home')!;
  assert.is(gw.role, 'gateway');
  assert.is(gw.publicKey, req.publicKey);
  assert.equal(gw.lanPrefixes, ['192.0.2.128/25', '2001:db8:1a::/64', '2001:db8:a0:2::/64'], 'routed and NATed like the reported ones');
  assert.is(store.pairingCodes.all()[0]?.usedBy, 'home');
  assert.equal(seen.slice(1), ['devices-changed:paired', 'pairing-codes-changed:used']);
});

test('a used, expired or unknown code is refused with a clear message and nothing stored', () => {
  const { core, clock, store } = setup();
  const { code } = core.pairing.createCode();
  core.pairing.redeem(pairRequest(code));
  const snapshot = () => JSON.stringify([store.devices.list(), store.pairingCodes.all().map((c) => [c.id, c.usedAt])]);
  let before = snapshot();
  assert.throws(() => core.pairing.redeem(pairRequest(code, { name: 'other', lanPrefixes: [] })), coreError('invalid_code', /already been used/));
  assert.is(snapshot(), before);

  const late = core.pairing.createCode().code;
  clock.advance(15 * 60_000);
  before = snapshot();
  assert.throws(() => core.pairing.redeem(pairRequest(late, { name: 'late', lanPrefixes: [] })), coreError('invalid_code', /expired at 2025-03-01T12:15:00.000Z/));
  assert.is(snapshot(), before);

  const unknown = encodeSecret(new Uint8Array(16).fill(9));
  assert.throws(() => core.pairing.redeem({ ...pairRequest(late), secret: unknown }), coreError('invalid_code', /not valid/));
  assert.is(snapshot(), before);
});

test('an unexpired code still works a moment before its expiry; a custom TTL is honoured', () => {
  const { core, clock } = setup();
  const { code } = core.pairing.createCode({ ttlSeconds: 60 });
  clock.advance(59_999);
  assert.is(core.pairing.redeem(pairRequest(code)).name, 'home');
});

test('a code whose redemption failed on a conflict stays usable', () => {
  const { core } = setup();
  const first = core.pairing.createCode().code;
  core.pairing.redeem(pairRequest(first));
  const second = core.pairing.createCode().code;
  assert.throws(() => core.pairing.redeem(pairRequest(second, { lanPrefixes: [] })), coreError('conflict', /named "home" already exists/));
  assert.throws(() => core.pairing.redeem(pairRequest(second, { name: 'cabin' })), coreError('conflict', /gateway "home"/));
  assert.throws(
    () => core.pairing.redeem(pairRequest(second, { name: 'cabin', lanPrefixes: ['203.0.113.128/26'] })),
    coreError('conflict', /overlay network/),
  );
  assert.is(core.pairing.redeem(pairRequest(second, { name: 'cabin', lanPrefixes: ['198.51.100.128/25'] })).name, 'cabin');
});

test('home prefixes overlapping the VM\'s own networks are refused, naming the field; nothing stored', () => {
  const { store, state } = freshVm();
  // A VM behind 1:1 NAT: its interface is on 198.51.100.0/25 and 2001:db8:203::/64.
  let local = ['198.51.100.0/25', '2001:db8:203::/64'];
  const core = createCore({ store, config: state, localPrefixes: () => local });
  const { code } = core.pairing.createCode();
  const snapshot = () => JSON.stringify([store.devices.list(), store.pairingCodes.all().map((c) => c.usedAt)]);
  const before = snapshot();
  assert.throws(
    () => core.pairing.redeem(pairRequest(code, { lanPrefixes: ['192.0.2.128/25', '198.51.100.0/24'] })),
    coreError('conflict', /^lanPrefixes\[1\]: 198\.51\.100\.0\/24 overlaps the VM's own network 198\.51\.100\.0\/25/),
  );
  assert.throws(
    () => core.pairing.redeem(pairRequest(code, { lanPrefixes: ['2001:db8:203:0:8000::/65'] })),
    coreError('conflict', /^lanPrefixes\[0\]: .*VM's own network 2001:db8:203::\/64/),
  );
  assert.is(snapshot(), before, 'nothing stored, the code unused');
  // Asked at each redemption: once the VM has left that network, the same request pairs.
  local = ['203.0.113.0/25'];
  assert.is(core.pairing.redeem(pairRequest(code, { lanPrefixes: ['198.51.100.0/24'] })).name, 'home');
});

test('keys already in use, including the VM\'s own, are refused', () => {
  const { core, state } = setup();
  const { code } = core.pairing.createCode();
  const phone = core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey });
  assert.throws(() => core.pairing.redeem(pairRequest(code, { publicKey: phone.device.publicKey })), coreError('conflict', /belongs to device "phone"/));
  assert.throws(() => core.pairing.redeem(pairRequest(code, { publicKey: state.publicKey })), coreError('conflict', /VM's own/));
  assert.throws(() => core.devices.add({ name: 'tablet', publicKey: phone.device.publicKey }), coreError('conflict', /belongs to device "phone"/));
});

test('malformed pair requests are ValidationErrors naming the field, and do not use the code', () => {
  const { core, store } = setup();
  const { code } = core.pairing.createCode();
  const cases: [Record<string, unknown>, string][] = [
    [{ secret: 'short' }, 'secret'],
    [{ publicKey: 'AAAA' }, 'publicKey'],
    [{ name: 'Not_A_Name' }, 'name'],
    [{ lanPrefixes: ['192.0.2.128/25', '192.0.2.192/26'] }, 'lanPrefixes[1]'],
    [{ lanPrefixes: ['192.0.2.129/25'] }, 'lanPrefixes[0]'],
    [{ lanPrefixes: ['0.0.0.0/0'] }, 'lanPrefixes[0]'],
    [{ lanPrefixes: '192.0.2.0/24' }, 'lanPrefixes'],
  ];
  for (const [over, field] of cases) {
    assert.throws(() => core.pairing.redeem(pairRequest(code, over)), (e: unknown) => e instanceof ValidationError && e.field === field, field);
  }
  assert.throws(() => core.pairing.redeem(null), (e: unknown) => e instanceof ValidationError);
  assert.is(store.pairingCodes.all()[0]?.usedAt, null);
  assert.is(store.devices.list().length, 0);
});

test('devices get the next free index in both families; removing frees it', () => {
  const { core, seen } = setup();
  const a = core.devices.add({ name: 'a', publicKey: generateKeyPair().publicKey }).device;
  const b = core.devices.add({ name: 'b', publicKey: generateKeyPair().publicKey, role: 'member' }).device;
  assert.equal([a.addressV4, a.addressV6, a.role], ['203.0.113.130', '2001:db8:a0::2', 'owner']);
  assert.equal([b.addressV4, b.addressV6, b.role], ['203.0.113.131', '2001:db8:a0::3', 'member']);
  assert.is(core.devices.remove('a').name, 'a');
  assert.throws(() => core.devices.remove('a'), coreError('not_found', /no device named "a"/));
  const c = core.devices.add({ name: 'c', publicKey: generateKeyPair().publicKey }).device;
  assert.equal([c.addressV4, c.addressV6], ['203.0.113.130', '2001:db8:a0::2']);
  assert.equal(core.devices.list().map((d) => d.name), ['c', 'b']);
  assert.equal(seen, ['devices-changed:added', 'devices-changed:added', 'devices-changed:removed', 'devices-changed:added']);
});

test('without a key, add generates one, returns a wg-quick config once, and stores only the public key', () => {
  const { core, state, store, dir, openAgain } = setup();
  core.pairing.redeem(pairRequest(core.pairing.createCode().code));
  const full = core.devices.add({ name: 'phone' });
  const priv = /PrivateKey = (\S+)/.exec(full.config!)?.[1];
  assert.ok(priv);
  assert.match(full.config!, /Address = 203\.0\.113\.131\/25, 2001:db8:a0::3\/64/);
  assert.match(full.config!, new RegExp(`PublicKey = ${state.publicKey.replace(/[+/]/g, '\\$&')}`));
  assert.match(full.config!, /AllowedIPs = 0\.0\.0\.0\/0, ::\/0/);
  assert.match(full.config!, /Endpoint = 203\.0\.113\.10:51820/);
  assert.match(full.config!, /PersistentKeepalive = 25/);
  const split = core.devices.add({ name: 'laptop', split: true });
  assert.match(split.config!, /AllowedIPs = 203\.0\.113\.128\/25, 2001:db8:a0::\/64, 192\.0\.2\.128\/25, 2001:db8:1a::\/64/);
  // The private key is nowhere in the database files.
  store.close();
  for (const f of readdirSync(dir)) {
    if (f.startsWith('aerie.db')) assert.not.ok(readFileSync(join(dir, f)).includes(Buffer.from(priv!)), f);
  }
  const reopened = openAgain();
  assert.is(reopened.devices.get('phone')?.publicKey, full.device.publicKey);
  assert.not.ok(full.config!.includes(full.device.publicKey), 'the config holds the VM as peer, not the device key');
});

test('device names are validated', () => {
  const { core } = setup();
  for (const name of ['', 'UPPER', 'has space', '-dash', 'x'.repeat(33)]) {
    assert.throws(() => core.devices.add({ name }), (e: unknown) => e instanceof ValidationError && e.field === 'name', name);
  }
  assert.throws(() => core.devices.add({ name: 'ok', role: 'gateway' }), (e: unknown) => e instanceof ValidationError && e.field === 'role');
  assert.throws(() => core.devices.remove('../etc'), (e: unknown) => e instanceof ValidationError && e.field === 'name');
});

test('identify maps overlay addresses and home prefixes', () => {
  const { core } = setup();
  core.pairing.redeem(pairRequest(core.pairing.createCode().code));
  core.devices.add({ name: 'guest', role: 'member', publicKey: generateKeyPair().publicKey });
  assert.is(core.identify('203.0.113.130')?.role, 'gateway');
  assert.is(core.identify('2001:db8:a0::3')?.role, 'member');
  assert.equal(core.identify('192.0.2.130'), { name: 'home', role: 'lan', address: '192.0.2.130', gateway: 'home' });
  assert.is(core.identify('203.0.113.129'), null);
});

test('status merges devices with live peer counters and remembers endpoints', async () => {
  let live: unknown[] | Error = [];
  const { core, store } = setup({
    peerStats: () => {
      if (live instanceof Error) throw live;
      return live;
    },
  });
  const req = pairRequest(core.pairing.createCode().code);
  core.pairing.redeem(req);
  core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey });
  live = [{ publicKey: req.publicKey, endpoint: '198.51.100.2:51000', latestHandshake: 1700000000, rxBytes: 10, txBytes: 20 }];
  const status = await core.status();
  assert.is(status.interface, 'aerie0');
  assert.is(status.endpoint, '203.0.113.10:51820');
  assert.is(status.listenPort, 51820);
  assert.equal(status.overlay, ['203.0.113.128/25', '2001:db8:a0::/64']);
  const home = status.peers.find((p) => p.name === 'home')!;
  assert.equal([home.endpoint, home.latestHandshake, home.rxBytes, home.txBytes], ['198.51.100.2:51000', 1700000000, 10, 20]);
  const phone = status.peers.find((p) => p.name === 'phone')!;
  assert.equal([phone.endpoint, phone.latestHandshake, phone.rxBytes], [null, 0, 0]);
  assert.is(store.devices.get('home')?.endpoint, '198.51.100.2:51000', 'endpoint remembered');
  live = new Error('wg is down');
  const offline = (await core.status()).peers.find((p) => p.name === 'home')!;
  assert.equal([offline.endpoint, offline.latestHandshake], ['198.51.100.2:51000', 0], 'stored view when the hub is down');
});

test('two connections to one database (CLI and daemon) cannot both use a code', () => {
  const { core, state, clock, openAgain } = setup();
  const other = openAgain();
  const otherCore = createCore({ store: other, config: state, now: clock.now });
  const { code } = core.pairing.createCode();
  assert.is(otherCore.pairing.redeem(pairRequest(code)).name, 'home');
  assert.throws(() => core.pairing.redeem(pairRequest(code, { name: 'twin', lanPrefixes: [] })), coreError('invalid_code', /already been used/));
  assert.is(core.devices.get('home')?.role, 'gateway', 'the other connection\'s device is visible');
});

test('devices, MQTT users and LAN hosts share one name space', async () => {
  const { core } = setup();
  core.pairing.redeem(pairRequest(core.pairing.createCode().code)); // gateway "home", 192.0.2.128/25
  core.firewall.hosts.add({ name: 'camera', address: '192.0.2.140' });
  assert.throws(() => core.devices.add({ name: 'camera', publicKey: generateKeyPair().publicKey }), coreError('conflict', /already a LAN host's name/));
  await core.mqtt.users.add({ name: 'camera' }).then(
    () => assert.unreachable('an MQTT user took a LAN host\'s name'),
    (e: unknown) => assert.ok(coreError('conflict', /already a LAN host's name/)(e), String(e)),
  );
  assert.equal(core.devices.list().map((d) => d.name), ['home']);
  assert.equal(core.mqtt.users.list(), []);
});

test('with a routed homes\' prefix, a router\'s home gets the /64 of it that its index says', () => {
  const { store, state } = freshVm();
  const core = createCore({ store, config: { ...state, homeV6Prefix: parsePrefix('2001:db8:b00::/56') } });
  const answer = core.pairing.redeem(pairRequest(core.pairing.createCode().code));
  assert.is(answer.homeV6, '2001:db8:b00:2::/64');
  assert.ok(core.devices.get('home')!.lanPrefixes.includes('2001:db8:b00:2::/64'));
});

test('a small routed prefix serves as many routers as it has /64s, whatever their indexes; then homes get none', () => {
  const { store, state } = freshVm();
  const core = createCore({ store, config: { ...state, homeV6Prefix: parsePrefix('2001:db8:b00::/62') } }); // four /64s
  for (let i = 0; i < 20; i++) core.devices.add({ name: `phone-${i}`, publicKey: generateKeyPair().publicKey }); // indexes 2–21
  const homes = ['a', 'b', 'c', 'd'].map((n, i) =>
    core.pairing.redeem(pairRequest(core.pairing.createCode().code, { name: `home-${n}`, lanPrefixes: [`198.51.100.${128 + 16 * i}/28`] })).homeV6 ?? null,
  );
  assert.equal(homes, ['2001:db8:b00:1::/64', '2001:db8:b00:2::/64', '2001:db8:b00:3::/64', null], 'index 22 and on are beyond a /62');
});

test("a router paired again does not keep the /64 the VM gave it before: the next router at that index gets it alone", () => {
  const { core } = setup();
  const first = core.pairing.redeem(pairRequest(core.pairing.createCode().code));
  assert.is(first.homeV6, '2001:db8:a0:2::/64');
  core.devices.remove('home');
  core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey }); // takes index 2
  // The router still has its old /64 on its LAN and reports it with its own prefixes.
  const again = core.pairing.redeem(pairRequest(core.pairing.createCode().code, { lanPrefixes: ['192.0.2.128/25', '2001:db8:a0:2::/64'] }));
  assert.is(again.homeV6, '2001:db8:a0:3::/64');
  assert.equal(core.devices.get('home')!.lanPrefixes, ['192.0.2.128/25', '2001:db8:a0:3::/64'], 'the old /64 is not routed to it any more');
  core.devices.remove('phone');
  const next = core.pairing.redeem(pairRequest(core.pairing.createCode().code, { name: 'cabin', lanPrefixes: ['198.51.100.128/26'] }));
  assert.is(next.homeV6, '2001:db8:a0:2::/64', 'index 2 again, its /64 free');
  // A router of an older VM holds the /64 the next index would give: the new one gets the first free /64 instead.
  const { store, core: older } = setup();
  store.devices.insert({
    name: 'legacy', role: 'gateway', publicKey: generateKeyPair().publicKey, hostIndex: 9,
    addressV4: '203.0.113.139', addressV6: '2001:db8:a0::9', lanPrefixes: ['198.51.100.128/26', '2001:db8:a0:2::/64'], createdAt: 0,
  });
  assert.is(older.pairing.redeem(pairRequest(older.pairing.createCode().code)).homeV6, '2001:db8:a0:1::/64');
  // The overlay itself is still refused, not quietly dropped.
  assert.throws(
    () => core.pairing.redeem(pairRequest(core.pairing.createCode().code, { name: 'odd', lanPrefixes: ['2001:db8:a0::/64'] })),
    (e: unknown) => e instanceof Error && /overlay/.test(e.message),
  );
});

test.run();
