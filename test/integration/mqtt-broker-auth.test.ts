import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connectFrom, GATEWAY, MEMBER, mqttVms, OWNER, portOf, refusal, STRANGER, within } from './lib/mqtt-broker-env.ts';

// Who may connect: tunnel peers by their address, devices behind the router by
// user name and password; refusals carry the CONNACK return code of MQTT
// v3.1.1 §3.2.2.3 and are logged without the password.

const freshVm = mqttVms(test, 'mqtt-auth');

test('tunnel peers log in by address alone; users by name and password; clients() and stats() show them', async () => {
  const vm = freshVm();
  const { password } = await vm.core.mqtt.users.add({ name: 'plug' });
  const broker = await vm.start();
  const port = portOf(broker);
  await connectFrom(port, GATEWAY, { clientId: 'router' });
  // Whatever user name a peer sends, its address decides.
  await connectFrom(port, OWNER, { clientId: 'phone-app', username: 'someone', password: 'anything' });
  await connectFrom(port, MEMBER, { clientId: 'guest-app' });
  await connectFrom(port, STRANGER, { clientId: 'plug-1', username: 'plug', password });
  const clients = broker.clients().sort((a, b) => a.id.localeCompare(b.id));
  assert.equal(
    clients.map(({ id, caller, address }) => ({ id, caller, address })),
    [
      { id: 'guest-app', caller: 'member:guest', address: MEMBER },
      { id: 'phone-app', caller: 'owner:phone', address: OWNER },
      { id: 'plug-1', caller: 'user:plug', address: STRANGER },
      { id: 'router', caller: 'gateway:home', address: GATEWAY },
    ],
  );
  assert.ok(clients.every((c) => Math.abs(c.since - Date.now()) < 10_000));
  assert.equal(broker.stats(), { clients: 4, deniedPublishes: 0, deniedSubscriptions: 0, refusedConnections: 0 });
});

test('once checked, the password is wiped from the CONNECT packet the parser keeps', async () => {
  const vm = freshVm();
  const { password } = await vm.core.mqtt.users.add({ name: 'plug' });
  const seen: Uint8Array[] = [];
  const real = vm.core.mqtt.authenticate;
  (vm.core.mqtt as { authenticate: typeof real }).authenticate = (c) => {
    if (c.password instanceof Uint8Array) seen.push(c.password);
    return real(c);
  };
  const broker = await vm.start();
  await connectFrom(portOf(broker), STRANGER, { clientId: 'plug-1', username: 'plug', password });
  await refusal(connectFrom(portOf(broker), STRANGER, { clientId: 'plug-2', username: 'plug', password: 'wrong-password' }));
  assert.is(seen.length, 2);
  for (const p of seen) assert.ok(p.length > 0 && p.every((b) => b === 0), 'no password bytes left');
  assert.is(broker.stats().clients, 1, 'the right one logged in before its bytes were wiped');
});

test('a wrong password gets CONNACK 4, no credentials from an unknown address 5; logged without the password', async () => {
  const vm = freshVm();
  const { password } = await vm.core.mqtt.users.add({ name: 'plug' });
  const broker = await vm.start();
  const port = portOf(broker);
  const wrong = `${password.slice(0, -1)}x`;
  assert.is(await refusal(connectFrom(port, STRANGER, { username: 'plug', password: wrong })), 4, 'bad password');
  assert.is(await refusal(connectFrom(port, STRANGER, { username: 'nobody', password })), 4, 'unknown user');
  assert.is(await refusal(connectFrom(port, STRANGER)), 5, 'no credentials');
  assert.is(broker.stats().refusedConnections, 3);
  assert.is(broker.clients().length, 0);
  const refusals = vm.logs.filter((l) => l.startsWith('mqtt: refused login'));
  assert.is(refusals.length, 3, vm.logs.join('\n'));
  assert.match(refusals[0]!, /from 127\.77\.0\.9 \(CONNACK 4\): wrong user name or password for "plug"/);
  assert.match(refusals[2]!, /from 127\.77\.0\.9 \(CONNACK 5\): .*no tunnel peer and gave no user name/);
  assert.not.ok(vm.logs.some((l) => l.includes(wrong) || l.includes(password)), 'no password in the log');
  // The right password still works.
  await connectFrom(port, STRANGER, { username: 'plug', password });
});

test('after 5 failed logins a source is refused with 5, even with the right password; other sources are not', async () => {
  const vm = freshVm();
  const { password } = await vm.core.mqtt.users.add({ name: 'plug' });
  const broker = await vm.start();
  const port = portOf(broker);
  for (let i = 0; i < 5; i++) {
    assert.is(await refusal(connectFrom(port, STRANGER, { username: 'plug', password: `guess-${i}` })), 4, `guess ${i}`);
  }
  assert.is(await refusal(connectFrom(port, STRANGER, { username: 'plug', password })), 5, 'rate-limited');
  const last = vm.logs.filter((l) => l.startsWith('mqtt: refused login')).at(-1)!;
  assert.match(last, /127\.77\.0\.9 \(CONNACK 5\): too many failed logins from 127\.77\.0\.9/);
  assert.not.ok(vm.logs.some((l) => l.includes(password) || l.includes('guess-')), 'no password in the log');
  // Another source is not affected.
  await connectFrom(port, '127.77.0.10', { username: 'plug', password });
});

test('a will on a topic the client may not write refuses the CONNECT; a client id cannot be taken over by another login', async () => {
  const vm = freshVm();
  const { password } = await vm.core.mqtt.users.add({ name: 'plug' });
  const broker = await vm.start();
  const port = portOf(broker);
  const will = { topic: 'home/other/status', payload: Buffer.from('gone'), qos: 0 as const, retain: false };
  assert.is(await refusal(connectFrom(port, STRANGER, { username: 'plug', password, will })), 5);
  assert.match(vm.logs.at(-1)!, /user:plug may not leave a will there/);
  await connectFrom(port, STRANGER, { username: 'plug', password, will: { ...will, topic: 'home/plug/status' } });

  const router = await connectFrom(port, GATEWAY, { clientId: 'shared-id' });
  // MQTT-3.1.4-2 take-over is for the same login only (CONNACK 2, identifier rejected).
  assert.is(await refusal(connectFrom(port, STRANGER, { clientId: 'shared-id', username: 'plug', password })), 2);
  assert.ok(router.connected, 'the first client keeps its connection');
  await connectFrom(port, GATEWAY, { clientId: 'shared-id' });
  assert.equal(broker.clients().filter((c) => c.id === 'shared-id').map((c) => c.caller), ['gateway:home']);
});

test('MQTT 5 CONNECTs are refused with a protocol error; the broker serves 3.1 and 3.1.1', async () => {
  const vm = freshVm();
  const broker = await vm.start();
  const port = portOf(broker);
  await connectFrom(port, OWNER, { protocolVersion: 3, protocolId: 'MQIsdp', clientId: 'old' });
  await connectFrom(port, OWNER, { protocolVersion: 4, clientId: 'new' });
  const code = await refusal(connectFrom(port, OWNER, { protocolVersion: 5, clientId: 'v5' }));
  assert.ok(code === 1 || code === -1, `code ${code}`);
});

test('close() ends connections still logging in, and returns', async () => {
  const vm = freshVm();
  const { password } = await vm.core.mqtt.users.add({ name: 'plug' });
  const broker = await vm.start();
  const port = portOf(broker);
  await connectFrom(port, OWNER, { clientId: 'phone' });
  // Several logins in scrypt when close() comes.
  const pending = Array.from({ length: 6 }, (_, i) => refusal(connectFrom(port, STRANGER, { clientId: `plug-${i}`, username: 'plug', password })).catch(() => -1));
  await new Promise((r) => setTimeout(r, 5));
  await within(3000, 'close', broker.close());
  await within(3000, 'the clients see the end', Promise.all(pending));
  assert.is(broker.stats().clients, 0);
});

test.run();
