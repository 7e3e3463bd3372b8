// A plain DNS client for tests: one query over UDP (from a chosen source
// address) or TCP, read with dns-packet, an implementation independent of ours.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import packet from 'dns-packet';

export interface Answer {
  rcode: string;
  tc: boolean;
  answers: { name: string; type: string; ttl: number; data: unknown }[];
  raw: Buffer;
}

let nextId = 1;

export function encodeQuery(name: string, type: string, edns?: number): Buffer {
  nextId = (nextId % 65_535) + 1;
  return packet.encode({
    type: 'query',
    id: nextId,
    flags: packet.RECURSION_DESIRED,
    questions: [{ name, type: type as packet.RecordType, class: 'IN' }],
    ...(edns && { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: edns, flags: 0, options: [] } as unknown as packet.Answer] }),
  });
}

export function decodeAnswer(raw: Buffer): Answer {
  const p = packet.decode(raw) as packet.Packet & { rcode?: string; flag_tc?: boolean };
  return {
    rcode: p.rcode ?? 'NOERROR',
    tc: Boolean(p.flag_tc),
    answers: (p.answers ?? []).map((a) => ({ name: a.name, type: a.type, ttl: (a as { ttl?: number }).ttl ?? 0, data: (a as { data?: unknown }).data })),
    raw,
  };
}

export interface AskOptions {
  /** Source address to bind (the resolver answers only its own clients). */
  from?: string;
  tcp?: boolean;
  edns?: number;
  timeoutMs?: number;
}

/** Resolves with the answer, or null when none came within the timeout. */
export async function ask(server: string, port: number, name: string, type: string, o: AskOptions = {}): Promise<Answer | null> {
  const msg = encodeQuery(name, type, o.edns);
  const raw = o.tcp ? await tcpExchange(server, port, msg, o) : await udpExchange(server, port, msg, o);
  return raw ? decodeAnswer(raw) : null;
}

function udpExchange(server: string, port: number, msg: Buffer, o: AskOptions): Promise<Buffer | null> {
  const sock = createSocket(server.includes(':') ? 'udp6' : 'udp4');
  return new Promise<Buffer | null>((resolve) => {
    const timer = setTimeout(() => resolve(null), o.timeoutMs ?? 2000);
    sock.once('message', (m) => {
      clearTimeout(timer);
      resolve(m);
    });
    sock.once('error', () => resolve(null));
    sock.bind({ port: 0, ...(o.from && { address: o.from }) }, () => sock.send(msg, port, server));
  }).finally(() => sock.close());
}

function tcpExchange(server: string, port: number, msg: Buffer, o: AskOptions): Promise<Buffer | null> {
  return new Promise<Buffer | null>((resolve) => {
    const sock = connect({ host: server, port, ...(o.from && { localAddress: o.from }) });
    let buf = Buffer.alloc(0);
    const done = (r: Buffer | null) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done(null), o.timeoutMs ?? 2000);
    sock.on('error', () => done(null));
    sock.on('close', () => done(null));
    sock.on('connect', () => sock.write(Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg])));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(buf.subarray(2, 2 + buf.readUInt16BE(0)));
    });
  });
}
