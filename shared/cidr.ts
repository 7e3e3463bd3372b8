import { describeInput, ValidationError } from './errors.ts';

/**
 * IPv4 and IPv6 addresses and prefixes as bigints, so that one set of
 * arithmetic serves both families.
 */
export type Family = 4 | 6;

export interface Address {
  family: Family;
  value: bigint;
}

export interface Prefix {
  family: Family;
  /** The network address: host bits are always zero. */
  network: bigint;
  length: number;
}

// Longer than any textual address or prefix ("ffff:…:255.255.255.255%zone/128").
const MAX_TEXT = 100;

export function familyBits(family: Family): number {
  return family === 4 ? 32 : 128;
}

function parseV4(text: string): bigint | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    // No leading zeros: "010" means 8 to some parsers and 10 to others.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

function parseGroups(text: string): number[] | null {
  if (text === '') return [];
  const groups: number[] = [];
  for (const g of text.split(':')) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    groups.push(parseInt(g, 16));
  }
  return groups;
}

function parseV6(text: string): bigint | null {
  let head = text;
  let tail: bigint | null = null;
  // A trailing dotted quad fills the last two groups (RFC 4291 §2.2, form 3).
  const lastColon = text.lastIndexOf(':');
  if (lastColon >= 0 && text.slice(lastColon + 1).includes('.')) {
    tail = parseV4(text.slice(lastColon + 1));
    if (tail === null) return null;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  if (halves.length > 2) return null;
  let groups: number[];
  if (halves.length === 2) {
    const left = parseGroups(halves[0]!);
    const right = parseGroups(halves[1]!);
    if (!left || !right) return null;
    const missing = 8 - left.length - right.length;
    if (missing < 1) return null;
    groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  } else {
    const all = parseGroups(head);
    if (!all || all.length !== 8) return null;
    groups = all;
  }
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(g);
  if (tail !== null) value = (value & ~0xffffffffn) | tail;
  return value;
}

/** Parses "192.0.2.1" or "2001:db8::1" (no zone, no brackets, no prefix length). */
export function parseAddress(text: string, field = 'address'): Address {
  if (typeof text !== 'string' || text.length === 0 || text.length > MAX_TEXT) {
    throw new ValidationError(field, `expected an IPv4 or IPv6 address, got ${describeInput(text)}`);
  }
  if (text.includes('%')) {
    throw new ValidationError(field, `expected an IP address without a zone (%…), got ${describeInput(text)}`);
  }
  if (text.includes(':')) {
    const value = parseV6(text);
    if (value !== null) return { family: 6, value };
  } else {
    const value = parseV4(text);
    if (value !== null) return { family: 4, value };
  }
  throw new ValidationError(field, `expected an IPv4 or IPv6 address, got ${describeInput(text)}`);
}

export function isValidAddress(text: string): boolean {
  try {
    parseAddress(text);
    return true;
  } catch {
    return false;
  }
}

function formatV4(value: bigint): string {
  return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join('.');
}

/** Canonical text: dotted quad, or RFC 5952 for IPv6 (mapped IPv4 as ::ffff:a.b.c.d, §5). */
export function formatAddress(a: Address): string {
  if (a.family === 4) return formatV4(a.value);
  if (a.value >> 32n === 0xffffn) return `::ffff:${formatV4(a.value & 0xffffffffn)}`;
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((a.value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

function mask(family: Family, length: number): bigint {
  const bits = familyBits(family);
  return ((1n << BigInt(bits)) - 1n) ^ ((1n << BigInt(bits - length)) - 1n);
}

function splitLength(text: string, field: string, what: string): { addr: string; length: number } {
  if (typeof text !== 'string' || text.length > MAX_TEXT) {
    throw new ValidationError(field, `expected ${what}, got ${describeInput(text)}`);
  }
  const slash = text.indexOf('/');
  if (slash < 0) throw new ValidationError(field, `expected ${what}, got ${describeInput(text)} (no /length)`);
  const addr = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText)) {
    throw new ValidationError(field, `expected ${what}, got ${describeInput(text)} (bad length)`);
  }
  return { addr, length: Number(lenText) };
}

function parseWithLength(text: string, field: string, what: string): { address: Address; length: number } {
  const { addr, length } = splitLength(text, field, what);
  let address: Address;
  try {
    address = parseAddress(addr, field);
  } catch {
    throw new ValidationError(field, `expected ${what}, got ${describeInput(text)}`);
  }
  const bits = familyBits(address.family);
  if (length > bits) {
    throw new ValidationError(field, `expected ${what}, got ${describeInput(text)} (length above ${bits})`);
  }
  return { address, length };
}

/** Parses "192.0.2.0/24" or "2001:db8::/32"; host bits must be zero. */
export function parsePrefix(text: string, field = 'prefix'): Prefix {
  const what = 'an IP prefix like 192.0.2.0/24 or 2001:db8::/64';
  const { address, length } = parseWithLength(text, field, what);
  const network = address.value & mask(address.family, length);
  const prefix: Prefix = { family: address.family, network, length };
  if (network !== address.value) {
    throw new ValidationError(field, `${text} has host bits set; did you mean ${formatPrefix(prefix)}?`);
  }
  return prefix;
}

export function isValidPrefix(text: string): boolean {
  try {
    parsePrefix(text);
    return true;
  } catch {
    return false;
  }
}

export function formatPrefix(p: Prefix): string {
  return `${formatAddress({ family: p.family, value: p.network })}/${p.length}`;
}

/** Parses an interface address with its subnet, "203.0.113.130/25": host bits are the point. */
export function parseInterfaceAddress(text: string, field = 'address'): { address: Address; prefix: Prefix } {
  const what = 'an interface address like 192.0.2.1/24 or 2001:db8::1/64';
  const { address, length } = parseWithLength(text, field, what);
  return {
    address,
    prefix: { family: address.family, network: address.value & mask(address.family, length), length },
  };
}

/** "203.0.113.130/25" from an address and its prefix length. */
export function formatInterfaceAddress(a: Address, length: number): string {
  return `${formatAddress(a)}/${length}`;
}

export function prefixContains(p: Prefix, a: Address): boolean {
  return p.family === a.family && (a.value & mask(p.family, p.length)) === p.network;
}

export function prefixesOverlap(a: Prefix, b: Prefix): boolean {
  if (a.family !== b.family) return false;
  const shorter = Math.min(a.length, b.length);
  const m = mask(a.family, shorter);
  return (a.network & m) === (b.network & m);
}

export function prefixSize(p: Prefix): bigint {
  return 1n << BigInt(familyBits(p.family) - p.length);
}

/** The n-th address of the prefix (0 is the network address). */
export function nthAddress(p: Prefix, n: number | bigint): Address {
  if (typeof n === 'number' && !Number.isSafeInteger(n)) throw new RangeError(`address index ${n} is not an integer`);
  const i = BigInt(n);
  if (i < 0n || i >= prefixSize(p)) {
    throw new RangeError(`address index ${i} is outside ${formatPrefix(p)}`);
  }
  return { family: p.family, value: p.network + i };
}

export function hostPrefix(a: Address): Prefix {
  return { family: a.family, network: a.value, length: familyBits(a.family) };
}

/** A random /22 inside 100.64.0.0/10 (RFC 6598 shared address space). */
export function randomOverlayV4(): Prefix {
  const base = (100n << 24n) | (64n << 16n);
  return { family: 4, network: base | (BigInt(randomBits(12)) << 10n), length: 22 };
}

/** fd00::/8 + a random 40-bit global ID + subnet 0, as a /64 (RFC 4193 §3.2). */
export function randomUlaV6(): Prefix {
  const globalId = BigInt(`0x${Buffer.from(randomBytes(5)).toString('hex')}`);
  return { family: 6, network: (0xfdn << 120n) | (globalId << 80n), length: 64 };
}

/** True for ::ffff:a.b.c.d (RFC 4291 §2.5.5.2: an IPv4 peer seen through a dual-stack socket). */
export function isMappedV4(a: Address): boolean {
  return a.family === 6 && a.value >> 32n === 0xffffn;
}

/**
 * A socket's remote address in the form we store: "::ffff:192.0.2.1" becomes
 * "192.0.2.1", a "%zone" suffix goes, and IPv6 is made canonical. Text that is
 * not an address comes back with only the zone removed (it will match nothing).
 */
export function normalizeRemoteAddress(s: string): string {
  const text = String(s);
  const noZone = text.includes('%') ? text.slice(0, text.indexOf('%')) : text;
  let a: Address;
  try {
    a = parseAddress(noZone);
  } catch {
    return noZone;
  }
  if (isMappedV4(a)) return formatV4(a.value & 0xffffffffn);
  return formatAddress(a);
}

/** Mapped IPv4 becomes plain IPv4; everything else is returned as is. */
export function unmapAddress(a: Address): Address {
  return isMappedV4(a) ? { family: 4, value: a.value & 0xffffffffn } : a;
}

// Web Crypto's generator rather than node:crypto, so that the router's daemon
// does not load node:crypto (and OpenSSL's code) just to start.
function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** A uniform random integer of `bits` bits (at most 32). */
function randomBits(bits: number): number {
  const [word = 0] = crypto.getRandomValues(new Uint32Array(1));
  return word >>> (32 - bits);
}
