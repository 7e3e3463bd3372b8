// Lab: MQTT for the home. An IoT device behind the router publishes with its
// own credentials through the tunnel, the phone (a tunnel peer, known by its
// address) receives it, a device cannot touch another's topics, retained
// messages outlive a broker restart, and the router's own state and
// availability are on the broker: "offline" when its daemon is killed,
// "online" when it is back, and a change the owner makes on the VM reaches it
// through a command.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ADDR, createLab, waitFor, type Lab } from './lib/lab.ts';
import { pairedAerie, type Aerie } from './lib/aerie.ts';
import { eventsOf, finished, lastOn, messagesOf, mqttClient, mqttRun, passwordIn, seenBy, type MqttUser } from './lib/mqtt.ts';
import type { Host } from './lib/topology.ts';

let lab: Lab | undefined;
let aerie: Aerie;
const users: Record<string, MqttUser> = {};

const client = (host: Host, id: string, steps: string[], user?: MqttUser) => mqttClient(lab!, host, id, steps, user);
const run = (host: Host, id: string, steps: string[], user?: MqttUser) => mqttRun(lab!, host, id, steps, user);

test.after(async () => {
  await lab?.destroy();
});

test('set up: paired router, a phone, and two MQTT users for devices at home', async () => {
  lab = await createLab({ lockWaitMs: 180_000 });
  aerie = await pairedAerie(lab);
  await aerie.addPhone();
  for (const name of ['plug', 'sensor']) {
    users[name] = { name, password: passwordIn((await aerie.cloudCli(['mqtt', 'add-user', name])).stdout) };
  }
});

test('a device at home publishes with its credentials through the tunnel; the phone receives it', async () => {
  const phone = client('phone', 'phone-watch', ['sub:home/#', 'wait:2']);
  await seenBy(phone, 'the phone to subscribe', (e) => e.some((x) => x.event === 'suback'));
  assert.equal(eventsOf(phone).find((x) => x.event === 'suback')?.granted, [1], 'an owner reads home/#');
  const plug = await run('lan', 'plug', ['pubr:home/plug/power=on', 'pub:home/plug/watts=42'], users['plug']);
  assert.equal(plug.filter((e) => e.event === 'puback').map((e) => e.topic), ['home/plug/power', 'home/plug/watts']);
  assert.is(await finished(phone), 0, phone.output());
  assert.equal(messagesOf(phone).map((m) => `${m.topic}=${m.payload}`), ['home/plug/power=on', 'home/plug/watts=42']);

  const wrong = client('lan', 'plug-wrong', ['pub:home/plug/power=off'], { name: 'plug', password: 'not-the-password' });
  assert.is(await finished(wrong), 1);
  const error = eventsOf(wrong).find((e) => e.event === 'error');
  assert.is(error?.code, 4, `a wrong password is refused with CONNACK 4: ${wrong.output()}`);
  const laptopAsPeer = client('lan', 'no-credentials', ['sub:home/#']);
  assert.is(await finished(laptopAsPeer), 1, 'a device at home is no tunnel peer: without credentials it is refused');
  assert.is(eventsOf(laptopAsPeer).find((e) => e.event === 'error')?.code, 5);
});

test('a device cannot read or write another device\'s topics, and its connection stays up', async () => {
  const sensor = client('lan', 'sensor', ['sub:home/sensor/#', 'hold'], users['sensor']);
  try {
    await seenBy(sensor, 'the sensor to subscribe', (e) => e.some((x) => x.event === 'suback'));
    // The broker sees the device at its home address: the router routes the LAN through the tunnel, no NAT.
    const who = JSON.parse((await aerie.cloudCli(['mqtt', 'clients', '--json'])).stdout) as { clients: { caller: string; address: string }[] };
    assert.ok(who.clients.some((c) => c.caller === 'user:sensor' && c.address === ADDR.laptop.v4), JSON.stringify(who.clients));
    const plug = await run('lan', 'plug', ['sub:home/sensor/#', 'pub:home/sensor/temp=99', 'sub:home/plug/#', 'pub:home/plug/alive=yes', 'wait:2'], users['plug']);
    assert.equal(plug.filter((e) => e.event === 'suback').map((e) => e.granted), [[128], [1]], 'refused, then its own granted on the same connection');
    const closedAt = plug.findIndex((e) => e.event === 'close');
    assert.ok(closedAt === -1 || closedAt > plug.map((e) => e.event).lastIndexOf('message'), 'not disconnected before its own end');
    assert.ok(plug.some((e) => e.event === 'message' && e.topic === 'home/plug/alive'), 'its own topic works after the denials');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(messagesOf(sensor), [], 'the forged temperature never reached the sensor\'s topic');
  } finally {
    await lab!.stop(sensor);
  }
  const { stdout } = await aerie.cloudCli(['mqtt', 'clients', '--json']);
  const { stats } = JSON.parse(stdout) as { stats: { deniedPublishes: number; deniedSubscriptions: number } };
  assert.ok(stats.deniedPublishes >= 1 && stats.deniedSubscriptions >= 1, JSON.stringify(stats));
});

test('the router publishes its state, and a change the owner makes on the VM reaches it through a command', async () => {
  const watch = client('phone', 'router-watch', ['sub:aerie/gw/home/#', 'hold']);
  try {
    await seenBy(watch, 'the router to be online with its state', () => lastOn(watch, 'aerie/gw/home/availability') === 'online' && lastOn(watch, 'aerie/gw/home/state') !== undefined);
    const state = JSON.parse(lastOn(watch, 'aerie/gw/home/state')!) as { tunnel: string; killSwitch: boolean; blocking: boolean | null; wan: { up: boolean } };
    assert.is(state.tunnel, 'up');
    assert.is(state.killSwitch, true);
    assert.is(state.wan.up, true);
    await seenBy(watch, 'ad blocking to be known', () => JSON.parse(lastOn(watch, 'aerie/gw/home/state')!).blocking === true);

    const started = Date.now();
    await aerie.cloudCli(['dns', 'device', 'home', 'off']);
    await seenBy(watch, 'the router to publish blocking off', () => JSON.parse(lastOn(watch, 'aerie/gw/home/state')!).blocking === false);
    console.log(`  lab: the router published the owner's change ${Date.now() - started} ms after the CLI call began`);
    const status = JSON.parse((await aerie.gatewayCli(['status', '--json'])).stdout) as { vm: { settings: { blocking: boolean } } };
    assert.is(status.vm.settings.blocking, false, 'aerie-gateway status shows it too');
    await aerie.cloudCli(['dns', 'device', 'home', 'on']);
    await seenBy(watch, 'and on again', () => JSON.parse(lastOn(watch, 'aerie/gw/home/state')!).blocking === true);
  } finally {
    await lab!.stop(watch);
  }
  const ha = await run('phone', 'ha', ['sub:homeassistant/+/aerie_home/+/config', 'wait:4']);
  const configs = ha.filter((e) => e.event === 'message');
  assert.is(configs.length, 4, 'Home Assistant finds the router without setup');
  assert.ok(configs.every((m) => m.retain && JSON.parse(m.payload!).state_topic === 'aerie/gw/home/state'));
});

test('retained messages outlive a broker restart', async () => {
  await aerie.stopCloud();
  await aerie.startCloud();
  // The phone finds the restarted VM on its own WireGuard timers (a new handshake within about 20 s).
  await waitFor('the phone to reach the VM again', async () => (await lab!.fetch('phone', `http://${ADDR.vmTunnel.v4}/v1/health`, { timeoutMs: 1000 })).ok, {
    timeoutMs: 45_000,
    intervalMs: 250,
  });
  const after = await run('phone', 'after-restart', ['sub:home/plug/power', 'wait:1']);
  assert.equal(after.filter((e) => e.event === 'message').map((m) => `${m.topic}=${m.payload} retained=${m.retain}`), ['home/plug/power=on retained=true']);
  // And on the VM itself, for debugging.
  const sub = await aerie.cloudCli(['mqtt', 'sub', 'home/plug/+', '--count', '1']);
  assert.is(sub.stdout, 'home/plug/power [retained] on\n');
});

test('the router\'s availability: offline when its daemon is killed, online when it returns', async () => {
  const watch = client('phone', 'availability', ['sub:aerie/gw/home/availability', 'hold']);
  try {
    // After the broker restart the router reconnects by itself (its back-off is at most 30 s).
    await seenBy(watch, 'the router back on the restarted broker', () => lastOn(watch, 'aerie/gw/home/availability') === 'online', 45_000);
    const before = messagesOf(watch).length;
    await lab!.kill9(aerie.gateway!);
    // The broker publishes the last will when the connection drops, or at the latest 1.5 keep-alives (45 s) later.
    await seenBy(watch, 'the last will: offline', () => messagesOf(watch).length > before && lastOn(watch, 'aerie/gw/home/availability') === 'offline', 60_000);
    await aerie.startGateway();
    await seenBy(watch, 'online again', () => lastOn(watch, 'aerie/gw/home/availability') === 'online', 30_000);
  } finally {
    await lab!.stop(watch);
  }
});

test.run();
