import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ValidationError } from '../../shared/errors.ts';
import { createRunner } from '../../shared/run.ts';
import { decodeKey, encodeKey, generateKeyPair, isValidKey, publicKeyFromPrivate } from '../../shared/keys.ts';

const run = createRunner();

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

test('wg pubkey agrees with our public keys (private key on stdin)', async () => {
  for (let i = 0; i < 5; i++) {
    const { privateKey, publicKey } = generateKeyPair();
    const out = await run(['wg', 'pubkey'], { input: `${privateKey}\n` });
    assert.is(out.stdout.trim(), publicKey);
  }
});

test('keys from wg genkey give the same public key as wg pubkey', async () => {
  const priv = (await run(['wg', 'genkey'])).stdout.trim();
  assert.ok(isValidKey(priv));
  const pub = (await run(['wg', 'pubkey'], { input: `${priv}\n` })).stdout.trim();
  assert.is(publicKeyFromPrivate(priv), pub);
});

test('an unclamped private key gives the same public key as wg (both clamp)', async () => {
  const raw = new Uint8Array(32).fill(0xff);
  const priv = encodeKey(raw);
  const pub = (await run(['wg', 'pubkey'], { input: `${priv}\n` })).stdout.trim();
  assert.is(publicKeyFromPrivate(priv), pub);
});

test('what we refuse, wg refuses too', async () => {
  const good = generateKeyPair().privateKey;
  // Last character before "=" with nonzero unused bits: valid base64, but not canonical.
  const nonCanonical = `${good.slice(0, 42)}B=`;
  for (const bad of [nonCanonical, good.slice(0, 43), `${good}=`, good.replace(/=$/, 'A')]) {
    assert.not.ok(isValidKey(bad), bad);
    const out = await run(['wg', 'pubkey'], { input: `${bad}\n`, allowFail: true });
    assert.is.not(out.code, 0, `wg accepted ${bad}`);
  }
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
