import {
  AA,
  CD,
  CLASS_IN,
  EDNS_SIZE,
  HEADER,
  OPCODE_MASK,
  OPT_LENGTH,
  put16,
  put32,
  QR,
  RA,
  RD,
  TC,
  TYPE,
  type Asker,
} from './wire.ts';

// Replies we write ourselves (errors, blocked and local names). Every reply
// echoes the client's ID, RD, CD and question bytes (case preserved); records
// are owned by the question name, compressed as a pointer to it (0xC00C).

/** A record owned by the question name; rdata in wire form, built once. */
export interface OwnRecord {
  type: number;
  rdata: Uint8Array;
}

const QUESTION_POINTER = 0xc000 | HEADER;

export function writeHeader(out: Uint8Array, id: number, flags: number, qd: number, an: number, ns: number, ar: number): void {
  put16(out, 0, id);
  put16(out, 2, flags);
  put16(out, 4, qd);
  put16(out, 6, an);
  put16(out, 8, ns);
  put16(out, 10, ar);
}

/** Copies the client's question into out at offset 12 (a loop: no view object made). */
export function copyQuestion(out: Uint8Array, a: Asker): number {
  const src = a.buf;
  for (let i = HEADER; i < a.end; i++) out[i] = src[i]!;
  return a.end;
}

/**
 * Our OPT record (RFC 6891 §6.1.2): our UDP size, the upper 8 bits of a
 * 12-bit rcode, version 0, and the DO bit copied from the query (RFC 3225 §3).
 */
export function writeOpt(out: Uint8Array, off: number, rcode: number, dnssecOk: boolean): number {
  out[off] = 0;
  put16(out, off + 1, TYPE.OPT);
  put16(out, off + 3, EDNS_SIZE);
  out[off + 5] = rcode >>> 4;
  out[off + 6] = 0;
  out[off + 7] = dnssecOk ? 0x80 : 0;
  out[off + 8] = 0;
  put16(out, off + 9, 0);
  return off + OPT_LENGTH;
}

/** The header flags of a reply to a: QR, RA, the client's opcode, RD and CD, and the low bits of the rcode. */
export function replyFlags(a: Asker, rcode: number, extra: number): number {
  return QR | RA | (a.flags & (OPCODE_MASK | RD | CD)) | extra | (rcode & 0x0f);
}

/**
 * A reply without records: errors (the question echoed when it was
 * readable), and the truncated form of an answer (TC=1, RFC 2181 §9).
 */
export function emptyReply(a: Asker, rcode: number, extraFlags = 0): Uint8Array {
  const end = a.end > 0 ? a.end : HEADER;
  const out = Buffer.allocUnsafe(end + (a.edns ? OPT_LENGTH : 0));
  writeHeader(out, a.id, replyFlags(a, rcode, extraFlags), a.end > 0 ? 1 : 0, 0, 0, a.edns ? 1 : 0);
  copyQuestion(out, a);
  if (a.edns) writeOpt(out, end, rcode, a.ednsDo);
  return out;
}

export const truncatedReply = (a: Asker, rcode: number): Uint8Array => emptyReply(a, rcode, TC);

/**
 * An answer we make up: `records` owned by the question name with `ttl`, an
 * SOA in the authority section when `soa` is given (its owner at offset
 * soaOwner of the question, so clients can cache a negative answer: RFC 2308 §3).
 */
export function synthReply(
  a: Asker,
  rcode: number,
  authoritative: boolean,
  records: readonly OwnRecord[],
  ttl: number,
  soa: Uint8Array | null,
  soaOwner: number,
  soaTtl: number,
): Uint8Array {
  let size = a.end + (a.edns ? OPT_LENGTH : 0);
  for (let i = 0; i < records.length; i++) size += 12 + records[i]!.rdata.length;
  if (soa) size += 12 + soa.length;
  if (size > a.limit) return truncatedReply(a, rcode);
  const out = Buffer.allocUnsafe(size);
  writeHeader(out, a.id, replyFlags(a, rcode, authoritative ? AA : 0), 1, records.length, soa ? 1 : 0, a.edns ? 1 : 0);
  let off = copyQuestion(out, a);
  for (let i = 0; i < records.length; i++) {
    const r = records[i]!;
    off = writeRecord(out, off, QUESTION_POINTER, r.type, ttl, r.rdata);
  }
  if (soa) off = writeRecord(out, off, 0xc000 | soaOwner, TYPE.SOA, soaTtl, soa);
  if (a.edns) writeOpt(out, off, rcode, a.ednsDo);
  return out;
}

function writeRecord(out: Uint8Array, off: number, pointer: number, type: number, ttl: number, rdata: Uint8Array): number {
  put16(out, off, pointer);
  put16(out, off + 2, type);
  put16(out, off + 4, CLASS_IN);
  put32(out, off + 6, ttl);
  put16(out, off + 10, rdata.length);
  out.set(rdata, off + 12);
  return off + 12 + rdata.length;
}

/** SOA RDATA (RFC 1035 §3.3.13) for answers we synthesize: MNAME, RNAME, serial and timers. */
export function soaRdata(mname: Uint8Array, rname: Uint8Array, serial: number, minimum: number): Uint8Array {
  const out = new Uint8Array(mname.length + rname.length + 20);
  out.set(mname, 0);
  out.set(rname, mname.length);
  const t = mname.length + rname.length;
  put32(out, t, serial >>> 0);
  put32(out, t + 4, 3600); // refresh
  put32(out, t + 8, 600); // retry
  put32(out, t + 12, 86400); // expire
  put32(out, t + 16, minimum);
  return out;
}

/** One label in front of a wire name: ('ns', 5aerie8internal0) → 2ns5aerie8internal0. */
export function prependLabel(label: string, wire: Uint8Array): Uint8Array {
  const out = new Uint8Array(1 + label.length + wire.length);
  out[0] = label.length;
  for (let i = 0; i < label.length; i++) out[1 + i] = label.charCodeAt(i);
  out.set(wire, 1 + label.length);
  return out;
}
