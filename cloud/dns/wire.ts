import { ValidationError, describeInput } from '../../shared/errors.ts';

// The DNS message format (RFC 1035 §4.1) as the resolver needs it: read in
// place, with no objects made per query on the hot paths. Replies are written
// by wire-reply.ts; upstream answers are checked by wire-scan.ts.

export const HEADER = 12;
export const CLASS_IN = 1;
/** Our EDNS(0) UDP payload size (DNS Flag Day 2020: no IP fragmentation). */
export const EDNS_SIZE = 1232;
export const OPT_LENGTH = 11;
export const MAX_NAME = 255;

export const TYPE = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  OPT: 41,
  IXFR: 251,
  AXFR: 252,
  MAILB: 253,
  MAILA: 254,
  ANY: 255,
} as const;

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, BADVERS: 16 } as const;

// Header flag bits (RFC 1035 §4.1.1, RFC 4035 §3.2 for AD and CD).
export const QR = 0x8000;
export const AA = 0x0400;
export const TC = 0x0200;
export const RD = 0x0100;
export const RA = 0x0080;
export const AD = 0x0020;
export const CD = 0x0010;
export const OPCODE_MASK = 0x7800;

/** What a reply needs to know about the query it answers. */
export interface Asker {
  /** The query: header and question at least (the question is copied from buf[12..end)). */
  buf: Uint8Array;
  id: number;
  flags: number;
  /** Offset just past the question; 0 when the question could not be read. */
  end: number;
  edns: boolean;
  ednsDo: boolean;
  /** Largest reply that may be sent: UDP size, or 65535 over TCP. */
  limit: number;
}

/** A parsed query. One object is reused for every query: read it before the next call. */
export interface Query extends Asker {
  nameEnd: number;
  qtype: number;
  qclass: number;
  /** FNV-1a of the name with ASCII case folded (label lengths included). */
  hash: number;
  labels: number;
  /** Offset of each label's length byte, leftmost first. */
  labelOffsets: Int32Array;
  ednsSize: number;
  ednsVersion: number;
}

export function createQuery(): Query {
  return {
    buf: new Uint8Array(0),
    id: 0,
    flags: 0,
    end: 0,
    edns: false,
    ednsDo: false,
    limit: 512,
    nameEnd: 0,
    qtype: 0,
    qclass: 0,
    hash: 0,
    labels: 0,
    labelOffsets: new Int32Array(128), // a 255-octet name has at most 127 labels
    ednsSize: 512,
    ednsVersion: 0,
  };
}

export const FNV_OFFSET = 0x811c9dc5;
export const FNV_PRIME = 16777619;

export const lower = (b: number): number => (b >= 0x41 && b <= 0x5a ? b | 0x20 : b);
export const u16 = (buf: Uint8Array, off: number): number => (buf[off]! << 8) | buf[off + 1]!;
export const u32 = (buf: Uint8Array, off: number): number =>
  ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;

export function put16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 8;
  buf[off + 1] = v & 0xff;
}

export function put32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = (v >>> 16) & 0xff;
  buf[off + 2] = (v >>> 8) & 0xff;
  buf[off + 3] = v & 0xff;
}

/** parseQuery: a query to answer. */
export const Q_OK = 0;
/** parseQuery: send nothing (no readable header, or not a query). */
export const Q_DROP = -1;

/**
 * Reads a query into q. Returns Q_OK, Q_DROP, or the rcode to answer with
 * (FORMERR, NOTIMP); q.end > 0 then means the question was readable.
 */
export function parseQuery(buf: Uint8Array, q: Query): number {
  q.buf = buf;
  q.end = 0;
  q.labels = 0;
  q.edns = false;
  q.ednsDo = false;
  q.ednsSize = 512;
  q.ednsVersion = 0;
  const len = buf.length;
  if (len < HEADER) return Q_DROP;
  q.id = u16(buf, 0);
  const flags = u16(buf, 2);
  q.flags = flags;
  if (flags & QR) return Q_DROP; // a response: answering it could start a loop
  if (flags & OPCODE_MASK) return RCODE.NOTIMP;
  if (u16(buf, 4) !== 1) return RCODE.FORMERR;

  // The question name: plain labels only. A pointer has nothing to point back
  // to here, and 0x40/0x80 are extended label types (RFC 6891 §5).
  let off = HEADER;
  let h = FNV_OFFSET;
  let n = 0;
  for (;;) {
    if (off >= len) return RCODE.FORMERR;
    const l = buf[off]!;
    if (l === 0) break;
    if (l > 63) return RCODE.FORMERR;
    if (off + l + 1 - HEADER > MAX_NAME - 1) return RCODE.FORMERR; // RFC 1035 §3.1: 255 octets with the root
    q.labelOffsets[n++] = off;
    h = Math.imul(h ^ l, FNV_PRIME);
    const stop = off + 1 + l;
    if (stop > len) return RCODE.FORMERR;
    for (let i = off + 1; i < stop; i++) h = Math.imul(h ^ lower(buf[i]!), FNV_PRIME);
    off = stop;
  }
  off++;
  if (off + 4 > len) return RCODE.FORMERR;
  q.nameEnd = off;
  q.qtype = u16(buf, off);
  q.qclass = u16(buf, off + 2);
  q.end = off + 4;
  q.hash = h >>> 0;
  q.labels = n;

  // Other sections: skipped, except the one OPT record (RFC 6891 §6.1.1).
  off = q.end;
  const other = u16(buf, 6) + u16(buf, 8);
  for (let i = 0; i < other; i++) {
    off = skipRecord(buf, off, len);
    if (off < 0) return RCODE.FORMERR;
  }
  const additional = u16(buf, 10);
  for (let i = 0; i < additional; i++) {
    const start = off;
    const nameEnd = skipName(buf, off, len);
    off = skipRecord(buf, off, len);
    if (off < 0) return RCODE.FORMERR;
    if (u16(buf, nameEnd) !== TYPE.OPT) continue;
    if (nameEnd !== start + 1 || q.edns) return RCODE.FORMERR; // OPT is owned by the root, and comes once
    if (!optionsValid(buf, start + OPT_LENGTH, off)) return RCODE.FORMERR;
    q.edns = true;
    q.ednsSize = Math.max(512, u16(buf, start + 3)); // below 512 counts as 512 (RFC 6891 §6.2.3)
    q.ednsVersion = buf[start + 6]!;
    q.ednsDo = (buf[start + 7]! & 0x80) !== 0;
  }
  return Q_OK;
}

/** The offset after a name read in place (a pointer ends it), or -1. */
export function skipName(buf: Uint8Array, off: number, len: number): number {
  for (;;) {
    if (off >= len) return -1;
    const l = buf[off]!;
    if (l === 0) return off + 1;
    if ((l & 0xc0) === 0xc0) return off + 2 <= len ? off + 2 : -1;
    if (l > 63) return -1;
    off += 1 + l;
  }
}

/** The offset after a resource record, or -1 when it runs past `len`. */
export function skipRecord(buf: Uint8Array, off: number, len: number): number {
  off = skipName(buf, off, len);
  if (off < 0 || off + 10 > len) return -1;
  const end = off + 10 + u16(buf, off + 8);
  return end <= len ? end : -1;
}

// EDNS options are code/length/value triples that must fill RDATA exactly (RFC 6891 §6.1.2).
function optionsValid(buf: Uint8Array, off: number, end: number): boolean {
  while (off < end) {
    if (off + 4 > end) return false;
    off += 4 + u16(buf, off + 2);
  }
  return off === end;
}

/**
 * Checks a possibly compressed name at buf[off]: every pointer must point
 * backwards of itself and the expanded name must fit in 255 octets, which
 * together end every loop (a cycle of pointers alone would have to move
 * forward somewhere; one through labels grows the name). Returns the offset
 * after the name in place, or -1.
 */
export function checkName(buf: Uint8Array, off: number, len: number): number {
  let end = -1;
  let size = 1;
  for (;;) {
    if (off >= len) return -1;
    const l = buf[off]!;
    if (l === 0) return end < 0 ? off + 1 : end;
    if ((l & 0xc0) === 0xc0) {
      if (off + 2 > len) return -1;
      const target = ((l & 0x3f) << 8) | buf[off + 1]!;
      if (target >= off) return -1;
      if (end < 0) end = off + 2;
      off = target;
      continue;
    }
    if (l > 63) return -1;
    size += 1 + l;
    if (size > MAX_NAME) return -1;
    off += 1 + l;
  }
}

/** Presentation form of an uncompressed name ("www.example.com"), RFC 4343 escapes for odd bytes. */
export function nameToText(buf: Uint8Array, off: number): string {
  let out = '';
  for (let l = buf[off]!; l !== 0 && l <= 63 && off + l < buf.length; l = buf[off]!) {
    if (out) out += '.';
    for (let i = off + 1; i <= off + l; i++) {
      const b = buf[i]!;
      if (b === 0x2e || b === 0x5c) out += '\\' + String.fromCharCode(b);
      else if (b > 0x20 && b < 0x7f) out += String.fromCharCode(b);
      else out += '\\' + String(b).padStart(3, '0');
    }
    off += l + 1;
  }
  return out || '.';
}

/** Wire form of a name, lowercased: 'aerie.internal' → 5aerie8internal0. */
export function nameToWire(text: string, field = 'name'): Uint8Array {
  const name = text.endsWith('.') ? text.slice(0, -1) : text;
  const labels = name === '' ? [] : name.toLowerCase().split('.');
  const out: number[] = [];
  for (const label of labels) {
    if (!/^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/.test(label)) {
      throw new ValidationError(field, `expected a domain name (labels of 1-63 letters, digits and hyphens), got ${describeInput(text)}`);
    }
    out.push(label.length);
    for (let i = 0; i < label.length; i++) out.push(label.charCodeAt(i));
  }
  out.push(0);
  if (out.length > MAX_NAME) throw new ValidationError(field, `expected a domain name of at most 255 octets, got ${describeInput(text)}`);
  return Uint8Array.from(out);
}

/** Compares the name at buf[off..off+wire.length) with a lowercase wire name, case folded. */
export function nameEquals(buf: Uint8Array, off: number, wire: Uint8Array): boolean {
  if (off + wire.length > buf.length) return false;
  for (let i = 0; i < wire.length; i++) if (lower(buf[off + i]!) !== wire[i]) return false;
  return true;
}

const TYPE_NAMES: Record<number, string> = {
  1: 'A', 2: 'NS', 5: 'CNAME', 6: 'SOA', 12: 'PTR', 15: 'MX', 16: 'TXT', 28: 'AAAA', 33: 'SRV', 35: 'NAPTR',
  43: 'DS', 46: 'RRSIG', 47: 'NSEC', 48: 'DNSKEY', 50: 'NSEC3', 52: 'TLSA', 64: 'SVCB', 65: 'HTTPS', 99: 'SPF',
  251: 'IXFR', 252: 'AXFR', 255: 'ANY', 257: 'CAA',
};

/** 'A', 'AAAA', … or 'TYPE65534' (RFC 3597 §5). */
export const typeName = (t: number): string => TYPE_NAMES[t] ?? `TYPE${t}`;

const RCODE_NAMES: Record<number, string> = {
  0: 'NOERROR', 1: 'FORMERR', 2: 'SERVFAIL', 3: 'NXDOMAIN', 4: 'NOTIMP', 5: 'REFUSED', 16: 'BADVERS',
};

export const rcodeName = (r: number): string => RCODE_NAMES[r] ?? `RCODE${r}`;
