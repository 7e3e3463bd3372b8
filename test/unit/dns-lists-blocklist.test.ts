import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as dnsPacket from 'dns-packet';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Blocklist } from '../../cloud/dns/lists/blocklist.ts';
import { byteChunks, compileLists } from '../../cloud/dns/lists/compile.ts';
import { MAX_LABELS, textSuffixHashes, wireSuffixHashes } from '../../cloud/dns/lists/hash.ts';
import { createListManager } from '../../cloud/dns/lists/manager.ts';
import { createBlocklist } from '../../cloud/dns/lists/matcher.ts';
import { normalizeDomain } from '../../cloud/dns/lists/names.ts';
import { smallTable } from '../../cloud/dns/lists/table.ts';
import { throwsValidation } from './throws-validation.ts';

/** A compiled Blocklist from list texts (id → text), allowlist and custom blocks. */
async function build(lists: Record<string, string>, allow: string[] = [], block: string[] = []): Promise<Blocklist> {
  const compiled = await compileLists(Object.entries(lists).map(([id, text]) => ({ id, read: () => byteChunks(Buffer.from(text)) })));
  return createBlocklist(compiled, smallTable(allow.map((n) => normalizeDomain(n))), smallTable(block.map((n) => normalizeDomain(n))));
}

/** A query message as a resolver receives it: the question name starts at offset 12. */
function query(name: string): Uint8Array {
  return dnsPacket.encode({ type: 'query', id: 1, questions: [{ type: 'A', class: 'IN', name }] });
}

const blocked = (bl: Blocklist, name: string) => bl.isBlocked(query(name), 12);

test('a listed name blocks itself and every name under it, nothing beside it', async () => {
  const bl = await build({ one: 'ads.example\n' });
  for (const name of ['ads.example', 'x.ads.example', 'a.b.c.ads.example', 'ADS.Example', 'ads.example.']) assert.ok(blocked(bl, name), name);
  for (const name of ['example', 'notads.example', 'ads.example.org', 'ads-example', 'ads.exampl', 'sads.example']) {
    assert.not.ok(blocked(bl, name), name);
  }
});

test('children of a listed parent and duplicates across lists are stored once', async () => {
  const bl = await build({
    one: 'ads.example\nsub.ads.example\ndeep.sub.ads.example\ntrack.example\n',
    two: '0.0.0.0 ads.example\n0.0.0.0 x.track.example\n0.0.0.0 other.example\n',
  });
  assert.is(bl.names, 3, 'ads.example, track.example, other.example');
  assert.ok(blocked(bl, 'deep.sub.ads.example'));
  assert.ok(blocked(bl, 'x.track.example'));
  assert.equal(bl.explain('deep.sub.ads.example').matched, 'ads.example');
  assert.equal(bl.explain('ads.example').list, 'one', 'the first list in order names a shared name');
  assert.equal(bl.explain('x.track.example').list, 'one');
  assert.equal(bl.explain('other.example').list, 'two');
});

test('the allowlist wins over lists and over custom blocks, for the name and everything under it', async () => {
  const bl = await build({ one: 'ads.example\ncdn.example\n' }, ['good.ads.example', 'cdn.example'], ['tracker.example', 'x.cdn.example']);
  assert.ok(blocked(bl, 'ads.example'));
  assert.ok(blocked(bl, 'bad.ads.example'));
  assert.not.ok(blocked(bl, 'good.ads.example'));
  assert.not.ok(blocked(bl, 'very.good.ads.example'));
  assert.not.ok(blocked(bl, 'cdn.example'));
  assert.not.ok(blocked(bl, 'x.cdn.example'), 'an allowed parent beats a custom block of a child');
  assert.ok(blocked(bl, 'tracker.example'));
  assert.ok(blocked(bl, 'a.tracker.example'));
  assert.is(bl.names, 4, 'two list names and two custom names (x.cdn.example is its own entry there)');
});

test('explain says whether, why and by which list', async () => {
  const bl = await build({ stevenblack: '0.0.0.0 ads.example\n', hagezi: 'track.example\n' }, ['fine.ads.example'], ['mine.example']);
  assert.equal(bl.explain('x.ads.example'), { name: 'x.ads.example', blocked: true, reason: 'blocklist', matched: 'ads.example', list: 'stevenblack' });
  assert.equal(bl.explain('Track.Example.'), { name: 'track.example', blocked: true, reason: 'blocklist', matched: 'track.example', list: 'hagezi' });
  assert.equal(bl.explain('a.mine.example'), { name: 'a.mine.example', blocked: true, reason: 'custom', matched: 'mine.example', list: 'custom' });
  assert.equal(bl.explain('deep.fine.ads.example'), {
    name: 'deep.fine.ads.example',
    blocked: false,
    reason: 'allowlist',
    matched: 'fine.ads.example',
    list: null,
  });
  assert.equal(bl.explain('example.org'), { name: 'example.org', blocked: false, reason: 'none', matched: null, list: null });
  throwsValidation(() => bl.explain('not a name'), 'name');
});

test('IDN names are blocked in punycode, as they appear in queries', async () => {
  const bl = await build({ one: 'bücher.example\n' }, [], ['Straße.example']);
  assert.ok(blocked(bl, 'xn--bcher-kva.example'));
  assert.ok(blocked(bl, 'www.XN--BCHER-KVA.example'));
  assert.equal(bl.explain('www.bücher.example').matched, 'xn--bcher-kva.example');
  assert.ok(bl.explain('straße.example').blocked);
});

test('wire names and text names hash alike, in any case, at any offset', () => {
  const names = ['a.b', 'ads.example.com', 'X-Y_z.Example.ORG', `${'q'.repeat(63)}.example`, 'xn--bcher-kva.example', '0-1.2-3.example'];
  for (let i = 0; i < 200; i++) {
    const labels = 1 + (i % 6);
    names.push(Array.from({ length: labels }, (_, j) => `l${(i * 7919 + j * 104729).toString(36)}`).join('.'));
  }
  const fromText = new Uint32Array(2 * MAX_LABELS);
  const fromWire = new Uint32Array(2 * MAX_LABELS);
  for (const name of names) {
    const text = Buffer.from(name.toLowerCase());
    const k = textSuffixHashes(text, 0, text.length, fromText);
    const msg = query(name);
    assert.is(wireSuffixHashes(msg, 12, fromWire), k, name);
    assert.equal(Array.from(fromWire.subarray(0, 2 * k)), Array.from(fromText.subarray(0, 2 * k)), name);
  }
});

test('isBlocked agrees with explain; malformed wire names are never blocked and never throw', async () => {
  const bl = await build({ one: 'ads.example\nt.example\n' }, ['ok.ads.example'], ['custom.example']);
  for (const name of ['ads.example', 'x.ads.example', 'ok.ads.example', 'x.ok.ads.example', 'custom.example', 'b.t.example', 'none.example', 'example']) {
    assert.is(blocked(bl, name), bl.explain(name).blocked, name);
  }
  const good = query('ads.example');
  assert.not.ok(bl.isBlocked(good.subarray(0, 20), 12), 'cut short');
  assert.not.ok(bl.isBlocked(good, good.length), 'offset at the end');
  assert.not.ok(bl.isBlocked(good, 1_000), 'offset past the end');
  assert.not.ok(bl.isBlocked(Uint8Array.of(0xc0, 0x0c), 0), 'a compression pointer');
  assert.not.ok(bl.isBlocked(Uint8Array.of(0), 0), 'the root');
  const long = new Uint8Array(300);
  for (let p = 0; p + 11 < 300; p += 11) {
    long[p] = 10;
    long.fill(0x61, p + 1, p + 11);
  }
  assert.not.ok(bl.isBlocked(long, 0), 'over 255 octets');
});

/** Wire form of many names in one buffer; offsets[i] is where name i starts. */
function wireAll(names: (i: number) => string, count: number): { buf: Uint8Array; offsets: Uint32Array } {
  let buf = Buffer.alloc(count * 32);
  const offsets = new Uint32Array(count);
  let p = 0;
  for (let i = 0; i < count; i++) {
    const name = names(i);
    if (p + name.length + 2 > buf.length) buf = Buffer.concat([buf, Buffer.alloc(buf.length)]);
    offsets[i] = p;
    for (const label of name.split('.')) {
      buf[p++] = label.length;
      p += buf.write(label, p, 'latin1');
    }
    buf[p++] = 0;
  }
  return { buf: buf.subarray(0, p), offsets };
}

const MILLION = 1_000_000;
const listed = (i: number) => `ad${i.toString(36)}.t${i % 4096}.example`;
const unlisted = (i: number) => `ok${i.toString(36)}.t${i % 4096}.example`;
const listedB = (i: number) => `b${i.toString(36)}.u${i % 4096}.test`;
const hostsText = (name: (i: number) => string) => {
  const lines: string[] = [];
  for (let i = 0; i < MILLION; i++) lines.push(`0.0.0.0 ${name(i)}`);
  return `${lines.join('\n')}\n`;
};

test('1,000,000 names: compact, all found, no false hits, and replaced atomically while queries go on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aerie-lists-'));
  try {
    const fileA = join(dir, 'a.hosts');
    const fileB = join(dir, 'b.hosts');
    writeFileSync(fileA, hostsText(listed));
    writeFileSync(fileB, hostsText(listedB));
    const mgr = createListManager({
      dir: join(dir, 'state'),
      sources: [{ id: 'big', url: fileA, enabled: true }],
      allow: [],
      block: [],
      fetch: () => Promise.reject(new Error('no network in this test')),
    });
    await mgr.update();
    const t0 = performance.now();
    await mgr.load();
    console.log(`  load of 1,000,000 names from disk: ${Math.round(performance.now() - t0)} ms`);
    const a = mgr.current();
    assert.is(a.names, MILLION);
    const perName = a.bytes / a.names;
    console.log(`  ${a.bytes} bytes, ${perName.toFixed(2)} bytes per name`);
    assert.ok(perName < 24, `${perName} bytes per name`);

    const hits = wireAll(listed, MILLION);
    let found = 0;
    for (let i = 0; i < MILLION; i++) if (a.isBlocked(hits.buf, hits.offsets[i]!)) found++;
    assert.is(found, MILLION, 'every listed name is blocked');
    const misses = wireAll(unlisted, MILLION);
    let wrong = 0;
    for (let i = 0; i < MILLION; i++) if (a.isBlocked(misses.buf, misses.offsets[i]!)) wrong++;
    assert.is(wrong, 0, 'no unlisted name is blocked');

    // Replace the list. Until the new one is compiled, current() is the old
    // Blocklist, and the event loop keeps running (queries are answered).
    const probeA = hits.offsets[12_345]!;
    const probeB = wireAll(listedB, 1);
    let ticks = 0;
    let longestGap = 0;
    let last = performance.now();
    let sawOld = true;
    const timer = setInterval(() => {
      const now = performance.now();
      longestGap = Math.max(longestGap, now - last);
      last = now;
      ticks++;
      if (mgr.current() === a && !mgr.current().isBlocked(hits.buf, probeA)) sawOld = false;
    }, 1);
    const t1 = performance.now();
    await mgr.setSources([{ id: 'big', url: fileB, enabled: true }]);
    await mgr.update();
    clearInterval(timer);
    console.log(`  replaced in ${Math.round(performance.now() - t1)} ms; ${ticks} timer ticks meanwhile, longest gap ${Math.round(longestGap)} ms`);
    assert.ok(sawOld);
    assert.ok(ticks > 5, 'the event loop ran during the compile');
    assert.ok(longestGap < 300, `the event loop was held for ${Math.round(longestGap)} ms`);
    const b = mgr.current();
    assert.is.not(b, a);
    assert.is(b.names, MILLION);
    assert.ok(b.isBlocked(probeB.buf, 0));
    assert.not.ok(b.isBlocked(hits.buf, probeA));
    assert.ok(a.isBlocked(hits.buf, probeA), 'a Blocklist never changes: a query holding the old one finishes with it');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('allow and block changes swap in a new Blocklist without recompiling the lists', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'aerie-lists-'));
  try {
    writeFileSync(join(dir, 'l.txt'), 'ads.example\n');
    const logs: string[] = [];
    const mgr = createListManager({
      dir: join(dir, 'state'),
      sources: [{ id: 'l', url: join(dir, 'l.txt'), enabled: true }],
      allow: [],
      block: [],
      log: (l) => logs.push(l),
    });
    await mgr.update();
    const compiles = logs.filter((l) => l.includes('compiled')).length;
    const before = mgr.current();
    mgr.setAllow(['x.ads.example']);
    mgr.setBlock(['Mine.Example']);
    const after = mgr.current();
    assert.is.not(after, before);
    assert.ok(blocked(before, 'x.ads.example'), 'the old Blocklist is unchanged');
    assert.not.ok(blocked(after, 'x.ads.example'));
    assert.ok(blocked(after, 'y.ads.example'));
    assert.ok(blocked(after, 'mine.example'));
    assert.is(logs.filter((l) => l.includes('compiled')).length, compiles, 'no recompile');
    throwsValidation(() => mgr.setBlock(['fine.example', 'not a name']), 'block[1]');
    assert.is(mgr.current(), after, 'a bad name changes nothing');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
