import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { AERIE_METHODS } from '../../gateway/rpc/aerie-object.ts';
import { connectUbus, UbusError, UBUS_STATUS, type UbusClient, type UbusMethod, type UbusTable } from '../../gateway/ubus/index.ts';
import { createFakeUbus, type FakeUbus } from '../unit/lib/fake-uci.ts';
import { openwrtDefaults, openwrtNetifd, ROUTER_PRIVATE, VM_PUBLIC } from '../unit/lib/openwrt-fixtures.ts';
import { buildGatewayBundle, NODE20 } from './lib/gateway-bundle.ts';
import { createTestUbusd, type TestUbusd } from './lib/test-ubusd.ts';
import { setupOnce } from './setup.ts';

/**
 * The gateway bundle on Node 20 as OpenWrt runs it (procd's command line),
 * on a ubus of our own: the test ubusd, with rpcd's `uci` and netifd's
 * objects served by the fake whose replies are checked against the recorded
 * traffic (gateway-fake-uci.test.ts). What LuCI and procd do is done here
 * the same way: `ubus call aerie …`, `uci set` + commit, then SIGHUP.
 */

const WAIT_MS = 15_000;
let dir = '';
let bundle = '';
let ubusd: TestUbusd;
let system: UbusClient;
let client: UbusClient;
let fake: FakeUbus;
let daemon: ChildProcess | null = null;
let output = '';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until check() is truthy; bounded by WAIT_MS. */
async function until<T>(what: string, check: () => T | Promise<T>): Promise<NonNullable<T>> {
  const deadline = Date.now() + WAIT_MS;
  for (let i = 0; i < 300; i++) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) break;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}; the daemon said:\n${output}`);
}

/** rpcd's and netifd's objects on the test ubusd, answered by the fake. */
async function serveSystem(): Promise<void> {
  const forward = (object: string, methods: string[]): Record<string, UbusMethod> =>
    Object.fromEntries(methods.map((m) => [m, { handler: (args: UbusTable) => fake.ubus.call(object, m, args) }]));
  await system.register('uci', forward('uci', ['get', 'set', 'add', 'delete', 'changes', 'revert', 'commit']));
  await system.register('network', forward('network', ['reload']));
  await system.register('network.interface', forward('network.interface', ['dump']));
  for (const name of ['loopback', 'lan', 'wan', 'wan6', 'aerie']) {
    await system.register(`network.interface.${name}`, forward(`network.interface.${name}`, ['status', 'up', 'down']));
  }
}

const section = (config: string, name: string) => fake.snapshot()[config]?.find((s) => s.name === name);
const lanToWan = () => fake.snapshot()['firewall']!.find((s) => s.type === 'forwarding' && s.options['src'] === 'lan' && s.options['dest'] === 'wan')!;

/** What procd does on `uci commit aerie`: the reload trigger runs `reload`, which sends SIGHUP. */
async function uciSwitch(option: string, value: string): Promise<void> {
  await fake.ubus.call('uci', 'set', { config: 'aerie', section: 'main', values: { [option]: value } });
  await fake.ubus.call('uci', 'commit', { config: 'aerie' });
  daemon!.kill('SIGHUP');
}

setupOnce(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'aerie-openwrt-'));
  bundle = await buildGatewayBundle(join(dir, 'dist'));
  const fixture = openwrtDefaults();
  fixture['aerie'] = [{ name: 'main', type: 'aerie', options: { enabled: '1', kill_switch: '1', dns_intercept: '1', lan_network: ['lan'] } }];
  fake = createFakeUbus(fixture, { netifd: openwrtNetifd() });
  ubusd = createTestUbusd(join(dir, 'ubus.sock'));
  await ubusd.start();
  system = await connectUbus({ socket: ubusd.path, reconnect: false });
  client = await connectUbus({ socket: ubusd.path, reconnect: false });
  await serveSystem();

  // What `aerie pair` leaves in /etc/aerie: the config and the 0600 key.
  writeFileSync(join(dir, 'gateway.key'), `${ROUTER_PRIVATE}\n`, { mode: 0o600 });
  writeFileSync(
    join(dir, 'gateway.json'),
    JSON.stringify({
      name: 'home',
      lanInterfaces: ['br-lan'],
      lanPrefixes: [{ prefix: '192.0.2.0/24', interface: 'br-lan' }],
      vm: {
        publicKey: VM_PUBLIC,
        endpoint: '203.0.113.10:51820',
        addresses: ['203.0.113.130/25', '2001:db8:a0::2/64'],
        overlay: ['203.0.113.128/25', '2001:db8:a0::/64'],
        // Nobody answers there: the VM stays away throughout.
        api: ['203.0.113.129'],
      },
    }),
  );
  daemon = spawn(NODE20, ['--lite-mode', '--max-semi-space-size=1', bundle, 'run', '--config', join(dir, 'gateway.json')], {
    env: { ...process.env, AERIE_PLATFORM: 'openwrt', AERIE_UBUS_SOCKET: ubusd.path },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  daemon.stdout!.on('data', (c) => (output += c));
  daemon.stderr!.on('data', (c) => (output += c));
});

test.after(async () => {
  if (daemon && daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await Promise.race([new Promise((r) => daemon!.once('exit', r)), sleep(5000)]);
    if (daemon.exitCode === null) daemon.kill('SIGKILL');
  }
  await client?.close();
  await system?.close();
  await ubusd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('the daemon registers the aerie object with the methods LuCI calls', async () => {
  const [obj] = await until('the aerie object', async () => ((await client.lookup('aerie')).length > 0 ? client.lookup('aerie') : null));
  assert.ok(obj);
  assert.equal(Object.keys(obj.signature).sort(), Object.keys(AERIE_METHODS).sort());
  for (const [method, spec] of Object.entries(AERIE_METHODS)) {
    assert.equal(Object.keys(obj.signature[method]!).sort(), Object.keys(spec.args).sort(), method);
  }
  assert.match(output, /platform: openwrt \(AERIE_PLATFORM=openwrt\)/);
});

test('the desired state goes into UCI, committed, and the kill switch include is written', async () => {
  const iface = (await until('interface aerie in UCI', () => section('network', 'aerie')))!;
  assert.is(iface.options['proto'], 'wireguard');
  assert.is(iface.options['private_key'], ROUTER_PRIVATE, 'netifd keeps the key as a UCI option');
  assert.is(section('network', 'aerie_peer')!.options['public_key'], VM_PUBLIC);
  assert.is(section('firewall', 'aerie_zone')!.options['name'], 'aerie');
  assert.is(lanToWan().options['enabled'], '0', 'no LAN → WAN forwarding while the kill switch is on');
  // The three configs are committed one after the other (firewall, network, dhcp).
  const dnsmasq = await until('dnsmasq pointed at the VM', () => {
    const d = fake.snapshot()['dhcp']!.find((x) => x.type === 'dnsmasq')!;
    return d.options['server'] ? d : null;
  });
  assert.equal(dnsmasq.options['server'], ['203.0.113.129']);
  assert.is(dnsmasq.options['noresolv'], '1');
  assert.equal(fake.pending(), {}, 'nothing left uncommitted');
  const include = join(dir, 'forward.nft');
  await until('the include file', () => existsSync(include));
  const rules = readFileSync(include, 'utf8');
  assert.ok(rules.includes('br-lan') && rules.includes('eth1'), rules);
  assert.not.match(output, new RegExp(ROUTER_PRIVATE.replace(/[+/=]/g, '.')), 'the key is never logged');
});

test('status answers what is in force; settings without the VM fail and say why', async () => {
  const s = await client.call('aerie', 'status', {});
  assert.is(s['name'], 'home');
  assert.ok(['down', 'connecting'].includes(s['state'] as string), String(s['state']));
  assert.equal(s['kill_switch'], { configured: true, active: true });
  assert.equal(s['dns_intercept'], { configured: true, active: true });
  assert.is(s['last_error'], null);
  try {
    await client.call('aerie', 'device_add', { name: 'bad name!', role: 'owner' });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, UbusError);
    assert.is((e as UbusError).status, UBUS_STATUS.INVALID_ARGUMENT);
  }
  const after = await client.call('aerie', 'status', {});
  assert.match(String((after['last_error'] as UbusTable)['message']), /^name: /, 'LuCI can show why');
});

test('a UCI switch and SIGHUP (procd reload) change the system at once; disabling restores it', async () => {
  await uciSwitch('kill_switch', '0');
  await until('LAN → WAN forwarding back', () => lanToWan().options['enabled'] !== '0');
  assert.equal((await client.call('aerie', 'status', {}))['kill_switch'], { configured: false, active: false });

  await uciSwitch('enabled', '0');
  const original = createFakeUbus(openwrtDefaults()).snapshot();
  const strip = (s: { name: string; type: string; options: Record<string, unknown> }[]) =>
    s.map((x) => ({ type: x.type, options: Object.fromEntries(Object.entries(x.options).sort()) }));
  const CONFIGS = ['network', 'firewall', 'dhcp'];
  // The three configs are committed one after the other: wait for the last.
  const asBefore = () => CONFIGS.every((c) => JSON.stringify(strip(fake.snapshot()[c]!)) === JSON.stringify(strip(original[c]!)));
  await until('the router as before Aerie', asBefore).catch(() => {});
  for (const config of CONFIGS) assert.equal(strip(fake.snapshot()[config]!), strip(original[config]!), `${config} as it was before Aerie`);
  assert.is((await client.call('aerie', 'status', {}))['state'], 'disabled');
});

/** The bundle's CLI on Node 20 against the same ubus (not spawnSync: this process is the ubusd). */
function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = spawn(NODE20, [bundle, ...args, '--config', join(dir, 'gateway.json')], {
    env: { ...process.env, AERIE_PLATFORM: 'openwrt', AERIE_UBUS_SOCKET: ubusd.path },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (c) => (stdout += c));
  p.stderr.on('data', (c) => (stderr += c));
  const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
  return new Promise((resolve) =>
    p.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

test('unpair from LuCI: the system as before, the pairing forgotten; the CLI agrees', async () => {
  await uciSwitch('enabled', '1');
  await until('our sections back', () => section('network', 'aerie'));
  const status = await cli(['status', '--json']);
  assert.is(status.code, 0, status.stderr);
  const s = JSON.parse(status.stdout) as Record<string, unknown>;
  assert.is(s['killSwitch'], false, 'the UCI switch, not the file');
  assert.is(s['killSwitchActive'], false);

  assert.equal(await client.call('aerie', 'unpair', {}), { unpaired: true });
  assert.not.ok(existsSync(join(dir, 'gateway.json')) || existsSync(join(dir, 'gateway.key')), 'config and key removed');
  assert.not.ok(section('network', 'aerie') || section('firewall', 'aerie_zone'), 'our sections removed');
  assert.is(lanToWan().options['enabled'], undefined, "LAN → WAN forwarding as it was (no 'enabled' option)");
  assert.is((await client.call('aerie', 'status', {}))['state'], 'unpaired');
  const again = await cli(['unpair']);
  assert.is(again.code, 0, again.stderr);
  assert.match(again.stdout, /was not paired/);
});

test.run();
