import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DatabaseSync } from 'node:sqlite';
import type { Readable } from 'node:stream';
import { run } from 'node:test';
import { Aedes } from 'aedes';
import { connectAsync, type MqttClient } from 'mqtt';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SqlitePersistence, type SqlitePersistenceOptions } from '../../cloud/mqtt/persistence/sqlite-persistence.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const NODE = join(ROOT, 'node_modules/.bin/node');
const SUITE = join(import.meta.dirname, 'lib/mqtt-abstract-suite.ts');

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'aerie-mqtt-store-'));
  dirs.push(d);
  return d;
}
test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Rejects after `ms`, so no wait below can hang the file. */
function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

async function toArray(stream: Readable): Promise<Record<string, unknown>[]> {
  return within(5000, 'reading a stream', stream.toArray()) as Promise<Record<string, unknown>[]>;
}

const payloads = (list: Record<string, unknown>[]) => list.map((p) => String(p['payload']));

async function open(opts: Partial<SqlitePersistenceOptions> & { path: string }): Promise<{ store: SqlitePersistence; logs: string[] }> {
  const logs: string[] = [];
  const store = new SqlitePersistence({ log: (l) => logs.push(l), ...opts });
  await store.setup({ id: 'broker-test' });
  return { store, logs };
}

function publish(topic: string, payload: string | Buffer, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false, ...extra };
}

test('every test of the aedes-persistence abstract suite passes against the sqlite persistence', async () => {
  // The names the suite defines, read by handing it a test() that only records.
  const expected: string[] = [];
  const abstract = createRequire(import.meta.url)('aedes-persistence/abstract.js') as (o: object) => void;
  abstract({ test: (name: string) => void expected.push(name), persistence: () => null, testAsync: true });
  assert.ok(expected.length >= 50, `the suite defines ${expected.length} tests`);

  const dir = tempDir();
  process.env['AERIE_MQTT_SUITE_DIR'] = dir;
  const passed = new Set<string>();
  const failed: string[] = [];
  try {
    const events = run({ files: [SUITE], timeout: 60_000 });
    await within(
      90_000,
      'the abstract suite',
      (async () => {
        for await (const event of events) {
          // nesting 0: the suite's own tests, not subtests or the file itself
          if (event.type === 'test:pass' && event.data.nesting === 0 && !event.data.skip && !event.data.todo) passed.add(event.data.name);
          if (event.type === 'test:fail') {
            const err = event.data.details.error as Error & { cause?: unknown };
            failed.push(`${event.data.name}: ${String(err.cause ?? err.message)}`);
          }
        }
      })(),
    );
  } finally {
    delete process.env['AERIE_MQTT_SUITE_DIR'];
  }
  for (const f of failed) console.log(`  abstract suite FAILED ${f}`);
  assert.equal(failed, [], 'no test of the suite fails');
  const missing = expected.filter((name) => !passed.has(name));
  assert.equal(missing, [], 'every test the suite defines ran and passed');
  assert.is(passed.size, new Set(expected).size);
});

test('retained messages, sessions, queues, QoS 2 state and wills are all there after a reopen', async () => {
  const path = join(tempDir(), 'mqtt.db');
  const first = await open({ path });
  const s = first.store;
  await s.storeRetained(publish('home/door', 'open', { retain: true, properties: { correlationData: Buffer.from([1, 2]) } }));
  await s.storeRetained(publish('$SYS/broker/uptime', '42', { retain: true }));
  await s.addSubscriptions({ id: 'phone' }, [
    { topic: 'home/#', qos: 1, rh: 0, rap: true, nl: false, subscriptionIdentifier: 7 },
    { topic: 'news', qos: 0 },
  ]);
  await s.addSubscriptions({ id: 'sysmon' }, [{ topic: '$SYS/#', qos: 1 }]);
  const queued = { ...publish('home/door', 'open'), brokerId: 'broker-test', brokerCounter: 1 };
  const second = { ...publish('home/light', 'on', { qos: 2 }), brokerId: 'broker-test', brokerCounter: 2 };
  await s.outgoingEnqueueCombi([{ clientId: 'phone' }], queued);
  await s.outgoingEnqueueCombi([{ clientId: 'phone' }], second);
  await s.outgoingUpdate({ id: 'phone' }, { ...queued, messageId: 11 }); // sent, awaiting PUBACK
  await s.outgoingUpdate({ id: 'phone' }, { ...second, messageId: 12 });
  await s.outgoingUpdate({ id: 'phone' }, { cmd: 'pubrel', messageId: 12 }); // PUBREC came, PUBREL sent
  await s.incomingStorePacket({ id: 'sensor' }, publish('home/temp', '21.5', { qos: 2, messageId: 5 }));
  await s.putWill({ id: 'sensor' }, publish('home/sensor/status', 'gone', { qos: 0 }));
  const before = s.usage.storedBytes;
  assert.ok(before > 0);
  await s.destroy();

  const again = (await open({ path })).store;
  try {
    const retained = await toArray(again.createRetainedStreamCombi(['home/+', 'home/#']));
    assert.equal(payloads(retained), ['open'], 'one retained message, once, though two filters match it');
    assert.equal((retained[0]!['properties'] as { correlationData: Buffer }).correlationData, Buffer.from([1, 2]));
    // MQTT-4.7.2-1: '#' does not reach '$' topics, '$SYS/#' does
    assert.equal(payloads(await toArray(again.createRetainedStream('#'))), ['open']);
    assert.equal(payloads(await toArray(again.createRetainedStream('$SYS/#'))), ['42']);

    assert.equal(await again.subscriptionsByClient({ id: 'phone' }), [
      { topic: 'home/#', qos: 1, rh: 0, rap: true, nl: false, subscriptionIdentifier: 7 },
      { topic: 'news', qos: 0, rh: undefined, rap: undefined, nl: undefined },
    ]);
    assert.equal((await again.subscriptionsByTopic('home/door')).map((m) => m.clientId), ['phone']);
    assert.equal((await again.subscriptionsByTopic('$SYS/broker/uptime')).map((m) => m.clientId), ['sysmon']);
    assert.equal(await again.countOffline(), { subsCount: 2, clientsCount: 2 });

    const out = await toArray(again.outgoingStream({ id: 'phone' }));
    assert.equal(out.map((p) => [p['cmd'], p['messageId']]), [['publish', 11], ['pubrel', 12]]);
    assert.equal(String(out[0]!['payload']), 'open');
    const acked = await again.outgoingClearMessageId({ id: 'phone' }, { cmd: 'puback', messageId: 11 });
    assert.is(String(acked?.['payload']), 'open');

    const incoming = await again.incomingGetPacket({ id: 'sensor' }, { messageId: 5 });
    assert.is(String(incoming['payload']), '21.5');
    const will = await again.getWill({ id: 'sensor' });
    assert.is(will?.['brokerId'], 'broker-test');
    assert.equal(payloads(await toArray(again.streamWill({ 'broker-test': Date.now() }))), [], 'a live broker keeps its wills');
    assert.equal(payloads(await toArray(again.streamWill({}))), ['gone'], 'a dead broker’s wills are handed out');
    assert.ok(again.usage.storedBytes < before, 'the acknowledged message no longer counts');
  } finally {
    await again.destroy();
  }
});

/** Starts a broker on `path` in a child process; resolves with its port. */
async function brokerChild(path: string): Promise<{ pid: number; port: number; exited: Promise<unknown> }> {
  const code = `
    import { createServer } from 'node:net';
    import { Aedes } from 'aedes';
    import { SqlitePersistence } from ${JSON.stringify(pathToFileURL(join(ROOT, 'cloud/mqtt/persistence/sqlite-persistence.ts')).href)};
    const persistence = new SqlitePersistence({ path: process.env.AERIE_MQTT_DB, log: (l) => process.stderr.write(l + '\\n') });
    const broker = await Aedes.createBroker({ persistence });
    const server = createServer(broker.handle);
    server.listen(0, '127.0.0.1', () => process.stdout.write('port ' + server.address().port + '\\n'));
  `;
  const child = spawn(NODE, ['--input-type=module', '-e', code], {
    cwd: ROOT,
    env: { ...process.env, AERIE_MQTT_DB: path },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  let out = '';
  const port = await within(
    15_000,
    'the broker child to listen',
    new Promise<number>((res, rej) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /port (\d+)/.exec(out);
        if (m) res(Number(m[1]));
      });
      child.on('exit', (c) => rej(new Error(`the broker child exited (${c}) before listening`)));
    }),
  ).catch((err: unknown) => {
    child.kill('SIGKILL');
    throw err;
  });
  return { pid: child.pid!, port, exited };
}

function messages(client: MqttClient): { topic: string; payload: string; retain: boolean }[] {
  const got: { topic: string; payload: string; retain: boolean }[] = [];
  client.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), retain: packet.retain }));
  return got;
}

async function waitFor(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 50));
  if (!ok()) throw new Error(`${what}: not within 5 s`);
}

test('acknowledged messages survive kill -9 of the broker and reach their subscribers after the restart', async () => {
  const path = join(tempDir(), 'mqtt.db');
  const child = await brokerChild(path);
  const clients: MqttClient[] = [];
  let killed = false;
  const inFlight: string[] = [];
  try {
    const url = `mqtt://127.0.0.1:${child.port}`;
    // phone: a persistent session that is offline when the messages come
    const phone = await within(5000, 'phone connects', connectAsync(url, { clientId: 'phone', clean: false, reconnectPeriod: 0 }));
    clients.push(phone);
    await phone.subscribeAsync('home/#', { qos: 1 });
    await phone.endAsync();
    // tablet: online, but never acknowledges, so its messages stay in flight
    // (mqtt.js sends the PUBACK only once handleMessage calls back)
    const tablet = await within(5000, 'tablet connects', connectAsync(url, { clientId: 'tablet', clean: false, reconnectPeriod: 0 }));
    clients.push(tablet);
    tablet.handleMessage = () => {};
    tablet.on('message', (_topic, message) => void inFlight.push(message.toString()));
    await tablet.subscribeAsync('home/temp', { qos: 1 });

    const sensor = await within(5000, 'sensor connects', connectAsync(url, { clientId: 'sensor', reconnectPeriod: 0 }));
    clients.push(sensor);
    // each resolves on PUBACK / PUBCOMP: from then on the broker owns the message
    await within(5000, 'retained publish', sensor.publishAsync('home/door', 'open', { qos: 1, retain: true }));
    await within(5000, 'QoS 1 publish', sensor.publishAsync('home/temp', '21.5', { qos: 1 }));
    await within(5000, 'QoS 2 publish', sensor.publishAsync('home/temp', '21.6', { qos: 2 }));
    await waitFor('a message in flight to the tablet', () => inFlight.length >= 1);

    process.kill(child.pid, 'SIGKILL');
    killed = true;
    await within(5000, 'the broker child to die', child.exited);
  } finally {
    if (!killed) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const c of clients) c.end(true);
  }
  assert.is(inFlight[0], '21.5');

  const { store } = await open({ path });
  const server = createServer();
  const restarted: MqttClient[] = [];
  let broker: Aedes | undefined;
  try {
    assert.equal(payloads(await toArray(store.createRetainedStream('home/door'))), ['open']);
    assert.equal(payloads(await toArray(store.outgoingStream({ id: 'phone' }))), ['open', '21.5', '21.6']);
    const tabletQueue = await toArray(store.outgoingStream({ id: 'tablet' }));
    assert.equal(payloads(tabletQueue), ['21.5', '21.6']);
    assert.ok(tabletQueue.every((p) => typeof p['messageId'] === 'number'), 'sent and unacknowledged: each has its packet identifier');

    broker = await Aedes.createBroker({ persistence: store });
    server.on('connection', broker.handle);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const [id, expected] of [['phone', ['open', '21.5', '21.6']], ['tablet', ['21.5', '21.6']]] as const) {
      const c = await within(5000, `${id} reconnects`, connectAsync(url, { clientId: id, clean: false, reconnectPeriod: 0 }));
      restarted.push(c);
      const got = messages(c);
      await waitFor(`queued messages delivered to ${id}`, () => got.length >= expected.length);
      assert.equal(got.map((m) => m.payload), [...expected], id);
    }

    const laptop = await within(5000, 'laptop connects', connectAsync(url, { clientId: 'laptop', reconnectPeriod: 0 }));
    restarted.push(laptop);
    const retained = messages(laptop);
    await laptop.subscribeAsync('home/door', { qos: 1 });
    await waitFor('retained message delivered', () => retained.length >= 1);
    assert.equal(retained, [{ topic: 'home/door', payload: 'open', retain: true }]);
  } finally {
    for (const c of restarted) await within(5000, 'client end', c.endAsync(true)).catch(() => {});
    const b = broker;
    if (b) await within(5000, 'broker close', new Promise<void>((r) => b.close(() => r())));
    server.close();
    await store.destroy();
  }
});

test('a full client queue drops new messages for that client only, logged once per episode', async () => {
  const { store, logs } = await open({ path: join(tempDir(), 'mqtt.db'), maxQueuedPerClient: 3 });
  try {
    for (let i = 1; i <= 5; i++) {
      const subs = i <= 2 ? [{ clientId: 'slow' }, { clientId: 'fast' }] : [{ clientId: 'slow' }];
      await store.outgoingEnqueueCombi(subs, publish('t', `m${i}`, { brokerId: 'b', brokerCounter: i }));
    }
    assert.equal(payloads(await toArray(store.outgoingStream({ id: 'slow' }))), ['m1', 'm2', 'm3'], 'the oldest stay, the newest are dropped');
    assert.equal(payloads(await toArray(store.outgoingStream({ id: 'fast' }))), ['m1', 'm2'], 'other clients are not affected');
    assert.is(logs.length, 1, logs.join('\n'));
    assert.match(logs[0]!, /client "slow" is full \(maxQueuedPerClient 3\)/);

    // the client takes its messages: queuing resumes with one more line
    for (let id = 1; id <= 3; id++) {
      await store.outgoingUpdate({ id: 'slow' }, { cmd: 'publish', brokerId: 'b', brokerCounter: id, messageId: id });
      await store.outgoingClearMessageId({ id: 'slow' }, { messageId: id });
    }
    await store.outgoingEnqueue({ clientId: 'slow' }, publish('t', 'm6', { brokerId: 'b', brokerCounter: 6 }));
    assert.equal(payloads(await toArray(store.outgoingStream({ id: 'slow' }))), ['m6']);
    assert.is(logs.length, 2, logs.join('\n'));
    assert.match(logs[1]!, /client "slow" again; 2 message\(s\) for it were dropped/);

    // a dropped message still reaches an online client: updating it is no error
    await store.outgoingUpdate({ id: 'slow' }, { cmd: 'publish', brokerId: 'b', brokerCounter: 5, messageId: 9 });
  } finally {
    await store.destroy();
  }
});

test('a full store drops new messages, keeps no stale retained value and refuses QoS 2 with a clear error', async () => {
  const path = join(tempDir(), 'mqtt.db');
  const { store, logs } = await open({ path, maxStoredBytes: 4000 });
  try {
    await store.storeRetained(publish('home/door', 'closed', { retain: true }));
    const big = 'x'.repeat(1000);
    for (let i = 0; i < 6; i++) await store.outgoingEnqueue({ clientId: `c${i}` }, publish('t', big));
    const queued = (await Promise.all([0, 1, 2, 3, 4, 5].map((i) => toArray(store.outgoingStream({ id: `c${i}` }))))).flat();
    assert.ok(queued.length >= 2 && queued.length < 6, `${queued.length} of 6 queued`);
    assert.ok(store.usage.storedBytes <= 4000);
    assert.is(logs.length, 1, logs.join('\n'));
    assert.match(logs[0]!, /mqtt store: full .* maxStoredBytes 4000/);

    await store.storeRetained(publish('home/door', big + big, { retain: true }));
    assert.equal(await toArray(store.createRetainedStream('home/door')), [], 'the old value is gone too');
    try {
      await store.incomingStorePacket({ id: 'sensor' }, publish('home/temp', big + big, { qos: 2, messageId: 1 }));
      assert.unreachable('a QoS 2 message past the cap must be refused');
    } catch (err) {
      assert.instance(err, Error);
      assert.match((err as Error).message, /store is full \(maxStoredBytes 4000\); QoS 2 message 1 from "sensor" not accepted/);
    }
    assert.is(logs.length, 1, `still one line for the whole episode:\n${logs.join('\n')}`);

    const huge = publish('t', Buffer.alloc(10_000));
    await store.outgoingEnqueue({ clientId: 'c9' }, huge);
    assert.is(logs.length, 2);
    assert.match(logs[1]!, /10\d{3} bytes is larger than the whole store \(maxStoredBytes 4000\)/);

    // clients take their messages: one line says the store accepts messages again
    for (let i = 0; i < 6; i++) {
      await store.outgoingUpdate({ id: `c${i}` }, { cmd: 'publish', brokerId: 'broker-test', brokerCounter: 0, messageId: 1 });
      await store.outgoingClearMessageId({ id: `c${i}` }, { messageId: 1 });
    }
    assert.is(logs.length, 3, logs.join('\n'));
    assert.match(logs[2]!, /storing messages again \(\d+ bytes used\); \d+ message\(s\) were dropped while it was full/);
    await store.outgoingEnqueue({ clientId: 'c0' }, publish('t', big));
    assert.equal(payloads(await toArray(store.outgoingStream({ id: 'c0' }))), [big]);
  } finally {
    await store.destroy();
  }
  const db = new DatabaseSync(path);
  try {
    assert.is(db.prepare('PRAGMA integrity_check').get()?.['integrity_check'], 'ok');
  } finally {
    db.close();
  }
});

test('malformed topics, filters, clients and options are refused with a clear error and change nothing', async () => {
  const path = join(tempDir(), 'mqtt.db');
  const { store } = await open({ path });
  const refused = async (what: string, p: () => Promise<unknown>, re: RegExp) => {
    try {
      await p();
    } catch (err) {
      assert.match((err as Error).message, re, what);
      return;
    }
    assert.unreachable(`${what} was accepted`);
  };
  try {
    await refused('a NUL in a topic', () => store.storeRetained(publish('home/\u0000door', 'x', { retain: true })), /NUL character \(MQTT-4\.7\.3-2\)/);
    await refused('a wildcard in a topic name', () => store.storeRetained(publish('home/+', 'x', { retain: true })), /without the wildcards "\+" and "#"/);
    await refused('an empty topic', () => store.storeRetained(publish('', 'x', { retain: true })), /at least one character \(MQTT-4\.7\.3-1\)/);
    await refused(
      "'#' not last",
      () => store.addSubscriptions({ id: 'phone' }, [{ topic: 'ok', qos: 1 }, { topic: 'home/#/door', qos: 1 }]),
      /"#" must be a whole level and the last one/,
    );
    await refused("'+' in a level", () => store.addSubscriptions({ id: 'phone' }, [{ topic: 'home/a+', qos: 1 }]), /"\+" must be a whole level/);
    await refused('a QoS of 3', () => store.addSubscriptions({ id: 'phone' }, [{ topic: 'a', qos: 3 }]), /QoS must be 0, 1 or 2/);
    await refused('a client without an id', () => store.cleanSubscriptions({} as { id: string }), /string id/);
    await refused('a function as packet data', () => store.outgoingEnqueue({ clientId: 'x' }, publish('t', 'p', { properties: { f: () => 1 } })), /cannot store properties\.f/);
    await refused('an unknown QoS 2 release', () => store.incomingDelPacket({ id: 'x' }, { messageId: 3 }), /no such packet/);

    assert.equal(await store.subscriptionsByClient({ id: 'phone' }), [], 'a refused SUBSCRIBE stores none of its filters');
    assert.equal(await toArray(store.createRetainedStream('#')), []);
    assert.equal(await toArray(store.outgoingStream({ id: 'x' })), []);
    assert.is(store.usage.storedBytes, 0);
  } finally {
    await store.destroy();
  }
  assert.throws(() => new SqlitePersistence({ path, log: () => {}, maxQueuedPerClient: 0 }), /maxQueuedPerClient must be a positive integer/);
  assert.throws(() => new SqlitePersistence({ path: '', log: () => {} }), /needs a database path/);
  const db = new DatabaseSync(path);
  try {
    assert.is(db.prepare('PRAGMA integrity_check').get()?.['integrity_check'], 'ok');
  } finally {
    db.close();
  }
});

test.run();
