import { DatabaseSync } from 'node:sqlite';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectFrom, GATEWAY, inbox, mqttVms, OWNER, portOf, sleep, STRANGER, subscribe } from './lib/mqtt-broker-env.ts';

// The topic rules of core (cloud/core/mqtt-access.ts) enforced by the broker:
// a denied PUBLISH is acknowledged and dropped (MQTT-3.3.5-2), a denied filter
// gets 0x80 in the SUBACK (MQTT v3.1.1 §3.9.3); the connection stays up.

const freshVm = mqttVms(test, 'mqtt-acl');

async function plugAndPhone() {
  const vm = freshVm();
  const { password } = await vm.core.mqtt.users.add({ name: 'plug' });
  const broker = await vm.start();
  const port = portOf(broker);
  const plug = await connectFrom(port, STRANGER, { clientId: 'plug', username: 'plug', password });
  const phone = await connectFrom(port, OWNER, { clientId: 'phone' });
  return { vm, broker, port, plug, phone, password };
}

test('a device publishes under its prefix; elsewhere its publishes are dropped and counted, and it stays connected', async () => {
  const { broker, plug, phone } = await plugAndPhone();
  const watcher = inbox(phone);
  assert.equal(await subscribe(phone, ['home/#']), [1]);
  await plug.publishAsync('home/plug/state', 'on', { qos: 1 });
  await plug.publishAsync('home/lamp/state', 'forged', { qos: 1 }); // PUBACK all the same
  await plug.publishAsync('home/lamp/state', 'forged', { qos: 0 });
  await plug.publishAsync('home/lamp/state', 'forged', { qos: 2 });
  await plug.publishAsync('aerie/gw/home/cmd/reboot', 'forged', { qos: 1 });
  await plug.publishAsync('home/plug/state', 'off', { qos: 0 });
  assert.ok(plug.connected, 'still connected');
  const got = await watcher.wait(2);
  await sleep(100);
  assert.equal(got.map((m) => `${m.topic}=${m.payload}`), ['home/plug/state=on', 'home/plug/state=off']);
  assert.is(broker.stats().deniedPublishes, 4);
  assert.is(broker.stats().clients, 2);
});

test('a denied retained publish does not replace the retained message', async () => {
  const { port, plug } = await plugAndPhone();
  const router = await connectFrom(port, GATEWAY, { clientId: 'router' });
  await router.publishAsync('aerie/gw/home/state', 'online', { qos: 1, retain: true });
  await plug.publishAsync('aerie/gw/home/state', 'offline', { qos: 1, retain: true });
  const late = await connectFrom(port, OWNER, { clientId: 'late' });
  const box = inbox(late);
  await subscribe(late, ['aerie/gw/home/state']);
  const [m] = await box.wait(1);
  assert.equal(m, { topic: 'aerie/gw/home/state', payload: 'online', retain: true, qos: 1 });
});

test('one SUBSCRIBE with an allowed and a denied filter: 0x80 for the denied one, the allowed one works', async () => {
  const { vm, broker, port, plug, phone } = await plugAndPhone();
  const box = inbox(plug);
  assert.equal(await subscribe(plug, ['home/plug/#', 'home/lamp/#', '#', '$SYS/#']), [1, 128, 128, 128]);
  assert.is(broker.stats().deniedSubscriptions, 3);
  await phone.publishAsync('home/lamp/state', 'secret', { qos: 1 });
  await phone.publishAsync('home/plug/set', 'on', { qos: 1 });
  const got = await box.wait(1);
  await sleep(100);
  assert.equal(got.map((m) => m.topic), ['home/plug/set']);
  assert.ok(plug.connected);
  // The router reads only its own tree.
  const router = await connectFrom(port, GATEWAY, { clientId: 'router' });
  assert.equal(await subscribe(router, ['aerie/gw/home/cmd/#', 'aerie/gw/other/#', 'home/#']), [1, 128, 128]);
});

test("a grant opens another device's topics, for reading or writing; revoking it closes them again", async () => {
  const { vm, broker, plug, phone } = await plugAndPhone();
  vm.core.mqtt.grants.grant({ name: 'plug', action: 'read', filter: 'home/sun/#' });
  vm.core.mqtt.grants.grant({ name: 'plug', action: 'write', filter: 'home/lamp/set' });
  const plugBox = inbox(plug);
  const phoneBox = inbox(phone);
  assert.equal(await subscribe(plug, ['home/sun/#', 'home/sun/elevation', 'home/moon/#']), [1, 1, 128]);
  await subscribe(phone, ['home/lamp/#']);
  await phone.publishAsync('home/sun/elevation', '42', { qos: 1 });
  await plug.publishAsync('home/lamp/set', 'on', { qos: 1 });
  await plug.publishAsync('home/lamp/other', 'no', { qos: 1 });
  // Overlapping subscriptions: aedes sends one copy (MQTT v3.1.1 §3.3.5 allows one or several).
  assert.equal((await plugBox.wait(1)).map((m) => m.payload), ['42']);
  assert.equal((await phoneBox.wait(1)).map((m) => `${m.topic}=${m.payload}`), ['home/lamp/set=on']);
  assert.is(broker.stats().deniedPublishes, 1);

  vm.core.mqtt.grants.revoke({ name: 'plug', action: 'read', filter: 'home/sun/#' });
  vm.core.mqtt.grants.revoke({ name: 'plug', action: 'write', filter: 'home/lamp/set' });
  await sleep(2100); // read and publish decisions are reused for up to 2 s
  await phone.publishAsync('home/sun/elevation', '43', { qos: 1 });
  await plug.publishAsync('home/lamp/set', 'off', { qos: 1 });
  await sleep(200);
  assert.is(plugBox.got.length, 1, 'no delivery after the revoke, although the subscription is still there');
  assert.is(phoneBox.got.length, 1, 'no publish after the revoke');
  assert.is(broker.stats().deniedPublishes, 2);
});

test('the VM publishes commands to a router; nobody else may, not even the owner', async () => {
  const { broker, port, phone } = await plugAndPhone();
  const router = await connectFrom(port, GATEWAY, { clientId: 'router' });
  const box = inbox(router);
  assert.equal(await subscribe(router, ['aerie/gw/home/cmd/#']), [1]);
  await phone.publishAsync('aerie/gw/home/cmd/reboot', 'forged', { qos: 1 });
  await router.publishAsync('aerie/gw/home/cmd/reboot', 'self', { qos: 1 });
  await broker.publish('aerie/gw/home/cmd/sync', '{"reason":"devices"}', { qos: 1 });
  const got = await box.wait(1);
  await sleep(100);
  assert.equal(got, [{ topic: 'aerie/gw/home/cmd/sync', payload: '{"reason":"devices"}', retain: false, qos: 1 }]);
  assert.is(broker.stats().deniedPublishes, 2);
  let invalid: unknown;
  await broker.publish('aerie/gw/+/cmd', 'x').catch((e: unknown) => (invalid = e));
  assert.instance(invalid, Error, 'no wildcards in a topic name');
});

test('a persistent session keeps only its allowed subscriptions: nothing denied is queued while it is away', async () => {
  const { vm, port, plug, phone, password } = await plugAndPhone();
  const sub = await connectFrom(port, STRANGER, { clientId: 'plug-sub', username: 'plug', password, clean: false });
  assert.equal(await subscribe(sub, ['home/plug/#', 'home/lamp/#']), [1, 128]);
  sub.end(true);
  await phone.publishAsync('home/lamp/state', 'secret', { qos: 1 });
  await phone.publishAsync('home/plug/set', 'queued', { qos: 1 });
  const back = await connectFrom(port, STRANGER, { clientId: 'plug-sub', username: 'plug', password, clean: false });
  const box = inbox(back);
  const got = await box.wait(1);
  await sleep(200);
  assert.equal(got.map((m) => `${m.topic}=${m.payload}`), ['home/plug/set=queued']);
  assert.ok(plug.connected);
  const db = new DatabaseSync(vm.dbPath, { readOnly: true });
  try {
    const stored = db.prepare("SELECT topic FROM subscriptions WHERE client_id = 'plug-sub'").all();
    assert.equal(stored.map((r) => r['topic']), ['home/plug/#'], 'the denied filter was never stored');
  } finally {
    db.close();
  }
});

test.run();
