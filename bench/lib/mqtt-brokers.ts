// The three brokers of the MQTT benchmark and how each is started: its own
// process (so its RSS and CPU are its own), on loopback, a free port.
// Debian's mosquitto with a minimal config; bare aedes and ours with the
// daemon's Node flags and malloc settings (cloud/node-flags.ts), each from a
// bundle (mqtt-bundle.ts), so the two aedes columns differ only by our code.
import { writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { CLOUD_MALLOC_ENV, CLOUD_NODE_FLAGS } from '../../cloud/node-flags.ts';
import { waitForOutput, type Place, type Proc } from './dns-place.ts';
import { bundleEntry } from './mqtt-bundle.ts';
import { BENCH_USER, OURS_HOST, prepareOursState } from './mqtt-ours-state.ts';
import { freeTcpPort } from './tcp-port.ts';

export const MOSQUITTO = '/usr/sbin/mosquitto';
const START_TIMEOUT_MS = 20_000;

export type BrokerKey = 'mosquitto' | 'aedes' | 'ours';

export interface RunningBroker {
  key: BrokerKey;
  proc: Proc;
  host: string;
  port: number;
  /** For the load generator: where its sockets come from, the login (environment only), whether SIGUSR2 runs a GC. */
  load: { localAddress?: string; env?: Record<string, string>; gcSignal: boolean };
  /** For idle connections: a source that needs no password (a tunnel peer), when logins are expensive. */
  idleFrom?: string;
}

export const BROKER_LABELS: Record<BrokerKey, string> = {
  mosquitto: 'mosquitto',
  aedes: 'bare aedes',
  ours: 'Aerie (aedes + auth, ACL, sqlite)',
};

const nodeArgv = async (script: string, dir: string, args: string[]) => [
  process.execPath,
  ...CLOUD_NODE_FLAGS,
  await bundleEntry(join(import.meta.dirname, script), dir),
  ...args,
];

async function readyPort(proc: Proc, what: string): Promise<number> {
  await waitForOutput(proc, 'ready ', START_TIMEOUT_MS);
  const m = /^ready (\d+)$/m.exec(proc.output());
  if (!m) throw new Error(`${what} printed no port: ${proc.output().slice(-300)}`);
  return Number(m[1]);
}

/** Starts one broker; `hold` gets its process at once, so the caller's finally can stop it even if the start fails. */
export async function startBroker(key: BrokerKey, place: Place, dir: string, hold: (p: Proc) => void): Promise<RunningBroker> {
  if (key === 'mosquitto') {
    const host = '127.0.0.1';
    const port = await freeTcpPort(host);
    const conf = join(dir, 'mosquitto.conf');
    // No persistence file, no connection cap, errors only on the log.
    writeFileSync(conf, [`listener ${port} ${host}`, 'allow_anonymous true', 'persistence false', 'max_connections -1', 'log_dest stderr', 'log_type error', ''].join('\n'));
    const proc = place.spawn([MOSQUITTO, '-c', conf], 'mosquitto.log');
    hold(proc);
    // mosquitto prints nothing when it is up at log_type error: wait until it accepts.
    await waitUntilListening(proc, host, port);
    return { key, proc, host, port, load: { gcSignal: false } };
  }
  if (key === 'aedes') {
    const host = '127.0.0.1';
    const proc = place.spawn(await nodeArgv('mqtt-aedes-server.ts', dir, [host]), 'aedes.log', { ...CLOUD_MALLOC_ENV });
    hold(proc);
    return { key, proc, host, port: await readyPort(proc, 'aedes'), load: { gcSignal: true } };
  }
  const state = await prepareOursState(dir);
  const proc = place.spawn(await nodeArgv('mqtt-ours-server.ts', dir, [state.stateDir, state.dbPath]), 'ours.log', { ...CLOUD_MALLOC_ENV });
  hold(proc);
  return {
    key,
    proc,
    host: OURS_HOST,
    port: await readyPort(proc, 'our broker'),
    // The publisher and subscribers are a device behind the router (user name and password, its own prefix).
    load: { env: { MQTT_BENCH_USERNAME: BENCH_USER, MQTT_BENCH_PASSWORD: state.password }, gcSignal: true },
    // 1,000 scrypt logins would take a minute; a tunnel peer is known by its address.
    idleFrom: state.peerAddress,
  };
}

async function waitUntilListening(proc: Proc, host: string, port: number): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (proc.exit) throw new Error(`${proc.argv[0]} exited: ${proc.output().trim().slice(-300)}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection({ host, port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${proc.argv[0]} did not listen on ${host}:${port} within ${START_TIMEOUT_MS} ms`);
}
