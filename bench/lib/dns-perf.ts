// dnsperf (2.10): how it is run and what its output says. dnsperf reports
// only the average latency, so with -v (one line per answer: "> RCODE NAME
// TYPE SECONDS") the percentiles are computed here from every answer's latency.
// Writing a line per answer costs dnsperf CPU that the server then lacks on
// a small machine (about 10-15 % of the throughput on 2 cores), so
// throughput is measured without -v and percentiles in a run at a fixed rate.
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { PROGRAMS } from './dns-servers.ts';

export interface PerfSettings {
  /** -c: simulated clients (source ports). */
  clients: number;
  /** -q: queries in flight at most. Kept small enough that the server's socket buffer cannot overflow. */
  outstanding: number;
  /** -l: seconds of load. */
  seconds: number;
  /** -t: a query unanswered this long counts as lost. */
  timeoutS: number;
}

export function dnsperfArgv(
  server: { address: string; port: number },
  queryFile: string,
  s: PerfSettings,
  o: { verbose: boolean; maxQps?: number },
): string[] {
  return [
    PROGRAMS.dnsperf.path,
    '-s', server.address,
    '-p', String(server.port),
    '-d', queryFile,
    '-c', String(s.clients),
    '-q', String(s.outstanding),
    '-l', String(s.seconds),
    '-t', String(s.timeoutS),
    ...(o.maxQps ? ['-Q', String(o.maxQps)] : []),
    ...(o.verbose ? ['-v'] : []),
  ];
}

export interface PerfResult {
  sent: number;
  completed: number;
  lost: number;
  qps: number;
  runTimeS: number;
  avgMs: number;
  minMs: number;
  maxMs: number;
  stddevMs: number;
  /** From the per-answer lines; null without -v. */
  percentilesMs: { p50: number; p90: number; p99: number; p999: number } | null;
  rcodes: Record<string, number>;
}

function num(text: string, label: string): number {
  const m = new RegExp(`^\\s*${label}:\\s+([\\d.]+)`, 'm').exec(text);
  if (!m) throw new Error(`dnsperf printed no "${label}"`);
  return Number(m[1]);
}

/** The summary dnsperf prints at the end. */
export function parseSummary(text: string): Omit<PerfResult, 'percentilesMs'> {
  const lat = /^\s*Average Latency \(s\):\s+([\d.]+) \(min ([\d.]+), max ([\d.]+)\)/m.exec(text);
  if (!lat) throw new Error('dnsperf printed no "Average Latency"');
  const rcodes: Record<string, number> = {};
  const rc = /^\s*Response codes:\s+(.*)$/m.exec(text);
  for (const m of (rc?.[1] ?? '').matchAll(/([A-Z]+) (\d+) \(/g)) rcodes[m[1]!] = Number(m[2]);
  return {
    sent: num(text, 'Queries sent'),
    completed: num(text, 'Queries completed'),
    lost: num(text, 'Queries lost'),
    qps: num(text, 'Queries per second'),
    runTimeS: num(text, 'Run time \\(s\\)'),
    avgMs: Number(lat[1]) * 1000,
    minMs: Number(lat[2]) * 1000,
    maxMs: Number(lat[3]) * 1000,
    stddevMs: /Latency StdDev/.test(text) ? num(text, 'Latency StdDev \\(s\\)') * 1000 : 0,
    rcodes,
  };
}

/**
 * Reads dnsperf's -v output as a stream (a run is hundreds of thousands of
 * lines): the summary text and every answer's latency in microseconds.
 */
export async function readVerboseOutput(file: string): Promise<{ summary: string; latenciesUs: Uint32Array }> {
  let lat = new Uint32Array(1 << 16);
  let n = 0;
  const summary: string[] = [];
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.startsWith('> ')) {
      const s = line.slice(line.lastIndexOf(' ') + 1);
      const us = Math.round(Number(s) * 1e6);
      if (!Number.isFinite(us)) continue;
      if (n === lat.length) {
        const bigger = new Uint32Array(lat.length * 2);
        bigger.set(lat);
        lat = bigger;
      }
      lat[n++] = us;
    } else {
      summary.push(line);
    }
  }
  return { summary: summary.join('\n'), latenciesUs: lat.subarray(0, n) };
}

/** Nearest-rank percentiles in ms; null when there is nothing to rank. */
export function percentiles(latenciesUs: Uint32Array): PerfResult['percentilesMs'] {
  if (latenciesUs.length === 0) return null;
  const sorted = Uint32Array.from(latenciesUs).sort();
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]! / 1000;
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), p999: at(0.999) };
}
