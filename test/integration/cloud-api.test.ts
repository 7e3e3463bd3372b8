import { createAdaptorServer } from '@hono/node-server';
import { request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePrefix } from '../../shared/cidr.ts';
import { generateKeyPair } from '../../shared/keys.ts';
import { decodePairingCode } from '../../shared/pairing-code.ts';
import { createApi } from '../../cloud/api/api.ts';
import { identifyLocal, identifyOverlay } from '../../cloud/api/identify.ts';
import { createCore, type Core } from '../../cloud/core/core.ts';
import { pairRequest, vmStates } from './vm-state.ts';

const freshVm = vmStates(test, 'api');

/** A VM with a gateway "home" (.2, LAN 192.0.2.128/25), an owner "phone" (.3) and a member "guest" (.4). */
function setup(overlay?: { v4: string; v6: string }) {
  const { store, state } = freshVm();
  // Tests over real sockets use a loopback overlay, so that a client can bind a device's address.
  const config = overlay ? { ...state, overlay: { v4: parsePrefix(overlay.v4), v6: parsePrefix(overlay.v6) } } : state;
  const core = createCore({ store, config });
  const { code } = core.pairing.createCode();
  core.pairing.redeem(pairRequest(code));
  core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey });
  core.devices.add({ name: 'guest', role: 'member', publicKey: generateKeyPair().publicKey });
  return { core, store, state };
}

/** The overlay API where a test header stands in for the tunnel source address. */
function overlayApp(core: Core) {
  return createApi({ core, logError: () => {} }, (c) => core.identify(c.req.header('x-test-from') ?? ''));
}

const GATEWAY = '203.0.113.130';
const OWNER = '2001:db8:a0::3';
const MEMBER = '203.0.113.132';
const LAN = '192.0.2.130';
const STRANGER = '198.51.100.7';

async function call(app: ReturnType<typeof overlayApp>, method: string, path: string, from: string, body?: string) {
  const res = await app.request(path, { method, headers: { 'x-test-from': from, 'content-type': 'application/json' }, body });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, any> };
}

const isError = (json: Record<string, any>, code: string) =>
  typeof json.error?.message === 'string' && json.error.code === code && Object.keys(json).length === 1;

test('health answers anyone; whoami needs a known address', async () => {
  const { core } = setup();
  const app = overlayApp(core);
  assert.equal((await call(app, 'GET', '/v1/health', STRANGER)).json, { ok: true });
  const denied = await call(app, 'GET', '/v1/whoami', STRANGER);
  assert.is(denied.status, 401);
  assert.ok(isError(denied.json, 'unauthorized'), JSON.stringify(denied.json));
  assert.equal((await call(app, 'GET', '/v1/whoami', GATEWAY)).json, { name: 'home', role: 'gateway', address: GATEWAY });
  assert.equal((await call(app, 'GET', '/v1/whoami', OWNER)).json, { name: 'phone', role: 'owner', address: OWNER });
  assert.equal((await call(app, 'GET', '/v1/whoami', LAN)).json, { name: 'home', role: 'lan', address: LAN, gateway: 'home' });
});

test('members, home LAN devices and strangers cannot use admin calls', async () => {
  const { core } = setup();
  const app = overlayApp(core);
  const calls: [string, string, string?][] = [
    ['GET', '/v1/status'],
    ['GET', '/v1/devices'],
    ['POST', '/v1/devices', JSON.stringify({ name: 'sneaky' })],
    ['DELETE', '/v1/devices/phone'],
    ['POST', '/v1/pairing-codes', '{}'],
  ];
  for (const [method, path, body] of calls) {
    for (const [from, status] of [[MEMBER, 403], [LAN, 403], [STRANGER, 401]] as const) {
      const res = await call(app, method, path, from, body);
      assert.is(res.status, status, `${method} ${path} from ${from}`);
      assert.ok(isError(res.json, status === 403 ? 'forbidden' : 'unauthorized'));
    }
  }
  assert.equal(core.devices.list().map((d) => d.name), ['home', 'phone', 'guest'], 'nothing changed');
});

test('gateways and owners manage devices', async () => {
  const { core, state } = setup();
  const app = overlayApp(core);
  const status = await call(app, 'GET', '/v1/status', OWNER);
  assert.is(status.status, 200);
  assert.is(status.json.publicKey, state.publicKey);
  assert.equal(status.json.peers.map((p: { name: string }) => p.name), ['home', 'phone', 'guest']);
  const list = await call(app, 'GET', '/v1/devices', GATEWAY);
  assert.equal(list.json.devices[0].lanPrefixes, ['192.0.2.128/25', '2001:db8:1a::/64']);

  const added = await call(app, 'POST', '/v1/devices', GATEWAY, JSON.stringify({ name: 'laptop', split: true }));
  assert.is(added.status, 201);
  assert.is(added.headers.get('cache-control'), 'no-store');
  assert.equal(added.json.device.addresses, ['203.0.113.133', '2001:db8:a0::5']);
  assert.match(added.json.config, /^PrivateKey = /m);
  assert.match(added.json.config, /AllowedIPs = 203\.0\.113\.128\/25, 2001:db8:a0::\/64, 192\.0\.2\.128\/25, 2001:db8:1a::\/64/);
  const own = generateKeyPair().publicKey;
  const withKey = await call(app, 'POST', '/v1/devices', OWNER, JSON.stringify({ name: 'tablet', publicKey: own, role: 'member' }));
  assert.is(withKey.status, 201);
  assert.is(withKey.json.config, undefined, 'no config when the device brought its own key');
  assert.is(withKey.json.device.publicKey, own);

  const removed = await call(app, 'DELETE', '/v1/devices/laptop', OWNER);
  assert.is(removed.status, 200);
  assert.is(removed.json.device.name, 'laptop');
  const again = await call(app, 'DELETE', '/v1/devices/laptop', OWNER);
  assert.is(again.status, 404);
  assert.ok(isError(again.json, 'not_found'));

  const code = await call(app, 'POST', '/v1/pairing-codes', GATEWAY, '');
  assert.is(code.status, 201);
  assert.is(decodePairingCode(code.json.code).port, 8443);
  const longer = await call(app, 'POST', '/v1/pairing-codes', GATEWAY, JSON.stringify({ ttlSeconds: 3600 }));
  assert.ok(Date.parse(longer.json.expiresAt) - Date.now() > 3500_000);
});

test('bad bodies get 400 naming the field, 409 on conflicts, 413 when huge', async () => {
  const { core } = setup();
  const app = overlayApp(core);
  const cases: [string, number, string, RegExp][] = [
    ['not json', 400, 'invalid_json', /not valid JSON/],
    ['', 400, 'bad_request', /^body: expected an object/],
    ['[]', 400, 'bad_request', /^body: expected an object, got a list/],
    ['{"name": 5}', 400, 'bad_request', /^name: expected a string, got 5/],
    ['{"name": "ok", "role": "gateway"}', 400, 'bad_request', /^role: expected one of/],
    ['{"name": "ok", "publicKey": "AAAA"}', 400, 'bad_request', /^publicKey: /],
    ['{"name": "ok", "split": "yes"}', 400, 'bad_request', /^split: /],
    ['{"name": "phone"}', 409, 'conflict', /already exists/],
    [JSON.stringify({ name: 'x'.repeat(20_000) }), 413, 'payload_too_large', /at most 8192 bytes/],
  ];
  for (const [body, status, code, message] of cases) {
    const res = await call(app, 'POST', '/v1/devices', OWNER, body);
    assert.is(res.status, status, body.slice(0, 40));
    assert.ok(isError(res.json, code), JSON.stringify(res.json));
    assert.match(res.json.error.message, message);
  }
  const badTtl = await call(app, 'POST', '/v1/pairing-codes', OWNER, '{"ttlSeconds": "soon"}');
  assert.is(badTtl.status, 400);
  assert.match(badTtl.json.error.message, /^ttlSeconds: /);
  const badName = await call(app, 'DELETE', '/v1/devices/NOT%20A%20NAME', OWNER);
  assert.is(badName.status, 400);
  assert.equal(core.devices.list().map((d) => d.name), ['home', 'phone', 'guest']);
});

test('unknown endpoints are JSON 404s', async () => {
  const { core } = setup();
  const res = await call(overlayApp(core), 'GET', '/v1/nothing', OWNER);
  assert.is(res.status, 404);
  assert.ok(isError(res.json, 'not_found'));
  assert.is((await call(overlayApp(core), 'PUT', '/v1/devices', OWNER, '{}')).status, 404);
});

test('an internal failure is a 500 that reveals nothing', async () => {
  const { core, store } = setup();
  const errors: unknown[] = [];
  const app = createApi({ core, logError: (e) => errors.push(e) }, () => ({ name: 'phone', role: 'owner', address: OWNER }));
  store.close(); // every store call now fails
  const res = await app.request('/v1/status');
  assert.is(res.status, 500);
  assert.equal(await res.json(), { error: { code: 'internal', message: 'internal error' } });
  assert.is(errors.length, 1);
});

test('the local root identity of the control socket may do everything', async () => {
  const { core } = setup();
  const app = createApi({ core }, identifyLocal);
  assert.equal(await (await app.request('/v1/whoami')).json(), { name: 'root', role: 'local', address: 'control-socket' });
  assert.is((await app.request('/v1/status')).status, 200);
  assert.is((await app.request('/v1/devices/guest', { method: 'DELETE' })).status, 200);
});

// ---- over a real HTTP server, identity from the socket's source address ----

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port));
  });
}

function httpCall(port: number, host: string, from: string, method: string, path: string, body?: string) {
  return new Promise<{ status: number; json: any }>((resolve, reject) => {
    const req = httpRequest({ host, port, method, path, localAddress: from, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

test('over real HTTP the source address is the identity (IPv4 and v4-mapped IPv6 sockets)', async () => {
  // Overlay 127.77.0.0/24: the VM is 127.77.0.1, home .2, phone .3, guest .4 (all on lo).
  const { core } = setup({ v4: '127.77.0.0/24', v6: 'fd00:77::/64' });
  const app = createApi({ core }, identifyOverlay(core));
  for (const bind of ['127.77.0.1', '::ffff:127.77.0.1']) {
    const server = createAdaptorServer({ fetch: app.fetch }) as Server;
    try {
      const port = await listen(server, bind);
      const who = await httpCall(port, '127.77.0.1', '127.77.0.3', 'GET', '/v1/whoami');
      assert.equal(who.json, { name: 'phone', role: 'owner', address: '127.77.0.3' }, bind);
      assert.is((await httpCall(port, '127.77.0.1', '127.77.0.4', 'GET', '/v1/status')).status, 403, 'member');
      assert.is((await httpCall(port, '127.77.0.1', '127.77.0.9', 'GET', '/v1/whoami')).status, 401, 'unknown');
      const add = await httpCall(port, '127.77.0.1', '127.77.0.2', 'POST', '/v1/devices', JSON.stringify({ name: `d${port}` }));
      assert.is(add.status, 201, 'gateway adds a device');
      assert.match(add.json.config, /Endpoint = 203\.0\.113\.10:51820/);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }
});

test.run();
