import { domainToASCII } from 'node:url';
import { ValidationError, describeInput } from '../../../shared/errors.ts';

// Domain names as the blocklists store them: lowercase ASCII (IDNs as
// punycode), no trailing dot, labels of letters, digits, '-' and '_'.
// Underscores are not hostname characters, but real lists carry names such as
// `_dmarc.example` or `ad_server.example`, and DNS itself allows any octet.

/** RFC 1035 §2.3.4: 255 octets on the wire is 253 characters of text. */
export const MAX_NAME = 253;
/** RFC 1035 §2.3.4. */
export const MAX_LABEL = 63;

const DOT = 0x2e;

/** Byte classes for the name scanners: what a byte is, and its lowercase form. */
const INVALID = 0;
const CHAR = 1; // a-z, A-Z, '-', '_'
const DIGIT = 2;
const DOT_KIND = 3;
const WIDE = 4; // not ASCII: part of a UTF-8 IDN
const KIND = new Uint8Array(256);
const LOWER = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  LOWER[c] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
  const l = LOWER[c]!;
  KIND[c] =
    c >= 0x80 ? WIDE : c === DOT ? DOT_KIND : l >= 0x30 && l <= 0x39 ? DIGIT : (l >= 0x61 && l <= 0x7a) || l === 0x2d || l === 0x5f ? CHAR : INVALID;
}

/**
 * Copies the name in src[start, end) to dst[0, …) lowercased, checking it on
 * the way: labels of 1–63 letters, digits, '-' or '_', 253 characters at most,
 * and a last label that is not all digits (no top-level domain is numeric:
 * this is how an IPv4 address is told from a name). Returns the number of
 * labels; 0 if it is not a name; -1 if it has non-ASCII bytes (maybe an IDN
 * in UTF-8: the caller converts it and checks again). One pass: the list
 * parser calls this for every name.
 */
export function copyName(src: Uint8Array, start: number, end: number, dst: Uint8Array): number {
  const len = end - start;
  if (len <= 0) return 0;
  let labels = 1;
  let labelStart = 0;
  let digitsOnly = true;
  for (let i = 0; i < len; i++) {
    const c = src[start + i]!;
    const kind = KIND[c]!;
    if (kind === CHAR) {
      digitsOnly = false;
    } else if (kind === DOT_KIND) {
      if (i === labelStart || i - labelStart > MAX_LABEL) return 0;
      labels++;
      labelStart = i + 1;
      digitsOnly = true;
    } else if (kind === WIDE) {
      return -1;
    } else if (kind !== DIGIT) {
      return 0;
    }
    if (i < MAX_NAME) dst[i] = LOWER[c]!;
  }
  if (len > MAX_NAME || len === labelStart || len - labelStart > MAX_LABEL || digitsOnly) return 0;
  return labels;
}

/**
 * Counts the labels of the name in b[start, end) (no trailing dot), or 0 when
 * it is not one; the rules of copyName, and only lowercase.
 */
export function countLabels(b: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) if (b[i]! >= 0x41 && b[i]! <= 0x5a) return 0;
  const scratch = new Uint8Array(Math.min(end - start, MAX_NAME));
  return Math.max(0, copyName(b, start, end, scratch));
}

/** Unicode → punycode per UTS #46 (what browsers do); '' when it is not a domain. */
export function idnToAscii(text: string): string {
  return domainToASCII(text);
}

/**
 * A name a person typed (`dns allow NAME`, `dns block NAME`, `dns test NAME`):
 * trimmed, lowercase, IDN → punycode, one trailing dot removed. A single label
 * is allowed here (blocking a whole TLD such as `zip` is a real wish), unlike
 * in downloaded lists. ValidationError naming `field` otherwise.
 */
export function normalizeDomain(text: string, field = 'name'): string {
  if (typeof text !== 'string') throw new ValidationError(field, `expected a domain name such as ads.example.com, got ${describeInput(text)}`);
  let name = text.trim().toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  if (name.startsWith('*.')) {
    throw new ValidationError(field, `expected a domain name without a wildcard: ${describeInput(name.slice(2))} already covers its subdomains`);
  }
  if (/[^\x00-\x7f]/.test(name)) name = idnToAscii(name); // not ASCII: an IDN in Unicode
  const bytes = Buffer.from(name, 'latin1');
  if (name === '' || countLabels(bytes, 0, bytes.length) === 0) {
    throw new ValidationError(
      field,
      `expected a domain name such as ads.example.com (labels of letters, digits, '-' or '_', up to 63 characters each, 253 in all), got ${describeInput(text)}`,
    );
  }
  return name;
}
