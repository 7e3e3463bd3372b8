import { createConnection, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectFrom, GATEWAY, inbox, mqttVms, OWNER, portOf, STRANGER, subscribe, VM } from './lib/mqtt-broker-env.ts';
import { connectPacket, mutate, prng, validPacket } from './lib/mqtt-fuzz-packets.ts';

// Random and mutated packets over raw TCP: the broker closes the connections
// that send nonsense, never crashes, and serves normal clients afterwards.

const freshVm = mqttVms(test, 'mqtt-fuzz');

const CONNECTIONS = 250;
const PACKETS_PER_CONNECTION = 24; // 6,000 packets in all
const PARALLEL = 10;
const DEADLINE_MS = 30_000;
/** How long a connection may stay open after its packets were sent. */
const LINGER_MS = 150;

test(`${CONNECTIONS * PACKETS_PER_CONNECTION} fuzzed packets do not bring the broker down`, async () => {
  const vm = freshVm();
  const { password } = await vm.core.mqtt.users.add({ name: 'plug' });
  const broker = await vm.start({ limits: { maxPacketBytes: 16 * 1024 } });
  const port = portOf(broker);
  const seed = Number(process.env['AERIE_FUZZ_SEED'] ?? Date.now() % 1_000_000);
  const r = prng(seed);
  const open = new Set<Socket>();
  vm.track(() => open.forEach((s) => s.destroy()));
  const deadline = Date.now() + DEADLINE_MS;
  let sent = 0;
  let closedByBroker = 0;

  async function one(n: number): Promise<void> {
    const from = r.pick([OWNER, GATEWAY, STRANGER]);
    const socket = createConnection({ host: VM, port, localAddress: from });
    open.add(socket);
    socket.on('error', () => {});
    socket.resume();
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await Promise.race([new Promise((resolve) => socket.once('connect', resolve)), closed]);
    // Mostly a good CONNECT first, so that the packets after it reach the handlers behind the login.
    const login = connectPacket(`fuzz-${n}`, { clean: r.int(4) !== 0, keepAlive: r.int(60), ...(from === STRANGER ? { username: 'plug', password } : {}) });
    const packets = [r.int(5) === 0 ? mutate(r, login) : login];
    // Some connections mutate little, so that most of their packets get past the parser.
    const rate = r.pick([0.02, 0.1, 0.4]);
    for (let i = 1; i < PACKETS_PER_CONNECTION; i++) {
      const p = validPacket(r);
      packets.push(r.next() < rate ? mutate(r, p) : p);
    }
    for (const p of packets) {
      if (socket.destroyed) break;
      socket.write(p);
    }
    sent += packets.length;
    const lingered = await Promise.race([closed.then(() => true), new Promise((resolve) => setTimeout(resolve, LINGER_MS, false))]);
    if (lingered) closedByBroker++;
    socket.destroy();
    await closed;
    open.delete(socket);
  }

  let next = 0;
  const workers = Array.from({ length: PARALLEL }, async () => {
    while (next < CONNECTIONS && Date.now() < deadline) await one(next++);
  });
  await Promise.all(workers);
  assert.ok(sent >= 5000, `seed ${seed}: only ${sent} packets went out before the deadline`);
  assert.ok(closedByBroker > 0, `seed ${seed}: the broker closed some of the nonsense`);

  // Still serving: a normal client logs in, subscribes, publishes and receives.
  const phone = await connectFrom(port, OWNER, { clientId: 'after-fuzz' });
  const box = inbox(phone);
  assert.equal(await subscribe(phone, ['home/after/#']), [1], `seed ${seed}`);
  await phone.publishAsync('home/after/fuzz', 'alive', { qos: 1 });
  assert.equal((await box.wait(1)).map((m) => m.payload), ['alive'], `seed ${seed}`);
  // Every fuzz connection is gone from the broker's table.
  const until = Date.now() + 3000;
  while (broker.stats().clients > 1 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.is(broker.stats().clients, 1, `seed ${seed}`);
});

test.run();
