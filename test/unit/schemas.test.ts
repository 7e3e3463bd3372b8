import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomBytes } from 'node:crypto';
import { ValidationError } from '../../shared/errors.ts';
import { generateKeyPair } from '../../shared/keys.ts';
import { encodePairingCode, encodeSecret } from '../../shared/pairing-code.ts';
import {
  AddDeviceRequest,
  AddDeviceResponse,
  ApiError,
  CloudStatus,
  CreatePairingCodeRequest,
  CreatePairingCodeResponse,
  DeviceInfo,
  DeviceName,
  PairRequest,
  PairResponse,
  parseWith,
  Role,
  Whoami,
} from '../../shared/schemas.ts';
import { throwsValidation } from './throws-validation.ts';

const KEY = generateKeyPair().publicKey;
const VM_KEY = generateKeyPair().publicKey;
const SECRET = encodeSecret(new Uint8Array(randomBytes(16)));

function pairRequest(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { secret: SECRET, publicKey: KEY, name: 'home-router', lanPrefixes: ['192.0.2.128/25', '2001:db8:1a::/64'], ...over };
}

function device(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: 'phone',
    role: 'owner',
    publicKey: KEY,
    addresses: ['203.0.113.131/32', '2001:db8:a0::3/128'],
    lanPrefixes: [],
    createdAt: '2024-05-01T12:00:00.000Z',
    endpoint: '192.0.2.10:51820',
    latestHandshake: 1714564800,
    rxBytes: 1234,
    txBytes: 0,
    ...over,
  };
}

/** Runs parseWith and returns the ValidationError it must throw. */
function refused(schema: Parameters<typeof parseWith>[0], data: unknown, field: string, pattern?: RegExp, what?: string): ValidationError {
  const thrown = throwsValidation(() => parseWith(schema, data, what), field, pattern);
  assert.ok(thrown.message.length < 300, `message too long: ${thrown.message.length}`);
  return thrown;
}

test('a good pair request parses, canonical and without unknown keys', () => {
  const out = parseWith(PairRequest, pairRequest({ lanPrefixes: ['2001:DB8:1A:0::/64', '192.0.2.128/25'], admin: true }));
  assert.equal(out, { secret: SECRET, publicKey: KEY, name: 'home-router', lanPrefixes: ['2001:db8:1a::/64', '192.0.2.128/25'] });
  assert.equal(parseWith(PairRequest, pairRequest({ lanPrefixes: [] })).lanPrefixes, []);
});

test('a hostile __proto__ key neither survives nor pollutes', () => {
  const data = JSON.parse(`{"secret":"${SECRET}","publicKey":"${KEY}","name":"r","lanPrefixes":[],"__proto__":{"polluted":1}}`);
  const out = parseWith(PairRequest, data) as Record<string, unknown>;
  assert.is(Object.getPrototypeOf(out), Object.prototype);
  assert.is(({} as Record<string, unknown>).polluted, undefined);
  assert.is(out.polluted, undefined);
  assert.not.ok(Object.hasOwn(out, '__proto__'));
});

test('wrong top-level types name the whole value', () => {
  const cases: [unknown, RegExp][] = [
    [null, /expected an object, got null/],
    [undefined, /expected an object, got undefined/],
    ['x', /expected an object, got "x"/],
    [42, /got 42/],
    [true, /got true/],
    [[1, 2], /expected an object, got a list/],
    [[], /got a list/],
  ];
  for (const [data, pattern] of cases) refused(PairRequest, data, 'body', pattern);
  refused(PairRequest, 'x', 'pair request', /expected an object, got "x"/, 'pair request');
});

test('missing and mistyped fields are named by path', () => {
  const { name: _drop, ...noName } = pairRequest();
  refused(PairRequest, noName, 'name', /required/);
  refused(PairRequest, pairRequest({ publicKey: 5 }), 'publicKey', /expected a string, got 5/);
  refused(PairRequest, pairRequest({ lanPrefixes: '192.0.2.0/24' }), 'lanPrefixes', /expected a list/);
  refused(PairRequest, pairRequest({ lanPrefixes: ['192.0.2.0/24', 7] }), 'lanPrefixes[1]', /expected a string, got 7/);
  refused(PairRequest, pairRequest({ lanPrefixes: [{}] }), 'lanPrefixes[0]', /got an object/);
  refused(PairRequest, pairRequest({ name: null }), 'name', /got null/);
});

test('secrets and keys are checked without being echoed', () => {
  const badSecrets = [SECRET.slice(0, 21), `${SECRET}A`, `${SECRET.slice(0, 21)}B`, `${SECRET}==`, SECRET.replace(/^./, '+'), 'A'.repeat(100_000)];
  for (const secret of badSecrets) {
    const e = refused(PairRequest, pairRequest({ secret }), 'secret', /16-byte pairing secret/);
    assert.not.ok(e.message.includes(SECRET.slice(2, 20)));
  }
  const priv = generateKeyPair().privateKey;
  for (const publicKey of [priv.slice(1), `${priv}x`, priv.replace('=', ''), '', 'A'.repeat(44)]) {
    const e = refused(PairRequest, pairRequest({ publicKey }), 'publicKey', /WireGuard key/);
    assert.not.ok(e.message.includes(priv.slice(2, 30)));
  }
});

test('device names follow DNS label rules', () => {
  for (const name of ['a', 'phone', 'living-room-tv', '0', 'x1-2', 'a'.repeat(32)]) {
    assert.is(parseWith(DeviceName, name), name);
  }
  for (const name of [
    '', '-a', 'a-', 'Phone', 'my phone', 'a_b', 'a.b', 'ä', 'a\nb', 'phone\n[Peer]', 'a'.repeat(33), 'x'.repeat(100_000), '📱',
  ]) {
    refused(PairRequest, pairRequest({ name }), 'name', /device name/);
  }
});

test('LAN prefixes: host bits, special ranges and too-wide claims are refused', () => {
  refused(PairRequest, pairRequest({ lanPrefixes: ['192.0.2.1/24'] }), 'lanPrefixes[0]', /did you mean 192\.0\.2\.0\/24\?/);
  refused(PairRequest, pairRequest({ lanPrefixes: ['192.0.2.0/25', '2001:db8:1a::1/64'] }), 'lanPrefixes[1]', /did you mean 2001:db8:1a::\/64/);
  const cases: [string, RegExp][] = [
    ['0.0.0.0/0', /\/8 or longer/],
    ['::/0', /\/16 or longer/],
    ['128.0.0.0/1', /\/8 or longer/],
    ['2000::/3', /\/16 or longer/],
    ['127.0.0.0/8', /loopback/],
    ['0.0.0.0/8', /this network/],
    ['169.254.0.0/16', /link-local/],
    ['224.0.0.0/24', /multicast/],
    ['255.255.255.255/32', /reserved/],
    ['fe80::/64', /link-local/],
    ['ff02::/16', /multicast/],
    ['::1/128', /reserved/],
    ['::ffff:0:0/96', /IPv4-mapped/],
    ['::ffff:192.0.2.0/120', /IPv4-mapped/],
    ['192.0.2.0', /no \/length/],
    ['192.0.2.0/33', /length above 32/],
    ['fe80::%eth0/64', /expected an IP prefix/],
    ['192.0.2.0/24\n', /expected an IP prefix/],
  ];
  for (const [p, pattern] of cases) refused(PairRequest, pairRequest({ lanPrefixes: [p] }), 'lanPrefixes[0]', pattern);
});

test('LAN prefixes in one request must not overlap', () => {
  refused(PairRequest, pairRequest({ lanPrefixes: ['192.0.2.0/24', '198.51.100.0/24', '192.0.2.128/25'] }), 'lanPrefixes[2]', /overlaps lanPrefixes\[0\] \(192\.0\.2\.0\/24\)/);
  refused(PairRequest, pairRequest({ lanPrefixes: ['192.0.2.128/25', '192.0.2.128/25'] }), 'lanPrefixes[1]', /overlaps/);
  // The same network written two ways is still the same network.
  refused(PairRequest, pairRequest({ lanPrefixes: ['2001:db8:1a::/64', '2001:DB8:1A:0:0::/64'] }), 'lanPrefixes[1]', /overlaps/);
  // Different families never overlap.
  assert.is(parseWith(PairRequest, pairRequest({ lanPrefixes: ['192.0.2.0/24', '2001:db8::/32'] })).lanPrefixes.length, 2);
});

test('at most 32 LAN prefixes, and a huge list is refused quickly', () => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
  assert.is(parseWith(PairRequest, pairRequest({ lanPrefixes: many(32) })).lanPrefixes.length, 32);
  refused(PairRequest, pairRequest({ lanPrefixes: many(33) }), 'lanPrefixes', /at most 32 items/);
  // The length is checked before any item: a huge list of junk gets the length error.
  refused(PairRequest, pairRequest({ lanPrefixes: new Array(200_000).fill(0) }), 'lanPrefixes', /at most 32/);
  refused(PairRequest, pairRequest({ lanPrefixes: ['1'.repeat(1_000_000)] }), 'lanPrefixes[0]', /at most 70 characters/);
});

test('pair responses parse, with nested paths in errors', () => {
  const good = {
    name: 'home-router',
    vmPublicKey: VM_KEY,
    endpoint: '203.0.113.10:51820',
    addresses: ['203.0.113.130/25', '2001:DB8:A0::2/64'],
    overlay: ['203.0.113.128/25', '2001:db8:a0::/64'],
    services: { api: ['203.0.113.129', '2001:db8:a0::1'] },
    keepalive: 25,
  };
  const out = parseWith(PairResponse, good);
  assert.equal(out.addresses, ['203.0.113.130/25', '2001:db8:a0::2/64']);
  assert.is(parseWith(PairResponse, { ...good, endpoint: '[2001:DB8:203::10]:51820' }).endpoint, '[2001:db8:203::10]:51820');
  refused(PairResponse, { ...good, endpoint: '203.0.113.10' }, 'endpoint', /no port/);
  refused(PairResponse, { ...good, services: { api: ['203.0.113.129', 'nope'] } }, 'services.api[1]', /IPv4 or IPv6 address/);
  refused(PairResponse, { ...good, services: {} }, 'services.api', /required/);
  refused(PairResponse, { ...good, services: ['203.0.113.129'] }, 'services', /expected an object, got a list/);
  refused(PairResponse, { name: 'r' }, 'vmPublicKey', /required/);
  refused(PairResponse, { ...good, overlay: ['203.0.113.129/25'] }, 'overlay[0]', /host bits/);
  refused(PairResponse, { ...good, addresses: ['203.0.113.130'] }, 'addresses[0]', /no \/length/);
  refused(PairResponse, { ...good, keepalive: -1 }, 'keepalive', /not below 0/);
  refused(PairResponse, { ...good, keepalive: 65536 }, 'keepalive', /not above 65535/);
  refused(PairResponse, { ...good, keepalive: 2.5 }, 'keepalive', /whole number/);
  refused(PairResponse, { ...good, keepalive: '25' }, 'keepalive', /expected a number, got "25"/);
  refused(PairResponse, { ...good, vmPublicKey: KEY.slice(0, 40) }, 'vmPublicKey', /WireGuard key/);
});

test('whoami accepts the lan role with its gateway', () => {
  assert.equal(parseWith(Whoami, { name: 'laptop', role: 'lan', address: '192.0.2.130', gateway: 'home-router' }), {
    name: 'laptop',
    role: 'lan',
    address: '192.0.2.130',
    gateway: 'home-router',
  });
  refused(Whoami, { name: 'x', role: 'admin', address: '192.0.2.130' }, 'role', /one of "gateway", "owner", "member", "lan", got "admin"/);
  refused(Whoami, { name: 'x', role: 'owner', address: '192.0.2.130/32' }, 'address');
  refused(Whoami, { name: 'x'.repeat(65), role: 'owner', address: '192.0.2.130' }, 'name', /at most 64/);
});

test('device info: counters, times and nullable endpoint', () => {
  assert.is(parseWith(DeviceInfo, device({ endpoint: null })).endpoint, null);
  assert.is(parseWith(DeviceInfo, device({ addresses: ['203.0.113.131'] })).addresses[0], '203.0.113.131');
  assert.is(parseWith(DeviceInfo, device({ createdAt: '2024-05-01T14:00:00+02:00' })).createdAt, '2024-05-01T14:00:00+02:00');
  refused(DeviceInfo, device({ endpoint: undefined }), 'endpoint', /required/);
  refused(DeviceInfo, device({ endpoint: 5 }), 'endpoint', /expected a string, got 5/);
  refused(DeviceInfo, device({ role: 'lan' }), 'role', /one of/);
  refused(DeviceInfo, device({ rxBytes: -5 }), 'rxBytes');
  refused(DeviceInfo, device({ rxBytes: 2 ** 60 }), 'rxBytes', /whole number/);
  refused(DeviceInfo, device({ latestHandshake: Number.NaN }), 'latestHandshake');
  refused(DeviceInfo, device({ latestHandshake: Infinity }), 'latestHandshake');
  for (const createdAt of ['yesterday', '2024-13-01T00:00:00Z', '2024-05-01', '2024-05-01T12:00:00', 1714564800]) {
    refused(DeviceInfo, device({ createdAt }), 'createdAt');
  }
});

test('add-device requests: only owner or member, optional key and split', () => {
  assert.equal(parseWith(AddDeviceRequest, { name: 'phone' }), { name: 'phone' });
  assert.equal(parseWith(AddDeviceRequest, { name: 'tab', role: 'member', publicKey: KEY, split: true }), {
    name: 'tab',
    role: 'member',
    publicKey: KEY,
    split: true,
  });
  refused(AddDeviceRequest, { name: 'gw', role: 'gateway' }, 'role', /one of "owner", "member"/);
  refused(AddDeviceRequest, { name: 'p', split: 'yes' }, 'split', /expected true or false/);
  refused(AddDeviceRequest, { name: 'p', publicKey: null }, 'publicKey', /got null/);
  refused(AddDeviceRequest, { name: 'Phone' }, 'name', /lower-case/);
});

test('responses: add-device, status, error, pairing code', () => {
  const res = parseWith(AddDeviceResponse, { device: device(), config: '[Interface]\n' });
  assert.is(res.device.name, 'phone');
  refused(AddDeviceResponse, { device: device({ publicKey: 'x' }) }, 'device.publicKey');

  const status = {
    interface: 'aerie0',
    publicKey: VM_KEY,
    listenPort: 51820,
    endpoint: 'vm.example.org:51820',
    overlay: ['203.0.113.128/25'],
    peers: [device(), device({ name: 'tab', lanPrefixes: ['192.0.2.128/25'] })],
  };
  assert.is(parseWith(CloudStatus, status).peers.length, 2);
  refused(CloudStatus, { ...status, listenPort: 0 }, 'listenPort', /1-65535/);
  refused(CloudStatus, { ...status, interface: 'a-very-long-name0' }, 'interface', /longer than 15 characters/);
  refused(CloudStatus, { ...status, interface: '..' }, 'interface');
  refused(CloudStatus, { ...status, peers: [device(), device({ txBytes: '1' })] }, 'peers[1].txBytes');

  assert.equal(parseWith(ApiError, { error: { code: 'not_found', message: 'no such device' } }), {
    error: { code: 'not_found', message: 'no such device' },
  });
  refused(ApiError, { error: 'boom' }, 'error', /expected an object/);

  const code = encodePairingCode({ host: '203.0.113.10', port: 8443, fingerprint: new Uint8Array(32), secret: new Uint8Array(16) });
  assert.is(parseWith(CreatePairingCodeResponse, { code, expiresAt: '2024-05-01T12:15:00Z' }).code, code);
  refused(CreatePairingCodeResponse, { code: code.slice(0, -2), expiresAt: '2024-05-01T12:15:00Z' }, 'code', /pairing code/);
});

test('pairing-code requests bound the lifetime', () => {
  assert.equal(parseWith(CreatePairingCodeRequest, {}), {});
  assert.equal(parseWith(CreatePairingCodeRequest, { ttlSeconds: 60 }), { ttlSeconds: 60 });
  assert.equal(parseWith(CreatePairingCodeRequest, { ttlSeconds: 86400 }), { ttlSeconds: 86400 });
  refused(CreatePairingCodeRequest, { ttlSeconds: 59 }, 'ttlSeconds', /at least 60/);
  refused(CreatePairingCodeRequest, { ttlSeconds: 86401 }, 'ttlSeconds', /at most 86400/);
  refused(CreatePairingCodeRequest, { ttlSeconds: 600.5 }, 'ttlSeconds', /whole number/);
  refused(CreatePairingCodeRequest, { ttlSeconds: '600' }, 'ttlSeconds', /expected a number/);
  refused(CreatePairingCodeRequest, { ttlSeconds: null }, 'ttlSeconds');
});

test('roles are exactly the three device roles', () => {
  for (const r of ['gateway', 'owner', 'member']) assert.is(parseWith(Role, r), r);
  for (const r of ['lan', 'admin', 'Owner', '', 0]) refused(Role, r, 'body', /one of/);
});

test.run();
