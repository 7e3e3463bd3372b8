import { createAdaptorServer } from '@hono/node-server';
import { createHash } from 'node:crypto';
import { createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodePairingCode, encodeSecret } from '../../shared/pairing-code.ts';
import { createPublicApp } from '../../cloud/api/public.ts';
import { createCore } from '../../cloud/core/core.ts';
import type { Store } from '../../cloud/store/store.ts';
import { pairRequest, vmStates } from './vm-state.ts';

type Body = string | Uint8Array | ReadableStream<Uint8Array>;

const freshVm = vmStates(test, 'public');

function setup() {
  const { store, state } = freshVm();
  let t = Date.parse('2025-03-01T12:00:00Z');
  const clock = { now: () => t, advance: (ms: number) => void (t += ms) };
  const core = createCore({ store, config: state, now: clock.now });
  let from = '198.51.100.2';
  const log: string[] = [];
  const app = createPublicApp({ core, remoteAddress: () => from, log: (l) => log.push(l), logError: () => {} });
  return { app, core, store, state, clock, log, setFrom: (a: string) => void (from = a) };
}

const pairBody = (code: string, over: Record<string, unknown> = {}) => JSON.stringify(pairRequest(code, over));

async function post(app: ReturnType<typeof setup>['app'], body: Body | undefined, headers: Record<string, string> = {}) {
  const init: RequestInit & { duplex?: string } = { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } };
  if (body instanceof ReadableStream) init.duplex = 'half';
  const res = await app.request('/v1/pair', init);
  return { status: res.status, headers: res.headers, json: (await res.json()) as any };
}

const snapshot = (store: Store) => JSON.stringify([store.devices.list(), store.pairingCodes.all().map((c) => c.usedAt)]);

test('the public listener serves pairing and health, nothing else', async () => {
  const { app } = setup();
  assert.equal(await (await app.request('/v1/health')).json(), { ok: true });
  for (const [method, path] of [
    ['GET', '/v1/status'],
    ['GET', '/v1/devices'],
    ['POST', '/v1/devices'],
    ['POST', '/v1/pairing-codes'],
    ['GET', '/v1/whoami'],
    ['GET', '/v1/pair'],
    ['GET', '/'],
  ]) {
    const res = await app.request(path!, { method, body: method === 'POST' ? '{}' : undefined });
    assert.is(res.status, 404, `${method} ${path}`);
    assert.equal(await res.json(), { error: { code: 'not_found', message: 'not found' } });
  }
});

test('a valid code pairs once; the replay is refused and changes nothing', async () => {
  const { app, core, store, log } = setup();
  const { code } = core.pairing.createCode();
  const ok = await post(app, pairBody(code));
  assert.is(ok.status, 200);
  assert.is(ok.json.name, 'home');
  assert.equal(ok.json.addresses, ['203.0.113.130/25', '2001:db8:a0::2/64']);
  const before = snapshot(store);
  const replay = await post(app, pairBody(code, { name: 'again', lanPrefixes: [] }));
  assert.is(replay.status, 403);
  assert.equal(replay.json.error.code, 'invalid_code');
  assert.match(replay.json.error.message, /already been used/);
  assert.is(snapshot(store), before);
  assert.ok(log.some((l) => /paired gateway "home" from 198\.51\.100\.2/.test(l)));
  assert.not.ok(log.join('\n').includes(JSON.parse(pairBody(code)).secret), 'the secret is never logged');
});

test('an expired code is refused with its expiry time', async () => {
  const { app, core, store, clock } = setup();
  const { code } = core.pairing.createCode();
  clock.advance(15 * 60_000 + 1);
  const res = await post(app, pairBody(code));
  assert.is(res.status, 403);
  assert.match(res.json.error.message, /expired at 2025-03-01T12:15:00\.000Z/);
  assert.is(store.devices.list().length, 0);
});

test('garbage, wrong types and hostile bodies get 400/413 naming the problem; nothing stored', async () => {
  const { app, core, store, setFrom } = setup();
  const { code } = core.pairing.createCode();
  const valid = JSON.parse(pairBody(code));
  const cases: [Body | undefined, number, RegExp][] = [
    ['{', 400, /not valid JSON/],
    ['\u0000\u0001garbage', 400, /not valid JSON/],
    [new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), 400, /not valid UTF-8/],
    [undefined, 400, /^body: expected an object/],
    ['null', 400, /^body: /],
    ['"a string"', 400, /^body: /],
    [JSON.stringify({ ...valid, secret: 12345 }), 400, /^secret: expected a string, got 12345/],
    [JSON.stringify({ ...valid, secret: 'A'.repeat(23) }), 400, /^secret: /],
    [JSON.stringify({ ...valid, publicKey: null }), 400, /^publicKey: /],
    [JSON.stringify({ ...valid, name: '../../etc' }), 400, /^name: /],
    [JSON.stringify({ ...valid, lanPrefixes: ['192.0.2.0/24', 7] }), 400, /^lanPrefixes\[1\]: /],
    [JSON.stringify({ ...valid, lanPrefixes: ['192.0.2.128/25', '192.0.2.130/32'] }), 400, /^lanPrefixes\[1\]: .*overlaps lanPrefixes\[0\]/],
    [JSON.stringify({ ...valid, lanPrefixes: Array.from({ length: 33 }, (_, i) => `10.${i}.0.0/16`) }), 400, /^lanPrefixes: expected at most 32/],
    [
      `{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, ${JSON.stringify({ ...valid, secret: encodeSecret(new Uint8Array(16)) }).slice(1)}`,
      403,
      /not valid/,
    ],
    ['['.repeat(4000) + ']'.repeat(4000), 400, /^body: expected an object, got a list/],
    ['{"secret": "' + 'A'.repeat(9000) + '"}', 413, /at most 8192 bytes/],
  ];
  for (const [i, [body, status, message]] of cases.entries()) {
    setFrom(`198.51.100.${10 + i}`); // a fresh address each, so the rate limit stays out of the way
    const res = await post(app, body);
    assert.is(res.status, status, `case ${i}`);
    assert.match(res.json.error.message, message, `case ${i}: ${res.json.error.message}`);
    assert.equal(Object.keys(res.json), ['error']);
  }
  assert.is(store.devices.list().length, 0);
  assert.is(store.pairingCodes.all()[0]?.usedAt, null, 'the code is still unused');
  assert.is(({} as Record<string, unknown>).polluted, undefined, 'no prototype pollution');
});

test('a huge body without Content-Length is cut off at the limit', async () => {
  const { app } = setup();
  let pulled = 0;
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      if (pulled > 1000) controller.close(); // bounded even if the limit failed
      else controller.enqueue(new Uint8Array(1024).fill(0x20));
    },
  });
  const res = await post(app, stream);
  assert.is(res.status, 413);
  assert.ok(pulled < 20, `stopped reading early (pulled ${pulled} chunks)`);
  const declared = await post(app, 'x', { 'content-length': '100000000' });
  assert.is(declared.status, 413, 'refused by the declared length alone');
});

test('conflicting prefixes: clear errors, nothing stored, code still usable', async () => {
  const { app, core, store, setFrom } = setup();
  const first = core.pairing.createCode().code;
  assert.is((await post(app, pairBody(first))).status, 200);
  const second = core.pairing.createCode().code;
  const before = snapshot(store);
  setFrom('198.51.100.3');
  const overlapsGateway = await post(app, pairBody(second, { name: 'cabin', lanPrefixes: ['192.0.2.0/24'] }));
  assert.is(overlapsGateway.status, 409);
  assert.match(overlapsGateway.json.error.message, /^lanPrefixes\[0\]: 192\.0\.2\.0\/24 overlaps 192\.0\.2\.128\/25, a home prefix of gateway "home"/);
  const overlapsOverlay = await post(app, pairBody(second, { name: 'cabin', lanPrefixes: ['2001:db8:a0::/56'] }));
  assert.is(overlapsOverlay.status, 409);
  assert.match(overlapsOverlay.json.error.message, /overlay network 2001:db8:a0::\/64/);
  const nameTaken = await post(app, pairBody(second, { lanPrefixes: [] }));
  assert.is(nameTaken.status, 409);
  assert.is(snapshot(store), before);
  assert.is((await post(app, pairBody(second, { name: 'cabin', lanPrefixes: ['198.51.100.128/25'] }))).status, 200);
});

test('five failures a minute from one address: 429 with Retry-After, even for a good code', async () => {
  const { app, core, clock, setFrom } = setup();
  const { code } = core.pairing.createCode();
  const wrong = JSON.stringify({ ...JSON.parse(pairBody(code)), secret: encodeSecret(new Uint8Array(16)) });
  setFrom('198.51.100.66');
  for (let i = 0; i < 5; i++) {
    assert.is((await post(app, wrong)).status, 403);
    clock.advance(1000);
  }
  const limited = await post(app, pairBody(code));
  assert.is(limited.status, 429);
  assert.is(limited.json.error.code, 'rate_limited');
  assert.is(limited.headers.get('retry-after'), '55');
  setFrom('2001:db8:100::2');
  assert.is((await post(app, wrong)).status, 403, 'another address is not limited');
  setFrom('198.51.100.66');
  clock.advance(55_000);
  assert.is((await post(app, pairBody(code))).status, 200, 'allowed again after the window');
});

test('an IPv6 caller is limited by its /64: fresh addresses from the same /64 do not help', async () => {
  const { app, core, setFrom } = setup();
  const { code } = core.pairing.createCode();
  const wrong = JSON.stringify({ ...JSON.parse(pairBody(code)), secret: encodeSecret(new Uint8Array(16)) });
  for (let i = 0; i < 5; i++) {
    setFrom(`2001:db8:66:1::${(i + 1).toString(16)}`);
    assert.is((await post(app, wrong)).status, 403);
  }
  setFrom('2001:db8:66:1:aaaa:bbbb:cccc:dddd');
  const limited = await post(app, pairBody(code));
  assert.is(limited.status, 429, 'a new address in the same /64');
  assert.is(limited.json.error.code, 'rate_limited');
  setFrom('2001:db8:66:2::1');
  assert.is((await post(app, pairBody(code))).status, 200, 'the next /64 is someone else');
});

test('IPv4 callers are still limited one address at a time', async () => {
  const { app, core, setFrom } = setup();
  const { code } = core.pairing.createCode();
  const wrong = JSON.stringify({ ...JSON.parse(pairBody(code)), secret: encodeSecret(new Uint8Array(16)) });
  setFrom('198.51.100.66');
  for (let i = 0; i < 5; i++) assert.is((await post(app, wrong)).status, 403);
  assert.is((await post(app, pairBody(code))).status, 429);
  setFrom('198.51.100.67');
  assert.is((await post(app, pairBody(code))).status, 200, 'the neighbour address is not limited');
});

test('a pairing body not declared as JSON is refused with 415; nothing stored', async () => {
  const { app, core, store } = setup();
  const { code } = core.pairing.createCode();
  const before = snapshot(store);
  const res = await post(app, pairBody(code), { 'content-type': 'text/plain' });
  assert.is(res.status, 415);
  assert.is(res.json.error.code, 'unsupported_media_type');
  assert.is(snapshot(store), before);
  assert.is((await post(app, pairBody(code))).status, 200, 'the code still works');
});

// ---- a real HTTPS listener with our certificate, pinned like the router does ----

function pinnedPost(port: number, fingerprint: Uint8Array, body: string) {
  return new Promise<{ status: number; json: any }>((resolve, reject) => {
    const req = httpsRequest(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/pair',
        agent: false, // a fresh TLS connection each time, so each one is pinned
        rejectUnauthorized: false, // trust comes from the pin, not from a CA
        headers: { 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) }));
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    // Pin before a byte of the body leaves: SHA-256 of the server's DER certificate.
    req.on('socket', (socket) => {
      socket.once('secureConnect', () => {
        const der = (socket as TLSSocket).getPeerX509Certificate()?.raw;
        if (!der || !createHash('sha256').update(der).digest().equals(Buffer.from(fingerprint))) {
          req.destroy(new Error('certificate fingerprint mismatch'));
        } else {
          req.end(body);
        }
      });
    });
  });
}

test('over real HTTPS: the code\'s fingerprint pins our certificate and pairing works', async () => {
  const { core, state, store } = setup();
  const app = createPublicApp({ core, logError: () => {} });
  const server = createAdaptorServer({
    fetch: app.fetch,
    createServer: createHttpsServer,
    serverOptions: { key: state.tls.keyPem, cert: state.tls.certPem },
  }) as Server;
  try {
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    });
    const { code } = core.pairing.createCode();
    const decoded = decodePairingCode(code);
    const wrongPin = new Uint8Array(decoded.fingerprint);
    wrongPin[0]! ^= 1;
    try {
      await pinnedPost(port, wrongPin, pairBody(code));
      assert.unreachable('a wrong fingerprint must not connect');
    } catch (err) {
      assert.match((err as Error).message, /fingerprint mismatch/);
    }
    assert.is(store.devices.list().length, 0, 'nothing was sent');
    const ok = await pinnedPost(port, decoded.fingerprint, pairBody(code));
    assert.is(ok.status, 200);
    assert.is(ok.json.vmPublicKey, state.publicKey);
    const big = await pinnedPost(port, decoded.fingerprint, JSON.stringify({ pad: 'x'.repeat(100_000) }));
    assert.is(big.status, 413);
    // The limiter keys on the real TCP peer (127.0.0.1): the oversized body was failure 1.
    for (let i = 0; i < 4; i++) assert.is((await pinnedPost(port, decoded.fingerprint, '{')).status, 400);
    const limited = await pinnedPost(port, decoded.fingerprint, pairBody(code));
    assert.is(limited.status, 429);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test.run();
