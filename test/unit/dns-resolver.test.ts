import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createResolver } from '../../cloud/dns/resolver.ts';
import {
  answerTo,
  ask,
  blocklist,
  CLIENTS,
  clock,
  decode,
  fakeUpstream,
  idOf,
  LAPTOP,
  LAPTOP_TCP,
  localNames,
  makeResolver,
  manyA,
  optOf,
  packet,
  query,
  type QType,
  rcodeOf,
  soa,
  TV,
  ZONE,
} from './dns-fixtures.ts';
import { throwsValidation } from './throws-validation.ts';

const A = (name: string, ttl: number, data = '192.0.2.1'): packet.Answer => ({ type: 'A', name, ttl, data });
const www = (ttl = 300) => ({ 'www.example.com A': (q: Uint8Array) => answerTo(q, 'NOERROR', { answers: [A('www.example.com', ttl)] }) });
const isPromise = (x: unknown) => x instanceof Promise;

test('a miss goes upstream as a fresh query: RD=1, the question as the client wrote it, our OPT', async () => {
  const up = fakeUpstream(www());
  const r = makeResolver({ upstream: up });
  const reply = await ask(r, query('WwW.Example.Com', 'A', { id: 0x4242, rd: false }));
  assert.is(up.calls.length, 1);
  const sent = decode(up.calls[0]!);
  assert.is(sent.type, 'query');
  assert.ok(sent.flags! & packet.RECURSION_DESIRED);
  assert.is(sent.questions![0]!.name, 'WwW.Example.Com');
  assert.is(optOf(sent)!.udpPayloadSize, 1232);
  assert.is(sent.answers!.length + sent.authorities!.length, 0);

  const d = decode(reply!);
  assert.is(d.id, 0x4242, "the client's ID");
  assert.is(d.flags! & packet.RECURSION_DESIRED, 0, "the client's RD");
  assert.is(d.questions![0]!.name, 'WwW.Example.Com', 'case preserved');
  assert.is((d.answers![0] as packet.StringAnswer).data, '192.0.2.1');
  assert.is(optOf(d), undefined, 'no OPT for a client that sent none');
});

test('a cache hit is answered synchronously, with the TTL counted down', async () => {
  const up = fakeUpstream(www(300));
  const c = clock();
  const r = makeResolver({ upstream: up, now: c.now });
  assert.ok(isPromise(r.answer(query('www.example.com'), LAPTOP)), 'a miss waits for the upstream');
  await new Promise((res) => setImmediate(res));
  await new Promise((res) => setImmediate(res));
  c.advance(30_000);
  const hit = r.answer(query('WWW.EXAMPLE.COM', 'A', { id: 9, edns: 4096 }), LAPTOP);
  assert.ok(hit instanceof Uint8Array, 'a hit is not a promise');
  const d = decode(hit as Uint8Array);
  assert.is(d.id, 9);
  assert.is(d.answers![0]!.ttl, 270);
  assert.is(d.questions![0]!.name, 'WWW.EXAMPLE.COM');
  assert.is(optOf(d)!.udpPayloadSize, 1232, 'our own OPT');
  assert.is(up.calls.length, 1);
  assert.equal(r.stats().cache, { entries: 1, hits: 1, misses: 1 });
  r.clearCache();
  await ask(r, query('www.example.com'));
  assert.is(up.calls.length, 2, 'after clearCache the upstream is asked again');
});

test('identical queries waiting for the upstream share one upstream query', async () => {
  const up = fakeUpstream(www());
  const r = makeResolver({ upstream: up });
  const replies = await Promise.all([1, 2, 3].map((id) => ask(r, query(id === 2 ? 'WWW.example.com' : 'www.example.com', 'A', { id }))));
  assert.is(up.calls.length, 1);
  assert.equal(replies.map((x) => idOf(x!)), [1, 2, 3]);
  assert.is(decode(replies[1]!).questions![0]!.name, 'WWW.example.com');
  assert.equal(replies.map((x) => rcodeOf(x!)), [0, 0, 0]);
  await ask(r, query('www.example.com', 'AAAA'));
  assert.is(up.calls.length, 2, 'another type is another question');
});

test('upstream failure, an unusable answer, or no answer in time: SERVFAIL, never cached', async () => {
  const up = fakeUpstream({
    'down.example A': () => new Error('all upstreams failed'),
    'fail.example A': (q) => answerTo(q, 'SERVFAIL', {}),
    'other.example A': () => () => answerTo(query('elsewhere.example'), 'NOERROR', { answers: [A('elsewhere.example', 300)] }),
    'slow.example A': () => 'hang',
  });
  const r = makeResolver({ upstream: up, upstreamTimeoutMs: 50 });
  // The resolver's own timer does not hold the process open: this one does, meanwhile.
  const alive = setInterval(() => {}, 1000);
  for (const name of ['down.example', 'fail.example', 'other.example', 'slow.example']) {
    const reply = await ask(r, query(name, 'A', { id: 77, edns: 1232 })).finally(() => name === 'slow.example' && clearInterval(alive));
    const d = decode(reply!);
    assert.is(d.rcode, 'SERVFAIL', name);
    assert.is(d.id, 77);
    assert.is(d.questions![0]!.name, name);
    assert.ok(optOf(d), 'OPT for an EDNS client');
  }
  await ask(r, query('down.example'));
  await ask(r, query('fail.example'));
  assert.is(up.calls.length, 6, 'failures were not cached');
  assert.is(r.stats().devices['laptop']!.failed, 6);
});

test('blocked names: 0.0.0.0 and :: with blockedTtl, empty NOERROR + SOA for other types; never upstream', () => {
  const up = fakeUpstream({});
  const list = blocklist();
  const r = makeResolver({ upstream: up, isBlocked: list.isBlocked, blockedTtl: 7 });
  const a = r.answer(query('Tracker.ADS.example', 'A', { id: 3 }), LAPTOP);
  assert.ok(a instanceof Uint8Array, 'synchronous');
  const da = decode(a as Uint8Array);
  assert.is(da.id, 3);
  assert.is((da.answers![0] as packet.StringAnswer).data, '0.0.0.0');
  assert.is(da.answers![0]!.ttl, 7);
  assert.is(da.answers![0]!.name, 'Tracker.ADS.example');
  const aaaa = decode(r.answer(query('ads.example', 'AAAA'), LAPTOP) as Uint8Array);
  assert.is((aaaa.answers![0] as packet.StringAnswer).data, '::');
  const mx = decode(r.answer(query('ads.example', 'MX'), LAPTOP) as Uint8Array);
  assert.is(mx.rcode, 'NOERROR');
  assert.is(mx.answers!.length, 0);
  const s = mx.authorities![0] as packet.SoaAnswer;
  assert.is(s.type, 'SOA');
  assert.is(s.ttl, 7);
  assert.is(s.data.minimum, 7);
  assert.is(up.calls.length, 0);
  assert.is(list.calls, 3);
  assert.is(r.stats().devices['laptop']!.blocked, 3);
});

test("blockMode 'nxdomain' answers NXDOMAIN + SOA for every type", () => {
  const r = makeResolver({ upstream: fakeUpstream({}), blockMode: 'nxdomain' });
  for (const type of ['A', 'AAAA', 'TXT'] as const) {
    const d = decode(r.answer(query('ads.example', type), LAPTOP) as Uint8Array);
    assert.is(d.rcode, 'NXDOMAIN', type);
    assert.is(d.answers!.length, 0);
    assert.is(d.authorities![0]!.type, 'SOA');
    assert.is(d.authorities![0]!.ttl, 10, 'default blockedTtl');
  }
});

test('a device that opted out of blocking is not checked against the lists', async () => {
  const up = fakeUpstream({ 'ads.example A': (q) => answerTo(q, 'NOERROR', { answers: [A('ads.example', 60, '203.0.113.5')] }) });
  const list = blocklist();
  const r = makeResolver({ upstream: up, isBlocked: list.isBlocked });
  const d = decode((await ask(r, query('ads.example'), TV))!);
  assert.is((d.answers![0] as packet.StringAnswer).data, '203.0.113.5');
  assert.is(list.calls, 0);
  assert.is((decode((await ask(r, query('ads.example'), LAPTOP))!).answers![0] as packet.StringAnswer).data, '0.0.0.0');
  assert.equal(r.stats().devices['tv'], { queries: 1, blocked: 0, cached: 0, local: 0, forwarded: 1, failed: 0 });
});

test('local names and their reverse names are answered here, also NXDOMAIN, never forwarded', () => {
  const up = fakeUpstream({});
  const r = makeResolver({ upstream: up });
  const one = (name: string, type: QType = 'A') => decode(r.answer(query(name, type), LAPTOP) as Uint8Array);
  assert.is((one('TV.aerie.internal').answers![0] as packet.StringAnswer).data, '100.64.0.3');
  assert.is(one('nobody.aerie.internal').rcode, 'NXDOMAIN');
  assert.is((one('3.0.64.100.in-addr.arpa', 'PTR').answers![0] as packet.StringAnswer).data, 'tv.aerie.internal');
  assert.is(one('9.9.64.100.in-addr.arpa', 'PTR').rcode, 'NXDOMAIN');
  assert.is(up.calls.length, 0);
  assert.is(r.stats().devices['laptop']!.local, 4);
});

test('canary names that switch off browser and OS encrypted DNS get NXDOMAIN, for every device', () => {
  const up = fakeUpstream({});
  const r = makeResolver({ upstream: up });
  for (const name of ['use-application-dns.net', 'Mask.iCloud.com', 'mask-h2.icloud.com']) {
    for (const from of [LAPTOP, TV]) {
      const d = decode(r.answer(query(name), from) as Uint8Array);
      assert.is(d.rcode, 'NXDOMAIN', name);
    }
  }
  assert.is(up.calls.length, 0);
});

test('strangers get nothing; responses are dropped; other errors are answered with their rcode', () => {
  const up = fakeUpstream({});
  const r = makeResolver({ upstream: up });
  assert.is(r.answer(query('www.example.com'), { address: '198.51.100.7', transport: 'udp' }), null);
  const response = query('www.example.com');
  response[2]! |= 0x80;
  assert.is(r.answer(response, LAPTOP), null, 'QR=1');
  assert.is(r.answer(new Uint8Array(5), LAPTOP), null, 'no header');

  const rcode = (q: Uint8Array) => decode(r.answer(q, LAPTOP) as Uint8Array).rcode;
  const notify = query('example.com', 'SOA');
  notify[2] = (notify[2]! & 0x87) | (4 << 3);
  assert.is(rcode(notify), 'NOTIMP');
  assert.is(rcode(query('version.bind', 'TXT', { class: 'CH' })), 'REFUSED');
  assert.is(rcode(query('example.com', 'AXFR')), 'REFUSED');
  const pointer = Uint8Array.from([0, 9, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12, 0, 1, 0, 1]);
  const formerr = r.answer(pointer, LAPTOP) as Uint8Array;
  assert.is(idOf(formerr), 9);
  assert.is(rcodeOf(formerr), 1);

  const v1 = decode(r.answer(query('www.example.com', 'A', { edns: 1232, ednsVersion: 1 }), LAPTOP) as Uint8Array);
  assert.is(optOf(v1)!.extendedRcode, 1, 'BADVERS (RFC 6891 §6.1.3)');
  assert.is(optOf(v1)!.ednsVersion, 0);
  assert.is(up.calls.length, 0);
  assert.is(r.stats().devices['laptop']!.queries, 5, 'dropped messages are not counted');
});

test('UDP answers larger than 512 bytes (no EDNS) or the EDNS size are truncated; TCP gets them whole', async () => {
  const up = fakeUpstream({ 'big.example A': (q) => answerTo(q, 'NOERROR', { answers: manyA('big.example', 40) }) });
  const r = makeResolver({ upstream: up });
  const plain = decode((await ask(r, query('big.example')))!);
  assert.ok(plain.flags! & packet.TRUNCATED_RESPONSE);
  assert.is(plain.answers!.length, 0);
  const small = decode((await ask(r, query('big.example', 'A', { edns: 800 })))!);
  assert.ok(small.flags! & packet.TRUNCATED_RESPONSE, 'bigger than the 800 bytes offered');
  const fits = decode((await ask(r, query('big.example', 'A', { edns: 4096 })))!);
  assert.is(fits.answers!.length, 40, 'about 1.1 KB fits in 1232');
  const tcp = decode((await ask(r, query('big.example'), LAPTOP_TCP))!);
  assert.is(tcp.answers!.length, 40);
  assert.is(tcp.flags! & packet.TRUNCATED_RESPONSE, 0);
  const huge = fakeUpstream({ 'huge.example A': (q) => answerTo(q, 'NOERROR', { answers: manyA('huge.example', 100) }) });
  const r2 = makeResolver({ upstream: huge });
  const capped = decode((await ask(r2, query('huge.example', 'A', { edns: 4096 })))!);
  assert.ok(capped.flags! & packet.TRUNCATED_RESPONSE, 'never more than 1232 bytes over UDP');
});

test('per-device counters; the recent ring is off by default and records only the chosen device', async () => {
  const c = clock();
  const up = fakeUpstream(www());
  const r = makeResolver({ upstream: up, now: c.now });
  await ask(r, query('www.example.com'));
  assert.equal(r.recent.list(), []);
  assert.is(r.recent.device(), null);

  r.recent.enable('laptop', 3);
  assert.is(r.recent.device(), 'laptop');
  await ask(r, query('www.example.com'), TV);
  await ask(r, query('www.example.com', 'A'));
  await ask(r, query('ads.example', 'AAAA'));
  await ask(r, query('Laptop.aerie.internal', 'HINFO'));
  await ask(r, query('x.example', 'A', { class: 'CH' }));
  const list = r.recent.list();
  assert.equal(
    list.map((x) => [x.name, x.type, x.result, x.rcode]),
    [
      ['ads.example', 'AAAA', 'blocked', 'NOERROR'],
      ['Laptop.aerie.internal', 'TYPE13', 'local', 'NOERROR'],
      ['x.example', 'A', 'refused', 'REFUSED'],
    ],
    'the last three of laptop, none of tv',
  );
  assert.is(list[0]!.at, c.now());

  await ask(r, query('new.example'));
  assert.equal(r.recent.list().at(-1), { at: c.now(), name: 'new.example', type: 'A', result: 'forwarded', rcode: 'NXDOMAIN' });
  r.recent.disable();
  assert.equal(r.recent.list(), []);
  await ask(r, query('www.example.com'));
  assert.equal(r.recent.list(), []);
  throwsValidation(() => r.recent.enable('laptop', 0), 'size');

  assert.equal(r.stats().devices, {
    laptop: { queries: 7, blocked: 1, cached: 2, local: 1, forwarded: 2, failed: 0 }, // and one refused
    tv: { queries: 1, blocked: 0, cached: 1, local: 0, forwarded: 0, failed: 0 },
  });
});

test('the zone must be the zone of the local names', () => {
  throwsValidation(
    () =>
      createResolver({
        zone: 'other.internal',
        blockMode: 'null',
        upstream: fakeUpstream({}),
        identify: (a) => CLIENTS[a] ?? null,
        isBlocked: () => false,
        localNames: localNames(),
      }),
    'zone',
    new RegExp(ZONE),
  );
});

test('negative answers from the upstream are cached per RFC 2308', async () => {
  const c = clock();
  const up = fakeUpstream({ 'gone.example A': (q) => answerTo(q, 'NXDOMAIN', { authorities: [soa('example', 900, 120)] }) });
  const r = makeResolver({ upstream: up, now: c.now });
  await ask(r, query('gone.example'));
  c.advance(100_000);
  const d = decode(r.answer(query('gone.example'), LAPTOP) as Uint8Array);
  assert.is(d.rcode, 'NXDOMAIN');
  assert.is(d.authorities![0]!.ttl, 20);
  c.advance(20_000);
  await ask(r, query('gone.example'));
  assert.is(up.calls.length, 2);
});

test('the address hook sees upstream and cached A/AAAA answers, names made only when asked, and a promise holds the reply', async () => {
  const up = fakeUpstream(www(300));
  const seen: string[] = [];
  let hold: Promise<void> | undefined;
  const r = makeResolver({
    upstream: up,
    onAddressAnswer: (name, answer) => {
      seen.push(`${name()} ${decode(answer).answers!.length}`);
      return hold;
    },
  });
  await ask(r, query('www.example.com'));
  assert.equal(seen, ['www.example.com 1'], 'the upstream answer');
  // From the cache now; the hook holds it until its promise settles.
  let release!: () => void;
  hold = new Promise<void>((res) => (release = res));
  const pending = r.answer(query('WWW.example.com'), LAPTOP);
  assert.ok(isPromise(pending), 'held');
  let done = false;
  void (pending as Promise<unknown>).then(() => (done = true));
  await new Promise((res) => setImmediate(res));
  assert.not.ok(done, 'not before the hook settles');
  release();
  const reply = await pending;
  assert.is((decode(reply!).answers![0] as packet.StringAnswer).data, '192.0.2.1');
  assert.equal(seen, ['www.example.com 1', 'WWW.example.com 1'], 'the cached answer too');
  assert.is(up.calls.length, 1, 'one upstream query in all');
  // A hook that fails does not lose the reply; other types are not shown to it.
  hold = Promise.reject(new Error('nft said no'));
  hold.catch(() => {});
  assert.ok(await ask(r, query('www.example.com')));
  const before = seen.length;
  await ask(r, query('www.example.com', 'TXT'));
  assert.is(seen.length, before, 'TXT is not an address answer');
});

test.run();
