import { createConnection, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectFrom, inbox, mqttVms, OWNER, MEMBER, portOf, sleep, subscribe, VM, within } from './lib/mqtt-broker-env.ts';

// Limits against misuse: packet size, open connections, connection rate per
// source, topic depth, malformed input. Each closes the offending connection
// only.

const freshVm = mqttVms(test, 'mqtt-limits');

/** A raw TCP connection to the broker from `from`; resolves once connected. */
async function rawSocket(vm: ReturnType<typeof freshVm>, port: number, from = OWNER): Promise<Socket> {
  const socket = createConnection({ host: VM, port, localAddress: from });
  vm.track(() => socket.destroy());
  socket.on('error', () => {});
  await within(3000, 'raw connect', new Promise((resolve) => socket.once('connect', resolve)));
  socket.resume();
  return socket;
}

const closedWithin = (socket: Socket, ms: number) =>
  within(ms, 'the broker closes the connection', new Promise((resolve) => (socket.destroyed ? resolve(true) : socket.once('close', resolve))));

test('a packet over maxPacketBytes closes that connection, before its body arrives; others carry on', async () => {
  const vm = freshVm();
  const broker = await vm.start({ limits: { maxPacketBytes: 64 * 1024 } });
  const port = portOf(broker);
  const watcher = await connectFrom(port, OWNER, { clientId: 'watcher' });
  const box = inbox(watcher);
  await subscribe(watcher, ['home/#']);
  const big = await connectFrom(port, OWNER, { clientId: 'big' });
  const closed = new Promise<void>((resolve) => big.once('close', () => resolve()));
  big.publish('home/big', Buffer.alloc(70 * 1024), { qos: 0 });
  await within(3000, 'the big client is closed', closed);
  assert.match(vm.logs.join('\n'), /closed the connection from 127\.77\.0\.3: it sent a packet of 71\d\d\d bytes, more than the 65536 allowed/);

  // Only the header of a 200 MB PUBLISH: refused on its length alone.
  const raw = await rawSocket(vm, port);
  raw.write(connect('raw'));
  await sleep(100);
  raw.write(Buffer.from([0x30, 0x80, 0x80, 0x80, 0x64]));
  await closedWithin(raw, 2000);

  // Just under the limit is fine, and the watcher was never disturbed.
  const ok = await connectFrom(port, OWNER, { clientId: 'ok' });
  await ok.publishAsync('home/fits', Buffer.alloc(60 * 1024), { qos: 1 });
  const got = await box.wait(1);
  assert.equal(got.map((m) => m.topic), ['home/fits']);
  assert.ok(watcher.connected);
});

test('beyond maxClients a connection is closed before its CONNECT; a closed one makes room', async () => {
  const vm = freshVm();
  const broker = await vm.start({ limits: { maxClients: 3 } });
  const port = portOf(broker);
  const clients = [];
  for (let i = 0; i < 3; i++) clients.push(await connectFrom(port, OWNER, { clientId: `c${i}` }));
  const extra = await rawSocket(vm, port);
  await closedWithin(extra, 2000);
  assert.is(broker.stats().refusedConnections, 1);
  assert.match(vm.logs.at(-1)!, /refused a connection from 127\.77\.0\.3: 3 connections are open, the most allowed/);
  await clients[0]!.endAsync();
  await sleep(100);
  await connectFrom(port, OWNER, { clientId: 'c3' });
  assert.is(broker.stats().clients, 3);
});

test('more than connectionsPerMinutePerSource new connections from one address are closed; another address is not affected', async () => {
  const vm = freshVm();
  const broker = await vm.start({ limits: { connectionsPerMinutePerSource: 5 } });
  const port = portOf(broker);
  for (let i = 0; i < 5; i++) (await connectFrom(port, OWNER, { clientId: `p${i}` })).end(true);
  const sixth = await rawSocket(vm, port, OWNER);
  await closedWithin(sixth, 2000);
  assert.match(vm.logs.at(-1)!, /refused a connection from 127\.77\.0\.3: more than 5 connections a minute from 127\.77\.0\.3/);
  const lines = vm.logs.length;
  await closedWithin(await rawSocket(vm, port, OWNER), 2000);
  assert.is(broker.stats().refusedConnections, 2);
  assert.is(vm.logs.length, lines, 'one line a minute per source, not one per refusal');
  await connectFrom(port, MEMBER, { clientId: 'guest' });
});

test('a topic deeper than maxTopicLevels closes the connection; garbage closes only the connection that sent it', async () => {
  const vm = freshVm();
  const broker = await vm.start();
  const port = portOf(broker);
  const watcher = await connectFrom(port, OWNER, { clientId: 'watcher' });
  const box = inbox(watcher);
  await subscribe(watcher, ['home/#']);

  const deep = await connectFrom(port, OWNER, { clientId: 'deep' });
  const closed = new Promise<void>((resolve) => deep.once('close', () => resolve()));
  deep.publish(`home/${'a/'.repeat(40)}x`, 'x', { qos: 0 });
  await within(3000, 'the deep client is closed', closed);

  for (const garbage of [Buffer.from('GET / HTTP/1.1\r\n\r\n'), Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]), Buffer.from([0xf0, 0x00])]) {
    const raw = await rawSocket(vm, port);
    raw.write(garbage);
    await closedWithin(raw, 2000);
  }
  // A PUBLISH before CONNECT (MQTT-3.1.0-1) and a second CONNECT (MQTT-3.1.0-2).
  const early = await rawSocket(vm, port);
  early.write(Buffer.from([0x30, 0x05, 0x00, 0x01, 0x61, 0x68, 0x69]));
  await closedWithin(early, 2000);
  const twice = await rawSocket(vm, port);
  twice.write(Buffer.concat([connect('twice'), connect('twice')]));
  await closedWithin(twice, 2000);

  await watcher.publishAsync('home/still', 'here', { qos: 1 });
  assert.equal((await box.wait(1)).map((m) => m.topic), ['home/still']);
  assert.is(broker.stats().clients, 1);
});

/** A minimal MQTT 3.1.1 CONNECT (§3.1): clean session, keep-alive 30 s. */
function connect(clientId: string): Buffer {
  const id = Buffer.from(clientId);
  const body = Buffer.concat([Buffer.from([0, 4]), Buffer.from('MQTT'), Buffer.from([4, 2, 0, 30, 0, id.length]), id]);
  return Buffer.concat([Buffer.from([0x10, body.length]), body]);
}

test.run();
