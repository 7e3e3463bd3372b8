import { x25519 } from '@noble/curves/ed25519.js';
import { ValidationError } from './errors.ts';

/**
 * WireGuard keys: 32-byte X25519 keys written as 44 characters of standard
 * base64. Errors describe the input's shape, never its content: the text may
 * be someone's private key.
 */

// 42 free characters, then one whose low two bits are zero (the 32nd byte has
// only 2 bits in it), then the padding. wg rejects other final characters too.
const KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

function shape(text: unknown): string {
  if (typeof text !== 'string') return text === null ? 'null' : typeof text;
  if (text.length !== 44) return `${text.length} characters`;
  return '44 characters that are not valid base64';
}

export function isValidKey(b64: string): boolean {
  return typeof b64 === 'string' && KEY_RE.test(b64);
}

export function decodeKey(b64: string, field = 'key'): Uint8Array {
  if (!isValidKey(b64)) {
    throw new ValidationError(field, `expected a base64 WireGuard key (32 bytes), got ${shape(b64)}`);
  }
  return new Uint8Array(Buffer.from(b64, 'base64'));
}

export function encodeKey(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 32) {
    throw new ValidationError('key', `expected 32 bytes, got ${bytes instanceof Uint8Array ? bytes.length : typeof bytes}`);
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** Clamps an X25519 scalar the way `wg genkey` does (RFC 7748 §5). */
function clamp(k: Uint8Array): Uint8Array {
  k[0]! &= 248;
  k[31]! &= 127;
  k[31]! |= 64;
  return k;
}

export function generateKeyPair(): { privateKey: string; publicKey: string } {
  const secret = clamp(crypto.getRandomValues(new Uint8Array(32)));
  const publicKey = encodeKey(x25519.getPublicKey(secret));
  const privateKey = encodeKey(secret);
  secret.fill(0);
  return { privateKey, publicKey };
}

export function publicKeyFromPrivate(priv: string): string {
  const secret = decodeKey(priv, 'privateKey');
  try {
    return encodeKey(x25519.getPublicKey(secret));
  } finally {
    secret.fill(0);
  }
}
