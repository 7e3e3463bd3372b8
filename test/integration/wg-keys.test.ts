import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createRunner } from '../../shared/run.ts';
import { encodeKey, generateKeyPair, isValidKey, publicKeyFromPrivate } from '../../shared/keys.ts';

// Our X25519 keys against the real wg (wireguard-tools): the same public keys,
// the same clamping, the same refusals. Private keys go to wg on stdin only.

const run = createRunner();

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

test.run();
