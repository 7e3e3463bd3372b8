import { sha256 } from '@noble/hashes/sha2.js';
import { describeInput, ValidationError } from './errors.ts';
import { formatAddress, parseAddress, unmapAddress, type Address } from './cidr.ts';

/**
 * The pairing code a person carries from the VM to the router:
 *
 *   "AERIE1-" + base32(payload)        (RFC 4648 §6 alphabet, no padding)
 *   payload = version(1) = 1
 *           | host kind(1): 4 → 4 bytes, 6 → 16 bytes, 0 → length(1) + DNS name
 *           | port(2, big-endian) | fingerprint(32) | secret(16)
 *           | checksum(4) = first 4 bytes of SHA-256(everything before it)
 *
 * Base32 in upper case keeps a QR code in alphanumeric mode. The checksum
 * catches typos and truncation before anything goes over the network.
 */
export interface PairingCode {
  host: string;
  port: number;
  /** SHA-256 of the VM's certificate (DER), 32 bytes. */
  fingerprint: Uint8Array;
  /** One-time secret, 16 bytes. */
  secret: Uint8Array;
}

export type PairingCodeProblem = 'not-aerie' | 'version' | 'truncated' | 'checksum' | 'host' | 'port' | 'malformed';

/** A pairing code that cannot be used; `reason` says why, the message says it to a person. */
export class PairingCodeError extends ValidationError {
  readonly reason: PairingCodeProblem;
  constructor(reason: PairingCodeProblem, message: string) {
    super('pairingCode', message);
    this.name = 'PairingCodeError';
    this.reason = reason;
  }
}

const PREFIX = 'AERIE';
const VERSION = 1;
const FINGERPRINT_BYTES = 32;
const SECRET_BYTES = 16;
const CHECKSUM_BYTES = 4;
const HOST_V4 = 4;
const HOST_V6 = 6;
const HOST_NAME = 0;
// The longest real code (a 253-character name) is under 500 characters.
const MAX_INPUT = 1000;

// ---- hosts and endpoints ----------------------------------------------------

const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** A DNS host name (RFC 1123 §2.1 letters, digits, hyphens); lower case, no trailing dot. */
function parseDnsName(text: string): string | null {
  const name = (text.endsWith('.') ? text.slice(0, -1) : text).toLowerCase();
  if (name.length === 0 || name.length > 253) return null;
  const labels = name.split('.');
  if (!labels.every((l) => LABEL_RE.test(l))) return null;
  // An all-numeric last label is a mistyped IPv4 address, not a name (RFC 3696 §2).
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) return null;
  return name;
}

/**
 * An IPv4 address, an IPv6 address (no brackets, no zone) or a DNS name, in
 * canonical form. IPv4-mapped IPv6 becomes plain IPv4.
 */
export function parseHost(text: string, field = 'host'): string {
  const expected = 'expected an IPv4 address, an IPv6 address or a DNS name';
  if (typeof text !== 'string' || text.length === 0 || text.length > 253) {
    throw new ValidationError(field, `${expected}, got ${describeInput(text)}`);
  }
  if (text.includes(':') || /^[0-9.]+$/.test(text)) {
    let a: Address;
    try {
      a = parseAddress(text, field);
    } catch {
      throw new ValidationError(field, `${expected}, got ${describeInput(text)}`);
    }
    return formatAddress(unmapAddress(a));
  }
  const name = parseDnsName(text);
  if (name === null) throw new ValidationError(field, `${expected}, got ${describeInput(text)}`);
  return name;
}

function checkPort(port: number, field: string): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ValidationError(field, `expected a port number 1-65535, got ${describeInput(port)}`);
  }
  return port;
}

/** "host:port", with brackets around IPv6: "[2001:db8::1]:51820". */
export function formatEndpoint(host: string, port: number): string {
  checkPort(port, 'port');
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Parses "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address.
 * Without a port, `defaultPort` is used; without that either, it is an error.
 */
export function parseEndpoint(text: string, defaultPort?: number, field = 'endpoint'): { host: string; port: number } {
  const expected = 'expected host:port, [IPv6]:port or a host name';
  if (typeof text !== 'string' || text.length > 300) {
    throw new ValidationError(field, `${expected}, got ${describeInput(text)}`);
  }
  const s = text.trim();
  let hostText: string;
  let portText: string | undefined;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0) throw new ValidationError(field, `${expected}, got ${describeInput(text)} (no closing ])`);
    hostText = s.slice(1, close);
    const rest = s.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) throw new ValidationError(field, `${expected}, got ${describeInput(text)}`);
      portText = rest.slice(1);
    }
    if (!hostText.includes(':')) {
      throw new ValidationError(field, `${expected}, got ${describeInput(text)} (brackets are only for IPv6)`);
    }
  } else {
    const colons = s.split(':').length - 1;
    if (colons === 1) {
      const i = s.indexOf(':');
      hostText = s.slice(0, i);
      portText = s.slice(i + 1);
    } else {
      hostText = s; // no port, or a bare IPv6 address
    }
  }
  const host = parseHost(hostText, field);
  let port: number;
  if (portText === undefined) {
    if (defaultPort === undefined) throw new ValidationError(field, `${expected}, got ${describeInput(text)} (no port)`);
    port = checkPort(defaultPort, field);
  } else {
    if (!/^[1-9][0-9]{0,4}$/.test(portText)) {
      throw new ValidationError(field, `expected a port number 1-65535, got ${describeInput(portText)}`);
    }
    port = checkPort(Number(portText), field);
  }
  return { host, port };
}

// ---- fingerprints and secrets -----------------------------------------------

/** "AB:CD:…", the same text as Node's X509Certificate.fingerprint256. */
export function formatFingerprint(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(':');
}

/** Accepts "AB:CD:…" (any case) or 64 hex digits; returns the 32 bytes. */
export function parseFingerprint(text: string, field = 'fingerprint'): Uint8Array {
  const expected = 'expected a SHA-256 fingerprint (32 hex byte pairs like AB:CD:…)';
  if (typeof text !== 'string' || text.length > 200) {
    throw new ValidationError(field, `${expected}, got ${describeInput(text)}`);
  }
  const s = text.trim();
  const hex = s.includes(':') ? (/^([0-9a-fA-F]{2}:){31}[0-9a-fA-F]{2}$/.test(s) ? s.replaceAll(':', '') : '') : s;
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new ValidationError(field, `${expected}, got ${describeInput(text)}`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** The pairing secret as it travels in a PairRequest: base64url, 22 characters. */
export function encodeSecret(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array) || bytes.length !== SECRET_BYTES) {
    throw new ValidationError('secret', `expected ${SECRET_BYTES} bytes`);
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

// 21 free characters and a last one that carries 2 bits (the other 4 are zero).
const SECRET_RE = /^[A-Za-z0-9_-]{21}[AQgw]$/;

export function isValidSecret(text: string): boolean {
  return typeof text === 'string' && SECRET_RE.test(text);
}

export function decodeSecret(text: string, field = 'secret'): Uint8Array {
  if (!isValidSecret(text)) {
    // Never echo the text: it is a secret, or a typo of one.
    throw new ValidationError(field, `expected ${SECRET_BYTES} bytes as base64url (22 characters)`);
  }
  return new Uint8Array(Buffer.from(text, 'base64url'));
}

// ---- base32 (RFC 4648 §6) ---------------------------------------------------

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

function base32Encode(bytes: Uint8Array): string {
  let out = '';
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = ((acc << 8) | b) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += B32[(acc >> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += B32[(acc << (5 - bits)) & 31];
  return out;
}

/** Decodes unpadded base32; null when a length or the unused final bits are impossible. */
function base32Decode(text: string): Uint8Array | null {
  // Lengths mod 8 of 1, 3 and 6 cannot come from whole bytes.
  if ([1, 3, 6].includes(text.length % 8)) return null;
  const out = new Uint8Array(Math.floor((text.length * 5) / 8));
  let acc = 0;
  let bits = 0;
  let n = 0;
  for (const ch of text) {
    const v = B32.indexOf(ch);
    if (v < 0) return null;
    acc = ((acc << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[n++] = (acc >> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  if ((acc & ((1 << bits) - 1)) !== 0) return null;
  return out;
}

function checksum(bytes: Uint8Array): Uint8Array {
  return sha256(bytes).slice(0, CHECKSUM_BYTES);
}

// ---- the code ---------------------------------------------------------------

function hostBytes(host: string): number[] {
  const canonical = parseHost(host, 'host');
  if (canonical.includes(':') || /^[0-9.]+$/.test(canonical)) {
    const a = parseAddress(canonical, 'host');
    const n = a.family === 4 ? 4 : 16;
    const bytes: number[] = [a.family === 4 ? HOST_V4 : HOST_V6];
    for (let i = n - 1; i >= 0; i--) bytes.push(Number((a.value >> BigInt(i * 8)) & 0xffn));
    return bytes;
  }
  return [HOST_NAME, canonical.length, ...Buffer.from(canonical, 'ascii')];
}

export function encodePairingCode(c: PairingCode): string {
  const port = checkPort(c.port, 'port');
  if (!(c.fingerprint instanceof Uint8Array) || c.fingerprint.length !== FINGERPRINT_BYTES) {
    throw new ValidationError('fingerprint', `expected ${FINGERPRINT_BYTES} bytes (SHA-256)`);
  }
  if (!(c.secret instanceof Uint8Array) || c.secret.length !== SECRET_BYTES) {
    throw new ValidationError('secret', `expected ${SECRET_BYTES} bytes`);
  }
  const body = Uint8Array.from([
    VERSION,
    ...hostBytes(c.host),
    port >> 8,
    port & 0xff,
    ...c.fingerprint,
    ...c.secret,
  ]);
  const all = new Uint8Array(body.length + CHECKSUM_BYTES);
  all.set(body);
  all.set(checksum(body), body.length);
  return `${PREFIX}${VERSION}-${base32Encode(all)}`;
}

/** How many payload bytes the header says there should be, or null if it cannot say. */
function expectedLength(bytes: Uint8Array): number | null {
  const tail = 2 + FINGERPRINT_BYTES + SECRET_BYTES + CHECKSUM_BYTES;
  const kind = bytes[1];
  if (kind === HOST_V4) return 2 + 4 + tail;
  if (kind === HOST_V6) return 2 + 16 + tail;
  if (kind === HOST_NAME && bytes.length > 2) return 3 + bytes[2]! + tail;
  return null;
}

/**
 * Reads a pairing code as a person pasted or typed it: case, spaces, line
 * breaks, dashes and surrounding quotes do not matter.
 */
export function decodePairingCode(text: string): PairingCode {
  if (typeof text !== 'string') throw new PairingCodeError('not-aerie', 'this is not an Aerie pairing code');
  if (text.length > MAX_INPUT) {
    throw new PairingCodeError('not-aerie', `this is not an Aerie pairing code (${text.length} characters is far too long)`);
  }
  const s = text
    .toUpperCase()
    .replace(/[\s\u200b-\u200d\u2060\ufeff-]+/g, '')
    .replace(/^["'`<(\[]+|["'`>)\].,;]+$/g, '');
  if (!s.startsWith(PREFIX)) {
    throw new PairingCodeError('not-aerie', `this is not an Aerie pairing code (it should start with ${PREFIX}${VERSION}-)`);
  }
  // One digit: with the dashes gone, base32 data (digits 2-7 included) follows it directly.
  const version = /^[0-9]/.exec(s.slice(PREFIX.length))?.[0];
  if (version === undefined) {
    throw new PairingCodeError('not-aerie', `this is not an Aerie pairing code (it should start with ${PREFIX}${VERSION}-)`);
  }
  if (version !== String(VERSION)) {
    throw new PairingCodeError(
      'version',
      `this pairing code is version ${version}, but this router understands only version ${VERSION}; update Aerie on the router or make a new code`,
    );
  }
  const data = s.slice(PREFIX.length + version.length);
  const bad = /[^A-Z2-7]/.exec(data);
  if (bad) {
    throw new PairingCodeError(
      'checksum',
      `the pairing code is mistyped: ${JSON.stringify(bad[0])} (character ${bad.index + 1} after ${PREFIX}${VERSION}-) cannot be part of it`,
    );
  }
  // The first 8 characters (5 bytes) say how long the whole code must be.
  const minimum = 1 + 1 + 4 + 2 + FINGERPRINT_BYTES + SECRET_BYTES + CHECKSUM_BYTES;
  const head = data.length >= 8 ? base32Decode(data.slice(0, 8)) : null;
  const needChars = Math.ceil(((head && expectedLength(head)) ?? minimum) * 8 / 5);
  if (data.length < needChars) {
    throw new PairingCodeError('truncated', 'the pairing code is truncated: copy all of it');
  }
  const bytes = base32Decode(data);
  if (bytes === null) {
    throw new PairingCodeError('checksum', 'the pairing code is mistyped or damaged (its length is impossible)');
  }
  const body = bytes.subarray(0, bytes.length - CHECKSUM_BYTES);
  const sum = checksum(body);
  if (!sum.every((b, i) => b === bytes[body.length + i])) {
    if (data.length > needChars) {
      throw new PairingCodeError('checksum', 'the pairing code has extra characters at the end, or is mistyped');
    }
    throw new PairingCodeError('checksum', 'the pairing code is mistyped or damaged (checksum does not match)');
  }
  if (body[0] !== VERSION) {
    throw new PairingCodeError(
      'version',
      `this pairing code is version ${body[0]}, but this router understands only version ${VERSION}; update Aerie on the router or make a new code`,
    );
  }
  return readBody(body);
}

function readBody(body: Uint8Array): PairingCode {
  let at = 1;
  const kind = body[at++];
  let host: string;
  if (kind === HOST_V4 || kind === HOST_V6) {
    const n = kind === HOST_V4 ? 4 : 16;
    if (body.length !== 2 + n + 2 + FINGERPRINT_BYTES + SECRET_BYTES) {
      throw new PairingCodeError('malformed', 'the pairing code is malformed (wrong length)');
    }
    let value = 0n;
    for (let i = 0; i < n; i++) value = (value << 8n) | BigInt(body[at++]!);
    host = formatAddress({ family: kind === HOST_V4 ? 4 : 6, value });
    if (value === 0n) throw new PairingCodeError('host', `the pairing code holds an unusable host address (${host})`);
  } else if (kind === HOST_NAME) {
    const len = body[at++]!;
    if (body.length !== 3 + len + 2 + FINGERPRINT_BYTES + SECRET_BYTES) {
      throw new PairingCodeError('malformed', 'the pairing code is malformed (wrong length)');
    }
    const raw = body.subarray(at, at + len);
    at += len;
    const name = raw.every((b) => b >= 0x20 && b < 0x7f) ? parseDnsName(Buffer.from(raw).toString('ascii')) : null;
    if (name === null) throw new PairingCodeError('host', 'the pairing code holds an invalid host name');
    host = name;
  } else {
    throw new PairingCodeError('host', `the pairing code holds an unknown kind of host (${kind})`);
  }
  const port = (body[at]! << 8) | body[at + 1]!;
  at += 2;
  if (port === 0) throw new PairingCodeError('port', 'the pairing code holds port 0, which cannot be reached');
  const fingerprint = body.slice(at, at + FINGERPRINT_BYTES);
  at += FINGERPRINT_BYTES;
  const secret = body.slice(at, at + SECRET_BYTES);
  return { host, port, fingerprint, secret };
}
