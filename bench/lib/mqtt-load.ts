// The MQTT benchmark's load generator (MQTT.js, MQTT 3.1.1), run in its own
// process so that its CPU and memory stay apart from the broker's:
//
//   node mqtt-load.ts throughput --port P --host H --broker-pid PID --qos 0|1 --subscribers N --seconds S --warmup S
//   node mqtt-load.ts idle --port P --host H --broker-pid PID --connections N [--gc-signal]   (holds 2N at the end)
//
// --local-address binds the clients' sockets (a tunnel peer's address);
// MQTT_BENCH_USERNAME / MQTT_BENCH_PASSWORD (environment, never argv) log
// them in. Prints one JSON line with the result.
import { createConnection } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { MqttClient, type IClientOptions } from 'mqtt';
import { cpuTicks, memoryOf } from './proc.ts';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: 'string' },
    host: { type: 'string' },
    'local-address': { type: 'string' },
    'broker-pid': { type: 'string' },
    qos: { type: 'string', default: '0' },
    subscribers: { type: 'string', default: '1' },
    seconds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    connections: { type: 'string', default: '1000' },
    'gc-signal': { type: 'boolean', default: false },
  },
});

function int(name: keyof typeof values, min: number, max: number): number {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name}: expected an integer from ${min} to ${max}, got ${String(values[name])}`);
  return n;
}

const port = int('port', 1, 65535);
const host = values.host ?? '127.0.0.1';
const brokerPid = int('broker-pid', 1, 2 ** 22);
const localAddress = values['local-address'];
const login: Partial<IClientOptions> = process.env['MQTT_BENCH_USERNAME']
  ? { username: process.env['MQTT_BENCH_USERNAME'], password: process.env['MQTT_BENCH_PASSWORD'] ?? '' }
  : {};
/** Every topic under the bench user's own prefix (home/<name>/#), so our broker's ACL allows it. */
const TOPIC = `home/bench/load-${process.pid}`;
const CONNECT_TIMEOUT_MS = 20_000;

function connect(id: string, keepalive: number): Promise<MqttClient> {
  const client = new MqttClient(() => createConnection({ host, port, ...(localAddress && { localAddress }) }), {
    protocolVersion: 4,
    clientId: id,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    keepalive,
    ...login,
  });
  return new Promise((resolve, reject) => {
    client.once('connect', () => resolve(client));
    client.once('error', (err) => reject(new Error(`${id}: ${err.message}`)));
    client.once('close', () => reject(new Error(`${id}: closed before CONNACK`)));
  });
}

/** `n` clients, at most `parallel` handshakes at a time. */
async function connectMany(prefix: string, n: number, keepalive: number, parallel = 50): Promise<MqttClient[]> {
  const out: MqttClient[] = [];
  for (let i = 0; i < n; i += parallel) {
    const batch = Array.from({ length: Math.min(parallel, n - i) }, (_, j) => connect(`${prefix}-${process.pid}-${i + j}`, keepalive));
    out.push(...(await Promise.all(batch)));
  }
  return out;
}

const endAll = (clients: MqttClient[]) =>
  Promise.race([Promise.all(clients.map((c) => c.endAsync(true))), sleep(5_000)]).catch(() => undefined);

/** One publisher, `subscribers` subscribers, a window of deliveries in flight; counts deliveries in the measured seconds. */
async function throughput() {
  const qos = int('qos', 0, 1) as 0 | 1;
  const n = int('subscribers', 1, 500);
  const seconds = int('seconds', 1, 600);
  const warmup = int('warmup', 0, 60);
  const subs = await connectMany('sub', n, 60);
  const pub = (await connectMany('pub', 1, 60))[0]!;
  const clients = [...subs, pub];
  try {
    for (const s of subs) await s.subscribeAsync(TOPIC, { qos });
    const payload = Buffer.alloc(100, 0x61);
    // Deliveries in flight at most: enough to keep the broker busy, bounded so nothing queues without limit.
    const window = 1_000;
    let published = 0;
    let received = 0;
    let running = true;
    const pump = () => {
      while (running && published * n - received < window) {
        published++;
        pub.publish(TOPIC, payload, { qos });
      }
    };
    for (const s of subs) s.on('message', () => {
      received++;
      pump();
    });
    pump();
    await sleep(warmup * 1000);
    const t0 = { at: performance.now(), received, ticks: cpuTicks(brokerPid), load: process.cpuUsage() };
    await sleep(seconds * 1000);
    const t1 = { at: performance.now(), received, ticks: cpuTicks(brokerPid), load: process.cpuUsage(t0.load) };
    running = false;
    if (t0.ticks === null || t1.ticks === null) throw new Error(`the broker (PID ${brokerPid}) is gone`);
    const elapsedS = (t1.at - t0.at) / 1000;
    const deliveries = t1.received - t0.received;
    return {
      deliveries,
      seconds: elapsedS,
      brokerCpuSeconds: (t1.ticks - t0.ticks) / 100,
      loadCpuSeconds: (t1.load.user + t1.load.system) / 1e6,
    };
  } finally {
    await endAll(clients);
  }
}

async function settledRss(gcSignal: boolean, ms: number): Promise<number> {
  if (gcSignal) {
    await sleep(ms / 2);
    process.kill(brokerPid, 'SIGUSR2');
  }
  await sleep(gcSignal ? ms / 2 : ms);
  const m = memoryOf(brokerPid);
  if (!m) throw new Error(`the broker (PID ${brokerPid}) is gone`);
  return m.rssKb;
}

/**
 * Broker RSS: fresh; after a first few clients came and went (what any
 * broker that has served a client carries); with N idle clients (CONNECT,
 * CONNACK, then nothing); with 2N. The first N pay one-time costs (code
 * compiled, heap and malloc arenas grown); the second N show the cost of a
 * connection alone.
 */
async function idle() {
  const count = int('connections', 1, 10_000);
  const gcSignal = values['gc-signal'];
  const freshKb = await settledRss(gcSignal, 1_000);
  await endAll(await connectMany('first', 10, 3_600));
  const servedKb = await settledRss(gcSignal, 1_000);
  // Keep-alive beyond the test's length: no PINGREQ while idle.
  const clients = await connectMany('idle', count, 3_600);
  try {
    const afterKb = await settledRss(gcSignal, 2_000);
    clients.push(...(await connectMany('more', count, 3_600)));
    const doubleKb = await settledRss(gcSignal, 2_000);
    return { connections: count, freshKb, servedKb, afterKb, doubleKb };
  } finally {
    await endAll(clients);
  }
}

const mode = positionals[0];
if (mode !== 'throughput' && mode !== 'idle') throw new Error('usage: mqtt-load.ts throughput|idle --port P --broker-pid PID …');
const result = mode === 'throughput' ? await throughput() : await idle();
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
