import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPair } from '../../shared/keys.ts';
import { createRunner } from '../../shared/run.ts';
import { saveConfig, parseConfig, writeFileAtomic } from '../../gateway/config.ts';
import { addresses, eventuallyPings, link, NetnsSet, pings, sleep, type Netns } from './gateway-netns.ts';
import { requireRoot, setupOnce } from './setup.ts';

/**
 * `aerie-gateway run`, `status` and `down` as processes in a router
 * namespace, against a stand-in VM: a wireguard-go peer with a small HTTP
 * API on its overlay address.
 *
 *   lan (192.0.2.130) ── lan0 [router] wan0 (198.51.100.2) ── eth0 (198.51.100.1) vm
 *
 * Shows the tunnel coming up by itself, the VM's view of us, recovery after
 * the VM loses its session (target under 10 s), the kill switch surviving
 * kill -9 and SIGTERM, and `down` removing it all.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = join(ROOT, 'gateway/main.ts');
const RT_WG = `agd${process.pid}`.slice(0, 15);
const VM_WG = `avd${process.pid}`.slice(0, 15);
const VM_API4 = '203.0.113.129';
const VM_API6 = '2001:db8:a0::1';

const nets = new NetnsSet();
let lan: Netns;
let router: Netns;
let vmNs: Netns;
let dir = '';
let configPath = '';
const routerKeys = generateKeyPair();
const vmKeys = generateKeyPair();
const daemons: { child: ChildProcess; log: string }[] = [];
let log = '';
const T0 = Date.now();

// The VM's API: health, and who the caller is by its tunnel source address.
const API_SERVER = `
const http = require('node:http');
http.createServer((req, res) => {
  const address = req.socket.remoteAddress.replace(/^::ffff:/, '');
  res.setHeader('content-type', 'application/json');
  if (req.url === '/v1/health') return res.end(JSON.stringify({ ok: true }));
  if (req.url === '/v1/whoami') return res.end(JSON.stringify({ name: 'home', role: 'gateway', address }));
  res.statusCode = 404;
  res.end(JSON.stringify({ error: { code: 'not-found', message: 'no such path' } }));
}).listen(80, '::');
`;

async function vmUp(): Promise<void> {
  await vmNs.run(['wireguard-go', VM_WG]);
  await vmNs.run(
    [
      'wg', 'set', VM_WG, 'private-key', '/dev/stdin', 'listen-port', '51820',
      'peer', routerKeys.publicKey, 'allowed-ips', '203.0.113.130/32,2001:db8:a0::2/128,192.0.2.128/25,2001:db8:1a::/64',
    ],
    { input: vmKeys.privateKey },
  );
  await addresses(vmNs, VM_WG, `${VM_API4}/25`, `${VM_API6}/64`);
  await vmNs.ip('link', 'set', VM_WG, 'up');
  await vmNs.ip('route', 'add', '192.0.2.128/25', 'dev', VM_WG);
  await vmNs.ip('-6', 'route', 'add', '2001:db8:1a::/64', 'dev', VM_WG);
}

function gateway(...args: string[]) {
  return createRunner({ prefix: ['ip', 'netns', 'exec', router.name, process.execPath, MAIN] })([...args, '--config', configPath], {
    allowFail: true,
    timeoutMs: 20_000,
  });
}

function startDaemon(): { child: ChildProcess; log: string } {
  const child = spawn('ip', ['netns', 'exec', router.name, process.execPath, MAIN, 'run', '--config', configPath], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const daemon = { child, log: '' };
  child.stderr!.on('data', (d: Buffer) => {
    const text = d.toString().replace(/^(?=.)/gm, `[${((Date.now() - T0) / 1000).toFixed(1)} s] `);
    daemon.log += text;
    log += text;
  });
  daemons.push(daemon);
  return daemon;
}

/** Waits (bounded) until the daemon has logged a line matching re. */
async function logged(daemon: { log: string }, re: RegExp, withinMs = 10_000): Promise<boolean> {
  for (let t0 = Date.now(); Date.now() - t0 < withinMs; await sleep(100)) if (re.test(daemon.log)) return true;
  return false;
}

function exited(child: ChildProcess, ms: number): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
}

/** Polls until the laptop reaches `address` through the tunnel; milliseconds taken, or null. */
async function reachable(address: string, withinMs: number): Promise<number | null> {
  const t0 = Date.now();
  while (Date.now() - t0 < withinMs) {
    if (await pings(lan, address)) return Date.now() - t0;
  }
  return null;
}

async function kernelState() {
  const nft = await router.run(['nft', 'list', 'table', 'inet', 'aerie_gw'], { allowFail: true });
  const rules = [
    ...(JSON.parse(await router.ip('-j', '-4', 'rule', 'show')) as { table: string }[]),
    ...(JSON.parse(await router.ip('-j', '-6', 'rule', 'show')) as { table: string }[]),
  ];
  const link = await router.run(['ip', 'link', 'show', 'dev', RT_WG], { allowFail: true });
  return { nft: nft.code === 0, rules: rules.filter((r) => r.table === '7375').length, link: link.code === 0 };
}

// Namespaces, a stand-in VM, the router paired (config and key on disk).
setupOnce(test, async () => {
  requireRoot('gateway-daemon', ['ip', 'wg', 'wireguard-go', 'nft', 'ping', 'sysctl']);
  lan = await nets.add('lan');
  router = await nets.add('rt');
  vmNs = await nets.add('vm');
  await link(router, 'lan0', lan, 'eth0');
  await link(router, 'wan0', vmNs, 'eth0');
  await addresses(lan, 'eth0', '192.0.2.130/25', '2001:db8:1a::130/64');
  await addresses(router, 'lan0', '192.0.2.129/25', '2001:db8:1a::1/64');
  await addresses(router, 'wan0', '198.51.100.2/25', '2001:db8:100::2/64');
  await addresses(vmNs, 'eth0', '198.51.100.1/25', '2001:db8:100::1/64');
  await lan.ip('route', 'add', 'default', 'via', '192.0.2.129');
  await lan.ip('-6', 'route', 'add', 'default', 'via', '2001:db8:1a::1');
  await vmUp();
  // The VM's stand-in API; its PID is found again by `ip netns pids` at cleanup.
  spawn('ip', ['netns', 'exec', vmNs.name, process.execPath, '-e', API_SERVER], { stdio: 'ignore' });

  dir = await mkdtemp(join(tmpdir(), 'aerie-gw-daemon-'));
  configPath = join(dir, 'gateway.json');
  await writeFileAtomic(join(dir, 'gateway.key'), `${routerKeys.privateKey}\n`, 0o600);
  await saveConfig(
    configPath,
    parseConfig({
      name: 'home',
      interface: RT_WG,
      dnsResolvFile: join(dir, 'resolv.d', 'aerie'),
      lanInterfaces: ['lan0'],
      lanPrefixes: [
        { prefix: '192.0.2.128/25', interface: 'lan0' },
        { prefix: '2001:db8:1a::/64', interface: 'lan0' },
      ],
      vm: {
        publicKey: vmKeys.publicKey,
        endpoint: '198.51.100.1:51820',
        addresses: ['203.0.113.130/25', '2001:db8:a0::2/64'],
        overlay: ['203.0.113.128/25', '2001:db8:a0::/64'],
        api: [VM_API4, VM_API6],
        keepalive: 25,
      },
    }),
  );
});

test('before the daemon runs: the router reaches the VM directly, the laptop does not', async () => {
  assert.ok(await eventuallyPings(router, '198.51.100.1'), 'the router reaches the VM directly');
  assert.not.ok(await pings(lan, VM_API4), 'no tunnel yet');
});

test('run: the laptop reaches the VM through the tunnel, IPv4 and IPv6', async () => {
  startDaemon();
  const took = await reachable(VM_API4, 15_000);
  assert.ok(took !== null, `no tunnel after 15 s; daemon said:\n${log}`);
  console.log(`  tunnel up ${took} ms after the daemon started (node start included)`);
  assert.ok(await eventuallyPings(lan, VM_API6), 'and over IPv6');
});

test('status: up, recent handshake, bytes, and the VM\'s view of us', async () => {
  assert.ok(await logged(daemons[0]!, /tunnel up/), log);
  const json = await gateway('status', '--json');
  assert.is(json.code, 0, json.stderr);
  const s = JSON.parse(json.stdout);
  assert.is(s.tunnel, 'up');
  assert.ok(s.handshakeAgeSeconds !== null && s.handshakeAgeSeconds < 30);
  assert.ok(s.rxBytes > 0 && s.txBytes > 0);
  assert.equal(s.whoami, { name: 'home', role: 'gateway', address: '203.0.113.130' });
  assert.is(s.dnsInterceptActive, true, 'DNS interception read back from nft');
  assert.equal(s.dnsServers, [VM_API4, VM_API6]);
  const text = await gateway('status');
  assert.match(text.stdout, /^tunnel: +up \(interface agd/m);
  assert.match(text.stdout, /^dns: +intercepted/m);
  // The router's resolver is pointed at the VM's resolver.
  const resolv = await readFile(join(dir, 'resolv.d', 'aerie'), 'utf8');
  assert.equal(resolv.split('\n').filter((l) => l.startsWith('nameserver')), [`nameserver ${VM_API4}`, `nameserver ${VM_API6}`]);
  assert.match(text.stdout, /^vm sees us as: +home \(gateway\) at 203\.0\.113\.130$/m);
});

test('the VM restarts and loses the session: traffic resumes by itself in under 10 s', async () => {
  await vmNs.ip('link', 'del', VM_WG); // wireguard-go exits with its interface
  await sleep(Number(process.env.VM_OUTAGE_MS ?? 1000));
  assert.not.ok(await pings(lan, VM_API4), 'the VM is gone');
  await vmUp();
  const back = ((Date.now() - T0) / 1000).toFixed(1);
  const took = await reachable(VM_API4, 20_000);
  console.log(`  recovered ${took} ms after the VM came back (at ${back} s)`);
  if (process.env.DEBUG_GATEWAY) console.log(log);
  assert.ok(took !== null && took < 10_000, `recovery took ${took} ms; daemon said:\n${log}`);
});

test('kill -9 leaves the kill switch, rules and tunnel in the kernel; a new daemon carries on', async () => {
  const first = daemons[0]!.child;
  // `ip netns exec` execs node in place, so this PID is the daemon itself.
  first.kill('SIGKILL');
  await exited(first, 2000);
  assert.is(first.signalCode, 'SIGKILL');
  await sleep(300);
  assert.equal(await kernelState(), { nft: true, rules: 2, link: true });
  const s = JSON.parse((await gateway('status', '--json')).stdout);
  assert.is(s.killSwitchActive, true, 'status sees the kill switch with no daemon running');
  const second = startDaemon();
  // The tunnel itself outlived the daemon; the new one must find it healthy and keep it.
  assert.ok(await logged(second, /tunnel up: the VM answers/), `the new daemon took over; it said:\n${second.log}`);
  assert.ok((await reachable(VM_API4, 5_000)) !== null);
});

test('SIGTERM: clean exit 0, kill switch left in place', async () => {
  const second = daemons[1]!.child;
  second.kill('SIGTERM');
  const code = await exited(second, 10_000);
  assert.is(code, 0, `exit code; daemon said:\n${log}`);
  assert.match(log, /SIGTERM: stopping; the kill switch stays in place/);
  assert.equal(await kernelState(), { nft: true, rules: 2, link: true });
});

test('down removes everything; status then says down', async () => {
  const r = await gateway('down');
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'removed the tunnel, policy routing, kill switch and DNS interception\n');
  assert.equal(await kernelState(), { nft: false, rules: 0, link: false });
  const s = JSON.parse((await gateway('status', '--json')).stdout);
  assert.is(s.tunnel, 'down');
  assert.is(s.killSwitchActive, false);
  assert.is(s.dnsInterceptActive, false);
  // Left in place on purpose: the router's resolver keeps asking the VM and gets nothing (fails closed).
  assert.match(await readFile(join(dir, 'resolv.d', 'aerie'), 'utf8'), new RegExp(`^nameserver ${VM_API4.replaceAll('.', '\\.')}$`, 'm'));
});

test.after(async () => {
  for (const d of daemons) d.child.kill('SIGKILL');
  nets.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.run();
