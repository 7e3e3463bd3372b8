import { CLASS_IN, checkName, HEADER, nameEquals, QR, TYPE, u16, u32 } from './wire.ts';

// Checks an upstream's answer before anything of it is cached or sent on:
// structure, names (pointers must point backwards, so no loops), and the
// facts caching needs (TTL positions, RFC 2308 negative TTL).

export interface ScannedAnswer {
  /** The 4-bit header rcode. */
  rcode: number;
  flags: number;
  /** Upper rcode bits from the upstream's OPT record (RFC 6891 §6.1.3). */
  extendedRcode: number;
  /** Length to keep: the message up to the upstream's OPT record (and without whatever follows it). */
  keep: number;
  /** Additional records kept (those before the OPT record). */
  additional: number;
  /** Offset of the TTL field and the TTL, for every kept record. */
  ttls: number[];
  /** Some answer record has the asked type: a positive answer. */
  answered: boolean;
  /** min(SOA TTL, SOA MINIMUM) of the authority section's SOA (RFC 2308 §5), or -1 without one. */
  negativeTtl: number;
}

/**
 * Reads `msg` as the answer to (name, qtype), name being the lowercased wire
 * name. null when it is malformed or answers another question.
 */
export function scanAnswer(msg: Uint8Array, name: Uint8Array, qtype: number): ScannedAnswer | null {
  const len = msg.length;
  if (len < HEADER) return null;
  const flags = u16(msg, 2);
  if ((flags & QR) === 0 || u16(msg, 4) !== 1) return null;
  if (!nameEquals(msg, HEADER, name)) return null;
  let off = HEADER + name.length;
  if (off + 4 > len || u16(msg, off) !== qtype || u16(msg, off + 2) !== CLASS_IN) return null;
  off += 4;
  const an = u16(msg, 6);
  const ns = u16(msg, 8);
  const total = an + ns + u16(msg, 10);
  const out: ScannedAnswer = {
    rcode: flags & 0x0f,
    flags,
    extendedRcode: 0,
    keep: off,
    additional: 0,
    ttls: [],
    answered: false,
    negativeTtl: -1,
  };
  for (let i = 0; i < total; i++) {
    const nameEnd = checkName(msg, off, len);
    if (nameEnd < 0 || nameEnd + 10 > len) return null;
    const type = u16(msg, nameEnd);
    const rdStart = nameEnd + 10;
    const rdEnd = rdStart + u16(msg, nameEnd + 8);
    if (rdEnd > len) return null;
    if (type === TYPE.OPT) {
      if (i < an + ns) return null;
      out.extendedRcode = msg[nameEnd + 4]!;
      break; // dropped with everything after it: our reply carries our own OPT
    }
    if (!rdataValid(msg, type, rdStart, rdEnd)) return null;
    let ttl = u32(msg, nameEnd + 4);
    if (ttl > 0x7fffffff) ttl = 0; // RFC 2181 §8
    out.ttls.push(nameEnd + 4, ttl);
    if (i < an) {
      if (type === qtype || qtype === TYPE.ANY) out.answered = true;
    } else if (i < an + ns) {
      if (type === TYPE.SOA && out.negativeTtl < 0 && rdEnd - rdStart >= 22) {
        out.negativeTtl = Math.min(ttl, u32(msg, rdEnd - 4));
      }
    } else {
      out.additional++;
    }
    off = rdEnd;
    out.keep = off;
  }
  return out;
}

// Types whose RDATA may hold compressed names (RFC 3597 §4): those names are
// checked like owner names, since clients will follow their pointers.
function rdataValid(msg: Uint8Array, type: number, start: number, end: number): boolean {
  switch (type) {
    case 2: // NS
    case 3: // MD
    case 4: // MF
    case 5: // CNAME
    case 7: // MB
    case 8: // MG
    case 9: // MR
    case 12: // PTR
      return checkName(msg, start, end) === end;
    case 6: {
      // SOA: MNAME, RNAME, five 32-bit fields
      const m = checkName(msg, start, end);
      const r = m < 0 ? -1 : checkName(msg, m, end);
      return r >= 0 && r + 20 === end;
    }
    case 14: {
      // MINFO
      const m = checkName(msg, start, end);
      return m >= 0 && checkName(msg, m, end) === end;
    }
    case 15: // MX: preference, exchange
      return start + 2 < end && checkName(msg, start + 2, end) === end;
    default:
      return true;
  }
}
