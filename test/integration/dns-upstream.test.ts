// Upstream resolvers: UDP, TCP, DoT and DoH against a real unbound on
// loopback, fail-over, and tiny hostile servers that send spoofed or
// mismatched answers. dns-packet is the independent oracle for the messages.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import * as dnsPacket from 'dns-packet';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ValidationError } from '../../shared/errors.ts';
import { generateSelfSignedCert } from '../../cloud/tls-cert.ts';
import { createUpstreams, formatUpstream, parseUpstream, UpstreamError, type UpstreamSpec } from '../../cloud/dns/upstream/upstreams.ts';
import { freePorts, startUnbound, type Unbound } from './lib/unbound.ts';
import { setupOnce } from './setup.ts';

const BIG = 40; // A records of big.example.test: far more than fits in 512 bytes
const RECORDS = [
  'www.example.test. 300 IN A 192.0.2.1',
  'www.example.test. 300 IN AAAA 2001:db8::1',
  ...Array.from({ length: BIG }, (_, i) => `big.example.test. 60 IN A 198.51.100.${i + 1}`),
];
// Distinct subject names: a trust store looks issuers up by name.
const dotCert = generateSelfSignedCert({ host: 'dns.test', commonName: 'aerie test DoT' });
// DoH by IP address: the URL's host must be on the certificate, and no resolver is needed to reach it.
const dohCert = generateSelfSignedCert({ host: '127.0.0.1', commonName: 'aerie test DoH' });

let unbound: Unbound; // UDP, TCP, DoT
let tcpOnly: Unbound; // TCP and DoH, no UDP
const started: { stop(): Promise<void> }[] = [];

setupOnce(test, async () => {
  unbound = await startUnbound({ zones: ['example.test.'], records: RECORDS, dot: dotCert });
  started.push(unbound);
  tcpOnly = await startUnbound({ zones: ['example.test.'], records: RECORDS, doh: dohCert, udp: false });
  started.push(tcpOnly);
});

test.after(async () => {
  await Promise.all(started.map((s) => s.stop()));
});

/** dns-packet decodes the RCODE too; its types leave it out. */
type Packet = ReturnType<typeof dnsPacket.decode> & { rcode?: string };

function query(name: string, opts: { id?: number; type?: 'A' | 'AAAA' | 'TXT' } = {}): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: opts.id ?? 0xbeef,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: opts.type ?? 'A', class: 'IN', name }],
  });
}

const decode = (msg: Uint8Array): Packet => dnsPacket.decode(Buffer.from(msg));
const addresses = (p: Packet) => (p.answers ?? []).map((a) => ('data' in a ? String(a.data) : '')).sort();
const elapsed = (start: number) => Date.now() - start;

async function rejection(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the exchange to fail');
}

/** A UDP server on 127.0.0.1; `reply` sends answers for each query it gets (none: a black hole). */
async function udpServer(reply: (q: Packet, send: (msg: Buffer) => void) => void = () => {}) {
  const socket: UdpSocket = createSocket('udp4');
  const received: Packet[] = [];
  socket.on('message', (msg, from) => {
    const q = dnsPacket.decode(msg);
    received.push(q);
    reply(q, (answer) => socket.send(answer, from.port, from.address));
  });
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  const server = { port: socket.address().port, received, stop: () => new Promise<void>((r) => socket.close(() => r())) };
  started.push(server);
  return server;
}

/** A reply to `q` answering 192.0.2.99 (or `address`), with any field replaced by `over`. */
function reply(q: Packet, over: Partial<dnsPacket.Packet> & { address?: string } = {}): dnsPacket.Packet {
  const question = q.questions![0]!;
  const { address, ...fields } = over;
  return {
    type: 'response',
    id: q.id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
    questions: [question],
    answers: [{ type: 'A', class: 'IN', name: question.name, ttl: 30, data: address ?? '192.0.2.99' }],
    ...fields,
  };
}

const answer = (q: Packet, over: Partial<dnsPacket.Packet> & { address?: string } = {}): Buffer => dnsPacket.encode(reply(q, over));

const udp = (port: number): UpstreamSpec => ({ kind: 'udp', address: '127.0.0.1', port });

test('udp, tcp, dot and doh all return unbound’s answer, with the caller’s ID and the question’s case', async () => {
  const specs = [
    `udp:127.0.0.1:${unbound.port}`,
    `tcp:127.0.0.1:${unbound.port}`,
    `dot:dns.test@127.0.0.1:${unbound.dotPort}`,
    `doh:https://127.0.0.1:${tcpOnly.dohPort}/dns-query`,
  ];
  for (const spec of specs) {
    const upstreams = createUpstreams([parseUpstream(spec)], { ca: `${dotCert.certPem}${dohCert.certPem}`, timeoutMs: 3000 });
    try {
      const a = decode(await upstreams.exchange(query('WwW.Example.TEST', { id: 0x1234 })));
      assert.is(a.id, 0x1234, `${spec}: the caller's ID`);
      assert.is(a.rcode, 'NOERROR', spec);
      assert.is(a.questions![0]!.name, 'WwW.Example.TEST', `${spec}: question as asked`);
      assert.equal(addresses(a), ['192.0.2.1'], spec);
      assert.is((a.answers![0] as { ttl?: number }).ttl, 300, `${spec}: unbound's TTL`);
      const aaaa = decode(await upstreams.exchange(query('www.example.test', { type: 'AAAA', id: 7 })));
      assert.equal(addresses(aaaa), ['2001:db8::1'], `${spec}: a second query on the same upstream`);
      const nx = decode(await upstreams.exchange(query('nothing.example.test')));
      assert.is(nx.rcode, 'NXDOMAIN', `${spec}: unbound's NXDOMAIN comes through as an answer`);
      const [h] = upstreams.health();
      assert.equal([h!.upstream, h!.ok, h!.lastError], [spec, true, null]);
      assert.type(h!.rttMs, 'number');
    } finally {
      await upstreams.close();
    }
  }
});

test('tcp: goes over TCP and udp: over UDP (a TCP-only server answers only the first)', async () => {
  const overTcp = createUpstreams([{ kind: 'tcp', address: '127.0.0.1', port: tcpOnly.port }], { timeoutMs: 1000 });
  const overUdp = createUpstreams([udp(tcpOnly.port)], { timeoutMs: 1000 });
  try {
    assert.equal(addresses(decode(await overTcp.exchange(query('www.example.test')))), ['192.0.2.1']);
    assert.instance(await rejection(overUdp.exchange(query('www.example.test'))), UpstreamError);
  } finally {
    await Promise.all([overTcp.close(), overUdp.close()]);
  }
});

test('DoT checks the certificate: another host name, or a CA we do not trust, fails', async () => {
  const wrongHost = createUpstreams([parseUpstream(`dot:other.test@127.0.0.1:${unbound.dotPort}`)], { ca: dotCert.certPem, timeoutMs: 2000 });
  const untrusted = createUpstreams([parseUpstream(`dot:dns.test@127.0.0.1:${unbound.dotPort}`)], { timeoutMs: 2000 });
  try {
    const e1 = await rejection(wrongHost.exchange(query('www.example.test')));
    assert.instance(e1, UpstreamError);
    assert.match(e1.message, /other\.test/);
    assert.match(e1.message, /altnames/);
    const e2 = await rejection(untrusted.exchange(query('www.example.test')));
    assert.instance(e2, UpstreamError);
    assert.match(e2.message, /self[- ]signed|unable to verify|certificate/i);
    assert.is(untrusted.health()[0]!.ok, false);
  } finally {
    await Promise.all([wrongHost.close(), untrusted.close()]);
  }
});

test('DoH checks the certificate against the URL host', async () => {
  const untrusted = createUpstreams([parseUpstream(`doh:https://127.0.0.1:${tcpOnly.dohPort}/dns-query`)], { ca: dotCert.certPem, timeoutMs: 2000 });
  try {
    const e = await rejection(untrusted.exchange(query('www.example.test')));
    assert.instance(e, UpstreamError);
    assert.match(e.message, /self[- ]signed|unable to verify|certificate/i);
  } finally {
    await untrusted.close();
  }
});

test('a truncated UDP answer is asked again over TCP, and the whole answer comes back', async () => {
  // Precondition: over UDP without EDNS, unbound truncates this answer.
  const raw = createSocket('udp4');
  try {
    const reply = new Promise<Buffer>((resolve) => raw.once('message', resolve));
    raw.send(query('big.example.test', { id: 99 }), unbound.port, '127.0.0.1');
    const direct = dnsPacket.decode(await reply);
    assert.ok(direct.flag_tc, 'unbound set TC');
    assert.ok((direct.answers ?? []).length < BIG);
  } finally {
    raw.close();
  }
  const upstreams = createUpstreams([udp(unbound.port)], { timeoutMs: 2000 });
  try {
    const a = decode(await upstreams.exchange(query('big.example.test', { id: 4242 })));
    assert.is(a.id, 4242);
    assert.not.ok(a.flag_tc);
    assert.is(a.answers!.length, BIG);
    assert.equal(addresses(a), Array.from({ length: BIG }, (_, i) => `198.51.100.${i + 1}`).sort());
  } finally {
    await upstreams.close();
  }
});

test('TCP: concurrent queries share one connection, out-of-order answers are matched, stray ones dropped, a closed connection is reopened', async () => {
  let connections = 0;
  const sockets = new Set<Socket>();
  const BATCH = 5;
  const server: Server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    let buffered = Buffer.alloc(0);
    let batch: Packet[] = [];
    socket.on('data', (d: Buffer) => {
      buffered = Buffer.concat([buffered, d]);
      while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        batch.push(dnsPacket.streamDecode(buffered.subarray(0, 2 + buffered.readUInt16BE(0))) as Packet);
        buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
      }
      const want = connections === 1 ? BATCH : 1;
      if (batch.length < want) return;
      const first = batch[0]!;
      const frames = [
        // An ID nobody asked with, then a known ID with another question: both dropped.
        dnsPacket.streamEncode(reply(first, { id: (first.id! + 1) & 0xffff, address: '203.0.113.66' })),
        dnsPacket.streamEncode(reply(first, { questions: [{ type: 'A', class: 'IN', name: 'other.example.test' }], address: '203.0.113.66' })),
        // Real answers, last query first; each name's own address.
        ...batch.reverse().map((q) => dnsPacket.streamEncode(reply(q, { address: `192.0.2.${10 + Number(q.questions![0]!.name.slice(1, 2))}` }))),
      ];
      socket.write(Buffer.concat(frames));
      batch = [];
      if (connections === 1) socket.end(); // the server hangs up after the batch
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  started.push({ stop: () => new Promise<void>((r) => (sockets.forEach((s) => s.destroy()), server.close(() => r()))) });
  const upstreams = createUpstreams([{ kind: 'tcp', address: '127.0.0.1', port: (server.address() as AddressInfo).port }], { timeoutMs: 2000 });
  try {
    const answers = await Promise.all(Array.from({ length: BATCH }, (_, i) => upstreams.exchange(query(`n${i}.example.test`, { id: 100 + i }))));
    answers.forEach((msg, i) => {
      const a = decode(msg);
      assert.is(a.id, 100 + i);
      assert.is(a.questions![0]!.name, `n${i}.example.test`);
      assert.equal(addresses(a), [`192.0.2.${10 + i}`]);
    });
    assert.is(connections, 1, 'one connection for all of them');
    const again = decode(await upstreams.exchange(query('n7.example.test')));
    assert.equal(addresses(again), ['192.0.2.17']);
    assert.is(connections, 2, 'reconnected after the server closed');
  } finally {
    await upstreams.close();
  }
});

test('UDP: a wrong ID, another question, or QR=0 never wins; the matching answer does, with the caller’s ID', async () => {
  const hostile = await udpServer((q, send) => {
    const question = q.questions![0]!;
    send(answer(q, { id: (q.id! + 1) & 0xffff, address: '203.0.113.1' }));
    send(answer(q, { questions: [{ ...question, name: `x${question.name}` }], address: '203.0.113.2' }));
    send(answer(q, { questions: [{ ...question, type: 'AAAA' }], address: '203.0.113.3' }));
    send(answer(q, { type: 'query', address: '203.0.113.4' }));
    send(answer(q, { address: '192.0.2.99' }));
  });
  const upstreams = createUpstreams([udp(hostile.port)], { timeoutMs: 2000 });
  try {
    for (let i = 0; i < 4; i++) {
      const a = decode(await upstreams.exchange(query('Spoof.example.test', { id: 0x5555 })));
      assert.is(a.id, 0x5555);
      assert.equal(addresses(a), ['192.0.2.99']);
    }
    const wireIds = hostile.received.map((q) => q.id);
    assert.is(wireIds.length, 4);
    assert.ok(wireIds.some((id) => id !== 0x5555), 'a fresh random ID on the wire, not the caller’s');
    assert.ok(new Set(wireIds).size > 1, 'a new ID per query');
  } finally {
    await upstreams.close();
  }
});

test('UDP: a server that only sends wrong answers gets the exchange failed after the timeout', async () => {
  const hostile = await udpServer((q, send) => {
    send(answer(q, { id: (q.id! ^ 0x8000) & 0xffff }));
    send(answer(q, { questions: [{ type: 'A', class: 'IN', name: 'elsewhere.example.test' }] }));
  });
  const upstreams = createUpstreams([udp(hostile.port)], { timeoutMs: 400 });
  try {
    const start = Date.now();
    const e = await rejection(upstreams.exchange(query('www.example.test')));
    assert.instance(e, UpstreamError);
    assert.match(e.message, /no answer within 400 ms/);
    assert.ok(elapsed(start) >= 390, `waited the timeout (${elapsed(start)} ms)`);
    assert.ok(hostile.received.length >= 1);
  } finally {
    await upstreams.close();
  }
});

test('fail-over: a closed port fails at once and the next upstream answers', async () => {
  const [dead] = await freePorts(1);
  const upstreams = createUpstreams([udp(dead!), udp(unbound.port)], { timeoutMs: 2000 });
  try {
    const start = Date.now();
    const a = decode(await upstreams.exchange(query('www.example.test')));
    assert.equal(addresses(a), ['192.0.2.1']);
    assert.ok(elapsed(start) < 1000, `no wait for the closed port (${elapsed(start)} ms)`);
    const [first, second] = upstreams.health();
    assert.equal([first!.ok, first!.lastError], [false, 'connection refused']);
    assert.equal([second!.ok, second!.lastError], [true, null]);
  } finally {
    await upstreams.close();
  }
});

test('fail-over: a black hole costs one timeout, is then skipped, and is tried again later', async () => {
  const hole = await udpServer();
  let clock = 1_000_000;
  const lines: string[] = [];
  const upstreams = createUpstreams([udp(hole.port), udp(unbound.port)], { timeoutMs: 300, now: () => clock, log: (l) => lines.push(l) });
  try {
    let start = Date.now();
    assert.equal(addresses(decode(await upstreams.exchange(query('www.example.test')))), ['192.0.2.1']);
    assert.ok(elapsed(start) >= 290, `waited for the black hole first (${elapsed(start)} ms)`);
    const reached = hole.received.length;
    assert.ok(reached >= 1);
    assert.equal(
      upstreams.health().map((h) => [h.upstream, h.ok, h.lastError]),
      [
        [`udp:127.0.0.1:${hole.port}`, false, 'no answer within 300 ms'],
        [`udp:127.0.0.1:${unbound.port}`, true, null],
      ],
    );
    assert.ok(lines.some((l) => l.includes(`udp:127.0.0.1:${hole.port}`) && /failed/.test(l)), 'the failure is logged');

    clock += 1000;
    start = Date.now();
    for (let i = 0; i < 3; i++) assert.equal(addresses(decode(await upstreams.exchange(query('www.example.test')))), ['192.0.2.1']);
    assert.ok(elapsed(start) < 300, `skipped: answered without waiting (${elapsed(start)} ms)`);
    assert.is(hole.received.length, reached, 'nothing sent to the skipped upstream');

    clock += 10 * 60_000; // long after the skip ends
    await upstreams.exchange(query('www.example.test'));
    assert.ok(hole.received.length > reached, 'tried again once the skip is over');
    assert.is(upstreams.health()[0]!.ok, false);
  } finally {
    await upstreams.close();
  }
});

test('fail-over: all upstreams dead → UpstreamError naming each, within the caller’s timeout', async () => {
  const holes = [await udpServer(), await udpServer()];
  const [dead] = await freePorts(1);
  const upstreams = createUpstreams([udp(holes[0]!.port), udp(holes[1]!.port), { kind: 'tcp', address: '127.0.0.1', port: dead! }], { timeoutMs: 300 });
  try {
    let start = Date.now();
    let e = await rejection(upstreams.exchange(query('www.example.test')));
    assert.instance(e, UpstreamError);
    assert.ok(elapsed(start) < 1500, `within the budget of 3 × 300 ms (${elapsed(start)} ms)`);
    for (const h of upstreams.health()) assert.ok(e.message.includes(h.upstream), `names ${h.upstream}`);
    assert.match(e.message, /connection refused/);
    start = Date.now();
    e = await rejection(upstreams.exchange(query('www.example.test'), { timeoutMs: 450 }));
    assert.instance(e, UpstreamError);
    assert.ok(elapsed(start) < 900, `the caller's timeout bounds the whole exchange (${elapsed(start)} ms)`);
    assert.ok(upstreams.health().every((h) => !h.ok));
  } finally {
    await upstreams.close();
  }
});

test('fail-over: SERVFAIL or REFUSED moves on to the next upstream; from the last one it is the answer', async () => {
  const servfail = await udpServer((q, send) => send(answer(q, { flags: dnsPacket.RECURSION_DESIRED | 2, answers: [] })));
  const refused = await udpServer((q, send) => send(answer(q, { flags: 5, answers: [] })));
  const both = createUpstreams([udp(servfail.port), udp(refused.port), udp(unbound.port)], { timeoutMs: 1000 });
  const alone = createUpstreams([udp(servfail.port)], { timeoutMs: 1000 });
  try {
    const a = decode(await both.exchange(query('www.example.test')));
    assert.equal([a.rcode, addresses(a)], ['NOERROR', ['192.0.2.1']]);
    assert.equal(
      both.health().map((h) => [h.lastError, h.ok]),
      [
        ['answered SERVFAIL', true], // about the name more often than the server
        ['answered REFUSED', false],
        [null, true],
      ],
    );
    const only = decode(await alone.exchange(query('www.example.test', { id: 77 })));
    assert.equal([only.id, only.rcode], [77, 'SERVFAIL']);
  } finally {
    await Promise.all([both.close(), alone.close()]);
  }
});

test('close() ends exchanges in flight; a query without one readable question is refused', async () => {
  const hole = await udpServer();
  const upstreams = createUpstreams([udp(hole.port)], { timeoutMs: 5000 });
  const start = Date.now();
  const pending = rejection(upstreams.exchange(query('www.example.test')));
  await new Promise((r) => setTimeout(r, 50));
  await upstreams.close();
  const e = await pending;
  assert.instance(e, UpstreamError);
  assert.ok(elapsed(start) < 1000, `ended at close, not at the timeout (${elapsed(start)} ms)`);

  const other = createUpstreams([udp(unbound.port)]);
  try {
    const noQuestion = dnsPacket.encode({ type: 'query', id: 1, questions: [] });
    assert.instance(await rejection(other.exchange(noQuestion)), UpstreamError);
    assert.instance(await rejection(other.exchange(new Uint8Array(5))), UpstreamError);
  } finally {
    await other.close();
  }
});

test('parseUpstream reads each documented form; formatUpstream writes it back', () => {
  const cases: [string, UpstreamSpec, string][] = [
    ['udp:127.0.0.1', { kind: 'udp', address: '127.0.0.1', port: 53 }, 'udp:127.0.0.1'],
    ['udp:192.0.2.1:5353', { kind: 'udp', address: '192.0.2.1', port: 5353 }, 'udp:192.0.2.1:5353'],
    ['tcp:[2001:DB8::1]:53', { kind: 'tcp', address: '2001:db8::1', port: 53 }, 'tcp:[2001:db8::1]'],
    ['udp:[2001:db8::53]', { kind: 'udp', address: '2001:db8::53', port: 53 }, 'udp:[2001:db8::53]'],
    ['dot:dns.example@192.0.2.53', { kind: 'dot', host: 'dns.example', address: '192.0.2.53', port: 853 }, 'dot:dns.example@192.0.2.53'],
    ['DoT:Dns.Example.@[2001:db8::53]:8853', { kind: 'dot', host: 'dns.example', address: '2001:db8::53', port: 8853 }, 'dot:dns.example@[2001:db8::53]:8853'],
    ['doh:https://dns.example/dns-query', { kind: 'doh', url: 'https://dns.example/dns-query' }, 'doh:https://dns.example/dns-query'],
    ['doh:https://192.0.2.1:8443/q?x=1', { kind: 'doh', url: 'https://192.0.2.1:8443/q?x=1' }, 'doh:https://192.0.2.1:8443/q?x=1'],
  ];
  for (const [text, spec, formatted] of cases) {
    assert.equal(parseUpstream(text), spec, text);
    assert.is(formatUpstream(spec), formatted, text);
    assert.equal(parseUpstream(formatted), spec, `${formatted} round-trips`);
  }
});

test('parseUpstream errors name the field and the expected form', () => {
  const cases: [string, RegExp][] = [
    ['192.0.2.1', /udp:IP\[:port\], tcp:IP\[:port\], dot:HOST@IP\[:port\] or doh:https:/],
    ['quic:192.0.2.1', /expected udp:IP\[:port\]/],
    ['udp:dns.example', /udp:IP\[:port\] with IP an IPv4 address or an IPv6 address in brackets/],
    ['udp:2001:db8::1', /IPv6 address in brackets/],
    ['udp:192.0.2.1:0', /port a number from 1 to 65535/],
    ['tcp:192.0.2.1:65536', /tcp:IP\[:port\] with port a number from 1 to 65535/],
    ['udp:[2001:db8::1', /in brackets/],
    ['udp:[192.0.2.1]:53', /IPv6 address inside the brackets/],
    ['dot:192.0.2.1', /dot:HOST@IP\[:port\]/],
    ['dot:bad_name@192.0.2.1', /HOST the DNS name/],
    ['doh:http://dns.example/dns-query', /https only/],
    ['doh:not a url', /doh:https:\/\/HOST/],
    ['doh:https://user:pw@dns.example/q', /without credentials/],
  ];
  for (const [text, message] of cases) {
    try {
      parseUpstream(text, 'upstreams[2]');
      assert.unreachable(`${text} must be refused`);
    } catch (err) {
      assert.instance(err, ValidationError, text);
      assert.is((err as ValidationError).field, 'upstreams[2]', text);
      assert.match((err as Error).message, /^upstreams\[2\]: /, text);
      assert.match((err as Error).message, message, text);
    }
  }
  assert.is(((): string => {
    try {
      parseUpstream('nonsense');
      return '';
    } catch (err) {
      return (err as ValidationError).field;
    }
  })(), 'upstream', 'the default field name');
  assert.throws(() => createUpstreams([]), (e: Error) => e instanceof ValidationError && /at least one upstream/.test(e.message));
});

test.run();
