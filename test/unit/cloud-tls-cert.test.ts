import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ValidationError } from '../../shared/errors.ts';
import { formatFingerprint } from '../../shared/pairing-code.ts';
import { certFingerprint, der, generateSelfSignedCert } from '../../cloud/tls-cert.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('DER lengths use the short form below 128 and the long form above', () => {
  assert.is(hex(der.octetString(Buffer.alloc(3))), '0403000000');
  assert.is(hex(der.octetString(Buffer.alloc(127))).slice(0, 4), '047f');
  assert.is(hex(der.octetString(Buffer.alloc(128))).slice(0, 6), '048180');
  assert.is(hex(der.octetString(Buffer.alloc(300))).slice(0, 8), '0482012c');
  assert.is(der.octetString(Buffer.alloc(70000)).length, 1 + 4 + 70000);
});

test('DER integers are minimal and stay positive', () => {
  assert.is(hex(der.smallInteger(0)), '020100');
  assert.is(hex(der.smallInteger(2)), '020102');
  assert.is(hex(der.smallInteger(127)), '02017f');
  assert.is(hex(der.smallInteger(128)), '02020080'); // a pad byte keeps it positive
  assert.is(hex(der.smallInteger(256)), '02020100');
  assert.is(hex(der.unsignedInteger(Buffer.from([0, 0, 0xff]))), '020200ff');
});

test('DER object identifiers encode arcs in base 128', () => {
  assert.is(hex(der.oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302'); // ecdsa-with-SHA256
  assert.is(hex(der.oid('2.5.4.3')), '0603550403'); // commonName
  assert.is(hex(der.oid('2.999.3')), '0603883703'); // first arc 2 with a large second arc (X.690 8.19.5)
  assert.throws(() => der.oid('3.1'), /bad OID/);
  assert.throws(() => der.oid('1.40'), /bad OID/);
});

test('DER times switch from UTCTime to GeneralizedTime in 2050 (RFC 5280 4.1.2.5)', () => {
  assert.is(der.time(new Date('2049-12-31T23:59:59Z')).toString('latin1'), '\x17\x0d491231235959Z');
  assert.is(der.time(new Date('2050-01-01T00:00:00Z')).toString('latin1'), '\x18\x0f20500101000000Z');
  assert.throws(() => der.time(new Date('1949-01-01T00:00:00Z')), RangeError);
});

test('the certificate parses, names CN=aerie, is self-signed and valid for 10 years', () => {
  const now = new Date('2025-03-01T12:00:00Z');
  const cert = generateSelfSignedCert({ host: '203.0.113.10', now });
  const x = new X509Certificate(cert.certPem);
  assert.is(x.subject, 'CN=aerie');
  assert.is(x.issuer, 'CN=aerie');
  assert.ok(x.verify(x.publicKey), 'signature verifies with its own key');
  assert.ok(x.checkPrivateKey(createPrivateKey(cert.keyPem)), 'key matches');
  assert.is(x.ca, false);
  assert.is(createPublicKey(cert.keyPem).asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const from = Date.parse(x.validFrom);
  const to = Date.parse(x.validTo);
  assert.ok(from <= now.getTime() && from > now.getTime() - 2 * 3600_000, 'valid from about now');
  const years = (to - from) / (365.25 * 24 * 3600_000);
  assert.ok(years > 9.9 && years < 10.1, `about 10 years, got ${years}`);
  assert.ok(x.checkIP('203.0.113.10'));
  assert.is(x.subjectAltName, 'IP Address:203.0.113.10');
  assert.ok(x.raw.equals(cert.der));
  assert.ok(/^[0-9a-f]+$/i.test(x.serialNumber) && !/^0+$/.test(x.serialNumber), 'non-zero serial');
});

test('the fingerprint is SHA-256 of the DER, the same text as Node reports', () => {
  const cert = generateSelfSignedCert({ host: 'vm.example.org' });
  assert.is(cert.fingerprint.length, 32);
  assert.is(formatFingerprint(cert.fingerprint), new X509Certificate(cert.certPem).fingerprint256);
  assert.ok(certFingerprint(cert.certPem).equals(cert.fingerprint));
  assert.not.ok(generateSelfSignedCert({ host: 'vm.example.org' }).fingerprint.equals(cert.fingerprint), 'fresh key, fresh cert');
});

test('subjectAltName carries IPv6 addresses and DNS names', () => {
  const v6 = new X509Certificate(generateSelfSignedCert({ host: '2001:db8:203::10' }).certPem);
  assert.ok(v6.checkIP('2001:db8:203::10'));
  assert.ok(new X509Certificate(generateSelfSignedCert({ host: '[::ffff:192.0.2.1]' }).certPem).checkIP('::ffff:192.0.2.1'));
  const dns = new X509Certificate(generateSelfSignedCert({ host: 'VM.Example.org' }).certPem);
  assert.is(dns.checkHost('vm.example.org'), 'vm.example.org');
  assert.is(new X509Certificate(generateSelfSignedCert().certPem).subjectAltName, undefined);
});

test('a host that is neither an address nor a DNS name is refused', () => {
  for (const host of ['bad host', '-x.example', 'a..b', 'x'.repeat(64)]) {
    assert.throws(() => generateSelfSignedCert({ host }), (e: unknown) => e instanceof ValidationError && e.field === 'host', host);
  }
});

test.run();
