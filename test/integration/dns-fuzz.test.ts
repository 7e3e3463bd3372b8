import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createResolver, type DnsClient, type Resolver, type Upstream } from '../../cloud/dns/resolver.ts';
import { serveDns } from '../../cloud/dns/server.ts';
import { blocklist, decode, localNames, packet, query, ZONE, type Msg } from '../unit/dns-fixtures.ts';
import { prng } from './lib/prng.ts';

// Random and mutated packets through resolver.answer and through the real
// UDP and TCP server. Whatever comes in, nothing throws, and every reply is
// a complete message (dns-packet reads exactly its length) with the query's
// ID; afterwards ordinary queries still get the right answers.
// AERIE_FUZZ_SEED=n repeats a run.

const SEED = Number(process.env['AERIE_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
const DIRECT = 100_000;
const UDP = 4_000;
const TCP = 1_500;
const BUDGET_MS = 60_000;

const rnd = prng(SEED);
const where = `(seed ${SEED})`;

const SEEDS: Uint8Array[] = [
  query('www.example.com'),
  query('WWW.Example.COM', 'AAAA', { edns: 4096, dnssecOk: true }),
  query('ads.example', 'A', { edns: 1232 }),
  query('x.ads.example', 'TXT'),
  query('laptop.aerie.internal', 'A', { edns: 512 }),
  query('aerie.internal', 'SOA'),
  query('2.0.64.100.in-addr.arpa', 'PTR'),
  query('use-application-dns.net', 'A'),
  query('big.example', 'A', { edns: 1232 }),
  query('loop.example', 'A'),
  query('bad.example', 'MX', { edns: 700 }),
  query('a.b.c.d.e.f.g.h.example', 'TXT'),
];

function mutate(src: Uint8Array): Uint8Array {
  let b = Uint8Array.from(src);
  const kind = rnd.int(10);
  switch (kind) {
    case 0: {
      // pure noise
      b = new Uint8Array(rnd.int(600));
      for (let i = 0; i < b.length; i++) b[i] = rnd.int(256);
      break;
    }
    case 1: // bit flips
      for (let n = 1 + rnd.int(8); n > 0 && b.length > 0; n--) b[rnd.int(b.length)]! ^= 1 << rnd.int(8);
      break;
    case 2: // truncation
      b = b.subarray(0, rnd.int(b.length + 1));
      break;
    case 3: // bogus counts
      for (let i = 4; i < 12; i++) if (rnd.next() < 0.5) b[i] = rnd.pick([0, 1, 2, 255, rnd.int(256)]);
      break;
    case 4: {
      // a compression pointer somewhere past the header: to itself, forwards, or backwards
      const at = 12 + rnd.int(Math.max(1, b.length - 13));
      const target = rnd.pick([at, at + 2, 12, rnd.int(b.length + 20)]);
      b[at] = 0xc0 | ((target >> 8) & 0x3f);
      b[at + 1] = target & 0xff;
      break;
    }
    case 5: {
      // a huge or reserved label length
      const at = 12 + rnd.int(Math.max(1, b.length - 12));
      b[at] = 64 + rnd.int(192);
      break;
    }
    case 6: {
      // garbage EDNS: an OPT with random size, version, flags and options
      const opts = new Uint8Array(rnd.int(40));
      for (let i = 0; i < opts.length; i++) opts[i] = rnd.int(256);
      const rdlen = rnd.next() < 0.5 ? opts.length : rnd.int(300);
      const opt = [rnd.next() < 0.9 ? 0 : 1, 0, 41, rnd.int(256), rnd.int(256), rnd.int(256), rnd.int(3), rnd.int(256), rnd.int(256), rdlen >> 8, rdlen & 0xff];
      b = Uint8Array.from([...b, ...opt, ...opts]);
      b[11] = (b[11]! + 1) & 0xff;
      break;
    }
    case 7: // header flags: QR, opcodes, TC, Z
      b[2] = rnd.int(256);
      b[3] = rnd.int(256);
      break;
    case 8: {
      // two messages spliced
      const other = rnd.pick(SEEDS);
      const cut = rnd.int(b.length);
      b = Uint8Array.from([...b.subarray(0, cut), ...other.subarray(rnd.int(other.length))]);
      break;
    }
    default:
      // several mutations stacked
      return mutate(mutate(b));
  }
  return b;
}

/**
 * An upstream that answers from the question bytes by hand, choosing by the
 * name's length: good answers (cached), failures, rejections, and broken
 * answers (bit flips, cut short, a CNAME pointing at itself).
 */
function hostileUpstream(): Upstream & { calls: number } {
  const up = {
    calls: 0,
    exchange(q: Uint8Array): Promise<Uint8Array> {
      up.calls++;
      const qEnd = questionEnd(q);
      if (qEnd < 0) return Promise.reject(new Error('unreadable query'));
      const name = Buffer.from(q.subarray(12, qEnd - 4)).toString('latin1').toLowerCase();
      const mode = name.includes('www') || name.includes('big') ? 0 : name.includes('loop') ? 5 : (qEnd + q[qEnd - 3]!) % 7;
      const head = [...q.subarray(0, qEnd)];
      head[2] = 0x81;
      head[3] = 0x80;
      const count = (an: number, ns: number, ar: number) => {
        head[6] = 0; head[7] = an; head[8] = 0; head[9] = ns; head[10] = 0; head[11] = ar;
      };
      const opt = [0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0];
      const a = (i: number) => [0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0, 0, 4, 192, 0, 2, i];
      const soa = [0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 60, 0, 24, 0xc0, 12, 0xc0, 12, ...new Array(19).fill(0), 30];
      let out: number[];
      switch (mode) {
        case 0: {
          const n = name.includes('big') ? 40 : 1;
          count(n, 0, 1);
          out = [...head, ...Array.from({ length: n }, (_, i) => a(i + 1)).flat(), ...opt];
          break;
        }
        case 1:
          head[3] = 0x83;
          count(0, 1, 1);
          out = [...head, ...soa, ...opt];
          break;
        case 2:
          head[3] = 0x82;
          count(0, 0, 0);
          out = head;
          break;
        case 3:
          return Promise.reject(new Error('all upstreams failed'));
        case 4: {
          count(1, 1, 1);
          out = [...head, ...a(9), ...soa, ...opt];
          for (let n = 1 + (out.length % 5); n > 0; n--) out[(n * 7919 + qEnd) % out.length]! ^= 1 << (n % 8);
          break;
        }
        case 5: {
          const at = head.length + 12;
          count(1, 0, 0);
          out = [...head, 0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, 0x61, 0xc0 | (at >> 8), at & 0xff];
          break;
        }
        default:
          count(1, 0, 1);
          out = [...head, ...a(1), ...opt].slice(0, head.length + 5 + (qEnd % 11));
      }
      return new Promise((resolve) => setImmediate(() => resolve(Uint8Array.from(out))));
    },
  };
  return up;
}

function questionEnd(q: Uint8Array): number {
  let o = 12;
  while (o < q.length && q[o] !== 0) o += q[o]! + 1;
  return o + 5 <= q.length ? o + 5 : -1;
}

const me: DnsClient = { key: 'fuzz', blocking: true };
const FROM = { address: '127.0.0.1', transport: 'udp' as const };
const FROM_TCP = { address: '127.0.0.1', transport: 'tcp' as const };

function resolverUnderTest(): { resolver: Resolver; upstream: ReturnType<typeof hostileUpstream> } {
  const upstream = hostileUpstream();
  const resolver = createResolver({
    zone: ZONE,
    blockMode: 'null',
    upstream,
    identify: (a) => (a === '127.0.0.1' ? me : null),
    isBlocked: blocklist().isBlocked,
    localNames: localNames(),
    cache: { maxEntries: 2000 },
  });
  return { resolver, upstream };
}

/** A reply must be a whole message (nothing missing, nothing extra) answering `id`. */
function checkReply(reply: Uint8Array, id: number, what: string): void {
  let d: Msg;
  try {
    d = decode(reply);
  } catch (e) {
    assert.unreachable(`${what}: reply not parseable (${(e as Error).message}) ${where}: ${Buffer.from(reply).toString('hex')}`);
    return;
  }
  assert.is(packet.decode.bytes, reply.length, `${what}: the counts describe exactly the bytes ${where}`);
  assert.is(d.id, id, `${what}: same ID ${where}`);
  assert.ok((reply[2]! & 0x80) !== 0, `${what}: QR=1 ${where}`);
}

const crashes: unknown[] = [];
process.on('uncaughtException', (e) => crashes.push(e));
process.on('unhandledRejection', (e) => crashes.push(e));

async function checkNormalQueries(answer: (q: Uint8Array) => Promise<Uint8Array | null>): Promise<void> {
  const www = decode((await answer(query('www.example.com', 'A', { id: 4321 })))!);
  assert.is(www.id, 4321);
  assert.is((www.answers![0] as packet.StringAnswer).data, '192.0.2.1');
  const local = decode((await answer(query('laptop.aerie.internal', 'AAAA', { id: 4322 })))!);
  assert.is((local.answers![0] as packet.StringAnswer).data, 'fd00:64::2');
  const blocked = decode((await answer(query('ads.example', 'A', { id: 4323 })))!);
  assert.is((blocked.answers![0] as packet.StringAnswer).data, '0.0.0.0');
}

test(`${DIRECT} random and mutated packets through resolver.answer`, async () => {
  const { resolver } = resolverUnderTest();
  const started = Date.now();
  let sent = 0;
  let answered = 0;
  let batch: Promise<void>[] = [];
  for (; sent < DIRECT && Date.now() - started < BUDGET_MS; sent++) {
    const pkt = rnd.next() < 0.1 ? rnd.pick(SEEDS) : mutate(rnd.pick(SEEDS));
    const id = pkt.length >= 2 ? (pkt[0]! << 8) | pkt[1]! : -1;
    const from = rnd.next() < 0.2 ? FROM_TCP : FROM;
    let r: ReturnType<Resolver['answer']>;
    try {
      r = resolver.answer(pkt, from);
    } catch (e) {
      assert.unreachable(`answer threw ${String(e)} ${where}: ${Buffer.from(pkt).toString('hex')}`);
      return;
    }
    const check = (reply: Uint8Array | null) => {
      if (reply === null) return;
      answered++;
      assert.ok(pkt.length >= 12, `a reply to a ${pkt.length}-byte packet ${where}`);
      if (from.transport === 'udp') assert.ok(reply.length <= 1232, `UDP reply of ${reply.length} bytes ${where}`);
      checkReply(reply, id, Buffer.from(pkt).toString('hex'));
    };
    if (r instanceof Promise) batch.push(r.then(check));
    else check(r);
    if (batch.length >= 500) {
      await Promise.all(batch);
      batch = [];
    }
  }
  await Promise.all(batch);
  assert.is(sent, DIRECT, `all packets within ${BUDGET_MS / 1000} s`);
  assert.ok(answered > DIRECT / 4, `${answered} answered: many mutations are still queries`);
  assert.equal(crashes, []);
  await checkNormalQueries(async (q) => await resolver.answer(q, FROM));
  const s = resolver.stats();
  assert.ok(s.cache.entries > 0 && s.cache.entries <= 2000);
});

test(`${UDP} over UDP and ${TCP} over TCP through the real server`, async () => {
  const { resolver } = resolverUnderTest();
  const server = await serveDns(resolver, { addresses: ['127.0.0.1'], port: 0 });
  const port = server.addresses()[0]!.port;
  const udp = createSocket('udp4');
  try {
    // UDP: bursts of 100 with unique IDs; every reply must match one sent.
    const sentIds = new Set<number>();
    let replies = 0;
    let bad: string | null = null;
    udp.on('message', (m) => {
      replies++;
      try {
        assert.ok(m.length >= 12);
        assert.ok(sentIds.has(m.readUInt16BE(0)), 'an ID we sent');
        checkReply(m, m.readUInt16BE(0), 'udp');
      } catch (e) {
        bad ??= (e as Error).message;
      }
    });
    await new Promise<void>((r) => udp.bind(0, '127.0.0.1', r));
    for (let i = 0; i < UDP; i++) {
      const pkt = mutate(rnd.pick(SEEDS));
      if (pkt.length >= 2) {
        pkt[0] = i >> 8;
        pkt[1] = i & 0xff;
        sentIds.add(i);
      }
      udp.send(pkt, port, '127.0.0.1');
      if (i % 100 === 99) await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 300));
    assert.is(bad, null, `${bad} ${where}`);
    assert.ok(replies > UDP / 5, `${replies} UDP replies`);

    // TCP: one connection at a time; the server closes it after a message it will not answer.
    let tcpReplies = 0;
    for (let i = 0; i < TCP; ) {
      const sock = connect({ host: '127.0.0.1', port });
      await new Promise<void>((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
      });
      sock.on('error', () => {});
      let buf = Buffer.alloc(0);
      const got: Buffer[] = [];
      sock.on('data', (c) => {
        buf = Buffer.concat([buf, c]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          got.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
      });
      const closed = new Promise<void>((r) => sock.once('close', () => r()));
      // 50 framed messages per connection, some cut into pieces.
      const ids: number[] = [];
      const frames: Buffer[] = [];
      for (let k = 0; k < 50 && i < TCP; k++, i++) {
        const pkt = Buffer.from(mutate(rnd.pick(SEEDS)).subarray(0, 0xffff));
        if (pkt.length >= 2) pkt.writeUInt16BE(i, 0);
        ids.push(i);
        frames.push(Buffer.concat([Buffer.from([pkt.length >> 8, pkt.length & 0xff]), pkt]));
      }
      const all = Buffer.concat(frames);
      for (let o = 0; o < all.length; ) {
        const n = 1 + rnd.int(200);
        if (!sock.destroyed) sock.write(all.subarray(o, o + n));
        o += n;
      }
      const deadline = Date.now() + 1000;
      while (!sock.destroyed && got.length < ids.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      sock.destroy();
      await closed;
      for (const r of got) checkReply(r, r.readUInt16BE(0), 'tcp');
      for (const r of got) assert.ok(ids.includes(r.readUInt16BE(0)), `an ID sent on this connection ${where}`);
      tcpReplies += got.length;
    }
    assert.ok(tcpReplies > 0, `${tcpReplies} TCP replies`);
    assert.equal(crashes, []);

    // Still a working server.
    const viaUdp = (q: Uint8Array) =>
      new Promise<Uint8Array | null>((resolve) => {
        const s = createSocket('udp4');
        const timer = setTimeout(() => {
          s.close();
          resolve(null);
        }, 2000);
        s.once('message', (m) => {
          clearTimeout(timer);
          s.close();
          resolve(m);
        });
        s.send(q, port, '127.0.0.1');
      });
    await checkNormalQueries(viaUdp);
  } finally {
    udp.close();
    await server.close();
  }
});

test.run();
