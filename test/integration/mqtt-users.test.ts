import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ValidationError } from '../../shared/errors.ts';
import { createCore } from '../../cloud/core/core.ts';
import { CoreError } from '../../cloud/core/errors.ts';
import { createMqttUsers, SCRYPT_PARAMS, scryptDerive, type Derive } from '../../cloud/core/mqtt-users.ts';
import { createRateLimiter } from '../../cloud/core/rate-limit.ts';
import { DATABASE_FILE } from '../../cloud/store/store.ts';
import { pairRequest, vmStates } from './vm-state.ts';

const freshVm = vmStates(test, 'mqtt-users');

function setup() {
  const vm = freshVm();
  let t = Date.parse('2026-01-10T08:00:00Z');
  const clock = { now: () => t, advance: (ms: number) => void (t += ms) };
  const core = createCore({ store: vm.store, config: vm.state, now: clock.now, mqttLimiter: createRateLimiter({ now: clock.now }) });
  return { ...vm, core, clock };
}

/** The router "home" (LAN 192.0.2.128/25) and the owner's phone, through the real pairing and device paths. */
function withDevices(core: ReturnType<typeof setup>['core']) {
  core.pairing.redeem(pairRequest(core.pairing.createCode().code));
  const phone = core.devices.add({ name: 'phone' }).device;
  const tablet = core.devices.add({ name: 'tablet', role: 'member' }).device;
  return { gateway: core.devices.get('home')!, phone, tablet };
}

/** Every stored MQTT row, read straight from the database file. */
function rawRows(dir: string) {
  const db = new DatabaseSync(join(dir, DATABASE_FILE), { readOnly: true });
  try {
    return {
      users: db.prepare('SELECT * FROM mqtt_users ORDER BY name').all(),
      grants: db.prepare('SELECT * FROM mqtt_grants ORDER BY id').all(),
    };
  } finally {
    db.close();
  }
}

const coreError = (code: string, pattern: RegExp) => (e: unknown) => e instanceof CoreError && e.code === code && pattern.test(e.message);
const validation = (field: string, pattern: RegExp) => (e: unknown) =>
  e instanceof ValidationError && e.field === field && pattern.test(e.message);

async function rejects(p: Promise<unknown>, check: (e: unknown) => boolean, what: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.ok(check(e), `${what}: unexpected ${String(e)}`);
    return;
  }
  assert.unreachable(`${what}: expected a refusal`);
}

test('adding a user shows a random password once and stores only its scrypt hash', async () => {
  const { core, dir } = setup();
  const { user, password } = await core.mqtt.users.add({ name: 'plug' });
  assert.equal(user, { name: 'plug', prefix: 'home/plug/#', createdAt: '2026-01-10T08:00:00.000Z' });
  // 26 symbols of Crockford's base32 (no i, l, o, u): 130 bits.
  assert.match(password, /^[0-9a-hjkmnp-tv-z]{26}$/);
  const other = await core.mqtt.users.add({ name: 'sensor', prefix: 'home/garden' });
  assert.is.not(other.password, password);
  assert.is(other.user.prefix, 'home/garden/#');

  const rows = rawRows(dir).users;
  assert.is(rows.length, 2);
  for (const [row, secret] of [[rows[0]!, password], [rows[1]!, other.password]] as const) {
    const everything = Buffer.concat(Object.values(row).map((v) => (v instanceof Uint8Array ? v : Buffer.from(String(v)))));
    assert.not.ok(everything.includes(secret), 'the password is nowhere in the row');
    assert.is((row.hash as Uint8Array).length, 32);
    assert.is((row.salt as Uint8Array).length, 16);
    assert.equal(JSON.parse(String(row.params)), { N: 16384, r: 8, p: 1, keylen: 32 });
  }
  assert.not.ok(Buffer.from(rows[0]!.salt as Uint8Array).equals(Buffer.from(rows[1]!.salt as Uint8Array)), 'a salt per user');
  // Listing shows names and prefixes, never a hash; the password cannot be asked for again.
  assert.equal(core.mqtt.users.list(), [user, other.user].sort((a, b) => a.name.localeCompare(b.name)));
  assert.equal(Object.keys(core.mqtt.users.get('plug')!).sort(), ['createdAt', 'name', 'prefix']);
});

test('the right password logs in, as text or bytes; a wrong one or an unknown name does not', async () => {
  const { core } = setup();
  const { password } = await core.mqtt.users.add({ name: 'plug' });
  assert.is((await core.mqtt.users.verify('plug', password))?.name, 'plug');
  assert.is((await core.mqtt.users.verify('plug', Buffer.from(password)))?.prefix, 'home/plug/#');
  assert.is(await core.mqtt.users.verify('plug', password.toUpperCase()), null);
  assert.is(await core.mqtt.users.verify('plug', password.slice(0, -1)), null);
  assert.is(await core.mqtt.users.verify('plug', ''), null);
  assert.is(await core.mqtt.users.verify('nobody', password), null);
  // Hostile input is a failed login, not an exception.
  for (const [name, pw] of [[undefined, password], ['plug', undefined], [{}, 5], ['x'.repeat(100_000), password], ['plug', Buffer.alloc(70_000)]]) {
    assert.is(await core.mqtt.users.verify(name, pw), null);
  }
});

test('an unknown name costs a full scrypt too, so timing does not tell which names exist', async () => {
  const { store } = setup();
  const calls: { salt: string; N: number }[] = [];
  const derive: Derive = (password, salt, params) => {
    calls.push({ salt: Buffer.from(salt).toString('hex'), N: params.N });
    return scryptDerive(password, salt, params);
  };
  const users = createMqttUsers({ store, now: Date.now, derive });
  await users.add({ name: 'plug' });
  calls.length = 0;
  assert.is(await users.verify('plug', 'wrong-password'), null);
  assert.is(await users.verify('nobody', 'wrong-password'), null);
  assert.is(await users.verify('x'.repeat(500), 'wrong-password'), null, 'an absurd name too');
  assert.equal(calls.map((c) => c.N), [SCRYPT_PARAMS.N, SCRYPT_PARAMS.N, SCRYPT_PARAMS.N], 'one scrypt of the same cost for each');
  assert.is.not(calls[1]!.salt, calls[0]!.salt, "not the user's salt");
});

test('refused names and prefixes change nothing: device names, taken names, bad input', async () => {
  const { core, dir } = setup();
  withDevices(core);
  const { password } = await core.mqtt.users.add({ name: 'plug' });
  const before = JSON.stringify(rawRows(dir));
  await rejects(core.mqtt.users.add({ name: 'phone' }), coreError('conflict', /"phone" is already a device's name/), 'a device name');
  await rejects(core.mqtt.users.add({ name: 'home' }), coreError('conflict', /device's name/), 'the router\'s name');
  await rejects(core.mqtt.users.add({ name: 'plug' }), coreError('conflict', /MQTT user named "plug" already exists/), 'a taken name');
  await rejects(core.mqtt.users.add({ name: 'Plug!' }), validation('name', /lower-case letters/), 'a bad name');
  await rejects(core.mqtt.users.add({ name: 'lamp', prefix: 'aerie/gw/home' }), validation('prefix', /reserved/), 'aerie/');
  await rejects(core.mqtt.users.add({ name: 'lamp', prefix: 'home/+' }), validation('prefix', /plain text/), 'a wildcard prefix');
  await rejects(core.mqtt.users.add({ name: 'lamp', prefix: '$SYS' }), validation('prefix', /"\$"/), 'a $ prefix');
  await rejects(core.mqtt.users.add('lamp'), validation('body', /an object/), 'not an object');
  assert.is(JSON.stringify(rawRows(dir)), before, 'nothing stored');
  assert.ok(await core.mqtt.users.verify('plug', password), 'the first user still logs in with its password');
  // And the other way round: a device may not take a user's name.
  assert.throws(() => core.devices.add({ name: 'plug' }), (e: Error) => e instanceof CoreError && /"plug" is already an MQTT user's name/.test(e.message));
  assert.not.ok(core.devices.get('plug'));
});

test('grants and revokes, for users and devices, and what they open', async () => {
  const { core, dir } = setup();
  const { tablet } = withDevices(core);
  await core.mqtt.users.add({ name: 'plug' });
  const plug = { kind: 'user', name: 'plug', prefix: 'home/plug/#' } as const;
  const member = { kind: 'peer', role: 'member', name: tablet.name } as const;
  assert.not.ok(core.mqtt.access(plug, 'publish', 'home/lamp/set').allowed);
  assert.not.ok(core.mqtt.access(member, 'subscribe', 'home/+/temperature').allowed);

  const g = core.mqtt.grants.grant({ name: 'plug', action: 'write', filter: 'home/lamp/set' });
  assert.equal(g, { name: 'plug', kind: 'user', action: 'write', filter: 'home/lamp/set', createdAt: '2026-01-10T08:00:00.000Z' });
  assert.equal(core.mqtt.grants.grant({ name: 'plug', action: 'write', filter: 'home/lamp/set' }), g, 'granting twice changes nothing');
  core.mqtt.grants.grant({ name: 'tablet', action: 'read', filter: 'home/+/temperature' });
  assert.ok(core.mqtt.access(plug, 'publish', 'home/lamp/set').allowed);
  assert.not.ok(core.mqtt.access(plug, 'subscribe', 'home/lamp/set').allowed, 'write is not read');
  assert.ok(core.mqtt.access(member, 'subscribe', 'home/+/temperature').allowed);
  assert.equal(core.mqtt.grants.list('tablet').map((x) => [x.kind, x.action, x.filter]), [['device', 'read', 'home/+/temperature']]);
  assert.is(core.mqtt.grants.list().length, 2);

  const before = JSON.stringify(rawRows(dir));
  assert.throws(() => core.mqtt.grants.grant({ name: 'nobody', action: 'read', filter: 'x' }), coreError('not_found', /no MQTT user or device named "nobody"/));
  assert.throws(() => core.mqtt.grants.grant({ name: 'plug', action: 'write', filter: 'aerie/gw/home/cmd/x' }), validation('filter', /grant "read"/));
  assert.throws(() => core.mqtt.grants.grant({ name: 'plug', action: 'read', filter: '$SYS/#' }), validation('filter', /owners only/));
  assert.throws(() => core.mqtt.grants.grant({ name: 'plug', action: 'own', filter: '#' }), validation('action', /"read" or "write"/));
  assert.throws(() => core.mqtt.grants.grant({ name: 'plug', action: 'read', filter: 'a/#/b' }), validation('filter', /"#"/));
  assert.throws(() => core.mqtt.grants.revoke({ name: 'plug', action: 'read', filter: 'home/lamp/set' }), coreError('not_found', /no read grant/));
  assert.is(JSON.stringify(rawRows(dir)), before, 'nothing changed by the refusals');

  assert.equal(core.mqtt.grants.revoke({ name: 'plug', action: 'write', filter: 'home/lamp/set' }), g);
  assert.not.ok(core.mqtt.access(plug, 'publish', 'home/lamp/set').allowed, 'a revoke takes effect at once');
});

test('removing a user or a device takes its grants along and denies what it still tries', async () => {
  const { core, dir } = setup();
  withDevices(core);
  const { password } = await core.mqtt.users.add({ name: 'plug' });
  core.mqtt.grants.grant({ name: 'plug', action: 'read', filter: 'home/#' });
  core.mqtt.grants.grant({ name: 'tablet', action: 'read', filter: 'home/#' });
  const plug = { kind: 'user', name: 'plug', prefix: 'home/plug/#' } as const;
  assert.ok(core.mqtt.access(plug, 'publish', 'home/plug/state').allowed);

  assert.equal(core.mqtt.users.remove('plug'), { name: 'plug', prefix: 'home/plug/#', createdAt: '2026-01-10T08:00:00.000Z' });
  assert.equal(core.mqtt.users.list(), []);
  assert.is(await core.mqtt.users.verify('plug', password), null);
  assert.match(core.mqtt.access(plug, 'publish', 'home/plug/state').reason, /was removed/);
  assert.throws(() => core.mqtt.users.remove('plug'), coreError('not_found', /no MQTT user named "plug"/));

  core.devices.remove('tablet');
  assert.equal(rawRows(dir).grants, [], 'no grant outlives its subject');
  core.devices.add({ name: 'tablet', role: 'member' });
  assert.not.ok(core.mqtt.access({ kind: 'peer', role: 'member', name: 'tablet' }, 'subscribe', 'home/#').allowed, 'a new device of the same name starts afresh');
});

test('users and grants survive a reopen of the database', async () => {
  const { core, openAgain, state } = setup();
  const { password } = await core.mqtt.users.add({ name: 'plug', prefix: 'zigbee/plug' });
  core.mqtt.grants.grant({ name: 'plug', action: 'read', filter: 'home/+/state' });
  const again = createCore({ store: openAgain(), config: state });
  assert.equal(again.mqtt.users.get('plug')?.prefix, 'zigbee/plug/#');
  assert.is((await again.mqtt.users.verify('plug', password))?.name, 'plug');
  assert.equal(again.mqtt.grants.list('plug').map((g) => g.filter), ['home/+/state']);
});

test('a hash made with older parameters is raised to the current ones at the next login', async () => {
  const { store, dir } = setup();
  const old = createMqttUsers({ store, now: Date.now, scryptParams: { N: 1024, r: 8, p: 1, keylen: 32 } });
  const { password } = await old.add({ name: 'plug' });
  assert.equal(JSON.parse(String(rawRows(dir).users[0]!.params)).N, 1024);
  const today = createMqttUsers({ store, now: Date.now });
  assert.is(await today.verify('plug', 'wrong'), null);
  assert.equal(JSON.parse(String(rawRows(dir).users[0]!.params)).N, 1024, 'a failed login changes nothing');
  assert.ok(await today.verify('plug', password));
  assert.equal(JSON.parse(String(rawRows(dir).users[0]!.params)), SCRYPT_PARAMS);
  assert.ok(await today.verify('plug', password), 'the same password after the rehash');
});

test('authentication: tunnel peers by address, devices behind the router by password, failures limited per source', async () => {
  const { core, clock } = setup();
  const { gateway, phone } = withDevices(core);
  const { password } = await core.mqtt.users.add({ name: 'plug' });

  assert.equal(await core.mqtt.authenticate({ address: gateway.addressV4 }), { ok: true, caller: { kind: 'peer', role: 'gateway', name: 'home' } });
  assert.equal(await core.mqtt.authenticate({ address: phone.addressV6, username: 'whatever', password: 'x' }), {
    ok: true,
    caller: { kind: 'peer', role: 'owner', name: 'phone' },
  });
  const lan = '192.0.2.140'; // behind the router "home"
  assert.equal(await core.mqtt.authenticate({ address: lan, username: 'plug', password: Buffer.from(password) }), {
    ok: true,
    caller: { kind: 'user', name: 'plug', prefix: 'home/plug/#' },
  });

  const wrong = await core.mqtt.authenticate({ address: lan, username: 'plug', password: 'guess' });
  assert.equal(wrong.ok === false && [wrong.failure, wrong.returnCode], ['bad_credentials', 4]);
  assert.ok(wrong.ok === false && wrong.reason.includes('"plug"') && !wrong.reason.includes('guess'), 'the reason names the user, not the password');
  const anonymous = await core.mqtt.authenticate({ address: lan });
  assert.equal(anonymous.ok === false && [anonymous.failure, anonymous.returnCode], ['not_authorized', 5]);

  // Five failures within a minute (two above and three here) block the source, even with the right password.
  for (let i = 0; i < 3; i++) assert.is((await core.mqtt.authenticate({ address: lan, username: 'nobody', password: 'x' })).ok, false);
  const blocked = await core.mqtt.authenticate({ address: lan, username: 'plug', password });
  assert.ok(blocked.ok === false && blocked.failure === 'rate_limited' && blocked.returnCode === 5 && blocked.retryAfterSeconds === 60);
  assert.is((await core.mqtt.authenticate({ address: '192.0.2.141', username: 'plug', password })).ok, true, 'another source is not blocked');
  clock.advance(60_000);
  assert.is((await core.mqtt.authenticate({ address: lan, username: 'plug', password })).ok, true, 'the block ends');
});

test.run();
