// /v1/egress over the real API app, callers identified by their tunnel address
// as the overlay listener would; no sockets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPair } from '../../shared/keys.ts';
import { createApi } from '../../cloud/api/api.ts';
import { identifyLocal } from '../../cloud/api/identify.ts';
import { createCore } from '../../cloud/core/core.ts';
import { callApi as call, isApiError as isError } from './lib/api-call.ts';
import { pairRequest, vmStates } from './vm-state.ts';

const freshVm = vmStates(test, 'egress-api');

const GATEWAY = '203.0.113.130';
const OWNER = '2001:db8:a0::3';
const MEMBER = '203.0.113.132';
const STRANGER = '198.51.100.7';

const WAN = {
  addresses: ['203.0.113.10', '203.0.113.11', '203.0.113.12', '2001:db8:203::10'],
  prefixes: ['203.0.113.0/25', '2001:db8:203::/64'],
};

function setup() {
  const { store, state } = freshVm();
  const core = createCore({ store, config: state, egressWan: () => WAN });
  const { code } = core.pairing.createCode();
  core.pairing.redeem(pairRequest(code));
  core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey });
  core.devices.add({ name: 'guest', role: 'member', publicKey: generateKeyPair().publicKey });
  const changes: string[] = [];
  core.events.on('egress-changed', (e) => changes.push(e.reason));
  const errors: unknown[] = [];
  const app = createApi({ core, logError: (e) => errors.push(e) }, (c) => core.identify(c.req.header('x-test-from') ?? ''));
  return { core, app, changes, errors };
}

test('an owner sets a pool, turns the temporary address on, rotates it, schedules it and adds exceptions', async () => {
  const { app, core, changes, errors } = setup();
  const start = await call(app, 'GET', '/v1/egress', OWNER);
  assert.is(start.status, 200);
  assert.is(start.json.mode, 'off');

  const pool = await call(app, 'PUT', '/v1/egress/pool', OWNER, { v6Prefix: '2001:db8:203::/64', v4: ['203.0.113.11', '203.0.113.12'] });
  assert.is(pool.status, 200);
  assert.equal(pool.json.pool, { v6Prefix: '2001:db8:203::/64', v4: ['203.0.113.11', '203.0.113.12'] });
  assert.is(pool.json.current.v4, '203.0.113.11');
  assert.match(pool.json.current.v6, /^2001:db8:203:0:/);

  // A gateway may do it too; no body means everyone.
  const on = await call(app, 'POST', '/v1/egress/enable', GATEWAY);
  assert.is(on.status, 200);
  assert.is(on.json.mode, 'global');
  const rotated = await call(app, 'POST', '/v1/egress/rotate', OWNER);
  assert.is(rotated.status, 200);
  assert.is(rotated.json.v4, '203.0.113.12');
  assert.is.not(rotated.json.v6, pool.json.current.v6);
  assert.equal(core.egress.firewall()?.v6, rotated.json.v6);

  const sched = await call(app, 'PUT', '/v1/egress/schedule', OWNER, { every: '1h' });
  assert.is(sched.json.schedule, '1h');
  assert.ok(sched.json.nextRotationAt);

  const ex = await call(app, 'POST', '/v1/egress/exceptions', OWNER, { value: 'example-bank.com' });
  assert.is(ex.status, 201);
  assert.equal(ex.json, { exception: { kind: 'domain', value: 'example-bank.com' } });
  await call(app, 'POST', '/v1/egress/exceptions', OWNER, { value: '198.51.100.0/24' });
  assert.equal((await call(app, 'GET', '/v1/egress/exceptions', OWNER)).json, { domains: ['example-bank.com'], prefixes: ['198.51.100.0/24'] });
  const del = await call(app, 'DELETE', '/v1/egress/exceptions', OWNER, { value: '198.51.100.0/24' });
  assert.equal(del.json, { exception: { kind: 'prefix', value: '198.51.100.0/24' } });

  const off = await call(app, 'POST', '/v1/egress/disable', OWNER, {});
  assert.is(off.json.mode, 'off');
  const phone = await call(app, 'POST', '/v1/egress/enable', OWNER, { device: 'phone' });
  assert.equal([phone.json.mode, phone.json.devices], ['devices', ['phone']]);
  assert.equal(changes, ['pool-set', 'enabled', 'rotated', 'schedule-set', 'exception-added', 'exception-added', 'exception-removed', 'disabled', 'enabled']);
  assert.equal(errors, []);
});

test('members, LAN devices and strangers may not touch egress', async () => {
  const { app, changes } = setup();
  const member = await call(app, 'PUT', '/v1/egress/pool', MEMBER, { v4: ['203.0.113.11'] });
  assert.is(member.status, 403);
  assert.ok(isError(member.json, 'forbidden'));
  assert.is((await call(app, 'GET', '/v1/egress', STRANGER)).status, 401);
  assert.is((await call(app, 'POST', '/v1/egress/rotate', '192.0.2.130')).status, 403);
  assert.equal(changes, []);
});

test("bad input: prefixes not the VM's, unknown devices, no pool, bad schedule; clear errors, nothing stored", async () => {
  const { app, core, changes, errors } = setup();
  const before = JSON.stringify(core.egress.get());
  const notOurs = await call(app, 'PUT', '/v1/egress/pool', OWNER, { v6Prefix: '2001:db8:99::/64' });
  assert.is(notOurs.status, 400);
  assert.ok(isError(notOurs.json, 'bad_request', /v6Prefix.*not the VM's/), JSON.stringify(notOurs.json));
  const v4 = await call(app, 'PUT', '/v1/egress/pool', OWNER, { v4: ['198.51.100.7'] });
  assert.ok(isError(v4.json, 'bad_request', /v4\[0\]/), JSON.stringify(v4.json));
  const noPool = await call(app, 'POST', '/v1/egress/enable', OWNER, {});
  assert.is(noPool.status, 409);
  assert.ok(isError(noPool.json, 'conflict', /no egress pool/));
  const noRotate = await call(app, 'POST', '/v1/egress/rotate', OWNER);
  assert.is(noRotate.status, 409);
  await call(app, 'PUT', '/v1/egress/pool', OWNER, { v4: ['203.0.113.11'] });
  const unknown = await call(app, 'POST', '/v1/egress/enable', OWNER, { device: 'nobody' });
  assert.is(unknown.status, 404);
  assert.ok(isError(unknown.json, 'not_found', /nobody/));
  const sched = await call(app, 'PUT', '/v1/egress/schedule', OWNER, { every: '1m' });
  assert.ok(isError(sched.json, 'bad_request', /every/), JSON.stringify(sched.json));
  const extra = await call(app, 'PUT', '/v1/egress/schedule', OWNER, { every: '1h', at: 'noon' });
  assert.ok(isError(extra.json, 'bad_request', /at/));
  const missing = await call(app, 'DELETE', '/v1/egress/exceptions', OWNER, { value: 'example.com' });
  assert.is(missing.status, 404);
  assert.is(core.egress.get().mode, 'off');
  assert.is.not(JSON.stringify(core.egress.get()), before, 'only the one good pool change was stored');
  assert.equal(changes, ['pool-set']);
  assert.equal(errors, []);
});

test('without a WAN view (no daemon to read it) setting the pool says so with 503', async () => {
  const { store, state } = freshVm();
  const core = createCore({ store, config: state });
  const app = createApi({ core, logError: () => {} }, identifyLocal);
  const res = await app.request('/v1/egress/pool', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"v4":["203.0.113.11"]}' });
  assert.is(res.status, 503);
  assert.match(await res.text(), /WAN addresses/);
});

test.run();
