// MQTT clients in the lab's namespaces (servers/mqtt-client.ts), for the lab
// tests and the demo.
import { ADDR, NODE24, REPO_ROOT, waitFor, type Lab, type LabProcess } from './lab.ts';
import type { Host } from './topology.ts';

export const BROKER = `mqtt://${ADDR.vmTunnel.v4}:1883`;
const CLIENT = `${REPO_ROOT}/test/lab/servers/mqtt-client.ts`;

export interface MqttEvent {
  event: string;
  topic?: string;
  payload?: string;
  retain?: boolean;
  granted?: number[];
  message?: string;
  code?: number | string | null;
}

export interface MqttUser {
  name: string;
  password: string;
}

export const eventsOf = (p: LabProcess): MqttEvent[] =>
  p
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as MqttEvent);

export const messagesOf = (p: LabProcess) => eventsOf(p).filter((e) => e.event === 'message');

/** The last payload `p` received on `topic`. */
export const lastOn = (p: LabProcess, topic: string): string | undefined =>
  messagesOf(p)
    .filter((m) => m.topic === topic)
    .at(-1)?.payload;

let started = 0;
/** An MQTT client in `host` that runs `steps` (see servers/mqtt-client.ts); as `user` when given (else a tunnel peer). */
export function mqttClient(lab: Lab, host: Host, id: string, steps: string[], user?: MqttUser): LabProcess {
  const env: Record<string, string> = user ? { MQTT_USERNAME: user.name, MQTT_PASSWORD: user.password } : {};
  return lab.spawn(host, [NODE24, CLIENT, BROKER, id, ...steps], { env, logFile: `mqtt-${id}-${++started}.log` });
}

/** Waits (bounded) for a client to end; spawned processes are unref'd, so this also keeps the caller alive. */
export async function finished(p: LabProcess, timeoutMs = 30_000): Promise<number | null> {
  await waitFor(`${p.argv[3]} to finish`, () => p.exit !== null, { timeoutMs, intervalMs: 50 });
  return p.exit!.code;
}

/** Runs a client to its end; throws when it did not end well. */
export async function mqttRun(lab: Lab, host: Host, id: string, steps: string[], user?: MqttUser): Promise<MqttEvent[]> {
  const p = mqttClient(lab, host, id, steps, user);
  const code = await finished(p);
  if (code !== 0) throw new Error(`MQTT client ${id} ended with ${code}: ${p.output().slice(-400)}`);
  return eventsOf(p);
}

/** Until `p` has seen what `ok` looks for (bounded). */
export async function seenBy(p: LabProcess, what: string, ok: (e: MqttEvent[]) => boolean, timeoutMs = 10_000): Promise<void> {
  await waitFor(what, () => ok(eventsOf(p)), { timeoutMs, intervalMs: 50 });
}

/** `aerie-cloud mqtt add-user NAME`: the password it printed once. */
export function passwordIn(stdout: string): string {
  const password = /^password: (\S+)$/m.exec(stdout)?.[1];
  if (!password) throw new Error(`mqtt add-user printed no password: ${stdout}`);
  return password;
}
