// /v1/mqtt: the owner's MQTT users and grants over the API, driven without sockets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPair } from '../../shared/keys.ts';
import { createApi } from '../../cloud/api/api.ts';
import { createCore } from '../../cloud/core/core.ts';
import { callApi as call, isApiError as isError } from './lib/api-call.ts';
import { pairRequest, vmStates } from './vm-state.ts';

const freshVm = vmStates(test, 'mqtt-api');

/** A VM with a gateway "home" (.2), an owner "phone" (.3) and a member "guest" (.4). */
function setup() {
  const { store, state } = freshVm();
  const core = createCore({ store, config: state });
  const { code } = core.pairing.createCode();
  core.pairing.redeem(pairRequest(code));
  core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey });
  core.devices.add({ name: 'guest', role: 'member', publicKey: generateKeyPair().publicKey });
  const app = createApi({ core, logError: () => {} }, (c) => core.identify(c.req.header('x-test-from') ?? ''));
  return { core, store, app };
}

const GATEWAY = '203.0.113.130';
const OWNER = '2001:db8:a0::3';
const MEMBER = '203.0.113.132';
const LAN = '192.0.2.130';
const STRANGER = '198.51.100.7';

test('an owner adds a user: the password comes once, with where to connect, and works; lists never show it', async () => {
  const { app, core } = setup();
  const added = await call(app, 'POST', '/v1/mqtt/users', OWNER, { name: 'plug' });
  assert.is(added.status, 201);
  assert.is(added.headers.get('cache-control'), 'no-store');
  assert.equal(Object.keys(added.json).sort(), ['broker', 'password', 'user']);
  assert.equal({ ...added.json.user, createdAt: undefined }, { name: 'plug', prefix: 'home/plug/#', createdAt: undefined });
  assert.equal(added.json.broker, { hosts: ['203.0.113.129', '2001:db8:a0::1'], port: 1883 });
  const password: string = added.json.password;
  assert.match(password, /^[0-9a-z]{26}$/);
  assert.ok(await core.mqtt.users.verify('plug', password), 'the password in the reply logs in');

  const custom = await call(app, 'POST', '/v1/mqtt/users', GATEWAY, { name: 'sensor', prefix: 'garden/sensor' });
  assert.is(custom.status, 201, 'a gateway may do it too');
  assert.is(custom.json.user.prefix, 'garden/sensor/#');
  assert.is.not(custom.json.password, password);

  const list = await call(app, 'GET', '/v1/mqtt/users', GATEWAY);
  assert.is(list.status, 200);
  assert.equal(list.json.users.map((u: Record<string, unknown>) => Object.keys(u).sort()), [
    ['createdAt', 'name', 'prefix'],
    ['createdAt', 'name', 'prefix'],
  ]);
  assert.equal(list.json.users.map((u: { name: string; prefix: string }) => [u.name, u.prefix]), [
    ['plug', 'home/plug/#'],
    ['sensor', 'garden/sensor/#'],
  ]);
  assert.not.ok(list.text.includes(password), 'no password in the list');
  assert.not.ok(/hash|salt|password/i.test(list.text), 'nothing about the hash either');
});

test('removing a user ends its password and its grants; unknown users are 404', async () => {
  const { app, core } = setup();
  const { json } = await call(app, 'POST', '/v1/mqtt/users', OWNER, { name: 'plug' });
  await call(app, 'POST', '/v1/mqtt/grants', OWNER, { name: 'plug', action: 'read', filter: 'garden/#' });
  const removed = await call(app, 'DELETE', '/v1/mqtt/users/plug', GATEWAY);
  assert.is(removed.status, 200);
  assert.is(removed.json.user.name, 'plug');
  assert.is(await core.mqtt.users.verify('plug', json.password), null);
  assert.equal(core.mqtt.grants.list(), [], 'its grants went with it');

  const again = await call(app, 'DELETE', '/v1/mqtt/users/plug', OWNER);
  assert.is(again.status, 404);
  assert.ok(isError(again.json, 'not_found'), again.text);
  assert.match(again.json.error.message, /no MQTT user named "plug"/);
});

test('grants: add, list all or by name, idempotent, revoke with the same body; the broker rules follow', async () => {
  const { app, core } = setup();
  await call(app, 'POST', '/v1/mqtt/users', OWNER, { name: 'plug' });
  const plug = { kind: 'user', name: 'plug', prefix: 'home/plug/#' } as const;
  assert.not.ok(core.mqtt.access(plug, 'subscribe', 'garden/+/temp').allowed, 'not before the grant');

  const g1 = await call(app, 'POST', '/v1/mqtt/grants', OWNER, { name: 'plug', action: 'read', filter: 'garden/+/temp' });
  assert.is(g1.status, 200);
  assert.equal({ ...g1.json.grant, createdAt: undefined }, { name: 'plug', kind: 'user', action: 'read', filter: 'garden/+/temp', createdAt: undefined });
  const g2 = await call(app, 'POST', '/v1/mqtt/grants', GATEWAY, { name: 'guest', action: 'write', filter: 'lights/#' });
  assert.is(g2.json.grant.kind, 'device', 'a tunnel device can be granted topics too');
  const dup = await call(app, 'POST', '/v1/mqtt/grants', OWNER, { name: 'plug', action: 'read', filter: 'garden/+/temp' });
  assert.is(dup.status, 200);
  assert.is(dup.json.grant.createdAt, g1.json.grant.createdAt, 'granting twice keeps the first');
  assert.ok(core.mqtt.access(plug, 'subscribe', 'garden/+/temp').allowed, 'the broker sees the grant');

  const all = await call(app, 'GET', '/v1/mqtt/grants', OWNER);
  assert.equal(all.json.grants.map((g: { name: string; filter: string }) => `${g.name} ${g.filter}`), ['guest lights/#', 'plug garden/+/temp']);
  const mine = await call(app, 'GET', '/v1/mqtt/grants?name=plug', GATEWAY);
  assert.equal(mine.json.grants.map((g: { filter: string }) => g.filter), ['garden/+/temp']);

  const revoked = await call(app, 'DELETE', '/v1/mqtt/grants', OWNER, { name: 'plug', action: 'read', filter: 'garden/+/temp' });
  assert.is(revoked.status, 200);
  assert.is(revoked.json.grant.filter, 'garden/+/temp');
  assert.not.ok(core.mqtt.access(plug, 'subscribe', 'garden/+/temp').allowed, 'revoked at once');
  const twice = await call(app, 'DELETE', '/v1/mqtt/grants', OWNER, { name: 'plug', action: 'read', filter: 'garden/+/temp' });
  assert.is(twice.status, 404);
  assert.ok(isError(twice.json, 'not_found'), twice.text);

  for (const [method, path, body] of [
    ['GET', '/v1/mqtt/grants?name=nobody', undefined],
    ['POST', '/v1/mqtt/grants', { name: 'nobody', action: 'read', filter: 'a/#' }],
    ['DELETE', '/v1/mqtt/grants', { name: 'nobody', action: 'read', filter: 'a/#' }],
  ] as const) {
    const res = await call(app, method, path, OWNER, body);
    assert.is(res.status, 404, `${method} ${path}`);
    assert.ok(isError(res.json, 'not_found'), res.text);
    assert.match(res.json.error.message, /no MQTT user or device named "nobody"/);
  }
  assert.equal(core.mqtt.grants.list().map((g) => g.name), ['guest']);
});

test('who is connected needs the running broker: without it, 503 and why', async () => {
  const { app } = setup();
  const res = await call(app, 'GET', '/v1/mqtt/clients', OWNER);
  assert.is(res.status, 503);
  assert.ok(isError(res.json, 'unavailable'), res.text);
  assert.match(res.json.error.message, /needs the running daemon/);
});

test('members, home devices and strangers can do none of it', async () => {
  const { app, core } = setup();
  await call(app, 'POST', '/v1/mqtt/users', OWNER, { name: 'plug' });
  const calls: [string, string, unknown?][] = [
    ['GET', '/v1/mqtt/users'],
    ['POST', '/v1/mqtt/users', { name: 'sneaky' }],
    ['DELETE', '/v1/mqtt/users/plug'],
    ['GET', '/v1/mqtt/grants'],
    ['POST', '/v1/mqtt/grants', { name: 'guest', action: 'read', filter: '#' }],
    ['DELETE', '/v1/mqtt/grants', { name: 'plug', action: 'read', filter: '#' }],
    ['GET', '/v1/mqtt/clients'],
  ];
  for (const [method, path, body] of calls) {
    for (const [from, status] of [[MEMBER, 403], [LAN, 403], [STRANGER, 401]] as const) {
      const res = await call(app, method, path, from, body);
      assert.is(res.status, status, `${method} ${path} from ${from}`);
      assert.ok(isError(res.json, status === 403 ? 'forbidden' : 'unauthorized'), res.text);
    }
  }
  assert.equal(core.mqtt.users.list().map((u) => u.name), ['plug'], 'nothing added or removed');
  assert.equal(core.mqtt.grants.list(), []);
});

test('bad input is a 400 naming the field, and nothing is stored', async () => {
  const { app, core } = setup();
  const users: [unknown, RegExp][] = [
    ['', /^body: expected an object/],
    ['[]', /^body: expected an object/],
    [{}, /^name: /],
    [{ name: 5 }, /^name: expected a string/],
    [{ name: 'Living Room' }, /^name: expected a device name/],
    [{ name: 'plug', prefix: 'home/+/plug' }, /^prefix: /],
    [{ name: 'plug', prefix: 'aerie/plug' }, /^prefix: aerie\/ is reserved/],
    [{ name: 'plug', prefix: '$SYS/plug' }, /^prefix: /],
    [{ name: 'plug', prefix: 7 }, /^prefix: /],
  ];
  for (const [body, message] of users) {
    const res = await call(app, 'POST', '/v1/mqtt/users', OWNER, body);
    assert.is(res.status, 400, JSON.stringify(body));
    assert.ok(isError(res.json, 'bad_request'), res.text);
    assert.match(res.json.error.message, message);
    assert.not.ok('password' in res.json);
  }
  assert.equal(core.mqtt.users.list(), []);

  await call(app, 'POST', '/v1/mqtt/users', OWNER, { name: 'plug' });
  const grants: [unknown, RegExp][] = [
    [{ name: 'plug', action: 'delete', filter: 'a/#' }, /^action: expected "read" or "write"/],
    [{ name: 'plug', action: 'read' }, /^filter: /],
    [{ name: 'plug', action: 'read', filter: 'a/#/b' }, /^filter: /],
    [{ name: 'plug', action: 'read', filter: '$SYS/#' }, /^filter: "\$" topics cannot be granted/],
    [{ name: 'plug', action: 'write', filter: 'aerie/gw/home/cmd/reboot' }, /^filter: aerie\/ topics are written only/],
    [{ name: 'Plug!', action: 'read', filter: 'a/#' }, /^name: /],
  ];
  for (const method of ['POST', 'DELETE']) {
    for (const [body, message] of grants) {
      const res = await call(app, method, '/v1/mqtt/grants', OWNER, body);
      assert.is(res.status, 400, `${method} ${JSON.stringify(body)}`);
      assert.ok(isError(res.json, 'bad_request'), res.text);
      assert.match(res.json.error.message, message);
    }
  }
  const badQuery = await call(app, 'GET', '/v1/mqtt/grants?name=', OWNER);
  assert.is(badQuery.status, 400);
  assert.match(badQuery.json.error.message, /^name: /);
  const badPath = await call(app, 'DELETE', '/v1/mqtt/users/NOT%20A%20NAME', OWNER);
  assert.is(badPath.status, 400);
  assert.match(badPath.json.error.message, /^name: /);
  assert.equal(core.mqtt.users.list().map((u) => u.name), ['plug']);
  assert.equal(core.mqtt.grants.list(), []);
});

test('a name taken by a device or another user is a 409, and a device cannot take a user\'s name', async () => {
  const { app, core } = setup();
  for (const name of ['phone', 'home']) {
    const res = await call(app, 'POST', '/v1/mqtt/users', OWNER, { name });
    assert.is(res.status, 409, name);
    assert.ok(isError(res.json, 'conflict'), res.text);
    assert.match(res.json.error.message, /already a device's name/);
  }
  const first = await call(app, 'POST', '/v1/mqtt/users', OWNER, { name: 'plug' });
  const second = await call(app, 'POST', '/v1/mqtt/users', GATEWAY, { name: 'plug', prefix: 'other/plug' });
  assert.is(second.status, 409);
  assert.match(second.json.error.message, /already exists/);
  assert.not.ok('password' in second.json);
  assert.ok(await core.mqtt.users.verify('plug', first.json.password), 'the first password still works');
  assert.is(core.mqtt.users.get('plug')?.prefix, 'home/plug/#', 'and the prefix is unchanged');

  const device = await call(app, 'POST', '/v1/devices', OWNER, { name: 'plug' });
  assert.is(device.status, 409);
  assert.match(device.json.error.message, /already an MQTT user's name/);
});

test.run();
