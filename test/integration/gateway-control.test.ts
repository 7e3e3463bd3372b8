import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import { connectAsync, type IClientOptions, type MqttClient } from 'mqtt';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createControlChannel, type ControlChannel, type ControlChannelDeps, type ControlState, type RouterCommandArgs } from '../../gateway/control/channel.ts';
import { brokerUrl, createControlLink } from '../../gateway/control/link.ts';
import { connectMqtt } from '../../gateway/control/mqtt-tcp.ts';
import { parseConfig, type LoadedConfig } from '../../gateway/config.ts';

// The router's control channel against a real aedes broker on loopback, through
// the real MQTT.js client. The broker enforces the gateway's rule (it may write
// under aerie/gw/G/ except cmd/, and, once core allows it, its Home Assistant
// discovery topics); anything else the router tries is recorded as a violation.

const G = 'home-router';
const ROUTER_ID = `aerie-gw-${G}`;
const STATE = `aerie/gw/${G}/state`;
const AVAILABILITY = `aerie/gw/${G}/availability`;
const CMD = `aerie/gw/${G}/cmd/`;

// ---- bounded waits ----------------------------------------------------------------

async function waitFor(what: string, ok: () => boolean, ms = 3000): Promise<void> {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- the broker ---------------------------------------------------------------------

interface TestBroker {
  port: number;
  violations: string[];
  /** Closes the broker and drops every connection, as a crash or restart would. */
  close(): Promise<void>;
}

const mayWrite = (topic: string) =>
  (topic.startsWith(`aerie/gw/${G}/`) && !topic.startsWith(CMD)) || /^homeassistant\/[^/]+\/aerie_home-router\/[^/]+\/config$/.test(topic);

async function startBroker(port = 0): Promise<TestBroker> {
  const violations: string[] = [];
  const broker = await Aedes.createBroker({
    authorizePublish(client, packet, done) {
      if (client?.id === ROUTER_ID && !mayWrite(packet.topic)) {
        violations.push(packet.topic);
        return done(new Error('not allowed'));
      }
      done(null);
    },
  });
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    broker.handle(s);
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    violations,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
      await new Promise<void>((r) => broker.close(() => r()));
    },
  };
}

// ---- other clients: the VM, an observer ------------------------------------------------

interface Seen {
  topic: string;
  payload: string;
  retain: boolean;
}

async function observe(port: number, filter: string): Promise<{ client: MqttClient; seen: Seen[] }> {
  const client = await connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, clientId: `observer-${Math.random().toString(16).slice(2)}` });
  const seen: Seen[] = [];
  client.on('message', (topic, payload, packet) => seen.push({ topic, payload: payload.toString(), retain: packet.retain }));
  await client.subscribeAsync(filter, { qos: 1 });
  return { client, seen };
}

async function vmPublish(port: number, topic: string, payload: string, opts: { retain?: boolean } = {}): Promise<void> {
  const vm = await connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, clientId: 'the-vm' });
  try {
    await vm.publishAsync(topic, payload, { qos: 1, retain: opts.retain ?? false });
  } finally {
    await vm.endAsync();
  }
}

// ---- the router -------------------------------------------------------------------

const baseState = (): ControlState => ({
  tunnel: 'up',
  killSwitch: true,
  blocking: true,
  wan: { up: true, interfaces: ['wan'] },
  counters: { blockedQueries: 12, rxBytes: 1000, txBytes: 2000 },
});

interface Router {
  channel: ControlChannel;
  state: ControlState;
  commands: RouterCommandArgs[];
  resyncs: number;
  logs: string[];
  /** The MQTT.js client the channel made (to cut its socket). */
  client(): MqttClient;
}

const opened: { channel: ControlChannel; clients: MqttClient[]; brokers: TestBroker[] }[] = [];

function startRouter(port: number, extra: Partial<ControlChannelDeps> = {}): Router {
  let made: MqttClient | null = null;
  const router = {
    state: baseState(),
    commands: [] as RouterCommandArgs[],
    resyncs: 0,
    logs: [] as string[],
    client: () => made!,
  } as Router;
  router.channel = createControlChannel({
    connect: (url: string, opts: IClientOptions) => (made = connectMqtt(url, opts)),
    url: `mqtt://127.0.0.1:${port}`,
    name: G,
    state: () => router.state,
    onCommand: (...args) => void router.commands.push(args),
    resync: async () => void router.resyncs++,
    log: (m) => router.logs.push(m),
    ...extra,
    timing: { minPublishIntervalMs: 200, statePollMs: 0, reconnectMinMs: 50, reconnectMaxMs: 200, ...extra.timing },
  });
  return router;
}

/** Everything a test opened, closed even when it failed. */
function track(channel: ControlChannel | null, clients: MqttClient[], brokers: TestBroker[]) {
  opened.push({ channel: channel as ControlChannel, clients, brokers });
}

test.after.each(async () => {
  for (const o of opened.splice(0)) {
    await o.channel?.close().catch(() => {});
    for (const c of o.clients) await c.endAsync(true).catch(() => {});
    for (const b of o.brokers) await b.close().catch(() => {});
  }
});

const statesOf = (seen: Seen[]) => seen.filter((m) => m.topic === STATE).map((m) => JSON.parse(m.payload) as ControlState);

// ---- tests ------------------------------------------------------------------------

test('the state and "online" are published retained: an observer that comes later gets both', async () => {
  const broker = await startBroker();
  const router = startRouter(broker.port);
  track(router.channel, [], [broker]);
  await waitFor('the router connects', () => router.channel.connected());
  await sleep(100);
  const { client, seen } = await observe(broker.port, `aerie/gw/${G}/#`);
  track(null, [client], []);
  await waitFor('retained state and availability', () => seen.some((m) => m.topic === STATE) && seen.some((m) => m.topic === AVAILABILITY));
  const state = seen.find((m) => m.topic === STATE)!;
  assert.ok(state.retain, 'the state is retained');
  assert.equal(JSON.parse(state.payload), baseState());
  const availability = seen.find((m) => m.topic === AVAILABILITY)!;
  assert.equal([availability.payload, availability.retain], ['online', true]);
  assert.equal(broker.violations, [], 'the router wrote only where the gateway rule lets it');
});

test('an unchanged state is not published again; a burst of changes is published at most once per interval, ending with the last', async () => {
  const broker = await startBroker();
  const { client, seen } = await observe(broker.port, STATE);
  const router = startRouter(broker.port);
  track(router.channel, [client], [broker]);
  await waitFor('the first state', () => statesOf(seen).length === 1);
  for (let i = 0; i < 5; i++) {
    router.channel.update();
    await sleep(20);
  }
  await sleep(400); // two intervals
  assert.is(statesOf(seen).length, 1, 'nothing new to say, nothing said');

  for (let i = 1; i <= 5; i++) {
    router.state = { ...router.state, counters: { ...router.state.counters, blockedQueries: 12 + i } };
    router.channel.update();
    await sleep(20);
  }
  await waitFor('the last count', () => statesOf(seen).at(-1)?.counters.blockedQueries === 17);
  await sleep(300);
  // 5 changes over ~100 ms with a 200 ms interval: one or two messages, not five.
  assert.ok(statesOf(seen).length <= 3, `${statesOf(seen).length - 1} messages for a burst of 5 changes`);
  assert.is(statesOf(seen).at(-1)!.counters.blockedQueries, 17);
});

test('the state is looked at on a timer too, so changing counters reach the broker without update()', async () => {
  const broker = await startBroker();
  const { client, seen } = await observe(broker.port, STATE);
  const router = startRouter(broker.port, { timing: { statePollMs: 100 } });
  track(router.channel, [client], [broker]);
  await waitFor('the first state', () => statesOf(seen).length === 1);
  router.state = { ...router.state, tunnel: 'down' };
  await waitFor('the changed state, unasked', () => statesOf(seen).at(-1)?.tunnel === 'down');
});

test('a command from the VM is applied within a second; a repeated id once; "resync" re-syncs', async () => {
  const broker = await startBroker();
  const router = startRouter(broker.port);
  track(router.channel, [], [broker]);
  await waitFor('the first re-sync', () => router.resyncs === 1);
  await vmPublish(broker.port, `${CMD}settings-changed`, JSON.stringify({ id: 'c1', keys: ['blocking'], from: 'a newer VM' }));
  await waitFor('the command applied', () => router.commands.length === 1, 1000);
  assert.equal(router.commands[0], ['settings-changed', { id: 'c1', keys: ['blocking'] }]);

  await vmPublish(broker.port, `${CMD}settings-changed`, JSON.stringify({ id: 'c1', keys: ['blocking'] }));
  await vmPublish(broker.port, `${CMD}devices-changed`, '{}');
  await waitFor('the next command', () => router.commands.length >= 2, 1000);
  await sleep(100);
  assert.equal(router.commands.slice(1), [['devices-changed', { devices: [] }]], 'the repeat of c1 was not applied');

  await vmPublish(broker.port, `${CMD}resync`, '{}');
  await waitFor('a re-sync on command', () => router.resyncs === 2, 1000);
});

test('malformed commands are logged and ignored, and the channel keeps working', async () => {
  const broker = await startBroker();
  const router = startRouter(broker.port);
  track(router.channel, [], [broker]);
  await waitFor('the router connects', () => router.channel.connected());
  const bad: [string, string][] = [
    ['settings-changed', 'not json'],
    ['settings-changed', '[1,2]'],
    ['settings-changed', '{"keys": "blocking"}'],
    ['devices-changed', '{"devices": ["Not A Name"]}'],
    ['devices-changed', JSON.stringify({ id: 'x'.repeat(5000) })],
    ['rotate', '{}'],
    ['format-disk', '{}'],
    ['settings-changed/extra', '{}'],
  ];
  for (const [name, payload] of bad) await vmPublish(broker.port, CMD + name, payload);
  await vmPublish(broker.port, `${CMD}devices-changed`, '{}');
  await waitFor('the good command after the bad ones', () => router.commands.length === 1, 1000);
  assert.equal(router.commands, [['devices-changed', { devices: [] }]]);
  const ignored = router.logs.filter((l) => l.startsWith('ignored a malformed command'));
  assert.is(ignored.length, bad.length, ignored.join('\n'));
  assert.ok(ignored.some((l) => l.includes('cmd/format-disk') && l.includes('expected one of settings-changed')));
  assert.ok(ignored.some((l) => l.includes('at most 4096 bytes')));
  assert.ok(router.channel.connected());
});

test('a retained command is not applied (commands are events), and the router never publishes commands', async () => {
  const broker = await startBroker();
  await vmPublish(broker.port, `${CMD}devices-changed`, '{}', { retain: true });
  const router = startRouter(broker.port);
  track(router.channel, [], [broker]);
  await waitFor('the retained command seen', () => router.logs.some((l) => l.startsWith('ignored a retained command')));
  assert.equal(router.commands, []);
  assert.equal(broker.violations, []);
});

test('the last will: when the router vanishes without a word, its availability turns "offline", retained', async () => {
  const broker = await startBroker();
  const { client, seen } = await observe(broker.port, AVAILABILITY);
  // A long reconnect delay, so that "online" does not come back before we look.
  const router = startRouter(broker.port, { timing: { reconnectMinMs: 10_000, reconnectMaxMs: 10_000 } });
  track(router.channel, [client], [broker]);
  await waitFor('online', () => seen.at(-1)?.payload === 'online');
  router.client().stream.destroy();
  await waitFor('offline, from the will', () => seen.at(-1)?.payload === 'offline');
  const later = await observe(broker.port, AVAILABILITY);
  track(null, [later.client], []);
  await waitFor('the retained "offline"', () => later.seen.length === 1);
  assert.equal([later.seen[0]!.payload, later.seen[0]!.retain], ['offline', true]);
});

test('close() says "offline" itself (a clean disconnect sends no will)', async () => {
  const broker = await startBroker();
  const { client, seen } = await observe(broker.port, AVAILABILITY);
  const router = startRouter(broker.port);
  track(null, [client], [broker]);
  await waitFor('online', () => seen.at(-1)?.payload === 'online');
  await router.channel.close();
  await waitFor('offline', () => seen.at(-1)?.payload === 'offline');
  assert.not.ok(router.channel.connected());
});

test('re-sync on the first connect and again after the broker restarts; the state is published again to the new broker', async () => {
  let broker = await startBroker();
  const port = broker.port;
  const router = startRouter(port);
  const brokers = [broker];
  track(router.channel, [], brokers);
  await waitFor('the first re-sync', () => router.resyncs === 1);
  await broker.close();
  brokers.length = 0;
  await waitFor('the router sees the broker gone', () => !router.channel.connected());
  broker = await startBroker(port);
  brokers.push(broker);
  await waitFor('a re-sync after the restart', () => router.resyncs === 2, 5000);
  // The new broker lost everything retained (memory persistence): the router republishes.
  const { client, seen } = await observe(port, STATE);
  track(null, [client], []);
  await waitFor('the retained state on the new broker', () => seen.length === 1);
  assert.ok(router.logs.some((l) => l.includes('lost the connection')));
});

test('a command sent while the router was away arrives when it is back (persistent session, QoS 1)', async () => {
  const broker = await startBroker();
  const router = startRouter(broker.port, { timing: { reconnectMinMs: 400, reconnectMaxMs: 400 } });
  track(router.channel, [], [broker]);
  await waitFor('the router connects', () => router.channel.connected());
  await sleep(100); // the subscription is in place
  router.client().stream.destroy();
  await waitFor('the router is away', () => !router.channel.connected());
  await vmPublish(broker.port, `${CMD}devices-changed`, JSON.stringify({ devices: ['phone'] }));
  await waitFor('the command, after the reconnect', () => router.commands.length === 1, 3000);
  assert.equal(router.commands[0], ['devices-changed', { devices: ['phone'] }]);
});

test('a failed re-sync is tried again until it succeeds', async () => {
  const broker = await startBroker();
  let calls = 0;
  const router = startRouter(broker.port, {
    resync: async () => {
      calls++;
      if (calls < 3) throw new Error('connect ECONNREFUSED 192.0.2.1:80');
    },
    timing: { resyncRetryMinMs: 50, resyncRetryMaxMs: 100 },
  });
  track(router.channel, [], [broker]);
  await waitFor('three attempts', () => calls === 3);
  assert.ok(router.logs.some((l) => l.includes('re-sync over HTTP failed (connect ECONNREFUSED')));
  assert.ok(router.logs.includes('re-sync over HTTP succeeded again'));
  await sleep(200);
  assert.is(calls, 3, 'no more attempts after a success');
});

test('Home Assistant discovery: four retained configs that read the state topic; switched off, they are removed', async () => {
  const broker = await startBroker();
  const router = startRouter(broker.port, { version: '0.1.0' });
  track(router.channel, [], [broker]);
  await waitFor('the router connects', () => router.channel.connected());
  await sleep(100);
  const { client, seen } = await observe(broker.port, 'homeassistant/#');
  track(null, [client], []);
  const topics = [
    'homeassistant/binary_sensor/aerie_home-router/tunnel/config',
    'homeassistant/binary_sensor/aerie_home-router/kill_switch/config',
    'homeassistant/binary_sensor/aerie_home-router/blocking/config',
    'homeassistant/sensor/aerie_home-router/blocked/config',
  ];
  await waitFor('four configs', () => seen.length === 4);
  assert.equal(seen.map((m) => m.topic).sort(), [...topics].sort());
  const state = baseState() as unknown as Record<string, unknown>;
  const ids = new Set<string>();
  for (const m of seen) {
    assert.ok(m.retain, `${m.topic} retained`);
    const config = JSON.parse(m.payload) as Record<string, unknown>;
    assert.is(config['state_topic'], STATE);
    assert.is(config['availability_topic'], AVAILABILITY);
    assert.equal([config['payload_available'], config['payload_not_available']], ['online', 'offline']);
    assert.equal(config['device'], { identifiers: ['aerie_home-router'], name: 'Aerie home-router', manufacturer: 'Aerie', model: 'Aerie router', sw_version: '0.1.0' });
    assert.type(config['unique_id'], 'string');
    ids.add(config['unique_id'] as string);
    // Every field the template reads is in the state the router publishes.
    const paths = [...String(config['value_template']).matchAll(/value_json((?:\.\w+)+)/g)].map((x) => x[1]!.slice(1).split('.'));
    assert.ok(paths.length > 0, `${m.topic} reads the state JSON`);
    for (const path of paths) {
      const value = path.reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], state);
      assert.ok(value !== undefined, `${m.topic}: value_json.${path.join('.')} is in the state`);
    }
  }
  assert.is(ids.size, 4, 'unique ids are unique');

  router.channel.setDiscovery(false);
  await waitFor('four removals', () => seen.filter((m) => m.payload === '').length === 4);
  const later = await observe(broker.port, 'homeassistant/#');
  track(null, [later.client], []);
  await sleep(200);
  assert.equal(later.seen, [], 'no config left retained');
  assert.equal(broker.violations, []);
});

test('a router started with discovery off removes configs left from before, and publishes none', async () => {
  const broker = await startBroker();
  const first = startRouter(broker.port);
  track(first.channel, [], []);
  await waitFor('the first router connects', () => first.channel.connected());
  await sleep(100);
  await first.channel.close();
  const router = startRouter(broker.port, { discovery: false });
  track(router.channel, [], [broker]);
  await waitFor('the router connects', () => router.channel.connected());
  await sleep(100);
  const { client, seen } = await observe(broker.port, 'homeassistant/#');
  track(null, [client], []);
  await sleep(200);
  assert.equal(seen, []);
});

test('a bad router name or broker URL is refused at once', () => {
  const deps = { connect: connectMqtt, state: baseState, onCommand: () => {}, resync: async () => {}, log: () => {} };
  assert.throws(() => createControlChannel({ ...deps, url: 'mqtt://127.0.0.1:1', name: 'Bad Name' }), /name/);
  assert.throws(() => createControlChannel({ ...deps, url: 'http://127.0.0.1:1', name: G }), /url: expected mqtt:\/\/host:port/);
});

// ---- the link: one channel for the config in force ------------------------------------

function loadedConfig(over: { name?: string; enabled?: boolean; homeAssistant?: boolean; api?: string[] } = {}): LoadedConfig {
  return {
    privateKey: 'unused',
    config: parseConfig({
      name: over.name ?? G,
      enabled: over.enabled ?? true,
      homeAssistant: over.homeAssistant ?? true,
      lanInterfaces: ['br-lan'],
      lanPrefixes: [{ prefix: '192.0.2.0/25', interface: 'br-lan' }],
      vm: {
        publicKey: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
        endpoint: '203.0.113.10:51820',
        addresses: ['203.0.113.130/25'],
        overlay: ['203.0.113.128/25'],
        api: over.api ?? ['127.0.0.1'],
      },
    }),
  };
}

test('the broker is at the VM\'s first API address, an IPv6 one in brackets', () => {
  assert.is(brokerUrl(loadedConfig({ api: ['203.0.113.129', '2001:db8::1'] }).config), 'mqtt://203.0.113.129:1883');
  assert.is(brokerUrl(loadedConfig({ api: ['2001:db8::1'] }).config, 18830), 'mqtt://[2001:db8::1]:18830');
  assert.is(brokerUrl(loadedConfig({ api: [] }).config), null);
});

test('the link keeps one channel for the config: none unpaired or disabled, a new one for a new name, discovery by its switch', async () => {
  const broker = await startBroker();
  const { client, seen } = await observe(broker.port, 'aerie/gw/+/availability');
  const ha = await observe(broker.port, 'homeassistant/#');
  track(null, [client, ha.client], [broker]);
  let loaded: LoadedConfig | null = null;
  const logs: string[] = [];
  const link = createControlLink({
    load: async () => loaded,
    connect: connectMqtt,
    port: broker.port,
    state: baseState,
    onCommand: () => {},
    resync: async () => {},
    log: (m) => logs.push(m),
    timing: { minPublishIntervalMs: 50, statePollMs: 0, reconnectMinMs: 50, reconnectMaxMs: 200 },
  });
  try {
    const online = (name: string) => seen.filter((m) => m.topic === `aerie/gw/${name}/availability`).at(-1)?.payload;
    await link.check();
    assert.equal(seen, [], 'not paired: no connection');

    loaded = loadedConfig();
    await link.check();
    await waitFor('online', () => online(G) === 'online');
    await waitFor('discovery configs', () => ha.seen.filter((m) => m.payload !== '').length === 4);

    loaded = loadedConfig({ homeAssistant: false });
    await link.check();
    await waitFor('discovery removed', () => ha.seen.filter((m) => m.payload === '').length === 4);

    loaded = loadedConfig({ enabled: false, homeAssistant: false });
    await link.check();
    await waitFor('disabled: offline, the channel closed', () => online(G) === 'offline');

    loaded = loadedConfig({ name: 'cabin', homeAssistant: false });
    await link.check();
    await waitFor('the new name online', () => online('cabin') === 'online');
    loaded = loadedConfig({ name: 'lodge', homeAssistant: false });
    await link.check();
    await waitFor('re-paired under another name', () => online('lodge') === 'online');
    await waitFor('the old name left the broker', () => online('cabin') === 'offline');
  } finally {
    await link.close();
  }
  await waitFor('closing says offline', () => seen.filter((m) => m.topic === 'aerie/gw/lodge/availability').at(-1)?.payload === 'offline');
});

test.run();
