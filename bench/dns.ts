// DNS resolver throughput and memory (issue 3, "Benchmark"): Aerie's resolver
// against dnsmasq holding the same 1,000,000-name blocklist (as `address=`
// lines, the way routers feed it lists), both forwarding to the same local
// unbound, both loaded by dnsperf with the same query mix. The issue's
// targets, against dnsmasq with its default cache: throughput ≥ 3×, RSS no
// larger, list loading under 2 s. Reports figures; never asserts them.
//
//   node bench/dns.ts [--json] [--side both|dnsmasq|aerie] [--loopback] [--help for the rest]
//
// Everything runs in the lab's vm namespace, one server after the other:
// unbound (the upstream, a static zone of "allowed" names with TTL 3600),
// then dnsmasq once per cache size, then `aerie-cloud serve`; dnsperf runs in
// the same namespace. --loopback measures dnsmasq alone on this machine's
// loopback, without a lab.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ADDR, withLab, type Lab } from '../test/lab/lib/lab.ts';
import { CLOUD } from '../test/lab/lib/aerie.ts';
import { checkBundles } from './lib/bundles.ts';
import { AERIE_DNS, describeList, prepareAerie } from './lib/dns-aerie.ts';
import { measureSide, startWaitProbe, type Endpoint, type MeasureContext, type SideResult } from './lib/dns-measure.ts';
import { parseDnsBenchOptions, type DnsBenchOptions } from './lib/dns-options.ts';
import { labPlace, localPlace, type Place, type Proc } from './lib/dns-place.ts';
import { judge, ratiosJson, renderTable, renderVerdicts, sideJson } from './lib/dns-report.ts';
import { checkPrograms, dnsmasqArgv, unboundArgv, writeUnboundConfig } from './lib/dns-servers.ts';
import { generateWorkload, type Workload } from './lib/dns-workload.ts';
import { freeUdpPort } from './lib/dns-ports.ts';

const TTL = 3_600;
/** dnsperf -t: far above any healthy answer time, so "lost" means lost. */
const QUERY_TIMEOUT_S = 5;

const opts = parseDnsBenchOptions(process.argv.slice(2));
const log = (line: string) => (opts.json ? process.stderr : process.stdout).write(`${line}\n`);

/** unbound up and answering its zone; `hold` gets the process at once, for the caller's finally. */
async function startUpstream(place: Place, dir: string, at: Endpoint, w: Workload, hold: (p: Proc) => void): Promise<void> {
  const conf = writeUnboundConfig(dir, { ...at, ttl: TTL, zone: w.allowed });
  const proc = place.spawn(unboundArgv(conf), 'unbound.log');
  hold(proc);
  const { probe, answered } = await startWaitProbe(place, at, w.samples.allowed.name, w.samples.allowed.a, 'probe-unbound.log', 20_000);
  try {
    const answer = await Promise.race([answered, proc.exited.then(() => null)]);
    if (!answer) throw new Error(`unbound exited: ${proc.output().trim().slice(-300)}`);
    if (answer.answeredAt === null) throw new Error(`unbound did not answer within 20 s (last: ${answer.last}): ${proc.output().trim().slice(-300)}`);
  } finally {
    if (!probe.exit) await place.stop(probe);
  }
}

async function measureDnsmasq(ctx: MeasureContext, upstream: Endpoint, at: Endpoint, cacheSize: number): Promise<SideResult> {
  let proc: Proc | null = null;
  try {
    return await measureSide(ctx, {
      key: `dnsmasq-cache-${cacheSize}`,
      label: `dnsmasq cache ${cacheSize}`,
      server: at,
      start: async () => {
        proc = ctx.place.spawn(dnsmasqArgv({ ...at, upstream, confFile: ctx.workload.dnsmasqConf, cacheSize }), `dnsmasq-cache-${cacheSize}.log`);
        return proc;
      },
    });
  } finally {
    if (proc) await ctx.place.stop(proc);
  }
}

async function run(o: DnsBenchOptions, dir: string, w: Workload): Promise<{ place: string; sides: SideResult[] }> {
  const sides: SideResult[] = [];
  const perf = { clients: o.clients, outstanding: o.outstanding, seconds: o.seconds, timeoutS: QUERY_TIMEOUT_S };
  const context = (place: Place): MeasureContext => ({
    place,
    workload: w,
    perf,
    warmupSeconds: o.warmup,
    latencyRun: { qps: o.latencyQps, seconds: o.latencySeconds },
    ttl: TTL,
    log,
  });

  if (o.loopback) {
    const place = localPlace(dir);
    // Without a lab nothing else stops these on Ctrl-C (the lab has its own handler).
    const onSignal = (sig: NodeJS.Signals) => {
      place.killAll();
      process.exit(128 + (sig === 'SIGINT' ? 2 : 15));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      const upstream = { address: '127.0.0.1', port: await freeUdpPort('127.0.0.1') };
      await startUpstream(place, dir, upstream, w, () => {});
      for (const c of o.dnsmasqCache) {
        sides.push(await measureDnsmasq(context(place), upstream, { address: '127.0.0.1', port: await freeUdpPort('127.0.0.1') }, c));
      }
    } finally {
      await place.stopAll();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    return { place: place.label, sides };
  }

  return withLab(
    async (lab) => {
      const place = labPlace(lab, 'vm');
      const ctx = context(place);
      // In the VM's namespace, as the issue recommends running it (5335: where Pi-hole's guide puts it).
      const upstream = { address: '127.0.0.1', port: 5335 };
      let unbound: Proc | null = null;
      try {
        await startUpstream(place, dir, upstream, w, (p) => (unbound = p));
        if (o.side !== 'aerie') {
          // The VM's own address: like the overlay address, local delivery over lo.
          for (const c of o.dnsmasqCache) sides.push(await measureDnsmasq(ctx, upstream, { address: ADDR.vm.v4, port: 53 }, c));
        }
        if (o.side !== 'dnsmasq') sides.push(await measureAerie(ctx, lab, upstream));
      } finally {
        if (unbound) await place.stop(unbound);
      }
      return { place: place.label, sides };
    },
    { servers: false, lockWaitMs: o.lockWait * 1000 },
  );
}

/** The facts prepareAerie and describeList gathered, as one line. */
function describeNotes(n: Record<string, unknown>): string {
  const parts: string[] = [];
  const list = n['list'] as Record<string, unknown> | undefined;
  if (list) parts.push(`dns lists: ${String(list['accepted'])} accepted, ${String(list['rejected'])} rejected${list['error'] ? `, error ${String(list['error'])}` : ''}`);
  if (n['listsError']) parts.push(`dns lists: ${String(n['listsError'])}`);
  parts.push(`add-list took ${String(n['addListMs'])} ms, exit ${String(n['addListExit'])}${n['addListSaid'] ? ` (${String(n['addListSaid'])})` : ''}`);
  if (n['firstStartFetchedListMs'] !== undefined) parts.push(`an untimed first start fetched the list in ${String(n['firstStartFetchedListMs'])} ms`);
  return parts.join('; ');
}

async function measureAerie(ctx: MeasureContext, lab: Lab, upstream: Endpoint): Promise<SideResult> {
  let prepared: Awaited<ReturnType<typeof prepareAerie>> | null = null;
  try {
    prepared = await prepareAerie(lab, { upstream, listFile: ctx.workload.domainList });
    const aerie = prepared.aerie;
    const result = await measureSide(ctx, {
      key: 'aerie',
      label: 'Aerie',
      server: AERIE_DNS,
      start: () => aerie.startCloud(),
    });
    result.notes = { ...result.notes, ...prepared.notes, ...(aerie.cloud ? await describeList(aerie) : {}) };
    log(`  Aerie: ${describeNotes(result.notes)}`);
    return result;
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    log(`  Aerie: FAILED: ${error}`);
    return {
      key: 'aerie', label: 'Aerie', error, loadMs: null, problems: [], warmup: null, perf: null, latency: null,
      cpuPercent: null, machineCpuPercent: null, afterLoad: null, afterRun: null, peakKb: null, notes: prepared?.notes ?? {},
    };
  } finally {
    if (prepared) await prepared.aerie.stopCloud();
  }
}

async function main() {
  checkPrograms();
  if (!opts.loopback && opts.side !== 'dnsmasq') checkBundles([{ file: CLOUD, sources: ['cloud', 'shared'] }]);
  const dir = mkdtempSync(join(tmpdir(), 'aerie-bench-dns-'));
  // Also when a signal ends the run (the lab's handler exits the process).
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.on('exit', removeDir);
  // The lab unrefs its children, so waiting on one alone would let Node exit mid-run.
  const keepAlive = setInterval(() => {}, 60_000);
  try {
    const t0 = performance.now();
    const w = generateWorkload({
      dir,
      seed: opts.seed,
      blocked: opts.names,
      allowed: opts.allowed,
      queries: opts.queries,
      blockedShare: opts.blockedPercent / 100,
      ttl: TTL,
    });
    const c = w.counts;
    log(
      `DNS: ${c.listNames.toLocaleString('en-US')} blocked names under ${c.registrableBlocked} registrable domains ` +
        `(${c.listedParents} listed whole), ${opts.allowed.toLocaleString('en-US')} allowed names (A + AAAA, TTL ${TTL}) ` +
        `under ${c.registrableAllowed}; generated in ${((performance.now() - t0) / 1000).toFixed(1)} s (seed ${opts.seed})`,
    );
    log(
      `queries: ${c.queries.toLocaleString('en-US')} lines, ${((c.blockedQueries / c.queries) * 100).toFixed(1)} % blocked, ` +
        `${c.distinctQueried.toLocaleString('en-US')} distinct name+type, Zipf-like popularity, A/AAAA half each`,
    );
    log(
      `each server in turn: ${opts.warmup} s warm-up, then dnsperf -c ${opts.clients} -q ${opts.outstanding} -l ${opts.seconds} -t ${QUERY_TIMEOUT_S} ` +
        `(full speed)` +
        (opts.latencyQps > 0 ? `, then -Q ${opts.latencyQps} -l ${opts.latencySeconds} -v (latency percentiles at a fixed rate)` : ''),
    );

    const { place, sides } = await run(opts, dir, w);
    const verdicts = judge(sides);
    const failed = sides.some((s) => s.error || s.problems.length > 0);
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify(
          {
            bench: 'dns',
            place,
            machine: { cpus: cpus().length, model: cpus()[0]?.model ?? null },
            settings: {
              names: opts.names, allowed: opts.allowed, queries: opts.queries, blockedPercent: opts.blockedPercent,
              seed: opts.seed, ttl: TTL, dnsmasqCache: opts.dnsmasqCache,
              dnsperf: {
                clients: opts.clients, outstanding: opts.outstanding, seconds: opts.seconds, timeoutS: QUERY_TIMEOUT_S,
                warmupSeconds: opts.warmup, latencyQps: opts.latencyQps, latencySeconds: opts.latencySeconds,
              },
            },
            workload: w.counts,
            sides: sides.map(sideJson),
            ratios: ratiosJson(sides),
            targets: verdicts,
          },
          null,
          2,
        )}\n`,
      );
    } else {
      log('');
      log(`measured in ${place}`);
      log(renderTable(sides, opts.latencyQps));
      log('');
      log(renderVerdicts(verdicts));
    }
    if (failed) process.exitCode = 1;
  } finally {
    clearInterval(keepAlive);
    removeDir();
    process.off('exit', removeDir);
  }
}

await main();
