// Shared by the resolver tests: messages built and read with dns-packet, an
// independent codec, so our wire code is never checked against itself.
import * as packet from 'dns-packet';
import { createLocalNames, type LocalNames } from '../../cloud/dns/local-names.ts';
import { createResolver, type DnsClient, type Resolver, type ResolverOptions, type Upstream } from '../../cloud/dns/resolver.ts';

export { packet };

export interface QueryOptions {
  id?: number;
  rd?: boolean;
  /** EDNS UDP size; false: no OPT record. Default false. */
  edns?: number | false;
  dnssecOk?: boolean;
  ednsVersion?: number;
  class?: packet.RecordClass;
}

/** Record types dns-packet knows (its typings lack ANY). */
export type QType = packet.RecordType | 'ANY';

export function query(name: string, type: QType = 'A', o: QueryOptions = {}): Buffer {
  return packet.encode({
    type: 'query',
    id: o.id ?? 0x1234,
    flags: o.rd === false ? 0 : packet.RECURSION_DESIRED,
    questions: [{ name, type: type as packet.RecordType, class: o.class ?? 'IN' }],
    additionals:
      o.edns === undefined || o.edns === false
        ? []
        : [
            {
              type: 'OPT',
              name: '.',
              udpPayloadSize: o.edns,
              ednsVersion: o.ednsVersion ?? 0,
              flags: o.dnssecOk ? packet.DNSSEC_OK : 0,
              options: [],
            } as unknown as packet.Answer,
          ],
  });
}

/** A record as dns-packet decodes it (its typings leave out ttl on some and rcode on messages). */
export interface Rec {
  type: string;
  name: string;
  ttl?: number;
  class?: string;
  data?: unknown;
}

export interface Msg {
  type: 'query' | 'response';
  id: number;
  flags: number;
  rcode: string;
  questions: { name: string; type: string; class: string }[];
  answers: Rec[];
  authorities: Rec[];
  additionals: Rec[];
}

export const decode = (buf: Uint8Array): Msg => packet.decode(Buffer.from(buf)) as unknown as Msg;

export const rcodeOf = (buf: Uint8Array): number => buf[3]! & 0x0f;
export const idOf = (buf: Uint8Array): number => (buf[0]! << 8) | buf[1]!;

/** The OPT record of a decoded message, if any. */
export function optOf(p: Msg): packet.OptAnswer | undefined {
  return p.additionals.find((a) => a.type === 'OPT') as unknown as packet.OptAnswer | undefined;
}

const RCODES: Record<string, number> = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 };

export type Records = { answers?: packet.Answer[]; authorities?: packet.Answer[]; additionals?: packet.Answer[] };

/**
 * An upstream's answer to `q` (the message the resolver sent): its ID and
 * question, the given records, and an OPT record of its own with a cookie,
 * which must never reach a client.
 */
export function answerTo(q: Uint8Array, rcode: string, records: Records, flags = 0): Buffer {
  const d = decode(q);
  return packet.encode({
    type: 'response',
    id: d.id,
    // dns-packet takes the rcode from the flags word when encoding.
    flags: packet.RECURSION_DESIRED | (1 << 7) | flags | RCODES[rcode]!,
    questions: d.questions as packet.Question[],
    answers: records.answers ?? [],
    authorities: records.authorities ?? [],
    additionals: [
      ...(records.additionals ?? []),
      { type: 'OPT', name: '.', udpPayloadSize: 4096, flags: 0, options: [{ code: 10, data: Buffer.alloc(16, 7) }] } as unknown as packet.Answer,
    ],
  });
}

export const soa = (zone: string, ttl: number, minimum: number): packet.Answer => ({
  type: 'SOA',
  name: zone,
  ttl,
  data: { mname: `ns.${zone}`, rname: `hostmaster.${zone}`, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum },
});

export type Reply = Uint8Array | Error | 'hang' | ((q: Uint8Array) => Uint8Array);

/** An upstream answering from a table keyed by "name TYPE" (name lowercased); counts what it is asked. */
export function fakeUpstream(table: Record<string, (q: Uint8Array) => Reply>): Upstream & { calls: Uint8Array[]; hanging: number } {
  const up = {
    calls: [] as Uint8Array[],
    hanging: 0,
    exchange(q: Uint8Array): Promise<Uint8Array> {
      up.calls.push(q);
      const d = decode(q);
      const question = d.questions?.[0];
      const make = question && table[`${question.name.toLowerCase()} ${question.type}`];
      if (!make) return Promise.resolve(answerTo(q, 'NXDOMAIN', { authorities: [soa('example', 3600, 60)] }));
      const r = make(q);
      if (r === 'hang') {
        up.hanging++;
        return new Promise(() => {});
      }
      if (r instanceof Error) return Promise.reject(r);
      // Settle a turn later, like a network would.
      return new Promise((resolve) => setImmediate(() => resolve(typeof r === 'function' ? r(q) : r)));
    },
  };
  return up;
}

export const ZONE = 'aerie.internal';

/** Devices the test resolvers know: laptop (blocking on), tv (opted out). */
export const CLIENTS: Record<string, DnsClient> = {
  '100.64.0.2': { key: 'laptop', blocking: true },
  'fd00:64::2': { key: 'laptop', blocking: true },
  '100.64.0.3': { key: 'tv', blocking: false },
};

export const LAPTOP = { address: '100.64.0.2', transport: 'udp' as const };
export const LAPTOP_TCP = { address: '100.64.0.2', transport: 'tcp' as const };
export const TV = { address: '100.64.0.3', transport: 'udp' as const };

/** Blocks ads.example and everything under it; counts calls. */
export function blocklist(): { isBlocked(buf: Uint8Array, offset: number): boolean; calls: number } {
  const b = {
    calls: 0,
    isBlocked(buf: Uint8Array, offset: number): boolean {
      b.calls++;
      const name = wireName(buf, offset).toLowerCase();
      return name === 'ads.example' || name.endsWith('.ads.example');
    },
  };
  return b;
}

/** An uncompressed wire name as dotted text (enough for the fake blocklist). */
function wireName(buf: Uint8Array, off: number): string {
  const labels: string[] = [];
  for (let l = buf[off]!; l > 0 && l < 64; l = buf[off]!) {
    labels.push(Buffer.from(buf.subarray(off + 1, off + 1 + l)).toString('latin1'));
    off += l + 1;
  }
  return labels.join('.');
}

export function localNames(): LocalNames {
  const names = createLocalNames(ZONE, ['100.64.0.0/10', 'fd00:64::/64']);
  names.set('devices', [
    { name: 'laptop', addresses: ['100.64.0.2', 'fd00:64::2'] },
    { name: 'tv', addresses: ['100.64.0.3'] },
  ]);
  return names;
}

export function clock(start = 1_700_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

export function makeResolver(over: Partial<ResolverOptions> & { upstream: Upstream }): Resolver {
  const list = blocklist();
  return createResolver({
    zone: ZONE,
    blockMode: 'null',
    identify: (a) => CLIENTS[a] ?? null,
    isBlocked: list.isBlocked,
    localNames: localNames(),
    ...over,
  });
}

/** answer() as a promise, whether it was synchronous or not. */
export async function ask(r: Resolver, q: Uint8Array, from: { address: string; transport: 'udp' | 'tcp' } = LAPTOP): Promise<Uint8Array | null> {
  return await r.answer(q, from);
}

/** Many A records: an answer of about 16 bytes per record. */
export function manyA(name: string, n: number, ttl = 300): packet.Answer[] {
  return Array.from({ length: n }, (_, i) => ({ type: 'A', name, ttl, data: `198.51.100.${i + 1}` }) as packet.Answer);
}
