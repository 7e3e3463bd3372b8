import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPair } from '../../shared/keys.ts';
import { sampleConfig } from './gateway-fixtures.ts';
import {
  ConfigError,
  configSource,
  loadConfig,
  parseConfig,
  readPrivateKey,
  saveConfig,
  writeFileAtomic,
} from '../../gateway/config.ts';

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.instance(e, ConfigError);
    return (e as ConfigError).field;
  }
  throw new Error('expected a ConfigError');
}

test('defaults: enabled, kill switch on, interface aerie, keepalive 25, our table', () => {
  const c = parseConfig(sampleConfig());
  assert.is(c.enabled, true);
  assert.is(c.killSwitch, true);
  assert.is(c.interface, 'aerie');
  assert.is(c.mtu, 1420);
  assert.is(c.vm.keepalive, 25);
  assert.is(c.privateKeyFile, 'gateway.key');
  assert.equal(c.routing, { table: 7375, priority: 7375 });
  assert.is(c.dnsIntercept, true, 'DNS interception is on unless turned off');
  assert.is(c.dnsResolvFile, undefined);
});

test('addresses come out canonical', () => {
  const raw = sampleConfig();
  (raw.vm as { api: string[] }).api = ['2001:DB8:A0:0::1'];
  assert.equal(parseConfig(raw).vm.api, ['2001:db8:a0::1']);
});

test('errors name the field and what was expected', () => {
  const cases: [(c: any) => void, string, RegExp][] = [
    [(c) => (c.vm.publicKey = 'nope'), 'vm.publicKey', /WireGuard key/],
    [(c) => (c.vm.endpoint = 'vm.example'), 'vm.endpoint', /port/],
    [(c) => (c.lanPrefixes[1].prefix = '2001:db8:1a::1/64'), 'lanPrefixes[1].prefix', /host bits/],
    [(c) => (c.lanPrefixes[0].interface = 'eth9'), 'lanPrefixes', /lanInterfaces/],
    [(c) => (c.interface = 'lan0'), 'interface', /LAN interface/],
    [(c) => (c.routing = { table: 254, priority: 100 }), 'routing.table', /kernel/],
    [(c) => (c.routing = { table: 100, priority: 40000 }), 'routing.priority', /1-32765/],
    [(c) => (c.killswitch = false), 'killswitch', /./],
    [(c) => (c.name = 'Home Router'), 'name', /device name/],
    [(c) => (c.lanInterfaces = []), 'lanInterfaces', /at least one/],
    [(c) => (c.vm.addresses = []), 'vm.addresses', /at least one/],
    [(c) => (c.mtu = 576), 'mtu', /1280/],
    [(c) => (c.dnsIntercept = 'yes'), 'dnsIntercept', /true or false/],
    [(c) => (c.dnsResolvFile = 'resolv.aerie'), 'dnsResolvFile', /absolute file path/],
    [(c) => (c.dnsResolvFile = '/tmp/x\nnameserver 198.51.100.1'), 'dnsResolvFile', /absolute file path/],
    [(c) => delete c.vm, 'vm', /required/],
  ];
  for (const [edit, field, message] of cases) {
    const c = sampleConfig();
    edit(c);
    assert.is(fieldOf(() => parseConfig(c, '/etc/aerie/gateway.json')), field, `field for ${field}`);
    try {
      parseConfig(c, '/etc/aerie/gateway.json');
    } catch (e) {
      assert.match((e as Error).message, /^config \/etc\/aerie\/gateway\.json: /);
      assert.match((e as Error).message, message);
    }
  }
});

test('files: missing → null, bad JSON named, atomic save round-trips, key file must be private', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'aerie-gw-config-'));
  try {
    const path = join(dir, 'sub', 'gateway.json');
    assert.is(await loadConfig(path), null);

    await writeFileAtomic(join(dir, 'broken.json'), '{ nope');
    try {
      await loadConfig(join(dir, 'broken.json'));
      assert.unreachable();
    } catch (e) {
      assert.match((e as Error).message, /broken\.json: not valid JSON/);
    }

    const c = parseConfig(sampleConfig(), path);
    await saveConfig(path, c);
    assert.equal(await loadConfig(path), c);
    assert.equal(await readdir(join(dir, 'sub')), ['gateway.json'], 'no temporary file left behind');
    assert.is((await stat(path)).mode & 0o777, 0o644);

    const key = generateKeyPair().privateKey;
    await writeFileAtomic(join(dir, 'sub', 'gateway.key'), `${key}\n`, 0o600);
    assert.is((await stat(join(dir, 'sub', 'gateway.key'))).mode & 0o777, 0o600);
    assert.is(await readPrivateKey(path, c), key);

    await chmod(join(dir, 'sub', 'gateway.key'), 0o644);
    try {
      await readPrivateKey(path, c);
      assert.unreachable();
    } catch (e) {
      assert.match((e as Error).message, /privateKeyFile: .* readable by other users .* chmod 600/);
      assert.not.match((e as Error).message, new RegExp(key.slice(0, 20).replace(/[+/]/g, '.')));
    }
    await writeFile(join(dir, 'sub', 'gateway.key'), 'not a key', { mode: 0o600 });
    await chmod(join(dir, 'sub', 'gateway.key'), 0o600);
    try {
      await readPrivateKey(path, c);
      assert.unreachable();
    } catch (e) {
      assert.match((e as Error).message, /does not hold a WireGuard private key/);
      assert.not.match((e as Error).message, /not a key/);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('configSource: the same object until a file changes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'aerie-gw-config-'));
  try {
    const path = join(dir, 'gateway.json');
    const source = configSource(path);
    assert.is(await source(), null);
    await saveConfig(path, parseConfig(sampleConfig(), path));
    await writeFileAtomic(join(dir, 'gateway.key'), `${generateKeyPair().privateKey}\n`, 0o600);
    const a = await source();
    assert.ok(a);
    assert.is(await source(), a);
    await saveConfig(path, parseConfig({ ...sampleConfig(), killSwitch: false }, path));
    const b = await source();
    assert.is.not(b, a);
    assert.is(b!.config.killSwitch, false);
    const newKey = generateKeyPair().privateKey;
    await writeFileAtomic(join(dir, 'gateway.key'), `${newKey}\n`, 0o600);
    const c = await source();
    assert.is(c!.privateKey, newKey);
    assert.is(JSON.parse(await readFile(path, 'utf8')).killSwitch, false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test.run();
