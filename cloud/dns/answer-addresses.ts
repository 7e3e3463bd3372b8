import { formatAddress, parseAddress } from '../../shared/cidr.ts';
import { HEADER, skipName, TYPE, u16 } from './wire.ts';

/**
 * The IPv4 and IPv6 addresses an answer message gives (A and AAAA records of
 * its answer section, CNAME targets' included), with the smallest of their
 * TTLs: what a client will connect to, and for how long it may (RFC 1035
 * §4.1). A malformed message gives nothing.
 */
export function answerAddresses(msg: Uint8Array): { addresses: string[]; ttl: number } {
  const none = { addresses: [], ttl: 0 };
  const len = msg.length;
  if (len < HEADER) return none;
  const qd = u16(msg, 4);
  const an = u16(msg, 6);
  let off = HEADER;
  for (let i = 0; i < qd; i++) {
    off = skipName(msg, off, len);
    if (off < 0 || off + 4 > len) return none;
    off += 4;
  }
  const addresses: string[] = [];
  let ttl = Infinity;
  for (let i = 0; i < an; i++) {
    off = skipName(msg, off, len);
    if (off < 0 || off + 10 > len) return none;
    const type = u16(msg, off);
    const recordTtl = ((msg[off + 4]! << 24) >>> 0) + (msg[off + 5]! << 16) + (msg[off + 6]! << 8) + msg[off + 7]!;
    const rdlength = u16(msg, off + 8);
    const rdata = off + 10;
    if (rdata + rdlength > len) return none;
    if (type === TYPE.A && rdlength === 4) {
      addresses.push(`${msg[rdata]}.${msg[rdata + 1]}.${msg[rdata + 2]}.${msg[rdata + 3]}`);
      ttl = Math.min(ttl, recordTtl);
    } else if (type === TYPE.AAAA && rdlength === 16) {
      const groups: string[] = [];
      for (let g = 0; g < 8; g++) groups.push(u16(msg, rdata + 2 * g).toString(16));
      addresses.push(formatAddress(parseAddress(groups.join(':'))));
      ttl = Math.min(ttl, recordTtl);
    }
    off = rdata + rdlength;
  }
  return addresses.length ? { addresses, ttl } : none;
}
