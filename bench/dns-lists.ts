// Blocklist memory and lookup speed (issue 3, "Blocklists"): our compiled
// structure against the obvious alternative, a JS Set<string> of the same
// names with a walk over the parents of each queried name. Both are asked
// with wire-format names, as the resolver asks; the Set has to turn each one
// into a lowercase string first, as a resolver built on it would. Reports
// figures and ratios; never asserts them.
//
//   node bench/dns-lists.ts [--names N] [--lookups N] [--rounds N]
//
// Targets: under 24 bytes a name at 1,000,000 names, a lookup far under 1 µs,
// a compile under 2 s.
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { byteChunks, compileLists } from '../cloud/dns/lists/compile.ts';
import { createBlocklist } from '../cloud/dns/lists/matcher.ts';
import { smallTable } from '../cloud/dns/lists/table.ts';
import { parseIntOptions } from './lib/args.ts';
import { ofTarget, round, spread } from './lib/stats.ts';

const BYTES_TARGET = 24;
const LOOKUP_TARGET_NS = 1_000;
const COMPILE_TARGET_MS = 2_000;

const opts = parseIntOptions('Usage: node bench/dns-lists.ts [--names N] [--lookups N] [--rounds N]', [
  { name: 'names', default: 1_000_000, min: 1_000, max: 5_000_000, help: 'names on the list' },
  { name: 'lookups', default: 1_000_000, min: 1_000, max: 10_000_000, help: 'lookups per round and kind (hits, misses)' },
  { name: 'rounds', default: 5, min: 1, max: 50, help: 'timed rounds; the median is reported' },
]);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

// Names shaped like real list entries: two to five labels, mixed lengths.
const WORDS = ['ads', 'track', 'metrics', 'cdn', 'pixel', 'telemetry', 'stats', 'beacon', 'img', 'api', 'log', 'sync'];
const TLDS = ['com', 'net', 'org', 'io', 'example', 'info', 'xyz', 'de'];
function listedName(i: number): string {
  const id = (i * 2654435761) >>> 0;
  const parts = [`${WORDS[id % WORDS.length]}${(i % 1000).toString(36)}`, `s${id.toString(36)}`];
  if (id % 3 === 0) parts.unshift(`x${(id >>> 8).toString(36)}`);
  if (id % 7 === 0) parts.unshift('www');
  parts.push(TLDS[(id >>> 4) % TLDS.length]!);
  return parts.join('.');
}
/** Not on the list, and not under a listed name (the "s…" label differs). */
const unlistedName = (i: number) => listedName(i).replace(/\.s([0-9a-z]+)\./, '.u$1.');

/** Wire names (RFC 1035 §3.1) in one buffer, upper case here and there as clients send them. */
function wireAll(name: (i: number) => string, count: number): { buf: Buffer; offsets: Uint32Array } {
  let buf = Buffer.alloc(count * 40);
  const offsets = new Uint32Array(count);
  let p = 0;
  for (let i = 0; i < count; i++) {
    const n = i % 5 === 0 ? name(i).toUpperCase() : name(i);
    if (p + n.length + 2 > buf.length) buf = Buffer.concat([buf, Buffer.alloc(buf.length)]);
    offsets[i] = p;
    for (const label of n.split('.')) {
      buf[p++] = label.length;
      p += buf.write(label, p, 'latin1');
    }
    buf[p++] = 0;
  }
  return { buf: buf.subarray(0, p), offsets };
}

/** What a Set-based resolver does per query: the name as a string, then the name and each parent. */
function setLookup(set: Set<string>, buf: Buffer, offset: number): boolean {
  const labels: string[] = [];
  let p = offset;
  for (let len = buf[p]!; len !== 0; len = buf[p]!) {
    labels.push(buf.toString('latin1', p + 1, p + 1 + len));
    p += len + 1;
  }
  let name = labels.join('.').toLowerCase();
  for (;;) {
    if (set.has(name)) return true;
    const dot = name.indexOf('.');
    if (dot < 0) return false;
    name = name.slice(dot + 1);
  }
}

/** Median ns per lookup over the rounds; `expect` is how many lookups must say "blocked". */
function time(rounds: number, count: number, expect: number, lookup: (i: number) => boolean): number {
  const ns: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let blocked = 0;
    const t = performance.now();
    for (let i = 0; i < count; i++) if (lookup(i)) blocked++;
    ns.push(((performance.now() - t) * 1e6) / count);
    if (blocked !== expect) throw new Error(`expected ${expect} blocked, got ${blocked}: the benchmark is wrong`);
  }
  return spread(ns)!.median;
}

/** Memory after garbage collection; array buffers are freed a turn of the event loop after the GC that finds them. */
async function settled(): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage();
}

async function main() {
  const { names: n, lookups, rounds } = opts;
  console.log(`Blocklist: ${n} names, ${lookups} lookups of each kind, median of ${rounds} rounds (Node ${process.version})`);

  const text = Buffer.from(Array.from({ length: n }, (_, i) => `0.0.0.0 ${listedName(i)}`).join('\n'));
  const external0 = (await settled()).arrayBuffers;
  const compiled = await compileLists([{ id: 'bench', read: () => byteChunks(text) }]);
  const ours = createBlocklist(compiled, smallTable([]), smallTable([]));
  // What stays after the compile: the transient arrays must be gone.
  const externalOurs = (await settled()).arrayBuffers - external0;
  const withAllow = createBlocklist(compiled, smallTable(['allowed.example', 'cdn.example.com', 'api.example.net']), smallTable([]));
  const s = compiled.steps;
  console.log(
    `compile: ${Math.round(compiled.ms)} ms (parse and hash ${Math.round(s.parseMs)}, sort ${Math.round(s.sortMs)}, ` +
      `parents ${Math.round(s.parentsMs)}, build ${Math.round(s.buildMs)}), target ${COMPILE_TARGET_MS} ms: ${ofTarget(compiled.ms, COMPILE_TARGET_MS)}`,
  );
  if (ours.names !== n) throw new Error(`expected ${n} distinct names, got ${ours.names}`);

  const h0 = (await settled()).heapUsed;
  const set = new Set<string>();
  for (let i = 0; i < n; i++) set.add(listedName(i));
  const setBytes = (await settled()).heapUsed - h0;

  const hits = wireAll(listedName, Math.min(n, lookups));
  const misses = wireAll(unlistedName, Math.min(n, lookups));
  const count = hits.offsets.length;
  const hitAt = (i: number) => hits.offsets[i]!;
  const missAt = (i: number) => misses.offsets[i]!;

  const ourHit = time(rounds, count, count, (i) => ours.isBlocked(hits.buf, hitAt(i)));
  const ourMiss = time(rounds, count, 0, (i) => ours.isBlocked(misses.buf, missAt(i)));
  const allowHit = time(rounds, count, count, (i) => withAllow.isBlocked(hits.buf, hitAt(i)));
  const allowMiss = time(rounds, count, 0, (i) => withAllow.isBlocked(misses.buf, missAt(i)));
  const setHit = time(rounds, count, count, (i) => setLookup(set, hits.buf, hitAt(i)));
  const setMiss = time(rounds, count, 0, (i) => setLookup(set, misses.buf, missAt(i)));

  const ourPerName = ours.bytes / n;
  const setPerName = setBytes / n;
  console.log('');
  console.log('memory                     bytes/name   total');
  const mibOf = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
  console.log(
    `  compiled structure      ${ourPerName.toFixed(2).padStart(10)}   ${mibOf(ours.bytes)} ` +
      `(typed arrays; off-heap growth after the compile ${mibOf(externalOurs)})`,
  );
  console.log(`  Set<string>             ${setPerName.toFixed(2).padStart(10)}   ${mibOf(setBytes)} (heap growth)`);
  console.log(`  ratio Set / ours        ${(setPerName / ourPerName).toFixed(1).padStart(10)} ×`);
  console.log(`  target < ${BYTES_TARGET} bytes/name: ${ofTarget(ourPerName, BYTES_TARGET)}`);
  console.log('');
  console.log('ns per lookup (wire name in)   hit      miss');
  console.log(`  compiled structure        ${ourHit.toFixed(0).padStart(6)}    ${ourMiss.toFixed(0).padStart(6)}`);
  console.log(`    with a 3-name allowlist ${allowHit.toFixed(0).padStart(6)}    ${allowMiss.toFixed(0).padStart(6)}`);
  console.log(`  Set<string> + parent walk ${setHit.toFixed(0).padStart(6)}    ${setMiss.toFixed(0).padStart(6)}`);
  console.log(`  ratio Set / ours          ${(setHit / ourHit).toFixed(2).padStart(6)}    ${(setMiss / ourMiss).toFixed(2).padStart(6)}`);
  console.log(`  target < ${LOOKUP_TARGET_NS} ns: ${ofTarget(Math.max(ourHit, ourMiss), LOOKUP_TARGET_NS)}`);
  console.log(
    JSON.stringify({
      bench: 'dns-lists',
      names: n,
      lookups: count,
      rounds,
      compileMs: round(compiled.ms, 0),
      compileSteps: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, round(v, 0)])),
      bytes: ours.bytes,
      bytesPerName: round(ourPerName),
      setBytesPerName: round(setPerName),
      memoryRatioSetToOurs: round(setPerName / ourPerName),
      nsPerLookup: { hit: round(ourHit, 1), miss: round(ourMiss, 1), hitWithAllow: round(allowHit, 1), missWithAllow: round(allowMiss, 1) },
      setNsPerLookup: { hit: round(setHit, 1), miss: round(setMiss, 1) },
      speedRatioSetToOurs: { hit: round(setHit / ourHit), miss: round(setMiss / ourMiss) },
      targets: { bytesPerName: BYTES_TARGET, nsPerLookup: LOOKUP_TARGET_NS, compileMs: COMPILE_TARGET_MS },
    }),
  );
}

await main();
