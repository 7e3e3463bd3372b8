import { formatAddress, parseAddress, parsePrefix, type Family, type Prefix } from '../../shared/cidr.ts';
import { ValidationError } from '../../shared/errors.ts';
import { prependLabel, soaRdata, synthReply, type OwnRecord } from './wire-reply.ts';
import { lower, nameEquals, nameToWire, RCODE, TYPE, type Query } from './wire.ts';

// Names Aerie answers itself, authoritatively and never forwarded:
// NAME.<zone> → the device's addresses, the zone apex (SOA, NS), and PTR
// names for addresses inside the `reverse` prefixes (RFC 1035 §3.5, RFC 3596
// §2.5). Anything else inside those zones is NXDOMAIN, with the zone's SOA so
// that clients cache the answer (RFC 2308 §3).

export interface LocalHost {
  /** A single label, e.g. 'phone'. */
  name: string;
  addresses: string[];
}

export interface LocalNames {
  /** Replaces the hosts from one source ('devices' now; 'lan:<gateway>' later). */
  set(source: string, hosts: LocalHost[]): void;
  zone: string;
  /** The reply when q's name is in the zone or a reverse zone we serve; null when it is not ours. */
  answer(q: Query): Uint8Array | null;
  /** Host labels answered now, sorted. */
  names(): string[];
}

export interface LocalNamesOptions {
  /** TTL of local answers, and of negative answers in the zone. Default 60 s. */
  ttl?: number;
  now?: () => number;
}

interface HostRecords {
  a: OwnRecord[];
  aaaa: OwnRecord[];
  all: OwnRecord[];
}

interface ReverseZone {
  prefix: Prefix;
  bits: number;
}

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const NONE: readonly OwnRecord[] = [];
const ARPA = nameToWire('arpa');
const IN_ADDR = nameToWire('in-addr.arpa');
const IP6 = nameToWire('ip6.arpa');

export function createLocalNames(zone: string, reverse: string[], opts: LocalNamesOptions = {}): LocalNames {
  const zoneWire = nameToWire(zone, 'zone');
  if (zoneWire.length === 1) throw new ValidationError('zone', 'expected a domain name, not the root');
  const zoneText = zone.toLowerCase().replace(/\.$/, '');
  let zoneLabels = 0;
  for (let o = 0; zoneWire[o] !== 0; o += zoneWire[o]! + 1) zoneLabels++;
  const ttl = opts.ttl ?? 60;
  const now = opts.now ?? Date.now;
  const reverseZones: ReverseZone[] = reverse.map((p, i) => {
    const prefix = parsePrefix(p, `reverse[${i}]`);
    return { prefix, bits: prefix.family === 4 ? 32 : 128 };
  });

  const mname = prependLabel('ns', zoneWire);
  const rname = prependLabel('hostmaster', zoneWire);
  const nsRecord: OwnRecord = { type: TYPE.NS, rdata: mname };
  let soa = soaRdata(mname, rname, Math.floor(now() / 1000), ttl);
  let soaRecord: OwnRecord = { type: TYPE.SOA, rdata: soa };
  let apexAny: OwnRecord[] = [soaRecord, nsRecord];

  const sources = new Map<string, LocalHost[]>();
  let hosts = new Map<string, HostRecords>();
  let ptrs = new Map<string, OwnRecord>();

  const rebuild = () => {
    const nextHosts = new Map<string, HostRecords>();
    const nextPtrs = new Map<string, OwnRecord>();
    for (const list of sources.values()) {
      for (const h of list) {
        const name = h.name.toLowerCase();
        let rec = nextHosts.get(name);
        if (!rec) nextHosts.set(name, (rec = { a: [], aaaa: [], all: [] }));
        const ptr: OwnRecord = { type: TYPE.PTR, rdata: prependLabel(name, zoneWire) };
        for (const text of h.addresses) {
          const addr = parseAddress(text);
          const key = formatAddress(addr);
          if (!nextPtrs.has(key)) nextPtrs.set(key, ptr);
          const rdata = addressBytes(addr.family, addr.value);
          const list = addr.family === 4 ? rec.a : rec.aaaa;
          if (list.some((r) => sameBytes(r.rdata, rdata))) continue;
          const r: OwnRecord = { type: addr.family === 4 ? TYPE.A : TYPE.AAAA, rdata };
          list.push(r);
          rec.all.push(r);
        }
      }
    }
    hosts = nextHosts;
    ptrs = nextPtrs;
    // A new serial for every change, as a zone's serial should.
    soa = soaRdata(mname, rname, Math.floor(now() / 1000), ttl);
    soaRecord = { type: TYPE.SOA, rdata: soa };
    apexAny = [soaRecord, nsRecord];
  };

  const negative = (q: Query, rcode: number, owner: number) => synthReply(q, rcode, true, NONE, 0, soa, owner, ttl);
  const positive = (q: Query, records: readonly OwnRecord[]) => synthReply(q, RCODE.NOERROR, true, records, ttl, null, 0, 0);

  const zoneAnswer = (q: Query, depth: number, apex: number): Uint8Array => {
    if (depth === 0) {
      if (q.qtype === TYPE.SOA) return positive(q, [soaRecord]);
      if (q.qtype === TYPE.NS) return positive(q, [nsRecord]);
      if (q.qtype === TYPE.ANY) return positive(q, apexAny);
      return negative(q, RCODE.NOERROR, apex);
    }
    if (depth > 1) return negative(q, RCODE.NXDOMAIN, apex);
    const host = hosts.get(labelText(q.buf, q.labelOffsets[0]!));
    if (!host) return negative(q, RCODE.NXDOMAIN, apex);
    const records = q.qtype === TYPE.A ? host.a : q.qtype === TYPE.AAAA ? host.aaaa : q.qtype === TYPE.ANY ? host.all : NONE;
    return records.length > 0 ? positive(q, records) : negative(q, RCODE.NOERROR, apex);
  };

  const reverseAnswer = (q: Query): Uint8Array | null => {
    const n = q.labels;
    const offs = q.labelOffsets;
    const family: Family | 0 = nameEquals(q.buf, offs[n - 2]!, IN_ADDR) ? 4 : nameEquals(q.buf, offs[n - 2]!, IP6) ? 6 : 0;
    if (family === 0 || offs[n - 2]! + (family === 4 ? IN_ADDR.length : IP6.length) !== q.nameEnd) return null;
    const bits = family === 4 ? 32 : 128;
    const step = family === 4 ? 8 : 4;
    let value = 0n;
    let known = 0;
    let i = n - 3;
    for (; i >= 0 && known < bits; i--) {
      const v = reverseLabel(q.buf, offs[i]!, family);
      if (v < 0) break;
      value = (value << BigInt(step)) | BigInt(v);
      known += step;
    }
    const zone = reverseZones.find(
      (z) => z.prefix.family === family && z.prefix.length <= known && value >> BigInt(known - z.prefix.length) === z.prefix.network >> BigInt(bits - z.prefix.length),
    );
    if (!zone) return null;
    // The SOA's owner: the name cut at the first label boundary covering the prefix.
    const owner = offs[n - 2 - Math.ceil(zone.prefix.length / step)]!;
    if (i >= 0) return negative(q, RCODE.NXDOMAIN, owner); // more labels than an address, or not a number
    if (known < bits) return negative(q, RCODE.NOERROR, owner); // a name above addresses: exists, holds no records
    const ptr = ptrs.get(formatAddress({ family, value }));
    if (!ptr) return negative(q, RCODE.NXDOMAIN, owner);
    if (q.qtype === TYPE.PTR || q.qtype === TYPE.ANY) return positive(q, [ptr]);
    return negative(q, RCODE.NOERROR, owner);
  };

  return {
    zone: zoneText,

    set(source, list) {
      if (typeof source !== 'string' || source === '') throw new ValidationError('source', 'expected a source name');
      list.forEach((h, i) => {
        if (typeof h.name !== 'string' || !LABEL.test(h.name.toLowerCase())) {
          throw new ValidationError(`hosts[${i}].name`, 'expected a single DNS label (letters, digits, inner hyphens; at most 63)');
        }
        h.addresses.forEach((a, j) => parseAddress(a, `hosts[${i}].addresses[${j}]`));
      });
      if (list.length === 0) sources.delete(source);
      else sources.set(source, list.map((h) => ({ name: h.name, addresses: [...h.addresses] })));
      rebuild();
    },

    answer(q) {
      const n = q.labels;
      if (n >= zoneLabels) {
        const start = q.labelOffsets[n - zoneLabels]!;
        if (q.nameEnd - start === zoneWire.length && nameEquals(q.buf, start, zoneWire)) return zoneAnswer(q, n - zoneLabels, start);
      }
      if (reverseZones.length > 0 && n >= 2 && q.labelOffsets[n - 1]! + ARPA.length === q.nameEnd && nameEquals(q.buf, q.labelOffsets[n - 1]!, ARPA)) {
        return reverseAnswer(q);
      }
      return null;
    },

    names: () => [...hosts.keys()].sort(),
  };
}

function labelText(buf: Uint8Array, off: number): string {
  let s = '';
  for (let i = off + 1, end = off + 1 + buf[off]!; i < end; i++) s += String.fromCharCode(lower(buf[i]!));
  return s;
}

// An in-addr.arpa label is a decimal octet, an ip6.arpa label one hex nibble; -1 for anything else.
function reverseLabel(buf: Uint8Array, off: number, family: Family): number {
  const len = buf[off]!;
  if (family === 6) {
    if (len !== 1) return -1;
    const c = lower(buf[off + 1]!);
    if (c >= 0x30 && c <= 0x39) return c - 0x30;
    if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
    return -1;
  }
  if (len < 1 || len > 3 || (len > 1 && buf[off + 1] === 0x30)) return -1; // no leading zeros
  let v = 0;
  for (let i = off + 1; i <= off + len; i++) {
    const c = buf[i]!;
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + c - 0x30;
  }
  return v <= 255 ? v : -1;
}

function addressBytes(family: Family, value: bigint): Uint8Array {
  const n = family === 4 ? 4 : 16;
  const out = new Uint8Array(n);
  for (let i = n - 1; i >= 0; i--) {
    out[i] = Number(value & 0xffn);
    value >>= 8n;
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
