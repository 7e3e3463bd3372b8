import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ValidationError } from '../../shared/errors.ts';
import { AERIE_METHODS, createAerieObject, type AerieHandlers } from '../../gateway/rpc/aerie-object.ts';
import { ubusStatusForHttp } from '../../gateway/rpc/errors.ts';
import { VM_SETTINGS } from '../../gateway/rpc/vm-settings.ts';
import { UBUS_STATUS, UbusError } from '../../gateway/ubus/error.ts';
import type { UbusMethod, UbusTable, UbusValue } from '../../gateway/ubus/types.ts';

const CODE = 'AERIE1-EXAMPLE-PAIRING-CODE-WITH-A-SECRET';
const SESSION = { ubus_rpc_session: '0123456789abcdef0123456789abcdef' };

interface Fake {
  object: Record<string, UbusMethod>;
  calls: unknown[][];
  logs: string[];
  /** Replaces a handler's behaviour for one test. */
  fail: Partial<Record<keyof AerieHandlers, () => Promise<UbusTable>>>;
}

function fake(): Fake {
  const calls: unknown[][] = [];
  const logs: string[] = [];
  const fail: Fake['fail'] = {};
  const h = (name: keyof AerieHandlers, result: UbusTable) =>
    (...args: unknown[]) => {
      calls.push([name, ...args]);
      const f = fail[name];
      return f ? f() : Promise.resolve(result);
    };
  const handlers: AerieHandlers = {
    status: h('status', { state: 'up', warnings: [] }),
    pair: h('pair', { name: 'home', vm: '203.0.113.10:51820', addresses: ['100.64.0.2/32'] }),
    unpair: h('unpair', {}),
    settings: h('settings', { blocking: true, blockMode: 'null', upstreams: ['udp:127.0.0.1'] }),
    set: h('set', { ok: true }),
    devices: h('devices', { devices: [] }),
    deviceAdd: h('deviceAdd', { name: 'phone', config: '[Interface]\n', qr_svg: '<svg/>' }),
    deviceRemove: h('deviceRemove', { name: 'phone' }),
  };
  return { object: createAerieObject(handlers, { log: (m) => logs.push(m), now: () => 1_700_000_000_000 }), calls, logs, fail };
}

async function call(f: Fake, method: string, args: UbusTable = {}): Promise<UbusTable | void> {
  const m = f.object[method];
  assert.ok(m, `aerie has no method ${method}`);
  return m.handler(args, {});
}

async function refused(p: Promise<unknown>): Promise<UbusError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, UbusError, `expected a UbusError, got ${String(e)}`);
    return e as UbusError;
  }
  assert.unreachable('the call succeeded');
  throw new Error('unreachable');
}

async function invalid(p: Promise<unknown>, field: string): Promise<UbusError> {
  const e = await refused(p);
  assert.is(e.status, UBUS_STATUS.INVALID_ARGUMENT, e.message);
  const name = field.replace(/[[\]]/g, '\\$&');
  assert.match(e.message, new RegExp(`(^|\\W)${name}(?!\\w)`), `the message names ${field}`);
  return e;
}

test('the registered methods and their signatures are those of the contract', () => {
  const f = fake();
  assert.equal(Object.keys(f.object).sort(), ['device_add', 'device_remove', 'devices', 'pair', 'set', 'settings', 'status', 'unpair']);
  const access = Object.fromEntries(Object.entries(AERIE_METHODS).map(([k, v]) => [k, v.access]));
  assert.equal(access, {
    status: 'read', settings: 'read', devices: 'read',
    pair: 'write', unpair: 'write', set: 'write', device_add: 'write', device_remove: 'write',
  });
  for (const [name, spec] of Object.entries(AERIE_METHODS)) assert.equal(f.object[name]!.args, spec.args, name);
  assert.equal(f.object['set']!.args, { key: 'string', value: 'unspec' });
  assert.equal(f.object['device_add']!.args, { name: 'string', role: 'string' });
});

test('each method reaches its handler with its arguments and answers a table', async () => {
  const f = fake();
  assert.equal(await call(f, 'pair', { code: ` ${CODE} ` }), { name: 'home', vm: '203.0.113.10:51820', addresses: ['100.64.0.2/32'] });
  assert.equal(await call(f, 'unpair'), {});
  assert.equal(await call(f, 'settings'), { blocking: true, blockMode: 'null', upstreams: ['udp:127.0.0.1'] });
  assert.equal(await call(f, 'set', { key: 'blocking', value: false }), { ok: true });
  assert.equal(await call(f, 'devices'), { devices: [] });
  assert.equal(await call(f, 'device_add', { name: 'phone', role: 'member' }), { name: 'phone', config: '[Interface]\n', qr_svg: '<svg/>' });
  assert.equal(await call(f, 'device_remove', { name: 'phone' }), { name: 'phone' });
  assert.equal(f.calls, [
    ['pair', CODE],
    ['unpair'],
    ['settings'],
    ['set', 'blocking', false],
    ['devices'],
    ['deviceAdd', 'phone', 'member'],
    ['deviceRemove', 'phone'],
  ]);
});

test("rpcd's session id is accepted on every method and not passed on", async () => {
  const f = fake();
  assert.equal(await call(f, 'status', { ...SESSION }), { state: 'up', warnings: [], last_error: null });
  await call(f, 'device_remove', { name: 'tablet', ...SESSION });
  assert.equal(f.calls, [['status'], ['deviceRemove', 'tablet']]);
});

test('a missing argument is INVALID_ARGUMENT naming it, and the handler is not called', async () => {
  const f = fake();
  await invalid(call(f, 'pair', {}), 'code');
  await invalid(call(f, 'device_add', { name: 'phone' }), 'role');
  await invalid(call(f, 'device_remove', {}), 'name');
  await invalid(call(f, 'set', { key: 'blocking' }), 'value');
  assert.equal(f.calls, []);
});

test('an argument the method does not take is refused by name', async () => {
  const f = fake();
  const e = await invalid(call(f, 'status', { verbose: true }), 'verbose');
  assert.match(e.message, /no arguments/);
  await invalid(call(f, 'device_add', { name: 'phone', role: 'member', split: true }), 'split');
  await invalid(call(f, 'pair', { code: CODE, constructor: 'x' }), 'constructor');
  assert.equal(f.calls, []);
});

test('an argument of the wrong type is refused by name', async () => {
  const f = fake();
  await invalid(call(f, 'pair', { code: 42 }), 'code');
  await invalid(call(f, 'device_add', { name: ['phone'], role: 'member' }), 'name');
  await invalid(call(f, 'set', { key: true, value: true }), 'key');
  assert.equal(f.calls, []);
});

test('values are checked too: pairing code, device name and role, VM setting', async () => {
  const f = fake();
  const e = await invalid(call(f, 'pair', { code: '   ' }), 'code');
  await invalid(call(f, 'pair', { code: 'x'.repeat(5000) }), 'code');
  await invalid(call(f, 'device_add', { name: 'Living Room', role: 'member' }), 'name');
  await invalid(call(f, 'device_add', { name: 'x'.repeat(33), role: 'member' }), 'name');
  await invalid(call(f, 'device_add', { name: 'phone', role: 'gateway' }), 'role');
  await invalid(call(f, 'device_remove', { name: '../etc' }), 'name');
  await invalid(call(f, 'set', { key: 'firewall', value: true }), 'key');
  await invalid(call(f, 'set', { key: 'constructor', value: true }), 'key');
  await invalid(call(f, 'set', { key: 'blocking', value: 'yes' }), 'value');
  await invalid(call(f, 'set', { key: 'blockMode', value: 'zero' }), 'value');
  await invalid(call(f, 'set', { key: 'upstreams', value: [] }), 'value');
  await invalid(call(f, 'set', { key: 'upstreams', value: ['udp:127.0.0.1', 7] }), 'value');
  await invalid(call(f, 'set', { key: 'upstreams', value: Array(9).fill('udp:127.0.0.1') }), 'value');
  assert.equal(f.calls, []);
  assert.not.match(e.message, /AERIE1/);
});

test('every VM setting takes a value of its shape', async () => {
  const f = fake();
  const good: Record<string, UbusValue> = { blocking: true, blockMode: 'nxdomain', upstreams: ['udp:127.0.0.1', 'dot:dns.example@192.0.2.1'] };
  assert.equal(Object.keys(good).sort(), Object.keys(VM_SETTINGS).sort());
  for (const [key, value] of Object.entries(good)) await call(f, 'set', { key, value });
  assert.equal(f.calls.map((c) => c[1]), Object.keys(good));
});

test('a failing handler is a ubus error status, not a crash', async () => {
  const f = fake();
  f.fail.pair = () => Promise.reject(new Error('the VM refused the code: it expired'));
  const e = await refused(call(f, 'pair', { code: CODE }));
  assert.is(e.status, UBUS_STATUS.UNKNOWN_ERROR);

  f.fail.deviceRemove = () => Promise.reject(new UbusError(UBUS_STATUS.NOT_FOUND, 'there is no device named "tablet"'));
  assert.is((await refused(call(f, 'device_remove', { name: 'tablet' }))).status, UBUS_STATUS.NOT_FOUND);

  f.fail.set = () => Promise.reject(new ValidationError('upstreams[0]', 'expected an upstream such as udp:127.0.0.1'));
  const v = await invalid(call(f, 'set', { key: 'upstreams', value: ['bogus'] }), 'upstreams[0]');
  assert.match(v.message, /expected an upstream/);

  f.fail.devices = () => {
    throw new TypeError('synchronous bug');
  };
  assert.is((await refused(call(f, 'devices'))).status, UBUS_STATUS.UNKNOWN_ERROR);
  // The object still answers afterwards.
  assert.equal(await call(f, 'settings'), { blocking: true, blockMode: 'null', upstreams: ['udp:127.0.0.1'] });
});

test('a result that is not a table is refused; undefined members are dropped', async () => {
  const f = fake();
  f.fail.devices = () => Promise.resolve([1, 2] as unknown as UbusTable);
  assert.is((await refused(call(f, 'devices'))).status, UBUS_STATUS.UNKNOWN_ERROR);
  f.fail.settings = () => Promise.resolve({ at: new Date(0) } as unknown as UbusTable);
  assert.match((await refused(call(f, 'settings'))).message, /settings\.at/);
  f.fail.unpair = () => Promise.resolve(undefined as unknown as UbusTable);
  assert.equal(await call(f, 'unpair'), {});
  f.fail.deviceRemove = () => Promise.resolve({ name: 'phone', lastHandshake: undefined, nested: { a: undefined, b: [1n] } } as unknown as UbusTable);
  assert.equal(await call(f, 'device_remove', { name: 'phone' }), { name: 'phone', nested: { b: [1n] } });
});

test("status says why the last action failed, until that action succeeds; the log says it too", async () => {
  const f = fake();
  f.fail.pair = () => Promise.reject(new Error('the VM refused the code: it expired'));
  await refused(call(f, 'pair', { code: CODE }));
  const s = (await call(f, 'status')) as UbusTable;
  assert.equal(s['last_error'], { method: 'pair', message: 'the VM refused the code: it expired', at: 1_700_000_000 });
  assert.equal(f.logs, ['ubus aerie.pair: UNKNOWN_ERROR: the VM refused the code: it expired']);

  // An argument error counts too, and names the field.
  await refused(call(f, 'device_add', { name: 'Phone', role: 'member' }));
  assert.equal(((await call(f, 'status')) as UbusTable)['last_error'], {
    method: 'device_add',
    message: ((await refused(call(f, 'device_add', { name: 'Phone', role: 'member' }))).message),
    at: 1_700_000_000,
  });
  await call(f, 'device_add', { name: 'phone', role: 'owner' });
  assert.is(((await call(f, 'status')) as UbusTable)['last_error'], null);
  assert.ok(f.logs.every((l) => !l.includes(CODE)), 'the pairing code is never logged');
});

test('a failing status is reported but does not replace the last action error', async () => {
  const f = fake();
  f.fail.unpair = () => Promise.reject(new Error('not paired'));
  await refused(call(f, 'unpair'));
  f.fail.status = () => Promise.reject(new Error('wg show failed'));
  await refused(call(f, 'status'));
  delete f.fail.status;
  assert.equal(((await call(f, 'status')) as UbusTable)['last_error'], { method: 'unpair', message: 'not paired', at: 1_700_000_000 });
});

test('HTTP answers of the VM map to the nearest ubus status', () => {
  assert.is(ubusStatusForHttp(200), UBUS_STATUS.OK);
  assert.is(ubusStatusForHttp(400), UBUS_STATUS.INVALID_ARGUMENT);
  assert.is(ubusStatusForHttp(403), UBUS_STATUS.PERMISSION_DENIED);
  assert.is(ubusStatusForHttp(404), UBUS_STATUS.NOT_FOUND);
  assert.is(ubusStatusForHttp(503), UBUS_STATUS.CONNECTION_FAILED);
  assert.is(ubusStatusForHttp(500), UBUS_STATUS.UNKNOWN_ERROR);
});

test.run();
