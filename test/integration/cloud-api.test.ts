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
  assert.equal(list.json.devices[0].lanPrefixes, ['192.0.2.128/25', '2001:db8:1a::/64', '2001:db8:a0:2::/64']);

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

// ---- web pages: CSRF and DNS rebinding (identity is the source address, so a browser on a device carries it) ----

const VM_HOSTS = ['203.0.113.129', '2001:db8:a0::1'];

/** The overlay API as served by the daemon (Host checked); `headers` replace the defaults. */
async function guarded(core: Core, method: string, path: string, headers: Record<string, string>, body?: string) {
  const app = createApi({ core, logError: () => {}, allowedHosts: VM_HOSTS }, (c) => core.identify(c.req.header('x-test-from') ?? ''));
  const res = await app.request(path, { method, headers: { 'x-test-from': OWNER, host: '203.0.113.129', ...headers }, body });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, any> };
}

test('a body that is not declared application/json is refused with 415 and nothing is added', async () => {
  const { core } = setup();
  const app = overlayApp(core);
  const body = JSON.stringify({ name: 'evil', role: 'owner' });
  for (const type of ['text/plain', 'text/plain;charset=UTF-8', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', undefined]) {
    // A web page's "simple" request: a fetch() with a string body defaults to text/plain.
    const headers: Record<string, string> = { 'x-test-from': OWNER, ...(type && { 'content-type': type }) };
    const res = await app.request('/v1/devices', { method: 'POST', headers, body });
    assert.is(res.status, 415, String(type));
    const json = (await res.json()) as Record<string, any>;
    assert.ok(isError(json, 'unsupported_media_type'), JSON.stringify(json));
    assert.match(json.error.message, /Content-Type: application\/json/);
  }
  const code = await app.request('/v1/pairing-codes', { method: 'POST', headers: { 'x-test-from': OWNER }, body: '{}' });
  assert.is(code.status, 415, 'no pairing code for a web page either');
  assert.equal(core.devices.list().map((d) => d.name), ['home', 'phone', 'guest'], 'nothing added');
  const ok = await app.request('/v1/devices', {
    method: 'POST',
    headers: { 'x-test-from': OWNER, 'content-type': 'Application/JSON; charset=utf-8' },
    body: JSON.stringify({ name: 'fine' }),
  });
  assert.is(ok.status, 201, 'JSON with a charset parameter is fine');
  const empty = await app.request('/v1/pairing-codes', { method: 'POST', headers: { 'x-test-from': OWNER } });
  assert.is(empty.status, 201, 'an empty body needs no Content-Type');
});

test('with allowedHosts, a request for another Host is refused (DNS rebinding)', async () => {
  const { core } = setup();
  for (const host of ['evil.example', 'evil.example:80', '203.0.113.130', '203.0.113.129.evil.example', '2001:db8:a0::1', '[2001:db8:a0::2]', '[2001:db8:a0::1', '']) {
    const res = await guarded(core, 'POST', '/v1/devices', { host, 'content-type': 'application/json' }, JSON.stringify({ name: 'evil' }));
    assert.is(res.status, 421, host);
    assert.ok(isError(res.json, 'unexpected_host'), JSON.stringify(res.json));
    assert.match(res.json.error.message, /unexpected Host/);
  }
  assert.is((await guarded(core, 'GET', '/v1/health', { host: 'evil.example' })).status, 421, 'even the health check');
  for (const host of ['203.0.113.129', '203.0.113.129:80', '[2001:db8:a0::1]', '[2001:DB8:A0:0::1]:80']) {
    const res = await guarded(core, 'GET', '/v1/whoami', { host });
    assert.is(res.status, 200, host);
    assert.is(res.json.name, 'phone');
  }
  assert.equal(core.devices.list().map((d) => d.name), ['home', 'phone', 'guest'], 'nothing added');
});

test('a request from another web origin is refused; the API\'s own origin is fine', async () => {
  const { core } = setup();
  const body = JSON.stringify({ name: 'evil' });
  for (const origin of ['http://evil.example', 'null', 'https://203.0.113.129', 'http://203.0.113.129:8080', 'http://[2001:db8:a0::1]']) {
    const res = await guarded(core, 'POST', '/v1/devices', { origin, 'content-type': 'application/json' }, body);
    assert.is(res.status, 403, origin);
    assert.ok(isError(res.json, 'forbidden_origin'), JSON.stringify(res.json));
  }
  assert.is((await guarded(core, 'GET', '/v1/status', { origin: 'http://evil.example' })).status, 403, 'reads too');
  assert.equal(core.devices.list().map((d) => d.name), ['home', 'phone', 'guest'], 'nothing added');
  const same = await guarded(core, 'POST', '/v1/devices', { origin: 'http://203.0.113.129', 'content-type': 'application/json' }, JSON.stringify({ name: 'ok' }));
  assert.is(same.status, 201);
  const v6 = await guarded(core, 'GET', '/v1/whoami', { host: '[2001:db8:a0::1]', origin: 'http://[2001:db8:a0::1]' });
  assert.is(v6.status, 200);
});

test('no CORS headers, not even for a preflight', async () => {
  const { core } = setup();
  const preflight = await guarded(core, 'OPTIONS', '/v1/devices', {
    origin: 'http://evil.example',
    'access-control-request-method': 'POST',
    'access-control-request-headers': 'content-type',
  });
  assert.is(preflight.status, 403);
  const ok = await guarded(core, 'GET', '/v1/whoami', {});
  for (const res of [preflight, ok]) {
    const cors = [...res.headers.keys()].filter((k) => k.startsWith('access-control-'));
    assert.equal(cors, []);
  }
});

test('the local root identity of the control socket may do everything', async () => {
  const { core } = setup();
  const app = createApi({ core }, identifyLocal);
  assert.equal(await (await app.request('/v1/whoami')).json(), { name: 'root', role: 'local', address: 'control-socket' });
  assert.is((await app.request('/v1/status')).status, 200);
  assert.is((await app.request('/v1/devices/guest', { method: 'DELETE' })).status, 200);
  assert.is((await app.request('/v1/status', { headers: { host: 'aerie-control' } })).status, 200, 'no Host check');
  assert.is((await app.request('/v1/status', { headers: { origin: 'http://aerie-control' } })).status, 403, 'no web pages');
});

// ---- over a real HTTP server, identity from the socket's source address ----

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve((server.address() as AddressInfo).port));
  });
}

function httpCall(port: number, host: string, from: string, method: string, path: string, body?: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; json: any }>((resolve, reject) => {
    const req = httpRequest({ host, port, method, path, localAddress: from, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
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

test('over real HTTP with allowedHosts: right Host works; text/plain, wrong Host and wrong Origin are refused', async () => {
  const { core } = setup({ v4: '127.77.0.0/24', v6: 'fd00:77::/64' });
  const app = createApi({ core, allowedHosts: ['127.77.0.1', '[fd00:77::1]'] }, identifyOverlay(core));
  const server = createAdaptorServer({ fetch: app.fetch }) as Server;
  try {
    const port = await listen(server, '127.77.0.1');
    const call = (body: string | undefined, headers: Record<string, string>) =>
      httpCall(port, '127.77.0.1', '127.77.0.3', body === undefined ? 'GET' : 'POST', body === undefined ? '/v1/whoami' : '/v1/devices', body, headers);
    const evil = JSON.stringify({ name: 'evil', role: 'owner' });
    assert.is((await call(evil, { 'content-type': 'text/plain' })).status, 415);
    assert.is((await call(evil, { 'content-type': 'text/plain', 'transfer-encoding': 'chunked' })).status, 415, 'chunked');
    const bare = await httpCall(port, '127.77.0.1', '127.77.0.3', 'POST', '/v1/pairing-codes', undefined, { 'content-type': '', 'transfer-encoding': 'chunked' });
    assert.is(bare.status, 201, 'an empty chunked POST needs no Content-Type');
    assert.is((await call(evil, { host: `rebound.example:${port}` })).status, 421);
    assert.is((await call(evil, { origin: 'http://rebound.example' })).status, 403);
    assert.is((await call(evil, { origin: `http://127.77.0.1:${port + 1}` })).status, 403);
    assert.equal(core.devices.list().map((d) => d.name), ['home', 'phone', 'guest'], 'nothing added');
    assert.is((await call(undefined, {})).json.name, 'phone', 'Host 127.77.0.1:port as a client sends it');
    const added = await call(JSON.stringify({ name: 'tablet' }), { origin: `http://127.77.0.1:${port}` });
    assert.is(added.status, 201, 'same origin');
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test.run();
