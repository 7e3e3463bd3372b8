// One side of the DNS benchmark, measured the same way for every server:
// start → first blocked answer (the list is loaded), a few answers checked,
// a warm-up, the measured dnsperf run, then memory and CPU from /proc.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { NODE24, REPO_ROOT } from '../../test/lab/lib/lab.ts';
import { dnsperfArgv, parseSummary, percentiles, readVerboseOutput, type PerfResult, type PerfSettings } from './dns-perf.ts';
import { waitForOutput, type Place, type Proc } from './dns-place.ts';
import type { AskResult } from './dns-probe.ts';
import { canonicalV6 } from './dns-wire.ts';
import type { Workload } from './dns-workload.ts';
import { cpuTicks, memoryOf, type Memory } from './proc.ts';

const PROBE = join(REPO_ROOT, 'bench/lib/dns-probe.ts');
/** A server that has not answered from its list after this long is reported as failed. */
const LOAD_LIMIT_MS = 60_000;

export interface Endpoint {
  address: string;
  port: number;
}

export interface SideResult {
  key: string;
  label: string;
  error: string | null;
  /** Start → first answer from the blocklist. */
  loadMs: number | null;
  /** Answers that were not what the workload says they must be. */
  problems: string[];
  warmup: PerfResult | null;
  /** As fast as the server answers. */
  perf: PerfResult | null;
  /** At a fixed rate, the same for every server, with every answer's latency (percentiles). */
  latency: PerfResult | null;
  /** CPU time of the server during the full-speed run, as % of one core. */
  cpuPercent: number | null;
  /** CPU time of every program on the machine during that run, as % of one core (up to 100 × cores): shows when something else competed. */
  machineCpuPercent: number | null;
  afterLoad: Memory | null;
  /** Right after the run at full speed. */
  afterRun: Memory | null;
  /** VmHWM at the end: the peak over start, load and both runs. */
  peakKb: number | null;
  /** Side-specific facts (e.g. how Aerie took the list). */
  notes: Record<string, unknown>;
}

export interface SideSpec {
  key: string;
  label: string;
  server: Endpoint;
  /** Starts the server; resolves when the start command has done its part. The caller stops it. */
  start(): Promise<Proc>;
}

export interface MeasureContext {
  place: Place;
  workload: Workload;
  perf: PerfSettings;
  warmupSeconds: number;
  /** The latency run: dnsperf -Q and -l; 0 q/s skips it. */
  latencyRun: { qps: number; seconds: number };
  ttl: number;
  log(line: string): void;
}

const now = () => performance.timeOrigin + performance.now();

/** Busy clock ticks of all CPUs together since boot (/proc/stat: everything but idle and iowait). */
function machineBusyTicks(): number | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = f;
    return user + nice + system + irq + softirq + steal;
  } catch {
    return null;
  }
}

async function within<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<null>((r) => (timer = setTimeout(() => r(null), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts a probe that asks for `name` (A) every few ms until an answer holds
 * `expect`; `answered` resolves with that moment (unix ms) or null on timeout.
 */
export async function startWaitProbe(place: Place, server: Endpoint, name: string, expect: string, logName: string, timeoutMs = LOAD_LIMIT_MS) {
  const req = { mode: 'wait', server: server.address, port: server.port, name, expect, timeoutMs };
  const probe = place.spawn([NODE24, PROBE, JSON.stringify(req)], logName);
  await waitForOutput(probe, 'ready', 15_000);
  const answered = probe.exited.then(() => {
    const line = probe.output().trim().split('\n').pop() ?? '';
    try {
      return JSON.parse(line) as { answeredAt: number | null; last: string };
    } catch {
      return { answeredAt: null, last: line };
    }
  });
  return { probe, answered };
}

/** The answers the workload fixes, asked once; returns what differs. */
export async function checkAnswers(ctx: MeasureContext, server: Endpoint): Promise<string[]> {
  const s = ctx.workload.samples;
  const questions = [
    { name: s.blocked, type: 'A' },
    { name: s.blocked, type: 'AAAA' },
    { name: s.blockedChild, type: 'A' },
    { name: s.allowed.name, type: 'A' },
    { name: s.allowed.name, type: 'AAAA' },
  ];
  const req = { mode: 'ask', server: server.address, port: server.port, questions };
  const r = await ctx.place.run([NODE24, PROBE, JSON.stringify(req)], { timeoutMs: 30_000 });
  const results = JSON.parse(r.stdout.trim().split('\n').pop() ?? '[]') as AskResult[];
  const problems: string[] = [];
  const expect = (i: number, what: string, ok: (a: NonNullable<AskResult['answer']>) => boolean) => {
    const res = results[i];
    const a = res?.answer;
    const got = a ? `rcode ${a.rcode}, [${a.addresses.join(', ')}], TTL [${a.ttls.join(', ')}]` : 'no answer';
    if (!a || !ok(a)) problems.push(`${res?.name ?? questions[i]!.name} ${questions[i]!.type}: expected ${what}, got ${got}`);
  };
  const only = (a: { addresses: string[] }, addr: string) => a.addresses.length === 1 && a.addresses[0] === addr;
  expect(0, '0.0.0.0', (a) => a.rcode === 0 && only(a, '0.0.0.0'));
  expect(1, ':: or no address', (a) => a.rcode === 0 && (a.addresses.length === 0 || only(a, '::')));
  expect(2, '0.0.0.0 (its parent is listed)', (a) => a.rcode === 0 && only(a, '0.0.0.0'));
  const ttlOk = (a: { ttls: number[] }) => a.ttls.every((t) => t > 0 && t <= ctx.ttl);
  expect(3, `${s.allowed.a} with a TTL up to ${ctx.ttl}`, (a) => a.rcode === 0 && only(a, s.allowed.a) && ttlOk(a));
  const v6 = canonicalV6(s.allowed.aaaa);
  expect(4, `${v6} with a TTL up to ${ctx.ttl}`, (a) => a.rcode === 0 && only(a, v6) && ttlOk(a));
  return problems;
}

async function dnsperf(
  ctx: MeasureContext,
  server: Endpoint,
  run: { seconds: number; verbose: boolean; maxQps?: number },
  logName: string,
): Promise<PerfResult> {
  const settings = { ...ctx.perf, seconds: run.seconds };
  const argv = dnsperfArgv(server, ctx.workload.queryFile, settings, { verbose: run.verbose, ...(run.maxQps ? { maxQps: run.maxQps } : {}) });
  const proc = ctx.place.spawn(argv, logName);
  const limitS = run.seconds + settings.timeoutS + 60;
  const exit = await within(proc.exited, limitS * 1000);
  if (!exit) {
    await ctx.place.stop(proc);
    throw new Error(`dnsperf did not finish within ${limitS} s`);
  }
  if (exit.code !== 0) throw new Error(`dnsperf failed (exit ${exit.code}): ${proc.output().trim().slice(-500)}`);
  if (!run.verbose) return { ...parseSummary(proc.output()), percentilesMs: null };
  const { summary, latenciesUs } = await readVerboseOutput(proc.logFile);
  return { ...parseSummary(summary), percentilesMs: percentiles(latenciesUs) };
}

/**
 * Measures one server. The server is left running: `start` keeps hold of
 * what it started and the caller stops it in its finally.
 */
export async function measureSide(ctx: MeasureContext, spec: SideSpec): Promise<SideResult> {
  const result: SideResult = {
    key: spec.key,
    label: spec.label,
    error: null,
    loadMs: null,
    problems: [],
    warmup: null,
    perf: null,
    latency: null,
    cpuPercent: null,
    machineCpuPercent: null,
    afterLoad: null,
    afterRun: null,
    peakKb: null,
    notes: {},
  };
  let probe: Proc | null = null;
  try {
    const waiting = await startWaitProbe(ctx.place, spec.server, ctx.workload.samples.blocked, '0.0.0.0', `probe-${spec.key}.log`);
    probe = waiting.probe;
    const t0 = now();
    // The probe keeps asking while the start command runs: the figure is start → answer either way.
    const proc = await spec.start();
    const answer = await Promise.race([waiting.answered, proc.exited.then(() => null)]);
    if (!answer) throw new Error(`the server exited: ${proc.output().trim().slice(-300)}`);
    if (answer.answeredAt === null) throw new Error(`no blocked answer within ${LOAD_LIMIT_MS / 1000} s (last: ${answer.last})`);
    result.loadMs = answer.answeredAt - t0;
    ctx.log(`  ${spec.label}: answers from its list ${(result.loadMs / 1000).toFixed(2)} s after start`);
    result.afterLoad = memoryOf(proc.pid);

    result.problems = await checkAnswers(ctx, spec.server);
    for (const p of result.problems) ctx.log(`  ${spec.label}: WRONG ANSWER ${p}`);

    if (ctx.warmupSeconds > 0) {
      result.warmup = await dnsperf(ctx, spec.server, { seconds: ctx.warmupSeconds, verbose: false }, `dnsperf-warmup-${spec.key}.log`);
    }
    const before = cpuTicks(proc.pid);
    const machineBefore = machineBusyTicks();
    const runStart = performance.now();
    result.perf = await dnsperf(ctx, spec.server, { seconds: ctx.perf.seconds, verbose: false }, `dnsperf-${spec.key}.log`);
    const after = cpuTicks(proc.pid);
    const machineAfter = machineBusyTicks();
    const wallS = (performance.now() - runStart) / 1000;
    if (before !== null && after !== null) result.cpuPercent = (after - before) / wallS;
    if (machineBefore !== null && machineAfter !== null) result.machineCpuPercent = (machineAfter - machineBefore) / wallS;
    result.afterRun = memoryOf(proc.pid);
    if (ctx.latencyRun.qps > 0) {
      result.latency = await dnsperf(
        ctx,
        spec.server,
        { seconds: ctx.latencyRun.seconds, verbose: true, maxQps: ctx.latencyRun.qps },
        `dnsperf-latency-${spec.key}.log`,
      );
    }
    const last = memoryOf(proc.pid);
    if (proc.exit || !result.afterRun || !last) throw new Error(`the server exited during the run: ${proc.output().trim().slice(-300)}`);
    result.peakKb = last.hwmKb;
    const p = result.perf;
    const l = result.latency;
    ctx.log(
      `  ${spec.label}: ${Math.round(p.qps)} queries/s (avg ${p.avgMs.toFixed(2)} ms, lost ${p.lost}), ` +
        (l ? `at ${ctx.latencyRun.qps} q/s p99 ${l.percentilesMs?.p99.toFixed(2) ?? '?'} ms, ` : '') +
        `RSS ${(result.afterRun.rssKb / 1024).toFixed(1)} MiB`,
    );
  } catch (e) {
    result.error = e instanceof Error ? e.message : String(e);
    ctx.log(`  ${spec.label}: FAILED: ${result.error}`);
  } finally {
    if (probe && !probe.exit) await ctx.place.stop(probe);
  }
  return result;
}
