// The DNS benchmark's figures: one column per server, ratios of Aerie to
// each dnsmasq run, the issue's targets judged against the baseline (dnsmasq
// with the list as `address=` lines and its default cache).
import { cpus } from 'node:os';
import type { SideResult } from './dns-measure.ts';
import type { PerfResult } from './dns-perf.ts';
import { round } from './stats.ts';

export const TARGETS = { qpsRatio: 3, rssRatio: 1, loadMs: 2_000 } as const;

interface Row {
  label: string;
  value(s: SideResult): number | null;
  digits: number;
  /** Show Aerie / dnsmasq for this row. */
  ratio: boolean;
}

/** Throughput per unit of the server's own CPU: comparable even when other programs took CPU from the run. */
const perCpuSecond = (s: SideResult) => (s.perf && s.cpuPercent ? s.perf.qps / (s.cpuPercent / 100) : null);

const mibOf = (kb: number | null | undefined) => (kb === null || kb === undefined ? null : kb / 1024);

function rows(latencyQps: number): Row[] {
  const at = `at ${latencyQps.toLocaleString('en-US')} q/s`;
  return [
    { label: 'list load: start → first blocked answer (s)', value: (s) => (s.loadMs === null ? null : s.loadMs / 1000), digits: 2, ratio: true },
    { label: 'throughput, full speed (queries/s)', value: (s) => s.perf?.qps ?? null, digits: 0, ratio: true },
    { label: '  latency avg (ms)', value: (s) => s.perf?.avgMs ?? null, digits: 2, ratio: true },
    { label: '  latency max (ms)', value: (s) => s.perf?.maxMs ?? null, digits: 1, ratio: true },
    { label: '  queries lost', value: (s) => s.perf?.lost ?? null, digits: 0, ratio: false },
    { label: '  server CPU (% of a core)', value: (s) => s.cpuPercent, digits: 0, ratio: false },
    { label: '  queries per server CPU-second', value: perCpuSecond, digits: 0, ratio: true },
    { label: `  all programs' CPU (% of a core, ${cpus().length} cores)`, value: (s) => s.machineCpuPercent, digits: 0, ratio: false },
    ...(latencyQps > 0
      ? [
          { label: `${at}: latency avg (ms)`, value: (s: SideResult) => s.latency?.avgMs ?? null, digits: 2, ratio: true },
          { label: '  latency p50 (ms)', value: (s: SideResult) => s.latency?.percentilesMs?.p50 ?? null, digits: 2, ratio: true },
          { label: '  latency p99 (ms)', value: (s: SideResult) => s.latency?.percentilesMs?.p99 ?? null, digits: 2, ratio: true },
          { label: '  latency p99.9 (ms)', value: (s: SideResult) => s.latency?.percentilesMs?.p999 ?? null, digits: 2, ratio: true },
          { label: '  queries lost', value: (s: SideResult) => s.latency?.lost ?? null, digits: 0, ratio: false },
        ]
      : []),
    { label: 'RSS after load (MiB)', value: (s) => mibOf(s.afterLoad?.rssKb), digits: 1, ratio: true },
    { label: 'RSS after the full-speed run (MiB)', value: (s) => mibOf(s.afterRun?.rssKb), digits: 1, ratio: true },
    { label: 'peak RSS, VmHWM (MiB)', value: (s) => mibOf(s.peakKb), digits: 1, ratio: true },
  ];
}

const fmt = (v: number | null, digits: number) =>
  v === null ? '–' : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

const ratioOf = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : a / b);

export function renderTable(sides: SideResult[], latencyQps: number): string {
  const aerie = sides.find((s) => s.key === 'aerie') ?? null;
  const baselines = sides.filter((s) => s.key !== 'aerie');
  const header = ['', ...sides.map((s) => s.label), ...(aerie ? baselines.map((b) => `Aerie ÷ ${b.label.replace(/^dnsmasq /, '')}`) : [])];
  const body = rows(latencyQps).map((r) => [
    r.label,
    ...sides.map((s) => fmt(r.value(s), r.digits)),
    ...(aerie ? baselines.map((b) => (r.ratio ? fmt(ratioOf(r.value(aerie), r.value(b)), 2) : '')) : []),
  ]);
  const widths = header.map((_, i) => Math.max(...[header, ...body].map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [line(header), ...body.map(line)];
  for (const s of sides) {
    if (s.error) out.push(`${s.label}: FAILED: ${s.error}`);
    for (const p of s.problems) out.push(`${s.label}: wrong answer: ${p}`);
  }
  return out.join('\n');
}

export interface Verdicts {
  baseline: string | null;
  qpsRatio: number | null;
  rssRatio: number | null;
  peakRssRatio: number | null;
  loadMs: number | null;
  /** Aerie ÷ baseline in queries per server CPU-second. */
  perCpuRatio: number | null;
  /** Runs where the machine, not the server, was the limit. */
  contended: string[];
  met: { qps: boolean | null; rss: boolean | null; load: boolean | null };
}

export function judge(sides: SideResult[]): Verdicts {
  const aerie = sides.find((s) => s.key === 'aerie');
  const base = sides.find((s) => s.key !== 'aerie');
  const qpsRatio = aerie && base ? ratioOf(aerie.perf?.qps ?? null, base.perf?.qps ?? null) : null;
  const rssRatio = aerie && base ? ratioOf(aerie.afterRun?.rssKb ?? null, base.afterRun?.rssKb ?? null) : null;
  const peakRssRatio = aerie && base ? ratioOf(aerie.peakKb, base.peakKb) : null;
  const loadMs = aerie?.loadMs ?? null;
  const perCpuRatio = aerie && base ? ratioOf(perCpuSecond(aerie), perCpuSecond(base)) : null;
  // All cores busy while the server had less than a full one: dnsperf or other programs took the rest.
  const cores = cpus().length;
  const contended = sides
    .filter((s) => s.cpuPercent !== null && s.machineCpuPercent !== null && s.cpuPercent < 90 && s.machineCpuPercent > 90 * cores)
    .map((s) => s.label);
  return {
    baseline: base?.label ?? null,
    qpsRatio,
    rssRatio,
    peakRssRatio,
    loadMs,
    perCpuRatio,
    contended,
    met: {
      qps: qpsRatio === null ? null : qpsRatio >= TARGETS.qpsRatio,
      rss: rssRatio === null ? null : rssRatio <= TARGETS.rssRatio,
      load: loadMs === null ? null : loadMs < TARGETS.loadMs,
    },
  };
}

export function renderVerdicts(v: Verdicts): string {
  if (!v.baseline) return 'targets: no baseline measured';
  const word = (ok: boolean | null) => (ok === null ? 'not measured' : ok ? 'met' : 'NOT met');
  return [
    `targets (baseline: ${v.baseline}):`,
    `  throughput ≥ ${TARGETS.qpsRatio}× dnsmasq: ${v.qpsRatio === null ? '–' : `${v.qpsRatio.toFixed(2)}×`} — ${word(v.met.qps)}`,
    `  RSS ≤ dnsmasq's: ${v.rssRatio === null ? '–' : `${v.rssRatio.toFixed(2)}×`} (peak ${v.peakRssRatio === null ? '–' : `${v.peakRssRatio.toFixed(2)}×`}) — ${word(v.met.rss)}`,
    `  list loading < ${TARGETS.loadMs / 1000} s: ${v.loadMs === null ? '–' : `${(v.loadMs / 1000).toFixed(2)} s`} — ${word(v.met.load)}`,
    ...(v.perCpuRatio === null ? [] : [`  (queries per server CPU-second: ${v.perCpuRatio.toFixed(2)}× — the steadier comparison when the CPU was shared)`]),
    ...(v.contended.length === 0
      ? []
      : [
          `note: every core was busy while ${v.contended.join(', ')} had less than a full one: the load generator or other ` +
            'programs took the CPU, so those throughput figures are limits of this machine rather than of the server',
        ]),
  ].join('\n');
}

const r = (v: number | null | undefined, d = 2) => (v === null || v === undefined ? null : round(v, d));

function perfJson(p: PerfResult | null) {
  if (!p) return null;
  return {
    qps: r(p.qps, 0),
    sent: p.sent,
    completed: p.completed,
    lost: p.lost,
    rcodes: p.rcodes,
    latencyMs: { avg: r(p.avgMs, 3), min: r(p.minMs, 3), max: r(p.maxMs, 3), stddev: r(p.stddevMs, 3), ...(p.percentilesMs ?? {}) },
  };
}

/** A side as JSON: figures rounded, nothing machine-specific. */
export function sideJson(s: SideResult) {
  return {
    key: s.key,
    label: s.label,
    error: s.error,
    wrongAnswers: s.problems,
    loadMs: r(s.loadMs, 0),
    fullSpeed: perfJson(s.perf),
    fixedRate: perfJson(s.latency),
    warmup: s.warmup ? { qps: r(s.warmup.qps, 0), lost: s.warmup.lost } : null,
    cpuPercent: r(s.cpuPercent, 0),
    queriesPerCpuSecond: r(perCpuSecond(s), 0),
    machineCpuPercent: r(s.machineCpuPercent, 0),
    rssAfterLoadKb: s.afterLoad?.rssKb ?? null,
    rssKb: s.afterRun?.rssKb ?? null,
    anonKb: s.afterRun?.anonKb ?? null,
    peakRssKb: s.peakKb,
    notes: s.notes,
  };
}

export function ratiosJson(sides: SideResult[]) {
  const aerie = sides.find((s) => s.key === 'aerie');
  if (!aerie) return {};
  const out: Record<string, Record<string, number | null>> = {};
  for (const b of sides.filter((s) => s.key !== 'aerie')) {
    const q = (f: (s: SideResult) => number | null | undefined, d = 2) => {
      const v = ratioOf(f(aerie) ?? null, f(b) ?? null);
      return v === null ? null : round(v, d);
    };
    out[`aerie/${b.key}`] = {
      qps: q((s) => s.perf?.qps),
      queriesPerCpuSecond: q(perCpuSecond),
      avgLatencyFullSpeed: q((s) => s.perf?.avgMs),
      avgLatencyFixedRate: q((s) => s.latency?.avgMs),
      p99LatencyFixedRate: q((s) => s.latency?.percentilesMs?.p99),
      rss: q((s) => s.afterRun?.rssKb),
      peakRss: q((s) => s.peakKb),
      load: q((s) => s.loadMs),
    };
  }
  return out;
}
