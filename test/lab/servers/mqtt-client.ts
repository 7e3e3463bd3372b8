// An MQTT client for the lab (MQTT.js), run inside a namespace:
//   mqtt-client URL CLIENT-ID STEP...
// Steps, in order: "sub:FILTER" (prints the SUBACK codes), "pub:TOPIC=PAYLOAD"
// or "pubr:TOPIC=PAYLOAD" (retained; QoS 1, prints "puback"), "wait:N" (until
// N messages came), "hold" (stay connected until stopped). Every event is one
// JSON line. A user name and password come from MQTT_USERNAME and
// MQTT_PASSWORD (never argv). Gives up after MQTT_TIMEOUT_MS (default 20 s)
// unless holding; exits with the test if the test dies.
import { connectAsync } from 'mqtt';

const [url, clientId, ...steps] = process.argv.slice(2);
if (!url || !clientId || steps.length === 0) {
  console.error('usage: mqtt-client URL CLIENT-ID STEP...');
  process.exit(2);
}
const say = (event: string, fields: Record<string, unknown> = {}) => console.log(JSON.stringify({ event, ...fields }));
const timeoutMs = Number(process.env['MQTT_TIMEOUT_MS'] ?? 20_000);

let messages = 0;
const giveUp = setTimeout(() => {
  say('timeout');
  process.exit(3);
}, timeoutMs);

try {
  const client = await connectAsync(url, {
    clientId,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5000,
    ...(process.env['MQTT_USERNAME'] && { username: process.env['MQTT_USERNAME'], password: process.env['MQTT_PASSWORD'] ?? '' }),
  });
  say('connack');
  client.on('message', (topic, payload, packet) => {
    messages++;
    say('message', { topic, payload: payload.toString(), retain: packet.retain });
  });
  client.on('close', () => say('close'));
  for (const step of steps) {
    const colon = step.indexOf(':');
    const kind = colon < 0 ? step : step.slice(0, colon);
    const arg = colon < 0 ? '' : step.slice(colon + 1);
    if (kind === 'sub') {
      const granted = await client.subscribeAsync(arg, { qos: 1 }).catch((e: { packet?: { granted?: number[] } }) => e.packet?.granted?.map((qos) => ({ qos })) ?? []);
      say('suback', { filter: arg, granted: granted.map((g) => g.qos) });
    } else if (kind === 'pub' || kind === 'pubr') {
      const at = arg.indexOf('=');
      await client.publishAsync(arg.slice(0, at), arg.slice(at + 1), { qos: 1, retain: kind === 'pubr' });
      say('puback', { topic: arg.slice(0, at) });
    } else if (kind === 'wait') {
      while (messages < Number(arg)) await new Promise((r) => setTimeout(r, 20));
    } else if (kind === 'hold') {
      clearTimeout(giveUp);
      setInterval(() => {
        if (process.ppid === 1) process.exit(0);
      }, 1000);
      process.on('SIGTERM', () => client.end(false, {}, () => process.exit(0)));
      await new Promise(() => {});
    } else {
      throw new Error(`unknown step ${step}`);
    }
  }
  await client.endAsync();
  say('done');
  process.exit(0);
} catch (e) {
  say('error', { message: (e as Error).message, code: (e as { code?: unknown }).code ?? null });
  process.exit(1);
}
