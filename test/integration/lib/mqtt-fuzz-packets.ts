// Raw MQTT 3.1.1 packets for fuzzing the broker: well-formed ones built by
// hand (§2.2 fixed header, §3 packets) and mutations of them.

import { prng } from './prng.ts';

export { prng };
export type Prng = ReturnType<typeof prng>;

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const str = (s: string | Buffer) => {
  const b = Buffer.isBuffer(s) ? s : Buffer.from(s);
  return Buffer.concat([u16(b.length), b]);
};

/** §2.2.3 Remaining Length: 7 bits a byte, low first. */
function remainingLength(n: number): Buffer {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return Buffer.from(out);
}

export const packet = (type: number, flags: number, body: Buffer) =>
  Buffer.concat([Buffer.from([(type << 4) | flags]), remainingLength(body.length), body]);

export function connectPacket(clientId: string, opts: { clean?: boolean; keepAlive?: number; username?: string; password?: string } = {}): Buffer {
  let flags = opts.clean === false ? 0 : 0x02;
  if (opts.username !== undefined) flags |= 0x80;
  if (opts.password !== undefined) flags |= 0x40;
  const parts = [str('MQTT'), Buffer.from([4, flags]), u16(opts.keepAlive ?? 30), str(clientId)];
  if (opts.username !== undefined) parts.push(str(opts.username));
  if (opts.password !== undefined) parts.push(str(opts.password));
  return packet(1, 0, Buffer.concat(parts));
}

const TOPICS = ['home/a', 'home/a/b', 'home/+/b', 'home/#', '#', '+', '$SYS/x', 'aerie/gw/home/cmd/x', 'a//b', '/', 'home/\u00e9', 'x'.repeat(300)];

/** One well-formed packet a connected client might send. */
export function validPacket(r: Prng): Buffer {
  const topic = r.pick(TOPICS);
  const id = u16(1 + r.int(65535));
  switch (r.int(9)) {
    case 0: {
      const qos = r.int(3);
      const flags = (qos << 1) | r.int(2); // QoS bits and RETAIN
      return packet(3, flags, Buffer.concat([str(topic.replace(/[+#]/g, 'w')), qos > 0 ? id : Buffer.alloc(0), r.bytes(r.int(64))]));
    }
    case 1:
      return packet(8, 2, Buffer.concat([id, str(topic), Buffer.from([r.int(3)]), str(r.pick(TOPICS)), Buffer.from([r.int(3)])]));
    case 2:
      return packet(10, 2, Buffer.concat([id, str(topic)]));
    case 3:
      return packet(4, 0, id); // PUBACK
    case 4:
      return packet(5, 0, id); // PUBREC
    case 5:
      return packet(6, 2, id); // PUBREL
    case 6:
      return packet(7, 0, id); // PUBCOMP
    case 7:
      return packet(12, 0, Buffer.alloc(0)); // PINGREQ
    default:
      return r.int(10) === 0 ? packet(14, 0, Buffer.alloc(0)) : packet(12, 0, Buffer.alloc(0)); // sometimes DISCONNECT
  }
}

/** A mutation of `p`: flipped bits, a cut, a bad length, bytes inserted, or noise. */
export function mutate(r: Prng, p: Buffer): Buffer {
  const b = Buffer.from(p);
  switch (r.int(6)) {
    case 0:
      for (let i = 0, n = 1 + r.int(4); i < n; i++) b[r.int(b.length)]! ^= 1 << r.int(8);
      return b;
    case 1:
      return b.subarray(0, r.int(b.length));
    case 2:
      b[1] = r.int(256); // the first byte of the Remaining Length
      return b;
    case 3: {
      const at = r.int(b.length);
      return Buffer.concat([b.subarray(0, at), r.bytes(1 + r.int(16)), b.subarray(at)]);
    }
    case 4:
      b[0] = r.int(256); // another type, or reserved flags (§2.2.2)
      return b;
    default:
      return r.bytes(1 + r.int(32));
  }
}
