import { createConnection } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectFrom, GATEWAY, inbox, mqttVms, OWNER, portOf, sleep, subscribe, VM, within } from './lib/mqtt-broker-env.ts';

// What aedes does for us, checked through our broker: retained messages and
// persistent sessions across a restart, QoS 2, wills, keep-alive.

const freshVm = mqttVms(test, 'mqtt-session');

test('retained messages and QoS 1 messages queued for a persistent session survive a broker restart', async () => {
  const vm = freshVm();
  let broker = await vm.start();
  const router = await connectFrom(portOf(broker), GATEWAY, { clientId: 'router' });
  const phone = await connectFrom(portOf(broker), OWNER, { clientId: 'phone', clean: false });
  assert.equal(await subscribe(phone, ['aerie/gw/home/#']), [1]);
  phone.end(true);
  await router.publishAsync('aerie/gw/home/state', 'online', { qos: 1, retain: true });
  for (let i = 0; i < 5; i++) await router.publishAsync('aerie/gw/home/event', `e${i}`, { qos: 1 });
  router.end(true);
  await broker.close();

  broker = await vm.start(); // same mqtt.db
  const back = await connectFrom(portOf(broker), OWNER, { clientId: 'phone', clean: false });
  assert.ok(back.connected);
  const box = inbox(back);
  const queued = await box.wait(6);
  assert.equal(
    queued.map((m) => `${m.topic}=${m.payload}`),
    ['aerie/gw/home/state=online', 'aerie/gw/home/event=e0', 'aerie/gw/home/event=e1', 'aerie/gw/home/event=e2', 'aerie/gw/home/event=e3', 'aerie/gw/home/event=e4'],
  );
  // The session's subscription is back too: new messages arrive without subscribing again.
  await broker.publish('aerie/gw/home/event', 'after', { qos: 1 });
  await box.wait(7);
  // A new client gets the retained state.
  const fresh = await connectFrom(portOf(broker), OWNER, { clientId: 'fresh' });
  const freshBox = inbox(fresh);
  await subscribe(fresh, ['aerie/gw/+/state']);
  assert.equal(await freshBox.wait(1), [{ topic: 'aerie/gw/home/state', payload: 'online', retain: true, qos: 1 }]);
});

test('a persistent session resumes: sessionPresent, its subscriptions and its missed messages; a clean one starts empty', async () => {
  const vm = freshVm();
  const broker = await vm.start();
  const port = portOf(broker);
  const first = await connectFrom(port, OWNER, { clientId: 'phone', clean: false });
  await subscribe(first, ['home/#'], 2);
  first.end(true);
  const pub = await connectFrom(port, OWNER, { clientId: 'publisher' });
  await pub.publishAsync('home/a', 'one', { qos: 1 });
  await pub.publishAsync('home/b', 'two', { qos: 2 });
  await pub.publishAsync('home/c', 'lost', { qos: 0 }); // QoS 0 is not queued for an offline client

  const again = await connectFrom(port, OWNER, { clientId: 'phone', clean: false });
  const box = inbox(again);
  const got = await box.wait(2);
  await sleep(100);
  assert.equal(got.map((m) => `${m.topic}=${m.payload}@${m.qos}`), ['home/a=one@1', 'home/b=two@2']);

  const clean = await connectFrom(port, OWNER, { clientId: 'phone', clean: true });
  const cleanBox = inbox(clean);
  await pub.publishAsync('home/a', 'nobody', { qos: 1 });
  await sleep(200);
  assert.is(cleanBox.got.length, 0, 'a clean session drops the old subscriptions (MQTT-3.1.2-6)');
});

test('QoS 0, 1 and 2 are delivered at the lower of the publish and subscription QoS, QoS 2 exactly once', async () => {
  const vm = freshVm();
  const broker = await vm.start();
  const port = portOf(broker);
  const sub = await connectFrom(port, OWNER, { clientId: 'sub' });
  const box = inbox(sub);
  await subscribe(sub, ['home/q2/#'], 2);
  await subscribe(sub, ['home/q1/#'], 1);
  const pub = await connectFrom(port, OWNER, { clientId: 'pub' });
  for (const qos of [0, 1, 2] as const) {
    await pub.publishAsync(`home/q2/${qos}`, 'x', { qos });
    await pub.publishAsync(`home/q1/${qos}`, 'x', { qos });
  }
  const got = await box.wait(6);
  await sleep(150);
  assert.is(got.length, 6);
  const qosOf = Object.fromEntries(got.map((m) => [m.topic, m.qos]));
  assert.equal(qosOf, { 'home/q2/0': 0, 'home/q1/0': 0, 'home/q2/1': 1, 'home/q1/1': 1, 'home/q2/2': 2, 'home/q1/2': 1 });
});

test('the will is published when a client vanishes without DISCONNECT, not when it disconnects properly', async () => {
  const vm = freshVm();
  const broker = await vm.start();
  const port = portOf(broker);
  const watcher = await connectFrom(port, OWNER, { clientId: 'watcher' });
  const box = inbox(watcher);
  await subscribe(watcher, ['aerie/gw/home/state']);
  const will = { topic: 'aerie/gw/home/state', payload: Buffer.from('offline'), qos: 1 as const, retain: true };
  const polite = await connectFrom(port, GATEWAY, { clientId: 'router', will });
  await polite.endAsync(); // DISCONNECT: the will is discarded (MQTT-3.14.4-3)
  await sleep(200);
  assert.is(box.got.length, 0);

  const router = await connectFrom(port, GATEWAY, { clientId: 'router', will });
  await router.publishAsync('aerie/gw/home/state', 'online', { qos: 1, retain: true });
  (router as unknown as { stream: { destroy(): void } }).stream.destroy(); // the socket just goes away
  const got = await box.wait(2);
  assert.equal(got.map((m) => m.payload), ['online', 'offline']);
  // Retained: whoever asks later learns the router is offline.
  const late = await connectFrom(port, OWNER, { clientId: 'late' });
  const lateBox = inbox(late);
  await subscribe(late, ['aerie/gw/home/state']);
  assert.equal((await lateBox.wait(1))[0]!.payload, 'offline');
});

test('a client that stays silent past 1.5 × its keep-alive is disconnected and its will published (MQTT-3.1.2-24)', async () => {
  const vm = freshVm();
  const broker = await vm.start();
  const port = portOf(broker);
  const watcher = await connectFrom(port, OWNER, { clientId: 'watcher' });
  const box = inbox(watcher);
  await subscribe(watcher, ['aerie/gw/home/state']);
  // A raw CONNECT with keep-alive 1 s and a will, then silence.
  const socket = createConnection({ host: VM, port, localAddress: GATEWAY });
  vm.track(() => socket.destroy());
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.resume(); // read (and ignore) the CONNACK, so that the end of the stream is seen
  socket.write(connectPacket('silent', 1, 'aerie/gw/home/state', 'lost'));
  const got = await box.wait(1, 4000);
  assert.equal(got[0]!.payload, 'lost');
  await within(2000, 'the broker closes the socket', closed);
  assert.is(broker.stats().clients, 1);
});

/** An MQTT 3.1.1 CONNECT (§3.1) with a QoS 0 will, built by hand. */
function connectPacket(clientId: string, keepAlive: number, willTopic: string, willMessage: string): Buffer {
  const str = (s: string) => {
    const b = Buffer.from(s);
    return Buffer.concat([Buffer.from([b.length >> 8, b.length & 0xff]), b]);
  };
  const body = Buffer.concat([
    str('MQTT'),
    Buffer.from([4, 0b0000_0110, keepAlive >> 8, keepAlive & 0xff]), // level 4; will flag, clean session
    str(clientId),
    str(willTopic),
    str(willMessage),
  ]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

test.run();
