import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { answerReply, cacheKey, createCache, type CacheOptions } from '../../cloud/dns/cache.ts';
import { createQuery, parseQuery, type Query } from '../../cloud/dns/wire.ts';
import { answerTo, clock, decode, manyA, optOf, packet, query, soa, type QType, type QueryOptions, type Records } from './dns-fixtures.ts';

function parsed(name: string, type: QType = 'A', o: QueryOptions = {}, limit = 0xffff): Query {
  const q = createQuery();
  assert.is(parseQuery(query(name, type, o), q), 0);
  q.limit = limit;
  return q;
}

function setup(opts: CacheOptions = {}) {
  const c = clock();
  const cache = createCache({ ...opts, now: c.now });
  /** Stores the upstream's answer to `name` and returns the entry. */
  const store = (name: string, type: QType, rcode: string, records: Records, o: QueryOptions = {}) => {
    const q = parsed(name, type, o);
    return cache.put(cacheKey(q), answerTo(query(name, type, o), rcode, records));
  };
  /** A client's reply from the cache, decoded, or null on a miss. */
  const hit = (name: string, type: QType = 'A', o: QueryOptions = {}, limit = 0xffff) => {
    const q = parsed(name, type, o, limit);
    const raw = cache.reply(q);
    return raw ? decode(raw) : null;
  };
  return { c, cache, store, hit };
}

const a = (name: string, ttl: number, data = '192.0.2.1'): packet.Answer => ({ type: 'A', name, ttl, data });

test('an answer is served from the cache with TTLs counted down, until it expires', () => {
  const { c, store, hit, cache } = setup();
  store('www.example.com', 'A', 'NOERROR', { answers: [a('www.example.com', 300)] });
  assert.is(hit('www.example.com')!.answers![0]!.ttl, 300);
  c.advance(100_400);
  const r = hit('www.example.com', 'A', { id: 99 })!;
  assert.is(r.id, 99, 'the client ID, not the upstream one');
  assert.is(r.answers![0]!.ttl, 200, '100.4 s later');
  assert.is((r.answers![0] as packet.StringAnswer).data, '192.0.2.1');
  c.advance(199_600);
  assert.is(hit('www.example.com'), null, 'gone at 300 s');
  assert.equal(cache.stats(), { entries: 0, hits: 2, misses: 1 });
});

test('TTLs are clamped to [minTtl, maxTtl]; the shortest TTL decides how long the entry lives', () => {
  const { c, store, hit } = setup({ minTtl: 60, maxTtl: 3600 });
  store('short.example', 'A', 'NOERROR', { answers: [a('short.example', 5)] });
  store('long.example', 'A', 'NOERROR', { answers: [a('long.example', 1_000_000)] });
  store('two.example', 'A', 'NOERROR', { answers: [a('two.example', 120), a('two.example', 600, '192.0.2.2')] });
  assert.is(hit('short.example')!.answers![0]!.ttl, 60);
  assert.is(hit('long.example')!.answers![0]!.ttl, 3600);
  c.advance(59_000);
  assert.ok(hit('short.example'));
  c.advance(1000);
  assert.is(hit('short.example'), null, 'lived minTtl');
  c.advance(60_000);
  assert.is(hit('two.example'), null, 'lived as long as its shortest record (120 s)');
  assert.is(hit('long.example')!.answers![0]!.ttl, 3600 - 120);
});

test('NXDOMAIN and NODATA are cached for min(SOA TTL, SOA MINIMUM), capped (RFC 2308)', () => {
  const { c, store, hit } = setup({ negativeMaxTtl: 600 });
  store('nx.example', 'A', 'NXDOMAIN', { authorities: [soa('example', 900, 300)] });
  store('nodata.example', 'AAAA', 'NOERROR', { authorities: [soa('example', 120, 3600)] });
  store('capped.example', 'A', 'NXDOMAIN', { authorities: [soa('example', 86400, 86400)] });
  const nx = hit('nx.example')!;
  assert.is(nx.rcode, 'NXDOMAIN');
  assert.is(nx.authorities![0]!.ttl, 300, 'the SOA says how long to cache');
  assert.is(hit('nodata.example', 'AAAA')!.authorities![0]!.ttl, 120);
  assert.is(hit('capped.example')!.authorities![0]!.ttl, 600);
  c.advance(120_000);
  assert.is(hit('nodata.example', 'AAAA'), null);
  assert.is(hit('nx.example')!.authorities![0]!.ttl, 180);
  c.advance(180_000);
  assert.is(hit('nx.example'), null);
  assert.ok(hit('capped.example'));
});

test('without an SOA, negative answers are not cached; SERVFAIL is unusable; TC is passed on but not cached', () => {
  const { store, hit, cache } = setup();
  assert.ok(store('nx.example', 'A', 'NXDOMAIN', {}), 'still an answer for the clients waiting');
  assert.is(hit('nx.example'), null);
  store('nodata.example', 'A', 'NOERROR', {});
  assert.is(hit('nodata.example'), null);
  // A CNAME alone (no A record) is a NODATA answer too: not cached without an SOA.
  store('alias.example', 'A', 'NOERROR', { answers: [{ type: 'CNAME', name: 'alias.example', ttl: 300, data: 'gone.example' }] });
  assert.is(hit('alias.example'), null);
  assert.is(store('fail.example', 'A', 'SERVFAIL', {}), null);
  assert.is(store('refused.example', 'A', 'REFUSED', {}), null);
  const q = parsed('big.example');
  const tc = cache.put(cacheKey(q), answerTo(query('big.example'), 'NOERROR', { answers: [a('big.example', 300)] }, packet.TRUNCATED_RESPONSE));
  assert.ok(tc);
  assert.ok(decode(answerReply(tc!, q, 0)).flags! & packet.TRUNCATED_RESPONSE, 'the client learns to ask over TCP');
  assert.is(hit('big.example'), null);
  assert.is(cache.stats().entries, 0);
});

test("the upstream's OPT never reaches a client: ours is added only when the client sent one", () => {
  const { store, hit } = setup();
  store('www.example.com', 'A', 'NOERROR', {
    answers: [a('www.example.com', 300)],
    additionals: [a('glue.example.com', 300, '192.0.2.53')],
  });
  const plain = hit('www.example.com')!;
  assert.is(optOf(plain), undefined);
  assert.is(plain.additionals!.length, 1, 'records before the OPT are kept');
  const edns = hit('www.example.com', 'A', { edns: 4096 })!;
  assert.is(edns.additionals!.length, 2);
  const opt = optOf(edns)!;
  assert.is(opt.udpPayloadSize, 1232);
  assert.equal(opt.options, [], 'no upstream cookie');
});

test("one entry serves every spelling of a name, each reply carrying the client's own question", () => {
  const { store, cache } = setup();
  store('WWW.Example.COM', 'A', 'NOERROR', { answers: [a('WWW.Example.COM', 300)] });
  for (const spelling of ['www.example.com', 'wWw.eXaMpLe.cOm']) {
    const q = parsed(spelling, 'A', { id: 5, rd: false });
    const raw = cache.reply(q);
    assert.ok(raw, spelling);
    const r = decode(raw!);
    assert.is(r.questions![0]!.name, spelling);
    assert.is(r.flags! & packet.RECURSION_DESIRED, 0, 'RD as the client set it');
    assert.ok(r.flags! & (1 << 7), 'RA');
    assert.is(r.id, 5);
  }
  assert.is(cache.stats().entries, 1);
});

test('the DO bit and the type are part of the key', () => {
  const { store, hit } = setup();
  store('www.example.com', 'A', 'NOERROR', { answers: [a('www.example.com', 300)] }, { edns: 1232, dnssecOk: true });
  assert.ok(hit('www.example.com', 'A', { edns: 1232, dnssecOk: true }));
  assert.is(hit('www.example.com', 'A', { edns: 1232 }), null);
  assert.is(hit('www.example.com', 'AAAA', { edns: 1232, dnssecOk: true }), null);
});

test('a reply larger than the client may receive is truncated (TC, no records)', () => {
  const { store, hit } = setup();
  store('big.example', 'A', 'NOERROR', { answers: manyA('big.example', 40) });
  const small = hit('big.example', 'A', {}, 512)!;
  assert.ok(small.flags! & packet.TRUNCATED_RESPONSE);
  assert.is(small.answers!.length, 0);
  assert.is(small.questions![0]!.name, 'big.example');
  const full = hit('big.example', 'A', {}, 0xffff)!;
  assert.is(full.answers!.length, 40);
  assert.is(full.flags! & packet.TRUNCATED_RESPONSE, 0);
});

test('the least recently used entry goes first when the cache is full', () => {
  const { store, hit, cache } = setup({ maxEntries: 3 });
  for (const n of ['a', 'b', 'c']) store(`${n}.example`, 'A', 'NOERROR', { answers: [a(`${n}.example`, 300)] });
  assert.ok(hit('a.example'), 'a is now the most recently used');
  store('d.example', 'A', 'NOERROR', { answers: [a('d.example', 300)] });
  assert.is(cache.stats().entries, 3);
  assert.is(hit('b.example'), null, 'b was the least recently used');
  for (const n of ['a', 'c', 'd']) assert.ok(hit(`${n}.example`), n);
  // A newer answer for the same key replaces the old one.
  store('a.example', 'A', 'NOERROR', { answers: [a('a.example', 300, '192.0.2.99')] });
  assert.is(cache.stats().entries, 3);
  assert.is((hit('a.example')!.answers![0] as packet.StringAnswer).data, '192.0.2.99');
});

test('memory is bounded by bytes as well as by entries', () => {
  const { store, cache } = setup({ maxEntries: 1000, maxBytes: 8 * 1024 });
  for (let i = 0; i < 100; i++) store(`n${i}.example`, 'A', 'NOERROR', { answers: manyA(`n${i}.example`, 20) });
  const { entries } = cache.stats();
  assert.ok(entries > 5 && entries < 40, `${entries} entries of ~ 350 bytes fit in 8 KiB`);
  cache.clear();
  assert.is(cache.stats().entries, 0);
});

test('entries keep their bytes while others come and go: long names, many blocks, reused space', () => {
  // A small arena, so that evictions reuse blocks all the time; names and
  // messages both longer and shorter than a block.
  const { store, hit, cache } = setup({ maxEntries: 40, maxBytes: 6 * 1024 });
  const label = (i: number) => `l${i}-${'x'.repeat((i * 37) % 55)}`;
  const nameOf = (i: number) => `${label(i)}.${label(i + 1)}.${label(i + 2)}.example`;
  const addr = (i: number, r: number) => `198.51.${i % 250}.${r}`;
  const recordsOf = (i: number) => 1 + ((i * 7) % 9);
  const live: number[] = [];
  for (let i = 0; i < 600; i++) {
    const name = nameOf(i);
    store(name, 'A', 'NOERROR', { answers: Array.from({ length: recordsOf(i) }, (_, r) => a(name, 300, addr(i, r))) });
    live.push(i);
    // Every cached answer still reads back exactly as stored.
    for (const j of live.slice(-12)) {
      const r = hit(nameOf(j));
      if (!r) continue; // evicted
      assert.is(r.questions![0]!.name, nameOf(j));
      assert.equal(
        r.answers!.map((x) => (x as packet.StringAnswer).data),
        Array.from({ length: recordsOf(j) }, (_, k) => addr(j, k)),
        `entry ${j} read back after ${i} stores`,
      );
    }
  }
  const { entries } = cache.stats();
  assert.ok(entries > 3 && entries <= 40, `${entries} entries`);
  assert.ok(hit(nameOf(599)), 'the newest entry is there');
  cache.clear();
  assert.is(hit(nameOf(599)), null);
  store('again.example', 'A', 'NOERROR', { answers: [a('again.example', 300)] });
  assert.ok(hit('again.example'), 'the cache works after clear');
});

test('an answer larger than the whole cache is passed on but not kept', () => {
  const { store, hit, cache } = setup({ maxBytes: 1024 });
  store('small.example', 'A', 'NOERROR', { answers: [a('small.example', 300)] });
  const big = store('big.example', 'A', 'NOERROR', { answers: manyA('big.example', 100) });
  assert.ok(big, 'the clients waiting still get it');
  assert.is(hit('big.example'), null);
  assert.ok(hit('small.example'), 'and nothing was evicted for it');
  assert.is(cache.stats().entries, 1);
});

test('names that share a hash bucket are told apart', () => {
  // One slot, so every name lands in the same bucket.
  const { store, hit } = setup({ maxEntries: 1 });
  store('one.example', 'A', 'NOERROR', { answers: [a('one.example', 300, '192.0.2.1')] });
  store('two.example', 'A', 'NOERROR', { answers: [a('two.example', 300, '192.0.2.2')] });
  assert.is(hit('one.example'), null, 'evicted for two');
  assert.is((hit('two.example')!.answers![0] as packet.StringAnswer).data, '192.0.2.2');
  const { store: store4, hit: hit4 } = setup({ maxEntries: 2 });
  for (const n of ['p.example', 'q.example']) store4(n, 'A', 'NOERROR', { answers: [a(n, 300, n === 'p.example' ? '192.0.2.7' : '192.0.2.8')] });
  assert.is((hit4('p.example')!.answers![0] as packet.StringAnswer).data, '192.0.2.7');
  assert.is((hit4('q.example')!.answers![0] as packet.StringAnswer).data, '192.0.2.8');
});

test.run();
