// The MQTT benchmark's table: one column per broker, then ours ÷ bare aedes
// and ours ÷ mosquitto, and the targets judged.
import { BROKER_LABELS, type BrokerKey } from './mqtt-brokers.ts';
import { THROUGHPUT_TESTS, type BrokerResult, type ThroughputResult } from './mqtt-measure.ts';
import { round } from './stats.ts';

export const TARGETS = { vsAedes: 0.9, vsMosquittoOneToOne: 1.0, kbPerConnection: 10 } as const;

export type Results = Partial<Record<BrokerKey, BrokerResult>>;

const rate = (r: ThroughputResult | null | undefined) => (r ? r.deliveries / r.seconds : null);
/** Broker CPU time per delivery in µs (utime + stime from /proc, 10 ms ticks). */
const cpuPerDelivery = (r: ThroughputResult | null | undefined) => (r && r.deliveries > 0 ? (r.brokerCpuSeconds * 1e6) / r.deliveries : null);
const cpuPercent = (r: ThroughputResult | null | undefined) => (r ? (100 * r.brokerCpuSeconds) / r.seconds : null);
/** Near 100: the MQTT.js clients, not the broker, set the pace. */
const loadPercent = (r: ThroughputResult | null | undefined) => (r ? (100 * r.loadCpuSeconds) / r.seconds : null);
const mibOf = (kb: number | undefined) => (kb === undefined ? null : kb / 1024);
/** KB (1024 bytes, /proc's kB) of broker RSS per idle connection, over the first N connections (one-time costs included). */
export const kbPerFirstConnections = (b: BrokerResult | undefined) => (b?.idle ? (b.idle.afterKb - b.idle.servedKb) / b.idle.connections : null);
/** The same over the next N: what one more connection costs. The target is judged on this one. */
export const kbPerConnection = (b: BrokerResult | undefined) => (b?.idle ? (b.idle.doubleKb - b.idle.afterKb) / b.idle.connections : null);

interface Row {
  label: string;
  value(b: BrokerResult | undefined): number | null;
  digits: number;
}

function rows(connections: number): Row[] {
  const n = connections.toLocaleString('en-US');
  const n2 = (2 * connections).toLocaleString('en-US');
  const out: Row[] = [
    { label: 'RSS idle, fresh (MiB)', value: (b) => mibOf(b?.idle?.freshKb), digits: 1 },
    { label: 'RSS idle, after its first 10 clients left (MiB)', value: (b) => mibOf(b?.idle?.servedKb), digits: 1 },
    { label: `RSS with ${n} idle connections (MiB)`, value: (b) => mibOf(b?.idle?.afterKb), digits: 1 },
    { label: `RSS with ${n2} idle connections (MiB)`, value: (b) => mibOf(b?.idle?.doubleKb), digits: 1 },
    { label: `RSS per idle connection, first ${n} (KB)`, value: kbPerFirstConnections, digits: 1 },
    { label: `RSS per idle connection, next ${n} (KB)`, value: kbPerConnection, digits: 1 },
  ];
  for (const t of THROUGHPUT_TESTS) {
    const name = `QoS ${t.qos} 1→${t.subscribers}`;
    const of = (b: BrokerResult | undefined) => b?.throughput[t.key];
    out.push(
      { label: `${name}: deliveries/s`, value: (b) => rate(of(b)), digits: 0 },
      { label: '  broker CPU-µs per delivery', value: (b) => cpuPerDelivery(of(b)), digits: 2 },
      { label: '  broker CPU (% of a core)', value: (b) => cpuPercent(of(b)), digits: 0 },
      { label: '  load generator CPU (% of a core)', value: (b) => loadPercent(of(b)), digits: 0 },
    );
  }
  return out;
}

const fmt = (v: number | null, digits: number) =>
  v === null ? '–' : v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : a / b);

export function renderTable(results: Results, connections: number): string {
  const keys = (['mosquitto', 'aedes', 'ours'] as const).filter((k) => results[k]);
  const withRatios = !!results.ours;
  const header = ['', ...keys.map((k) => BROKER_LABELS[k]), ...(withRatios ? ['ours ÷ aedes', 'ours ÷ mosquitto'] : [])];
  const body = rows(connections).map((r) => {
    const ours = r.value(results.ours);
    return [
      r.label,
      ...keys.map((k) => fmt(r.value(results[k]), r.digits)),
      ...(withRatios ? [fmt(ratio(ours, r.value(results.aedes)), 2), fmt(ratio(ours, r.value(results.mosquitto)), 2)] : []),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

/** The targets, each met or not, with the figure. */
export function renderVerdicts(results: Results): string[] {
  const ours = results.ours;
  if (!ours) return [];
  const out: string[] = [];
  const verdict = (ok: boolean | null, text: string) => out.push(`${ok === null ? '?' : ok ? '✓' : '✗'} ${text}`);
  for (const t of THROUGHPUT_TESTS) {
    const r = ratio(rate(ours.throughput[t.key]), rate(results.aedes?.throughput[t.key]));
    verdict(r === null ? null : r >= TARGETS.vsAedes, `QoS ${t.qos} 1→${t.subscribers}: ours ÷ bare aedes = ${fmt(r, 2)} (target ≥ ${TARGETS.vsAedes})`);
  }
  for (const t of THROUGHPUT_TESTS.filter((x) => x.subscribers === 1)) {
    const r = ratio(rate(ours.throughput[t.key]), rate(results.mosquitto?.throughput[t.key]));
    verdict(r === null ? null : r >= TARGETS.vsMosquittoOneToOne, `QoS ${t.qos} 1→1: ours ÷ mosquitto = ${fmt(r, 2)} (target ≥ ${TARGETS.vsMosquittoOneToOne})`);
  }
  const kb = kbPerConnection(ours);
  const first = kbPerFirstConnections(ours);
  verdict(kb === null ? null : kb <= TARGETS.kbPerConnection, `RSS per idle connection: ${fmt(kb, 1)} KB once warm (target ≤ ${TARGETS.kbPerConnection}); ${fmt(first, 1)} KB over the first ones, one-time costs included`);
  return out;
}

export function resultsJson(results: Results) {
  const out: Record<string, unknown> = {};
  for (const [key, b] of Object.entries(results)) {
    out[key] = {
      idle: b.idle,
      kbPerConnection: round(kbPerConnection(b) ?? NaN, 1),
      kbPerFirstConnections: round(kbPerFirstConnections(b) ?? NaN, 1),
      throughput: Object.fromEntries(
        THROUGHPUT_TESTS.map((t) => {
          const r = b.throughput[t.key];
          return [t.key, r ? { perSecond: round(rate(r)!, 0), cpuUsPerDelivery: round(cpuPerDelivery(r) ?? NaN, 2) } : null];
        }),
      ),
      errors: b.errors,
    };
  }
  return out;
}
