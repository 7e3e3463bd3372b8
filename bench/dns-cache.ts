// Answer-cache memory and hit speed (issue 3, the resolver's RSS budget): our
// cache (one arena of blocks, per-slot typed arrays) against the obvious
// alternative, a Map from key string to one object per entry holding the
// message and its TTL positions, kept in LRU order by re-insertion. Both
// store the same upstream answers and build the same replies. Each side runs
// in a fresh Node process started as the daemon is (cloud/node-flags.ts), so
// the RSS growth of one does not count against the other. Reports figures
// and ratios; never asserts them.
//
//   node bench/dns-cache.ts [--entries N] [--rounds N]
import { Buffer } from 'node:buffer';
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import packet from 'dns-packet';
import { cacheKey, createCache } from '../cloud/dns/cache.ts';
import { CLOUD_NODE_FLAGS } from '../cloud/node-flags.ts';
import { createQuery, HEADER, lower, parseQuery, put16, put32, type Query } from '../cloud/dns/wire.ts';
import { scanAnswer } from '../cloud/dns/wire-scan.ts';
import { parseIntOptions } from './lib/args.ts';
import { round, spread } from './lib/stats.ts';

const SIDES = ['arena', 'map'] as const;
type Side = (typeof SIDES)[number];
const LABELS: Record<Side, string> = { arena: 'Aerie cache (arena)', map: 'Map of entry objects' };

const child = process.argv.indexOf('--child');
const side = child > 0 ? (process.argv[child + 1] as Side) : null;
if (child > 0) process.argv.splice(child, 2);

const opts = parseIntOptions('Usage: node bench/dns-cache.ts [--entries N] [--rounds N]', [
  { name: 'entries', default: 50_000, min: 1_000, max: 500_000, help: 'distinct names cached (A and AAAA alternate)' },
  { name: 'rounds', default: 5, min: 1, max: 50, help: 'timed rounds of one hit per entry; the median is reported' },
]);

interface Result {
  side: Side;
  entries: number;
  rssBytes: number;
  nsPerHit: number;
}

/** Queries and their upstream answers, shaped like the DNS benchmark's names. */
function workload(n: number): { queries: Buffer[]; answers: Buffer[] } {
  const queries: Buffer[] = [];
  const answers: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const name = `host${i}.site-${i % 2500}.example.com`;
    const a = i % 2 === 0;
    const question = { type: a ? 'A' : 'AAAA', name } as const;
    queries.push(packet.encode({ type: 'query', id: i & 0xffff, flags: packet.RECURSION_DESIRED, questions: [question] }));
    answers.push(
      packet.encode({
        type: 'response', id: 0, flags: packet.RECURSION_DESIRED | packet.RECURSION_AVAILABLE, questions: [question],
        answers: [a ? { type: 'A', name, ttl: 3600, data: '192.0.2.1' } : { type: 'AAAA', name, ttl: 3600, data: '2001:db8::1' }],
      }),
    );
  }
  return { queries, answers };
}

/** The baseline: what a resolver written the plain JS way would keep. */
function mapCache(max: number) {
  interface Entry { msg: Uint8Array; ttls: Uint32Array; storedAt: number; expiresAt: number }
  const map = new Map<string, Entry>();
  const keyOf = (q: Query) => {
    let s = '';
    for (let i = HEADER; i < q.nameEnd; i++) s += String.fromCharCode(lower(q.buf[i]!));
    return `${s}/${q.qtype}/${q.ednsDo ? 1 : 0}`;
  };
  return {
    put(q: Query, answer: Uint8Array) {
      const key = cacheKey(q);
      const r = scanAnswer(answer, key.name, key.qtype);
      if (!r) throw new Error('the workload made an answer the cache refuses');
      const msg = new Uint8Array(r.keep);
      msg.set(answer.subarray(0, r.keep));
      const now = Date.now();
      map.set(keyOf(q), { msg, ttls: Uint32Array.from(r.ttls), storedAt: now, expiresAt: now + 3_600_000 });
      if (map.size > max) map.delete(map.keys().next().value!);
    },
    reply(q: Query): Uint8Array | null {
      const key = keyOf(q);
      const e = map.get(key);
      if (!e) return null;
      map.delete(key);
      map.set(key, e);
      const out = Buffer.allocUnsafe(e.msg.length);
      out.set(e.msg, 0);
      put16(out, 0, q.id);
      for (let i = HEADER; i < q.end; i++) out[i] = q.buf[i]!;
      const elapsed = Math.floor((Date.now() - e.storedAt) / 1000);
      for (let i = 0; i < e.ttls.length; i += 2) put32(out, e.ttls[i]!, e.ttls[i + 1]! - elapsed);
      return out;
    },
  };
}

const gc = (globalThis as { gc?: () => void }).gc;
async function settled(): Promise<NodeJS.MemoryUsage> {
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage();
}

async function measure(which: Side): Promise<Result> {
  const n = opts.entries;
  const { queries, answers } = workload(n);
  const q = createQuery();
  const before = await settled();
  let reply: (q: Query) => Uint8Array | null;
  if (which === 'arena') {
    const cache = createCache({ maxEntries: n, maxBytes: Math.max(16 << 20, n * 256) });
    for (let i = 0; i < n; i++) {
      parseQuery(queries[i]!, q);
      cache.put(cacheKey(q), Buffer.from(answers[i]!));
    }
    reply = (x) => cache.reply(x);
  } else {
    const cache = mapCache(n);
    for (let i = 0; i < n; i++) {
      parseQuery(queries[i]!, q);
      cache.put(q, answers[i]!);
    }
    reply = (x) => cache.reply(x);
  }
  const after = await settled();
  const ns: number[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    let hits = 0;
    const t = performance.now();
    for (let i = 0; i < n; i++) {
      parseQuery(queries[i]!, q);
      q.limit = 1232;
      if (reply(q)) hits++;
    }
    ns.push(((performance.now() - t) * 1e6) / n);
    if (hits !== n) throw new Error(`${which}: expected ${n} hits, got ${hits}: the benchmark is wrong`);
  }
  return { side: which, entries: n, rssBytes: after.rss - before.rss, nsPerHit: spread(ns)!.median };
}

function runChild(which: Side): Result {
  const script = fileURLToPath(import.meta.url);
  const args = [...CLOUD_NODE_FLAGS, script, '--child', which, '--entries', String(opts.entries), '--rounds', String(opts.rounds)];
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${which} run failed (exit ${r.status}): ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ')}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Result;
}

if (side) {
  process.stdout.write(`${JSON.stringify(await measure(side))}\n`);
} else {
  console.log(`Answer cache: ${opts.entries} entries, one hit per entry per round, median of ${opts.rounds} rounds (Node ${process.version})`);
  const results = SIDES.map(runChild);
  console.log('');
  console.log('                          RSS bytes/entry   ns/hit (parse + reply)');
  for (const r of results) {
    console.log(`  ${LABELS[r.side].padEnd(22)} ${(r.rssBytes / r.entries).toFixed(0).padStart(10)}   ${r.nsPerHit.toFixed(0).padStart(12)}`);
  }
  const [ours, map] = results as [Result, Result];
  const memRatio = map.rssBytes / ours.rssBytes;
  const speedRatio = map.nsPerHit / ours.nsPerHit;
  console.log(`  ratio Map / arena      ${memRatio.toFixed(1).padStart(10)} ×   ${speedRatio.toFixed(2).padStart(10)} ×`);
  console.log(
    JSON.stringify({
      bench: 'dns-cache',
      entries: opts.entries,
      rounds: opts.rounds,
      bytesPerEntry: { arena: round(ours.rssBytes / ours.entries, 0), map: round(map.rssBytes / map.entries, 0) },
      nsPerHit: { arena: round(ours.nsPerHit, 0), map: round(map.nsPerHit, 0) },
      memoryRatioMapToArena: round(memRatio),
      speedRatioMapToArena: round(speedRatio),
    }),
  );
}
