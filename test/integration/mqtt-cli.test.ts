// `aerie-cloud mqtt …` run from source, on a state directory alone and through
// a running daemon's control socket: the password is printed once and works,
// is nowhere on disk, and mistakes are one line on stderr. `mqtt sub` against
// a real broker on the daemon's local socket.
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPair } from '../../shared/keys.ts';
import { MQTT_SOCKET } from '../../cloud/control/client.ts';
import { listenPrivateSocket } from '../../cloud/control/server.ts';
import { createCore } from '../../cloud/core/core.ts';
import { LOCAL_MQTT_ADDRESS } from '../../cloud/core/mqtt.ts';
import { createMqttBroker } from '../../cloud/mqtt/broker.ts';
import { SqlitePersistence } from '../../cloud/mqtt/persistence/sqlite-persistence.ts';
import { runCloudCli as cli, cloudCliRefuses, withControlSocket } from './lib/cloud-cli.ts';
import { vmStates } from './vm-state.ts';

const freshVm = vmStates(test, 'mqtt-cli');

/** A state directory with an owner device "phone", and a core on it as a second process would have. */
function setup() {
  const vm = freshVm();
  const core = createCore({ store: vm.openAgain(), config: vm.state });
  core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey });
  return { dir: vm.dir, core };
}

const passwordIn = (stdout: string) => /^password: ([0-9a-z]{26})$/m.exec(stdout)?.[1];
const count = (text: string, part: string) => text.split(part).length - 1;

/**
 * Whether `secret` is in any file under `dir`. Read in a child process: closing
 * a descriptor of the database here would drop this process's SQLite locks
 * (POSIX record locks belong to the process), and the store open here would
 * then read stale data.
 */
function onDisk(dir: string, secret: string): boolean {
  const script = `
    const { readdirSync, readFileSync } = require('node:fs');
    const walk = (d) => readdirSync(d, { withFileTypes: true }).some((e) =>
      e.isDirectory() ? walk(d + '/' + e.name) : e.isFile() && readFileSync(d + '/' + e.name).includes(process.env.SECRET));
    process.stdout.write(String(walk(process.argv[1])));`;
  const r = spawnSync(process.execPath, ['-e', script, dir], { encoding: 'utf8', env: { SECRET: secret }, timeout: 10_000 });
  assert.is(r.status, 0, r.stderr);
  return r.stdout === 'true';
}

/** add-user, users, grant, grants, revoke, remove-user, as the owner would type them. */
async function session(dir: string, core: ReturnType<typeof setup>['core']) {
  const added = await cli(dir, 'mqtt', 'add-user', 'plug');
  assert.is(added.status, 0, added.stderr);
  const password = passwordIn(added.stdout);
  assert.ok(password, added.stdout);
  assert.is(count(added.stdout, password), 1, 'printed once');
  assert.match(added.stdout, /only time the password is shown: Aerie keeps only a hash/);
  assert.match(added.stdout, /host 203\.0\.113\.129 or 2001:db8:a0::1, port 1883.*user name plug/);
  assert.ok(await core.mqtt.users.verify('plug', password), 'the printed password logs in');
  assert.not.ok(onDisk(dir, password), 'the password is nowhere in the state directory');
  assert.ok(onDisk(dir, 'home/plug/#'), 'while the user is (so the search does look)');

  const custom = await cli(dir, 'mqtt', 'add-user', 'sensor', '--prefix', 'garden/sensor', '--json');
  assert.is(custom.status, 0, custom.stderr);
  const reply = JSON.parse(custom.stdout);
  assert.is(reply.user.prefix, 'garden/sensor/#');
  assert.ok(await core.mqtt.users.verify('sensor', reply.password));

  const users = await cli(dir, 'mqtt', 'users');
  assert.match(users.stdout, /^NAME +TOPICS +ADDED\nplug +home\/plug\/# .*\nsensor +garden\/sensor\/# /);
  const usersJson = await cli(dir, 'mqtt', 'users', '--json');
  assert.equal(JSON.parse(usersJson.stdout).map((u: { name: string }) => u.name), ['plug', 'sensor']);
  for (const text of [users.stdout, usersJson.stdout]) {
    assert.not.ok(text.includes(password) || text.includes(reply.password), 'lists never show a password');
  }

  const granted = await cli(dir, 'mqtt', 'grant', 'plug', 'read', 'garden/+/temp');
  assert.is(granted.status, 0, granted.stderr);
  assert.is(granted.stdout, 'plug (user) may subscribe to garden/+/temp.\n');
  await cli(dir, 'mqtt', 'grant', 'phone', 'write', 'home/plug/set');
  const plug = { kind: 'user', name: 'plug', prefix: 'home/plug/#' } as const;
  assert.ok(core.mqtt.access(plug, 'subscribe', 'garden/+/temp').allowed, 'the broker rules see the grant');

  const grants = await cli(dir, 'mqtt', 'grants');
  assert.match(grants.stdout, /^NAME +KIND +ACTION +FILTER\nphone +device +write +home\/plug\/set\nplug +user +read +garden\/\+\/temp\n$/);
  const one = JSON.parse((await cli(dir, 'mqtt', 'grants', 'plug', '--json')).stdout);
  assert.equal(one.map((g: { filter: string }) => g.filter), ['garden/+/temp']);

  const revoked = await cli(dir, 'mqtt', 'revoke', 'plug', 'read', 'garden/+/temp');
  assert.is(revoked.status, 0, revoked.stderr);
  assert.not.ok(core.mqtt.access(plug, 'subscribe', 'garden/+/temp').allowed, 'revoked');
  assert.is((await cli(dir, 'mqtt', 'grants', 'plug')).stdout, 'plug has no grants beyond its own topics.\n');

  const removed = await cli(dir, 'mqtt', 'remove-user', 'plug');
  assert.is(removed.status, 0, removed.stderr);
  assert.match(removed.stdout, /Removed MQTT user plug/);
  assert.is(await core.mqtt.users.verify('plug', password), null, 'the password no longer works');
}

test('without a daemon, the CLI works on the state directory', async () => {
  const { dir, core } = setup();
  await session(dir, core);
});

test('with a daemon, the CLI goes through its control socket', async () => {
  const { dir, core } = setup();
  await withControlSocket(dir, core, async (seen) => {
    await session(dir, core);
    assert.ok(seen.includes('POST /v1/mqtt/users') && seen.includes('DELETE /v1/mqtt/grants'), seen.join(', '));
  });
});

test('mistakes: one line saying what is wrong (and where help is), exit 1, nothing stored', async () => {
  const { dir, core } = setup();
  const cases: [string[], RegExp][] = [
    [['mqtt'], /^aerie-cloud: mqtt needs one of: users, add-user/],
    [['mqtt', 'bogus'], /^aerie-cloud: unknown mqtt command: bogus$/],
    [['mqtt', 'add-user'], /^aerie-cloud: expected a user name/],
    [['mqtt', 'add-user', 'a', 'b'], /^aerie-cloud: expected a user name/],
    [['mqtt', 'grant', 'phone', 'read'], /^aerie-cloud: expected: mqtt grant NAME read\|write FILTER$/],
    [['mqtt', 'users', '--prefix', 'x'], /^aerie-cloud: --prefix goes with mqtt add-user only$/],
    [['mqtt', 'users', '--colour'], /^aerie-cloud: Unknown option '--colour'/],
  ];
  await cloudCliRefuses(dir, cases, { usage: true });
  // Refused by the API: its message alone, naming the field.
  const refused: [string[], RegExp][] = [
    [['mqtt', 'add-user', 'Living Room'], /^aerie-cloud: name: expected a device name/],
    [['mqtt', 'add-user', 'plug', '--prefix', 'aerie/plug'], /^aerie-cloud: prefix: aerie\/ is reserved/],
    [['mqtt', 'add-user', 'phone'], /^aerie-cloud: "phone" is already a device's name/],
    [['mqtt', 'grant', 'phone', 'write', 'aerie/gw/home/cmd/x'], /^aerie-cloud: filter: aerie\/ topics are written only/],
    [['mqtt', 'grant', 'phone', 'maybe', 'a/#'], /^aerie-cloud: action: expected "read" or "write"/],
    [['mqtt', 'revoke', 'phone', 'read', 'a/#'], /^aerie-cloud: "phone" has no read grant for "a\/#"$/],
    [['mqtt', 'remove-user', 'nobody'], /^aerie-cloud: there is no MQTT user named "nobody"$/],
  ];
  await cloudCliRefuses(dir, refused);
  assert.equal(core.mqtt.users.list(), []);
  assert.equal(core.mqtt.grants.list(), []);
});

test('mqtt sub: retained messages first, then live ones, through the daemon\'s local socket; it may only read', async () => {
  const { dir, core } = setup();
  const logs: string[] = [];
  const broker = await createMqttBroker({
    authenticate: core.mqtt.authenticate,
    access: core.mqtt.access,
    persistence: new SqlitePersistence({ path: join(dir, 'mqtt.db'), log: (m) => logs.push(m) }),
    log: (m) => logs.push(m),
  });
  const local = createNetServer((socket) => broker.handle(socket, LOCAL_MQTT_ADDRESS));
  try {
    await listenPrivateSocket(local, join(dir, MQTT_SOCKET));
    assert.is(statSync(join(dir, MQTT_SOCKET)).mode & 0o777, 0o600, 'only root may open it');
    await broker.publish('home/plug/power', 'on', { retain: true });
    await broker.publish('garden/x', 'not asked for', { retain: true });
    const running = cli(dir, 'mqtt', 'sub', 'home/#', '--count', '3');
    const deadline = Date.now() + 10_000;
    while (!broker.clients().some((c) => c.caller === 'local:vm') && Date.now() < deadline) await sleep(50);
    assert.ok(broker.clients().some((c) => c.caller === 'local:vm'), 'the CLI connected as the VM\'s administrator');
    await sleep(200); // its SUBSCRIBE follows the CONNECT
    await broker.publish('home/plug/power', 'off');
    await broker.publish('home/cam/frame', new Uint8Array([0, 1, 2, 255]));
    const r = await running;
    assert.is(r.status, 0, r.stderr);
    assert.is(r.stdout, 'home/plug/power [retained] on\nhome/plug/power off\nhome/cam/frame base64:AAEC/w==\n');

    const json = await cli(dir, 'mqtt', 'sub', 'home/plug/+', '--count', '1', '--json');
    assert.equal(JSON.parse(json.stdout), { topic: 'home/plug/power', payload: 'on', qos: 0, retain: true });

    // The administrator's connection reads; it does not write (a published message would be dropped).
    assert.ok(core.mqtt.access({ kind: 'local', name: 'vm' }, 'subscribe', '$SYS/#').allowed);
    assert.not.ok(core.mqtt.access({ kind: 'local', name: 'vm' }, 'publish', 'home/plug/set').allowed);
  } finally {
    await new Promise<void>((resolve) => local.close(() => resolve()));
    await broker.close();
  }
  const gone = await cli(dir, 'mqtt', 'sub', 'home/#', '--count', '1');
  assert.is(gone.status, 1);
  assert.match(gone.stderr, /^aerie-cloud: the daemon is not running/);
  for (const [args, message] of [
    [['mqtt', 'sub'], /expected: mqtt sub FILTER/],
    [['mqtt', 'sub', 'home/#', '--count', '0'], /--count: expected a whole number above 0/],
    [['mqtt', 'sub', 'home/#/x'], /filter: .*#/],
    [['mqtt', 'users', '--count', '2'], /--count goes with mqtt sub only/],
  ] as [string[], RegExp][]) {
    const bad = await cli(dir, ...args);
    assert.is(bad.status, 1, args.join(' '));
    assert.match(bad.stderr.split('\n')[0]!, message);
  }
});

test('the usage lists the mqtt commands', async () => {
  const { dir } = setup();
  const r = await cli(dir, '--help');
  for (const command of ['mqtt users', 'mqtt add-user NAME [--prefix TOPIC]', 'mqtt remove-user NAME', 'mqtt grant NAME read|write FILTER', 'mqtt revoke', 'mqtt grants [NAME]', 'mqtt clients', 'mqtt sub FILTER']) {
    assert.ok(r.stdout.includes(`aerie-cloud ${command}`), command);
  }
});

test.run();
