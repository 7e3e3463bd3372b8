// The VM's platform adapters against the real kernel, inside network
// namespaces this test creates (needs root, ip, wg, wireguard-go, nft, ping).
//
//   peer ns ── eth0 198.51.100.2/25 ═ eth0 198.51.100.1/25 ── hub ns ── wan0 198.51.100.129/25 ═ eth0 198.51.100.130/25 ── web ns
//   peer: plain wg, tunnel 203.0.113.130, "home" 192.0.2.129 on lo;  hub: our adapters, tunnel 203.0.113.129
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rm } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { createRunner, type Runner } from '../../shared/run.ts';
import { ValidationError } from '../../shared/errors.ts';
import { generateKeyPair } from '../../shared/keys.ts';
import { createHub, type HubDesired } from '../../cloud/wg/hub.ts';
import { createFirewall } from '../../cloud/firewall/apply.ts';
import { wgSyncConf } from '../../shared/wg-syncconf.ts';
import type { FirewallDesired } from '../../cloud/firewall/desired.ts';
import { requireRoot, setupOnce } from './setup.ts';

const pid = process.pid;
const NS = { hub: `aerie-t-hub-${pid}`, peer: `aerie-t-peer-${pid}`, web: `aerie-t-web-${pid}` };
// wireguard-go's sockets (/var/run/wireguard/NAME.sock) are shared by all namespaces: names unique to this run.
const IF = { hub: `aht${pid}a`, peer: `aht${pid}b` };
const PEER_PORT = 51821;

const host = createRunner();
// Every command the adapters run, for the "second set() only reads" checks.
let traced: string[][] = [];
const adapterRun = createRunner({ prefix: ['ip', 'netns', 'exec', NS.hub], trace: (argv) => traced.push(argv.slice(4)) });
const inNs = (ns: string): Runner => createRunner({ prefix: ['ip', 'netns', 'exec', ns] });
const hubNs = inNs(NS.hub);
const peerNs = inNs(NS.peer);
const webNs = inNs(NS.web);

const hubKeys = generateKeyPair();
const peerKeys = generateKeyPair();
const otherPeer = generateKeyPair().publicKey;

const hub = createHub(adapterRun, { interface: IF.hub });
const firewall = createFirewall(adapterRun);

function hubDesired(over: Partial<HubDesired> = {}): HubDesired {
  return {
    interface: IF.hub,
    privateKey: hubKeys.privateKey,
    listenPort: 51820,
    addresses: ['203.0.113.129/25', '2001:db8:a0::1/64'],
    mtu: 1420,
    peers: [
      {
        publicKey: peerKeys.publicKey,
        allowedIps: ['203.0.113.130/32', '2001:db8:a0::2/128', '192.0.2.128/25', '2001:db8:1a::/64'],
      },
      // Never answers; its literal endpoint and keepalive must survive a re-sync check.
      { publicKey: otherPeer, allowedIps: ['203.0.113.131/32'], endpoint: '198.51.100.99:51820', keepalive: 25 },
    ],
    routes: ['192.0.2.128/25', '2001:db8:1a::/64'],
    ...over,
  };
}

const fwDesired: FirewallDesired = {
  wanInterface: 'wan0',
  tunnelInterface: IF.hub,
  overlay: ['203.0.113.128/25', '2001:db8:a0::/64'],
  vmAddresses: ['203.0.113.129', '2001:db8:a0::1'],
  ports: { wireguard: 51820, pairing: 8443, api: 80, dns: 53, mqtt: 1883, ssh: 22 },
  subjects: [
    {
      name: 'home',
      kind: 'gateway',
      addresses: ['203.0.113.130', '2001:db8:a0::2'],
      homePrefixes: ['192.0.2.128/25', '2001:db8:1a::/64'],
      policy: { internet: 'allow', isolated: false, lanAccess: false },
    },
  ],
  publishes: [],
};

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function nsPids(ns: string): Promise<number[]> {
  const r = await host(['ip', 'netns', 'pids', ns], { allowFail: true });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    if (Date.now() > deadline) break;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** One ping that must get an answer (a few tries: the first packet may wait for a handshake). */
async function reaches(run: Runner, args: string[]): Promise<boolean> {
  for (let i = 0; i < 5; i++) {
    if ((await run(['ping', '-c', '1', '-W', '1', ...args], { allowFail: true })).code === 0) return true;
  }
  return false;
}
const blocked = async (run: Runner, args: string[]) =>
  (await run(['ping', '-c', '2', '-i', '0.2', '-W', '1', ...args], { allowFail: true })).code !== 0;

const json = async (run: Runner, argv: string[]) => JSON.parse((await run(argv)).stdout) as any[];
const ourRoutes = async (family: 4 | 6) =>
  (await json(hubNs, ['ip', '-j', `-${family}`, 'route', 'show', 'proto', '174'])).map((r) => `${r.dst} ${r.dev}`).sort();
const hubAddresses = async () =>
  (await json(hubNs, ['ip', '-j', 'addr', 'show', 'dev', IF.hub]))[0].addr_info
    .filter((a: any) => a.scope !== 'link')
    .map((a: any) => `${a.local}/${a.prefixlen}`)
    .sort();
const dumpOf = async (run: Runner, name: string) =>
  (await run(['wg', 'show', name, 'dump'])).stdout.trim().split('\n').map((l) => l.split('\t'));
// With handles: a table that was deleted and created again lists differently.
// Without counter values (-s): every rule counts, and a stray packet must not look like a changed table.
const tableJson = async () => (await hubNs(['nft', '-s', '-j', 'list', 'table', 'inet', 'aerie'])).stdout;
const tableText = async () => (await hubNs(['nft', '-s', 'list', 'table', 'inet', 'aerie'])).stdout;
/** The configuration part of a dump (no counters, which move on their own), in a stable order. */
const configOf = (dump: string[][]) => dump.map((f) => (f.length === 8 ? [f[0], f[2], f[3], f[7]] : f).join(' ')).sort();
const tableExists = async () => (await hubNs(['nft', 'list', 'table', 'inet', 'aerie'], { allowFail: true })).code === 0;

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

async function cleanup(): Promise<void> {
  for (const ns of Object.values(NS)) {
    // wireguard-go daemonizes: find it by namespace, TERM, then KILL what is left.
    for (const p of await nsPids(ns)) signal(p, 'SIGTERM');
    for (let i = 0; i < 20 && (await nsPids(ns)).length; i++) await sleep(100);
    for (const p of await nsPids(ns)) signal(p, 'SIGKILL');
    await host(['ip', 'netns', 'del', ns], { allowFail: true });
  }
  // A killed wireguard-go leaves its socket behind; these names are ours alone.
  for (const name of Object.values(IF)) await rm(`/var/run/wireguard/${name}.sock`, { force: true });
}

setupOnce(test, setup);
test.after(cleanup);
// Interrupted (Ctrl-C, a runner's timeout): still take down what we made.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => void cleanup().finally(() => process.exit(1)));
}

async function setup(): Promise<void> {
  requireRoot('cloud-platform', ['ip', 'wg', 'wireguard-go', 'nft', 'ping', 'env']);
  await cleanup(); // a crashed earlier run with the same pid
  for (const ns of Object.values(NS)) {
    await host(['ip', 'netns', 'add', ns]);
    await host(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
  }
  await host(['ip', '-n', NS.hub, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.peer]);
  await host(['ip', '-n', NS.hub, 'link', 'add', 'wan0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NS.web]);
  const addrs: [string, string, string][] = [
    [NS.hub, 'eth0', '198.51.100.1/25'], [NS.hub, 'eth0', '2001:db8:100::1/64'],
    [NS.peer, 'eth0', '198.51.100.2/25'], [NS.peer, 'eth0', '2001:db8:100::2/64'],
    [NS.hub, 'wan0', '198.51.100.129/25'], [NS.hub, 'wan0', '2001:db8:ff::1/64'],
    [NS.web, 'eth0', '198.51.100.130/25'], [NS.web, 'eth0', '2001:db8:ff::2/64'],
  ];
  for (const [ns, dev, a] of addrs) {
    await host(['ip', '-n', ns, 'addr', 'add', a, 'dev', dev, ...(a.includes(':') ? ['nodad'] : [])]);
  }
  for (const [ns, dev] of [[NS.hub, 'eth0'], [NS.hub, 'wan0'], [NS.peer, 'eth0'], [NS.web, 'eth0']] as const) {
    await host(['ip', '-n', ns, 'link', 'set', dev, 'up']);
  }
  // A careless ISP: the web side routes the home prefixes to the VM.
  await host(['ip', '-n', NS.web, 'route', 'add', '192.0.2.128/25', 'via', '198.51.100.129']);
  await host(['ip', '-n', NS.web, '-6', 'route', 'add', '2001:db8:1a::/64', 'via', '2001:db8:ff::1']);
  // Loose source checks, so that only our firewall decides about spoofed sources.
  await hubNs(['sysctl', '-q', '-w', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.eth0.rp_filter=0']);

  // The peer: a plain wg setup, nothing of ours.
  await peerNs(['ip', 'addr', 'add', '192.0.2.129/32', 'dev', 'lo']);
  await peerNs(['ip', 'addr', 'add', '2001:db8:1a::129/128', 'dev', 'lo']);
  await peerNs(['env', '-u', 'LOG_LEVEL', '-u', 'WG_PROCESS_FOREGROUND', 'wireguard-go', IF.peer]);
  const conf = [
    '[Interface]', `PrivateKey = ${peerKeys.privateKey}`, `ListenPort = ${PEER_PORT}`, '',
    '[Peer]', `PublicKey = ${hubKeys.publicKey}`, 'Endpoint = 198.51.100.1:51820', 'AllowedIPs = 0.0.0.0/0, ::/0', '',
  ].join('\n');
  await wgSyncConf(peerNs, IF.peer, conf);
  await peerNs(['ip', 'addr', 'add', '203.0.113.130/25', 'dev', IF.peer]);
  await peerNs(['ip', 'addr', 'add', '2001:db8:a0::2/64', 'dev', IF.peer]);
  await peerNs(['ip', 'link', 'set', IF.peer, 'up']);
  await peerNs(['ip', 'route', 'add', '198.51.100.128/25', 'dev', IF.peer]);
  await peerNs(['ip', '-6', 'route', 'add', '2001:db8:ff::/64', 'dev', IF.peer]);
  // Someone else's route in the hub namespace that our route cleanup must leave alone.
  await hubNs(['ip', 'route', 'add', '192.0.2.0/26', 'via', '198.51.100.2', 'proto', 'static']);
}

test('hub: set() brings up the interface with key, port, peers, addresses, MTU and routes', async () => {
  await hub.set(hubDesired());
  const [iface, ...peers] = await dumpOf(hubNs, IF.hub);
  assert.is(iface![1], hubKeys.publicKey);
  assert.is(iface![2], '51820');
  const byKey = new Map(peers.map((p) => [p[0], p]));
  assert.is(byKey.size, 2);
  assert.equal(byKey.get(peerKeys.publicKey)![3]!.split(',').sort(), ['192.0.2.128/25', '2001:db8:1a::/64', '2001:db8:a0::2/128', '203.0.113.130/32']);
  assert.is(byKey.get(otherPeer)![2], '198.51.100.99:51820');
  assert.is(byKey.get(otherPeer)![7], '25');

  const [link] = await json(hubNs, ['ip', '-j', 'link', 'show', 'dev', IF.hub]);
  assert.is(link.mtu, 1420);
  assert.ok(link.flags.includes('UP'));
  assert.equal(await hubAddresses(), ['2001:db8:a0::1/64', '203.0.113.129/25']);
  assert.equal(await ourRoutes(4), [`192.0.2.128/25 ${IF.hub}`]);
  assert.equal(await ourRoutes(6), [`2001:db8:1a::/64 ${IF.hub}`]);
  // The kernel here has no WireGuard: exactly one wireguard-go serves the interface.
  assert.is((await nsPids(NS.hub)).length, 1);
});

test('hub: a second set() only reads: same wireguard-go, same port, nothing changed', async () => {
  await hub.set(hubDesired());
  const pids = await nsPids(NS.hub);
  const before = configOf(await dumpOf(hubNs, IF.hub));
  traced = [];
  await hub.set(hubDesired());
  const readOnly = (argv: string[]) =>
    (argv[0] === 'ip' && argv[1] === '-j') || (argv[0] === 'wg' && argv[1] === 'show');
  assert.equal(traced.filter((argv) => !readOnly(argv)), []);
  assert.ok(traced.length > 0);
  assert.equal(await nsPids(NS.hub), pids);
  assert.equal(configOf(await dumpOf(hubNs, IF.hub)), before);
});

test('hub: changed peers, addresses and routes replace the stale ones; foreign routes stay', async () => {
  await hub.set(hubDesired());
  const third = generateKeyPair().publicKey;
  await hub.set(
    hubDesired({
      addresses: ['203.0.113.129/26', '2001:db8:a0::1/64'],
      peers: [
        { publicKey: peerKeys.publicKey, allowedIps: ['203.0.113.130/32', '2001:db8:a0::2/128', '192.0.2.128/25'] },
        { publicKey: third, allowedIps: ['203.0.113.132/32', '198.51.100.192/27'] },
      ],
      routes: ['192.0.2.128/25', '198.51.100.192/27'],
    }),
  );
  const peers = (await dumpOf(hubNs, IF.hub)).slice(1).map((p) => `${p[0]} ${p[3]}`).sort();
  assert.equal(peers, [`${peerKeys.publicKey} 203.0.113.130/32,2001:db8:a0::2/128,192.0.2.128/25`, `${third} 203.0.113.132/32,198.51.100.192/27`].sort());
  assert.equal(await hubAddresses(), ['2001:db8:a0::1/64', '203.0.113.129/26']);
  assert.equal(await ourRoutes(4), [`192.0.2.128/25 ${IF.hub}`, `198.51.100.192/27 ${IF.hub}`]);
  assert.equal(await ourRoutes(6), []);
  const foreign = await json(hubNs, ['ip', '-j', 'route', 'show', '192.0.2.0/26']);
  assert.is(foreign.length, 1, 'a route that is not ours is left alone');

  // A keepalive that is dropped from the desired state is turned off, not left running.
  await hub.set(hubDesired());
  await hub.set(hubDesired({ peers: [{ ...hubDesired().peers[1]!, keepalive: undefined }, hubDesired().peers[0]!] }));
  const other = (await dumpOf(hubNs, IF.hub)).find((p) => p[0] === otherPeer)!;
  assert.is(other[7], 'off');
  await hub.set(hubDesired());
  assert.equal(await hubAddresses(), ['2001:db8:a0::1/64', '203.0.113.129/25']);
});

test('hub: bad input is refused with the field named, and nothing is run', async () => {
  traced = [];
  const cases: [Partial<HubDesired>, string][] = [
    [{ interface: 'much-too-long-name0' }, 'interface'],
    [{ interface: 'bad name' }, 'interface'],
    [{ routes: ['192.0.2.1/24'] }, 'routes[0]'],
    [{ addresses: ['203.0.113.129'] }, 'addresses[0]'],
    [{ mtu: 100 }, 'mtu'],
    [{ listenPort: 0 }, 'listenPort'],
    [{ privateKey: 'not a key' }, 'privateKey'],
    [{ peers: [{ publicKey: peerKeys.publicKey, allowedIps: ['192.0.2.0/33'] }] }, 'peers[0].allowedIps[0]'],
    [{ peers: [{ publicKey: peerKeys.publicKey, allowedIps: ['192.0.2.0/24'] }, { publicKey: otherPeer, allowedIps: ['192.0.2.0/24'] }] }, 'peers[1].allowedIps'],
    [{ peers: [{ publicKey: peerKeys.publicKey, allowedIps: [], endpoint: 'evil\nPrivateKey = x' }] }, 'peers[0].endpoint'],
  ];
  for (const [over, field] of cases) {
    const err = await hub.set(hubDesired(over)).then(() => null, (e: unknown) => e);
    assert.instance(err, ValidationError, field);
    assert.ok((err as ValidationError).field.startsWith(field), `${(err as ValidationError).field} names ${field}`);
    assert.not.ok(String((err as Error).message).includes(hubKeys.privateKey));
  }
  assert.equal(traced, []);
});

test('tunnel: pings cross it both ways over IPv4 and IPv6, home prefixes included', async () => {
  await hub.set(hubDesired());
  assert.ok(await reaches(peerNs, ['203.0.113.129']), 'peer → hub IPv4');
  assert.ok(await reaches(peerNs, ['2001:db8:a0::1']), 'peer → hub IPv6');
  assert.ok(await reaches(hubNs, ['203.0.113.130']), 'hub → peer IPv4');
  assert.ok(await reaches(hubNs, ['2001:db8:a0::2']), 'hub → peer IPv6');
  // Only our routes send the home prefixes into the tunnel.
  assert.ok(await reaches(hubNs, ['192.0.2.129']), 'hub → home IPv4');
  assert.ok(await reaches(hubNs, ['2001:db8:1a::129']), 'hub → home IPv6');

  const stats = await hub.show();
  const peer = stats.find((s) => s.publicKey === peerKeys.publicKey)!;
  assert.is(peer.endpoint, `198.51.100.2:${PEER_PORT}`);
  assert.ok(Math.abs(peer.latestHandshake - Date.now() / 1000) < 120);
  assert.ok(peer.rxBytes > 0 && peer.txBytes > 0);
  const idle = stats.find((s) => s.publicKey === otherPeer)!;
  assert.is(idle.latestHandshake, 0);
  assert.not.ok(JSON.stringify(stats).includes(hubKeys.privateKey));
});

test('forwarding: ensureForwarding turns IPv4 and IPv6 forwarding on in the namespace, once', async () => {
  const url = pathToFileURL(new URL('../../cloud/system/forwarding.ts', import.meta.url).pathname).href;
  const script = `import { ensureForwarding } from ${JSON.stringify(url)};
console.log(JSON.stringify(await ensureForwarding({ wanInterface: 'wan0' })));`;
  const ensure = async () =>
    JSON.parse((await hubNs([process.execPath, '--input-type=module', '-e', script])).stdout) as string[];
  assert.equal(await ensure(), ['net.ipv4.ip_forward', 'net.ipv6.conf.wan0.accept_ra', 'net.ipv6.conf.all.forwarding']);
  const sysctl = async (key: string) => (await hubNs(['sysctl', '-n', key])).stdout.trim();
  assert.is(await sysctl('net.ipv4.ip_forward'), '1');
  assert.is(await sysctl('net.ipv6.conf.all.forwarding'), '1');
  assert.is(await sysctl('net.ipv6.conf.wan0.accept_ra'), '2');
  assert.equal(await ensure(), []);
});

test('firewall: set() installs the commented table; repeating it only reads; bad input applies nothing', async () => {
  await firewall.set(fwDesired);
  const rules = JSON.parse(await tableJson()).nftables.filter((o: any) => o.rule).map((o: any) => o.rule);
  assert.ok(rules.length >= 9);
  for (const r of rules) assert.ok(typeof r.comment === 'string' && r.comment.length > 0, `rule without comment in ${r.chain}`);
  const before = await tableJson();

  traced = [];
  await firewall.set(fwDesired);
  assert.equal(traced, [['nft', '-s', 'list', 'table', 'inet', 'aerie']]);
  assert.is(await tableJson(), before);

  for (const [bad, field] of [
    [{ ...fwDesired, wanInterface: 'wan0-with-a-long-name' }, 'wanInterface'],
    [{ ...fwDesired, tunnelInterface: 'aerie"0' }, 'tunnelInterface'],
    [{ ...fwDesired, overlay: ['203.0.113.128/25', 'fd00::1/8'] }, 'overlay[1]'],
  ] as const) {
    traced = [];
    const err = await firewall.set(bad as FirewallDesired).then(() => null, (e: unknown) => e);
    assert.instance(err, ValidationError);
    assert.is((err as ValidationError).field, field);
    assert.equal(traced, []);
    assert.is(await tableJson(), before);
  }

  // A change is applied, and going back gives the same rules.
  const text = await tableText();
  await firewall.set({ ...fwDesired, publishes: [{ name: 'web', proto: 'tcp', port: 8080, toAddress: '192.0.2.129', toPort: 80 }] });
  const changed = await tableText();
  assert.ok(changed.includes('192.0.2.129'));
  assert.ok(changed.includes('8080'));
  await firewall.set(fwDesired);
  assert.is(await tableText(), text);
});

test('firewall: NAT44 and NAT66 out of the WAN, nothing new into the home, no spoofed tunnel sources', async () => {
  await hub.set(hubDesired());
  await firewall.set(null);
  // Without our table: no NAT, so the web cannot answer the overlay; the careless route lets it into the home.
  assert.ok(await blocked(peerNs, ['198.51.100.130']), 'no NAT yet (IPv4)');
  assert.ok(await blocked(peerNs, ['-6', '2001:db8:ff::2']), 'no NAT66 yet');
  assert.ok(await reaches(webNs, ['192.0.2.129']), 'outside → home open without the firewall');
  assert.ok(await reaches(webNs, ['2001:db8:1a::129']), 'outside → home IPv6 open without the firewall');
  assert.ok(await reaches(peerNs, ['-I', '192.0.2.129', '198.51.100.1']), 'spoofed home source accepted without the firewall');

  await firewall.set(fwDesired);
  assert.ok(await reaches(peerNs, ['198.51.100.130']), 'NAT44 of the overlay');
  assert.ok(await reaches(peerNs, ['-6', '2001:db8:ff::2']), 'NAT66 of the overlay');
  assert.ok(await reaches(peerNs, ['-I', '192.0.2.129', '198.51.100.130']), 'home prefix out through the tunnel');
  assert.ok(await blocked(webNs, ['192.0.2.129']), 'no new connection from outside into the home');
  assert.ok(await blocked(webNs, ['2001:db8:1a::129']), 'no new IPv6 connection from outside into the home');
  assert.ok(await blocked(webNs, ['203.0.113.130']), 'no new connection from outside into the overlay');
  assert.ok(await blocked(peerNs, ['-I', '192.0.2.129', '198.51.100.1']), 'home source from outside the tunnel dropped');
  assert.ok(await reaches(hubNs, ['192.0.2.129']), 'the VM itself still reaches home');
});

test('firewall: set(null) removes the table and repeating it runs only a read', async () => {
  await firewall.set(fwDesired);
  await firewall.set(null);
  assert.not.ok(await tableExists());
  traced = [];
  await firewall.set(null);
  assert.equal(traced, [['nft', '-s', 'list', 'table', 'inet', 'aerie']]);
});

test('hub: set(null) removes interface and routes and ends wireguard-go', async () => {
  await hub.set(hubDesired());
  assert.is((await nsPids(NS.hub)).length, 1);
  await hub.set(null);
  const link = await hubNs(['ip', 'link', 'show', 'dev', IF.hub], { allowFail: true });
  assert.is.not(link.code, 0);
  assert.equal(await ourRoutes(4), []);
  assert.equal(await ourRoutes(6), []);
  await waitFor('wireguard-go to exit', async () => (await nsPids(NS.hub)).length === 0);
  assert.equal(await hub.show(), []);
  assert.is((await json(hubNs, ['ip', '-j', 'route', 'show', '192.0.2.0/26'])).length, 1, 'foreign route kept');

  // And it comes back at once (wireguard-go's old socket may still be closing).
  await hub.set(hubDesired());
  await hub.set(null);
  traced = [];
  await hub.set(null);
  assert.ok(traced.every((argv) => argv[1] === '-j'), 'removing what is gone only reads');
});

test.run();
