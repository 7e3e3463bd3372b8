import { randomFillSync } from 'node:crypto';

// Just enough of the DNS wire format (RFC 1035 §4.1) to match an answer to its
// query as RFC 5452 §4.3 asks: same ID, QR set, same question. The full codec
// lives with the resolver; upstreams only need these few bytes.

/** End offset of the single question in a query, or -1 if it has no readable single question. */
export function questionEnd(msg: Uint8Array): number {
  if (msg.length < 12 || msg[4] !== 0 || msg[5] !== 1) return -1;
  let o = 12;
  for (;;) {
    const len = msg[o];
    if (len === undefined || len > 63) return -1; // past the end, or a pointer / reserved label type
    o += 1 + len;
    if (o - 12 > 255) return -1; // RFC 1035 §3.1: names are at most 255 octets
    if (len === 0) break;
  }
  o += 4; // QTYPE, QCLASS
  return o <= msg.length ? o : -1;
}

/**
 * True when `answer` answers `query` (whose question ends at `qEnd`): same ID
 * and opcode, QR=1, exactly one question, same name (ASCII case-insensitive),
 * type and class.
 */
export function isAnswerTo(query: Uint8Array, qEnd: number, answer: Uint8Array): boolean {
  if (answer.length < qEnd) return false;
  if (answer[0] !== query[0] || answer[1] !== query[1]) return false;
  const flags = answer[2]!;
  if ((flags & 0x80) === 0 || (flags & 0x78) !== (query[2]! & 0x78)) return false;
  if (answer[4] !== 0 || answer[5] !== 1) return false;
  let o = 12;
  // Label lengths must match exactly; label bytes match with ASCII case folded.
  for (let len = query[o]!; ; len = query[o]!) {
    if (answer[o] !== len) return false;
    o++;
    if (len === 0) break;
    for (const end = o + len; o < end; o++) if (fold(answer[o]!) !== fold(query[o]!)) return false;
  }
  for (; o < qEnd; o++) if (answer[o] !== query[o]) return false;
  return true;
}

const fold = (b: number) => (b >= 0x41 && b <= 0x5a ? b | 0x20 : b);

export const rcode = (msg: Uint8Array): number => msg[3]! & 0x0f;
export const truncated = (msg: Uint8Array): boolean => (msg[2]! & 0x02) !== 0;

/** A copy of `msg` with its ID set to `id`. */
export function withId(msg: Uint8Array, id: number): Buffer {
  const copy = Buffer.from(msg); // copies
  copy[0] = id >> 8;
  copy[1] = id & 0xff;
  return copy;
}

export const messageId = (msg: Uint8Array): number => (msg[0]! << 8) | msg[1]!;

// IDs come from the CSPRNG in batches: an off-path attacker must guess them
// (RFC 5452 §9.2), and a syscall per query would be wasteful.
const ids = new Uint16Array(256);
let next = ids.length;

export function randomId(): number {
  if (next === ids.length) {
    randomFillSync(ids);
    next = 0;
  }
  return ids[next++]!;
}
