// MQTT broker throughput and memory (issue 5, "Benchmark"): Debian's
// mosquitto, bare aedes and our broker (aedes with auth, ACL and the sqlite
// persistence, started as the daemon starts it) under the same MQTT.js load:
// QoS 0 and QoS 1, one publisher to 1 and to 50 subscribers, 100-byte
// payloads; and the RSS each broker adds per idle connection, over the first
// 1,000 (one-time costs included: code compiled, heap and malloc arenas
// grown) and over the next 1,000 (what one more connection costs). Targets:
// ours within 10% of bare aedes in every throughput test, at least
// mosquitto's rate 1→1, at most 10 KB per idle connection. Reports; never
// asserts.
//
//   node bench/mqtt.ts [--quick] [--seconds N] [--warmup N] [--connections N]
//
// Each broker runs alone, one after the other, in its own process on
// loopback; every load run is its own process. Needs mosquitto (apt).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseIntOptions } from './lib/args.ts';
import { localPlace, type Proc } from './lib/dns-place.ts';
import { BROKER_LABELS, MOSQUITTO, startBroker, type BrokerKey } from './lib/mqtt-brokers.ts';
import { measureBroker } from './lib/mqtt-measure.ts';
import { renderTable, renderVerdicts, resultsJson, type Results } from './lib/mqtt-report.ts';

const quick = process.argv.includes('--quick');
if (quick) process.argv.splice(process.argv.indexOf('--quick'), 1);
const opts = parseIntOptions('Usage: node bench/mqtt.ts [--quick] [options]\n\n--quick: 2 s per throughput test after a 1 s warm-up.', [
  { name: 'seconds', default: quick ? 2 : 10, min: 1, max: 300, help: 'measured seconds per throughput test' },
  { name: 'warmup', default: 1, min: 0, max: 60, help: 'seconds of load before each measured run' },
  { name: 'connections', default: 1_000, min: 10, max: 2_000, help: 'idle connections for the RSS test (then as many again)' },
]);

const BROKERS: readonly BrokerKey[] = existsSync(MOSQUITTO) ? ['mosquitto', 'aedes', 'ours'] : ['aedes', 'ours'];
if (!existsSync(MOSQUITTO)) process.stderr.write(`warning: ${MOSQUITTO} is missing (apt-get install mosquitto); measuring the aedes brokers only\n`);

const dir = mkdtempSync(join(tmpdir(), 'aerie-bench-mqtt-'));
const place = localPlace(dir);
const onSignal = () => {
  place.killAll();
  rmSync(dir, { recursive: true, force: true });
  process.exit(130);
};
process.once('SIGINT', onSignal);
process.once('SIGTERM', onSignal);

const results: Results = {};
let failed = false;
try {
  console.log(`MQTT brokers on loopback, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), Node ${process.version}`);
  console.log(`${opts.seconds} s per throughput test after ${opts.warmup} s of warm-up; ${opts.connections} then ${2 * opts.connections} idle connections`);
  for (const key of BROKERS) {
    console.log(`${BROKER_LABELS[key]}:`);
    let proc: Proc | null = null;
    try {
      const broker = await startBroker(key, place, join(dir, key === 'ours' ? 'ours' : '.'), (p) => (proc = p));
      results[key] = await measureBroker(place, broker, { ...opts, log: (l) => console.log(l) });
      for (const e of results[key].errors) console.log(`  error: ${e}`);
      if (results[key].errors.length > 0) failed = true;
    } catch (e) {
      failed = true;
      console.log(`  failed: ${(e as Error).message}`);
    } finally {
      if (proc) await place.stop(proc);
    }
  }
  console.log('');
  console.log(renderTable(results, opts.connections));
  console.log('');
  for (const line of renderVerdicts(results)) console.log(line);
  console.log(JSON.stringify({ bench: 'mqtt', seconds: opts.seconds, warmup: opts.warmup, connections: opts.connections, results: resultsJson(results) }));
} finally {
  await place.stopAll();
  // The processes' logs stay when something failed.
  if (failed) console.log(`logs: ${dir}`);
  else rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
