import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { rootCertificates } from 'node:tls';
import { ValidationError } from '../../shared/errors.ts';
import {
  decodePairingCode,
  decodeSecret,
  encodePairingCode,
  encodeSecret,
  formatEndpoint,
  formatFingerprint,
  parseEndpoint,
  parseFingerprint,
  parseHost,
  PairingCodeError,
  type PairingCode,
  type PairingCodeProblem,
} from '../../shared/pairing-code.ts';
import { throwsValidation as invalid } from './throws-validation.ts';

function sample(host = '203.0.113.10', port = 8443): PairingCode {
  return { host, port, fingerprint: new Uint8Array(randomBytes(32)), secret: new Uint8Array(randomBytes(16)) };
}

function failure(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

function rejects(text: string, reason: PairingCodeProblem, pattern?: RegExp): PairingCodeError {
  const e = failure(() => decodePairingCode(text));
  assert.ok(e instanceof PairingCodeError, `accepted ${JSON.stringify(text.slice(0, 120))}`);
  assert.is(e.reason, reason, `${e.message} for ${JSON.stringify(text.slice(0, 120))}`);
  assert.ok(e instanceof ValidationError);
  assert.is(e.field, 'pairingCode');
  if (pattern) assert.match(e.message, pattern);
  return e;
}

// An independent writer of the documented format, to craft codes the encoder would refuse.
function base32(bytes: Uint8Array): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bits = Array.from(bytes, (b) => b.toString(2).padStart(8, '0')).join('');
  let out = '';
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5).padEnd(5, '0'), 2)];
  return out;
}

function craft(body: number[]): string {
  const sum = createHash('sha256').update(Uint8Array.from(body)).digest().subarray(0, 4);
  return `AERIE1-${base32(Uint8Array.from([...body, ...sum]))}`;
}

const FP = Array.from({ length: 32 }, (_, i) => i);
const SECRET = Array.from({ length: 16 }, (_, i) => 100 + i);

test('codes round-trip for IPv4, IPv6 and DNS-name hosts', () => {
  for (const [host, want] of [
    ['203.0.113.10', '203.0.113.10'],
    ['2001:db8:203::10', '2001:db8:203::10'],
    ['2001:DB8:203:0:0:0:0:10', '2001:db8:203::10'],
    ['::ffff:203.0.113.10', '203.0.113.10'],
    ['vm.example.org', 'vm.example.org'],
    ['VM.Example.ORG.', 'vm.example.org'],
    [`${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`, `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`],
  ] as const) {
    const c = sample(host, 443);
    const back = decodePairingCode(encodePairingCode(c));
    assert.is(back.host, want);
    assert.is(back.port, 443);
    assert.equal(back.fingerprint, c.fingerprint);
    assert.equal(back.secret, c.secret);
  }
  for (const port of [1, 80, 8443, 65535]) assert.is(decodePairingCode(encodePairingCode(sample('192.0.2.1', port))).port, port);
});

test('the independent writer and the encoder agree on the format', () => {
  const c: PairingCode = { host: '203.0.113.10', port: 8443, fingerprint: Uint8Array.from(FP), secret: Uint8Array.from(SECRET) };
  assert.is(encodePairingCode(c), craft([1, 4, 203, 0, 113, 10, 0x20, 0xfb, ...FP, ...SECRET]));
  const named = { ...c, host: 'vm.example' };
  assert.is(encodePairingCode(named), craft([1, 0, 10, ...Buffer.from('vm.example'), 0x20, 0xfb, ...FP, ...SECRET]));
});

test('codes fit a QR code\'s alphanumeric mode and a v4 code is 103 characters', () => {
  const code = encodePairingCode(sample());
  assert.match(code, /^AERIE1-[A-Z2-7]+$/);
  assert.is(code.length, 103);
  const v6 = encodePairingCode(sample('2001:db8:203::10'));
  assert.match(v6, /^[0-9A-Z $%*+\-./:]+$/);
});

test('what people do to a code while pasting it does not matter', () => {
  const c = sample();
  const code = encodePairingCode(c);
  const variants = [
    code.toLowerCase(),
    `  ${code}\n`,
    code.replace(/(.{8})/g, '$1 '),
    code.replace(/(.{20})/g, '$1\n'),
    code.replace(/(.{4})/g, '$1-'),
    code.replace(/(.{10})/g, '$1\t'),
    `"${code}"`,
    `'${code}'.`,
    `<${code}>`,
    `\`${code}\``,
    code.replace(/(.{12})/g, '$1\u200b'), // zero-width spaces from chat apps
    `\ufeff${code}\u00a0`,
    code.replace('AERIE1-', 'aerie1 '),
    code.replace('AERIE1-', 'AERIE1'),
  ];
  for (const v of variants) {
    const back = decodePairingCode(v);
    assert.equal(back.secret, c.secret, JSON.stringify(v));
    assert.equal(back.fingerprint, c.fingerprint);
  }
});

test('anything that is not an Aerie code says so', () => {
  for (const t of [
    '',
    '   ',
    'hello',
    'https://203.0.113.10:8443/',
    'KHzkU/sYDaSjq9bFU4nZEEEe/CNiMJuIgeAiHkHUi34=',
    'AERI',
    'AERIE',
    'AERIE-ABCDEF',
    'XAERIE1-AAAA',
  ]) {
    rejects(t, 'not-aerie', /not an Aerie pairing code/);
  }
  for (const t of [undefined, null, 42, {}, ['AERIE1-']]) {
    const e = failure(() => decodePairingCode(t as unknown as string));
    assert.ok(e instanceof PairingCodeError && e.reason === 'not-aerie');
  }
});

test('huge input is refused at once without echoing it', () => {
  const huge = `AERIE1-${'A'.repeat(1_000_000)}`;
  const e = rejects(huge, 'not-aerie', /too long/);
  assert.ok(e.message.length < 200);
});

test('other versions are refused as unsupported, not as typos', () => {
  const code = encodePairingCode(sample());
  rejects(code.replace('AERIE1-', 'AERIE2-'), 'version', /version 2.*only version 1/);
  rejects(code.replace('AERIE1-', 'AERIE9-'), 'version', /version 9/);
  // A payload that says version 2 inside a correct checksum.
  rejects(craft([2, 4, 203, 0, 113, 10, 0x20, 0xfb, ...FP, ...SECRET]), 'version', /version 2/);
});

test('every truncation fails, and cutting the end says truncated', () => {
  const code = encodePairingCode(sample());
  for (let len = 7; len < code.length; len++) {
    const e = failure(() => decodePairingCode(code.slice(0, len)));
    assert.ok(e instanceof PairingCodeError, `a code cut to ${len} characters was accepted`);
    assert.ok(['truncated', 'checksum'].includes(e.reason), `${len}: ${e.reason}`);
  }
  for (const cut of [1, 2, 5, 8, 30, 90]) rejects(code.slice(0, -cut), 'truncated', /truncated/);
  const named = encodePairingCode(sample('vm.example.org'));
  for (const cut of [1, 5, 16]) rejects(named.slice(0, -cut), 'truncated', /truncated/);
});

test('every one-character typo and swap is caught by the checksum', () => {
  const code = encodePairingCode(sample());
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let tried = 0;
  for (let i = 7; i < code.length; i++) {
    for (const ch of alphabet) {
      if (ch === code[i]) continue;
      const typo = code.slice(0, i) + ch + code.slice(i + 1);
      const e = failure(() => decodePairingCode(typo));
      assert.ok(e instanceof PairingCodeError, `typo at ${i} accepted`);
      assert.ok(['checksum', 'truncated'].includes(e.reason), `typo at ${i}: ${e.reason} ${e.message}`);
      tried++;
    }
    if (i + 1 < code.length && code[i] !== code[i + 1]) {
      const swapped = code.slice(0, i) + code[i + 1] + code[i] + code.slice(i + 2);
      assert.ok(failure(() => decodePairingCode(swapped)) instanceof PairingCodeError, `swap at ${i} accepted`);
    }
  }
  assert.ok(tried > 2500);
});

test('characters outside base32 are reported with their position', () => {
  const code = encodePairingCode(sample());
  rejects(`${code.slice(0, 10)}0${code.slice(11)}`, 'checksum', /"0" \(character 4 after AERIE1-\)/);
  rejects(`${code.slice(0, 10)}!${code.slice(11)}`, 'checksum', /mistyped/);
  rejects(`${code.slice(0, 10)}=${code.slice(11)}`, 'checksum', /mistyped/);
  rejects(`${code}=`, 'checksum', /mistyped/);
});

test('extra characters after a code are refused', () => {
  const code = encodePairingCode(sample());
  for (const extra of ['A', 'AB', 'ABCDEFGH', 'Q', encodePairingCode(sample()).slice(7)]) {
    const e = failure(() => decodePairingCode(code + extra));
    assert.ok(e instanceof PairingCodeError && e.reason === 'checksum', `${extra}: ${String(e)}`);
  }
  rejects(`${code} ${code}`, 'checksum');
});

test('well-formed codes with bad contents name what is bad', () => {
  rejects(craft([1, 4, 0, 0, 0, 0, 0x20, 0xfb, ...FP, ...SECRET]), 'host', /unusable host address \(0\.0\.0\.0\)/);
  rejects(craft([1, 6, ...new Array(16).fill(0), 0x20, 0xfb, ...FP, ...SECRET]), 'host', /\(::\)/);
  rejects(craft([1, 9, 1, 2, 3, 4, 0x20, 0xfb, ...FP, ...SECRET]), 'host', /unknown kind of host/);
  rejects(craft([1, 0, 4, ...Buffer.from('a b!'), 0x20, 0xfb, ...FP, ...SECRET]), 'host', /invalid host name/);
  rejects(craft([1, 0, 4, 0x61, 0x0a, 0x62, 0x00, 0x20, 0xfb, ...FP, ...SECRET]), 'host', /invalid host name/);
  rejects(craft([1, 0, 9, ...Buffer.from('192.0.2.1'), 0x20, 0xfb, ...FP, ...SECRET]), 'host');
  rejects(craft([1, 0, 0, 0x20, 0xfb, ...FP, ...SECRET]), 'host');
  rejects(craft([1, 4, 203, 0, 113, 10, 0, 0, ...FP, ...SECRET]), 'port', /port 0/);
  rejects(craft([1, 4, 203, 0, 113, 10, 0x20, 0xfb, ...FP, ...SECRET, 7]), 'malformed');
  rejects(craft([1, 0, 3, ...Buffer.from('abcd'), 0x20, 0xfb, ...FP, ...SECRET]), 'malformed');
});

test('the encoder refuses what could not be decoded', () => {
  const c = sample();
  invalid(() => encodePairingCode({ ...c, port: 0 }), 'port');
  invalid(() => encodePairingCode({ ...c, port: 65536 }), 'port');
  invalid(() => encodePairingCode({ ...c, port: 80.5 }), 'port');
  invalid(() => encodePairingCode({ ...c, fingerprint: new Uint8Array(31) }), 'fingerprint');
  invalid(() => encodePairingCode({ ...c, secret: new Uint8Array(17) }), 'secret');
  for (const host of ['', 'bad host', '[2001:db8::1]', 'fe80::1%eth0', '192.0.2.300', 'a_b.example', '-a.example', 'x'.repeat(254)]) {
    invalid(() => encodePairingCode({ ...c, host }), 'host');
  }
});

test('fingerprints match Node\'s X509Certificate.fingerprint256 and parse back', () => {
  const cert = new X509Certificate(rootCertificates[0]!);
  const digest = new Uint8Array(createHash('sha256').update(cert.raw).digest());
  assert.is(formatFingerprint(digest), cert.fingerprint256);
  assert.equal(parseFingerprint(cert.fingerprint256), digest);
  assert.equal(parseFingerprint(cert.fingerprint256.toLowerCase()), digest);
  assert.equal(parseFingerprint(Buffer.from(digest).toString('hex')), digest);
  assert.equal(parseFingerprint(` ${cert.fingerprint256}\n`), digest);
  const fp = cert.fingerprint256;
  for (const bad of [fp.slice(0, -3), `${fp}:00`, fp.replace(/^../, 'GG'), fp.replaceAll(':', '-'), `${fp}:`, 'AB'.repeat(33), '', 'x'.repeat(10_000)]) {
    invalid(() => parseFingerprint(bad), 'fingerprint', /SHA-256 fingerprint/);
  }
  invalid(() => parseFingerprint(7 as unknown as string, 'pin'), 'pin');
});

test('endpoints format with brackets for IPv6 and parse back', () => {
  assert.is(formatEndpoint('203.0.113.10', 51820), '203.0.113.10:51820');
  assert.is(formatEndpoint('2001:db8::1', 51820), '[2001:db8::1]:51820');
  assert.is(formatEndpoint('vm.example.org', 443), 'vm.example.org:443');
  invalid(() => formatEndpoint('203.0.113.10', 0), 'port');
  const cases: [string, { host: string; port: number }][] = [
    ['203.0.113.10:51820', { host: '203.0.113.10', port: 51820 }],
    ['203.0.113.10', { host: '203.0.113.10', port: 8443 }],
    ['[2001:db8::1]:51820', { host: '2001:db8::1', port: 51820 }],
    ['[2001:DB8::1]', { host: '2001:db8::1', port: 8443 }],
    ['2001:db8::1', { host: '2001:db8::1', port: 8443 }],
    ['[::ffff:203.0.113.10]:1', { host: '203.0.113.10', port: 1 }],
    ['VM.example.org:65535', { host: 'vm.example.org', port: 65535 }],
    [' vm.example.org ', { host: 'vm.example.org', port: 8443 }],
  ];
  for (const [input, want] of cases) assert.equal(parseEndpoint(input, 8443), want, input);
});

test('bad endpoints are refused with the field named', () => {
  for (const bad of [
    '', ':51820', '203.0.113.10:', '203.0.113.10:0', '203.0.113.10:65536', '203.0.113.10:051820', '203.0.113.10:80x',
    '[2001:db8::1', '[2001:db8::1]51820', '[203.0.113.10]:80', '2001:db8::1:51820:', 'fe80::1%eth0', '[fe80::1%eth0]:80',
    'bad host:80', 'a_b.example:80', '192.0.2.300:80', `${'a'.repeat(64)}.example:80`, `${'a.'.repeat(200)}b:80`,
    'vm.example.org:80\n[Peer]', 'x'.repeat(100_000),
  ]) {
    invalid(() => parseEndpoint(bad, 8443, 'peer.endpoint'), 'peer.endpoint');
  }
  invalid(() => parseEndpoint('203.0.113.10'), 'endpoint', /no port/);
  invalid(() => parseEndpoint(undefined as unknown as string, 1), 'endpoint');
});

test('hosts are IPs or DNS names, made canonical', () => {
  assert.is(parseHost('Router.Example'), 'router.example');
  assert.is(parseHost('localhost'), 'localhost');
  assert.is(parseHost('2001:0db8::0001'), '2001:db8::1');
  invalid(() => parseHost('1.2.3'), 'host');
  invalid(() => parseHost('example.123'), 'host');
  invalid(() => parseHost('ex ample'), 'host');
  invalid(() => parseHost('exämple.org'), 'host');
});

test('secrets travel as 22 characters of base64url', () => {
  const secret = new Uint8Array(randomBytes(16));
  const text = encodeSecret(secret);
  assert.match(text, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(decodeSecret(text), secret);
  assert.is(encodeSecret(new Uint8Array(16).fill(0xff)), '_____________________w');
  for (const bad of [`${text}==`, text.slice(0, 21), `${text.slice(0, 21)}B`, text.replace(/^./, '+'), '', 'A'.repeat(5000)]) {
    const e = failure(() => decodeSecret(bad));
    assert.ok(e instanceof ValidationError && e.field === 'secret', bad);
    assert.not.ok(e.message.includes(bad.slice(0, 10)) && bad.length > 0, 'echoes the secret');
  }
  invalid(() => encodeSecret(new Uint8Array(15)), 'secret');
});

test.run();
