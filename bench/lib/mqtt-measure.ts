// One broker of the MQTT benchmark, measured the same way for every broker:
// its RSS idle and with N idle connections, then each throughput test, each
// a fresh load-generator process (bench/lib/mqtt-load.ts).
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Place } from './dns-place.ts';
import { cpuTicks } from './proc.ts';
import type { RunningBroker } from './mqtt-brokers.ts';

export interface ThroughputTest {
  key: string;
  qos: 0 | 1;
  subscribers: number;
}

export const THROUGHPUT_TESTS: readonly ThroughputTest[] = [
  { key: 'qos0-1to1', qos: 0, subscribers: 1 },
  { key: 'qos0-1to50', qos: 0, subscribers: 50 },
  { key: 'qos1-1to1', qos: 1, subscribers: 1 },
  { key: 'qos1-1to50', qos: 1, subscribers: 50 },
];

export interface ThroughputResult {
  deliveries: number;
  seconds: number;
  brokerCpuSeconds: number;
  loadCpuSeconds: number;
}

/** Broker RSS in kB: fresh, after its first few clients left, with N idle connections, with 2N. */
export interface IdleResult {
  connections: number;
  freshKb: number;
  servedKb: number;
  afterKb: number;
  doubleKb: number;
}

export interface BrokerResult {
  idle: IdleResult | null;
  throughput: Record<string, ThroughputResult | null>;
  errors: string[];
}

export interface MeasureOptions {
  seconds: number;
  warmup: number;
  connections: number;
  log(line: string): void;
}

const LOAD = join(import.meta.dirname, 'mqtt-load.ts');
/** Time for a load run beyond its measured seconds: connecting, subscribing, closing. */
const LOAD_SLACK_MS = 90_000;

async function runLoad<T>(place: Place, b: RunningBroker, args: string[], logName: string, budgetMs: number): Promise<T> {
  const from = args[0] === 'idle' && b.idleFrom ? b.idleFrom : b.load.localAddress;
  const argv = [process.execPath, LOAD, ...args, '--host', b.host, '--port', String(b.port), '--broker-pid', String(b.proc.pid)];
  if (from) argv.push('--local-address', from);
  if (b.load.gcSignal) argv.push('--gc-signal');
  // A password-less idle client is a tunnel peer: it sends no login.
  const env = args[0] === 'idle' && b.idleFrom ? undefined : b.load.env;
  const proc = place.spawn(argv, logName, env);
  let timer: NodeJS.Timeout | undefined;
  try {
    const exit = await Promise.race([proc.exited, new Promise<null>((r) => (timer = setTimeout(() => r(null), budgetMs)))]);
    if (!exit) throw new Error(`the load generator did not finish within ${budgetMs / 1000} s`);
    const last = proc.output().trim().split('\n').at(-1) ?? '';
    if (exit.code !== 0 || !last.startsWith('{')) throw new Error(`the load generator failed (exit ${exit.code ?? exit.signal}): ${proc.output().trim().slice(-300)}`);
    return JSON.parse(last) as T;
  } finally {
    clearTimeout(timer);
    if (!proc.exit) await place.stop(proc);
  }
}

/**
 * Waits until the broker used under 5% of a core for half a second (at most
 * `maxMs`): what the last run left it to do (closing 2,000 clients, a GC)
 * must not count against the next.
 */
async function quiet(pid: number, maxMs = 15_000): Promise<void> {
  const deadline = Date.now() + maxMs;
  let last = cpuTicks(pid);
  while (last !== null && Date.now() < deadline) {
    await sleep(500);
    const now = cpuTicks(pid);
    if (now === null || now - last <= 2) return; // 2 ticks = 20 ms of 500
    last = now;
  }
}

export async function measureBroker(place: Place, b: RunningBroker, o: MeasureOptions): Promise<BrokerResult> {
  const out: BrokerResult = { idle: null, throughput: {}, errors: [] };
  // Idle first, on the fresh process: the RSS the throughput runs leave behind does not count.
  try {
    out.idle = await runLoad<IdleResult>(place, b, ['idle', '--connections', String(o.connections)], `${b.key}-idle.log`, LOAD_SLACK_MS + o.connections * 100);
    const i = out.idle;
    o.log(`  ${b.key}: idle ${(i.freshKb / 1024).toFixed(1)} MiB, ${((i.afterKb - i.servedKb) / i.connections).toFixed(1)} then ${((i.doubleKb - i.afterKb) / i.connections).toFixed(1)} KB per connection`);
  } catch (e) {
    out.errors.push(`idle: ${(e as Error).message}`);
  }
  for (const t of THROUGHPUT_TESTS) {
    await quiet(b.proc.pid);
    const args = ['throughput', '--qos', String(t.qos), '--subscribers', String(t.subscribers), '--seconds', String(o.seconds), '--warmup', String(o.warmup)];
    try {
      const r = await runLoad<ThroughputResult>(place, b, args, `${b.key}-${t.key}.log`, LOAD_SLACK_MS + (o.seconds + o.warmup) * 1000);
      out.throughput[t.key] = r;
      o.log(`  ${b.key} ${t.key}: ${Math.round(r.deliveries / r.seconds).toLocaleString('en-US')} deliveries/s`);
    } catch (e) {
      out.throughput[t.key] = null;
      out.errors.push(`${t.key}: ${(e as Error).message}`);
    }
  }
  return out;
}
