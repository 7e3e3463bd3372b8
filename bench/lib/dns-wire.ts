// Just enough DNS wire format (RFC 1035 §4) for the benchmark's probes: one
// question out, the answer section's A/AAAA records back. Kept apart from
// the resolver's own code so the benchmark does not check Aerie with Aerie.

export const TYPE = { A: 1, AAAA: 28 } as const;
export type QType = keyof typeof TYPE;

export function encodeQuery(id: number, name: string, type: QType): Buffer {
  const labels = name.replace(/\.$/, '').split('.');
  const qname = Buffer.concat([
    ...labels.map((l) => {
      const b = Buffer.from(l, 'ascii');
      if (b.length === 0 || b.length > 63) throw new Error(`bad label in ${name}`);
      return Buffer.concat([Buffer.from([b.length]), b]);
    }),
    Buffer.from([0]),
  ]);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id & 0xffff, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4); // QDCOUNT
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(TYPE[type], 0);
  tail.writeUInt16BE(1, 2); // IN
  return Buffer.concat([header, qname, tail]);
}

export interface Answer {
  id: number;
  rcode: number;
  /** Addresses of the A/AAAA records in the answer section, as text. */
  addresses: string[];
  ttls: number[];
}

/** Offset just past the name at `off` (compression pointers end a name). */
function skipName(buf: Buffer, off: number): number {
  for (let n = 0; n < 128; n++) {
    const len = buf[off];
    if (len === undefined) throw new Error('truncated name');
    if (len === 0) return off + 1;
    if ((len & 0xc0) === 0xc0) return off + 2;
    off += len + 1;
  }
  throw new Error('name too long');
}

function formatV6(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // Longest run of zero groups becomes "::" (RFC 5952 §4.2).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

export function decodeAnswer(buf: Buffer): Answer {
  if (buf.length < 12) throw new Error('short DNS message');
  const id = buf.readUInt16BE(0);
  const rcode = buf.readUInt16BE(2) & 0x0f;
  const qd = buf.readUInt16BE(4);
  const an = buf.readUInt16BE(6);
  let off = 12;
  for (let i = 0; i < qd; i++) off = skipName(buf, off) + 4;
  const addresses: string[] = [];
  const ttls: number[] = [];
  for (let i = 0; i < an; i++) {
    off = skipName(buf, off);
    if (off + 10 > buf.length) throw new Error('truncated record');
    const type = buf.readUInt16BE(off);
    const ttl = buf.readUInt32BE(off + 4);
    const len = buf.readUInt16BE(off + 8);
    const data = buf.subarray(off + 10, off + 10 + len);
    if (data.length !== len) throw new Error('truncated record data');
    if (type === TYPE.A && len === 4) addresses.push([...data].join('.'));
    if (type === TYPE.AAAA && len === 16) addresses.push(formatV6(data));
    if (type === TYPE.A || type === TYPE.AAAA) ttls.push(ttl);
    off += 10 + len;
  }
  return { id, rcode, addresses, ttls };
}

/** Canonical text of an IPv6 address written by hand in the zone (lowercase, "::" for the longest zero run). */
export function canonicalV6(text: string): string {
  const [head = '', tail = ''] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return formatV6(b);
}
