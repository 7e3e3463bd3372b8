import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ValidationError } from '../../shared/errors.ts';
import { decodeKey, encodeKey, generateKeyPair, isValidKey, publicKeyFromPrivate } from '../../shared/keys.ts';

// The same keys through the real `wg genkey` and `wg pubkey`: test/integration/wg-keys.test.ts.

// RFC 7748 §6.1 test vector (Alice), in the base64 that wg uses.
const ALICE_PRIVATE = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex').toString('base64');
const ALICE_PUBLIC = Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex').toString('base64');

test('the RFC 7748 vector gives the known public key', () => {
  assert.is(publicKeyFromPrivate(ALICE_PRIVATE), ALICE_PUBLIC);
});

test('generated keys are 44-character base64, clamped like wg genkey, and all different', () => {
  const seen = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const { privateKey, publicKey } = generateKeyPair();
    assert.is(privateKey.length, 44);
    assert.is(publicKey.length, 44);
    assert.ok(isValidKey(privateKey) && isValidKey(publicKey));
    const raw = decodeKey(privateKey);
    assert.is(raw[0]! & 7, 0);
    assert.is(raw[31]! & 0xc0, 0x40);
    assert.is(publicKeyFromPrivate(privateKey), publicKey);
    seen.add(privateKey);
  }
  assert.is(seen.size, 50);
});

test('malformed keys are refused with the field named and without echoing the key', () => {
  const { privateKey } = generateKeyPair();
  const cases: [unknown, RegExp][] = [
    ['', /got 0 characters/],
    [privateKey.slice(0, 43), /got 43 characters/],
    [`${privateKey} `, /got 45 characters/],
    [privateKey.replace(/^./, '*'), /not valid base64/],
    [privateKey.replace(/^./, '-'), /not valid base64/], // base64url is not what wg reads
    [privateKey.replace('=', 'A'), /not valid base64/],
    ['A'.repeat(100_000), /got 100000 characters/],
    [42, /got number/],
    [null, /got null/],
    [undefined, /got undefined/],
    [{ toString: () => privateKey }, /got object/],
  ];
  for (const [input, pattern] of cases) {
    let thrown: unknown;
    try {
      decodeKey(input as string, 'publicKey');
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown instanceof ValidationError, `accepted ${String(input).slice(0, 50)}`);
    assert.is(thrown.field, 'publicKey');
    assert.match(thrown.message, /^publicKey: expected a base64 WireGuard key \(32 bytes\), got /);
    assert.match(thrown.message, pattern);
    assert.not.ok(thrown.message.includes(privateKey.slice(1, 40)), 'the message echoes the key');
  }
  assert.throws(() => publicKeyFromPrivate('nope'), (e: unknown) => e instanceof ValidationError && e.field === 'privateKey');
});

test('encodeKey and decodeKey are inverse and encodeKey wants exactly 32 bytes', () => {
  const bytes = new Uint8Array(32).map((_, i) => i * 7);
  assert.equal(decodeKey(encodeKey(bytes)), bytes);
  // A view into a larger buffer encodes only its own bytes.
  const big = new Uint8Array(40).map((_, i) => i);
  assert.equal(decodeKey(encodeKey(big.subarray(4, 36))), big.slice(4, 36));
  assert.throws(() => encodeKey(new Uint8Array(31)), (e: unknown) => e instanceof ValidationError);
  assert.throws(() => encodeKey(new Uint8Array(33)), (e: unknown) => e instanceof ValidationError);
});

test.run();
