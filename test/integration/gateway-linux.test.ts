import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPair } from '../../shared/keys.ts';
import type { Runner } from '../../shared/run.ts';
import { createLinuxPlatform } from '../../gateway/platform/linux.ts';
import type { GatewayDesired, Platform } from '../../gateway/platform/platform.ts';
import { addresses, eventuallyPings, link, NetnsSet, pings, sleep, type Netns } from './gateway-netns.ts';
import { requireRoot, setupOnce } from './setup.ts';

/**
 * The linux adapter against the real kernel, in namespaces of our own:
 *
 *   lan (eth0 192.0.2.130) ── lan0 [router] wan0 ── eth0 (198.51.100.1) wan
 *
 * The "VM" peer does not exist, so the tunnel is down throughout: what is
 * tested is policy routing and the kill switch, with real packets.
 * The wan side routes the home prefixes back to the router, as a careless
 * ISP might; only the router's firewall keeps the LAN unreachable.
 */

const TABLE = 7375;
const WG = `agw${process.pid}`.slice(0, 15);
const WAN4 = '198.51.100.1';
const WAN6 = '2001:db8:100::1';
const LAN4 = '192.0.2.130';

const nets = new NetnsSet();
let lan: Netns;
let router: Netns;
let wan: Netns;
let platform: Platform;
const me = generateKeyPair();
const vm = generateKeyPair();

const desired: GatewayDesired = {
  interface: WG,
  privateKey: me.privateKey,
  addresses: ['203.0.113.130/25', '2001:db8:a0::2/64'],
  mtu: 1420,
  peer: { publicKey: vm.publicKey, endpoint: '203.0.113.10:51820', allowedIps: ['0.0.0.0/0', '::/0'], keepalive: 25, generation: 0 },
  overlay: ['203.0.113.128/25', '2001:db8:a0::/64'],
  lan: [{ interface: 'lan0', prefixes: ['192.0.2.128/25', '2001:db8:1a::/64'] }],
  table: TABLE,
  rulePriority: 7375,
  killSwitch: true,
  dns: { intercept: true, servers: ['203.0.113.129', '2001:db8:a0::1'], resolvFile: null },
};

/** Wraps a runner to record every argv that goes through it. */
function recording(run: Runner): { run: Runner; argvs: string[] } {
  const argvs: string[] = [];
  return { argvs, run: (argv, opts) => (argvs.push(argv.join(' ')), run(argv, opts)) };
}
const READ_ONLY = /^(ip -j (-[46] )?(link|addr|route|rule) show\b|nft list table inet aerie_gw$|wg show \S+ dump$|sysctl -n )/;

async function rules(family: 4 | 6): Promise<string[]> {
  const list = JSON.parse(await router.ip('-j', `-${family}`, 'rule', 'show')) as { table: string; iif?: string; priority: number }[];
  return list.filter((r) => r.table === String(TABLE)).map((r) => `${r.priority} iif ${r.iif}`);
}
async function tableRoutes(family: 4 | 6): Promise<string[]> {
  const r = await router.run(['ip', '-j', `-${family}`, 'route', 'show', 'table', String(TABLE)], { allowFail: true });
  if (r.code !== 0) return [];
  return (JSON.parse(r.stdout) as { type?: string; dst: string; dev?: string; metric?: number }[])
    .map((x) => `${x.type ?? 'unicast'} ${x.dst}${x.type ? '' : ` dev ${x.dev}`} metric ${x.metric}`)
    .sort();
}
async function nftTable(): Promise<string | null> {
  const r = await router.run(['nft', 'list', 'table', 'inet', 'aerie_gw'], { allowFail: true });
  return r.code === 0 ? r.stdout : null;
}
async function wgLink(): Promise<{ up: boolean; mtu: number; addrs: string[] } | null> {
  const r = await router.run(['ip', '-j', 'addr', 'show', 'dev', WG], { allowFail: true });
  if (r.code !== 0) return null;
  const l = (JSON.parse(r.stdout) as { flags: string[]; mtu: number; addr_info: { local: string; prefixlen: number; scope: string }[] }[])[0]!;
  return {
    up: l.flags.includes('UP'),
    mtu: l.mtu,
    addrs: l.addr_info.filter((a) => a.scope === 'global').map((a) => `${a.local}/${a.prefixlen}`).sort(),
  };
}
/** Echo requests from the laptop that arrived at the WAN side (v4 + v6), counted by nft there. */
async function arrivedAtWan(): Promise<number> {
  const out = (await wan.run(['nft', 'list', 'chain', 'inet', 'probe', 'in'])).stdout;
  return [...out.matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
}
async function plainRoutesToWan(): Promise<void> {
  await router.ip('-4', 'route', 'replace', '198.51.100.0/25', 'dev', 'wan0', 'table', String(TABLE));
  await router.ip('-6', 'route', 'replace', '2001:db8:100::/64', 'dev', 'wan0', 'table', String(TABLE));
}

const SERVERS = fileURLToPath(new URL('../lab/servers/', import.meta.url));
const started: ChildProcess[] = [];

/** A tag server (answers "TAG" on UDP and TCP) in the namespace; resolves once it listens everywhere. */
async function tagServer(ns: Netns, tag: string, port: number, addrs: string[]): Promise<ChildProcess> {
  const child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, `${SERVERS}tag-server.ts`, tag, String(port), ...addrs], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  started.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  for (let i = 0; i < 50 && out.split('\n').length <= addrs.length * 2; i++) await sleep(100);
  assert.is(out.trim().split('\n').length, addrs.length * 2, `tag server ${tag} listens: ${out}`);
  return child;
}

async function stopStarted(): Promise<void> {
  const exits = started.map((c) => (c.exitCode !== null || c.signalCode !== null ? null : new Promise((r) => c.once('exit', r))));
  for (const c of started) c.kill('SIGTERM');
  await Promise.race([Promise.all(exits), sleep(3000)]);
  started.length = 0;
}

/** One UDP or TCP attempt from the namespace (test/lab/servers/port-probe.ts). */
async function probe(ns: Netns, proto: 'tcp' | 'udp', host: string, port: number, timeoutMs = 2000) {
  const r = await ns.run([process.execPath, `${SERVERS}port-probe.ts`, proto, host, String(port), String(timeoutMs)], { timeoutMs: timeoutMs + 5000 });
  return JSON.parse(r.stdout) as { result: string; data: string; ms: number };
}

setupOnce(test, async () => {
  requireRoot('gateway-linux', ['ip', 'wg', 'wireguard-go', 'nft', 'ping', 'sysctl']);
  lan = await nets.add('lan');
  router = await nets.add('rt');
  wan = await nets.add('wan');
  await link(router, 'lan0', lan, 'eth0');
  await link(router, 'wan0', wan, 'eth0');
  await addresses(lan, 'eth0', `${LAN4}/25`, '2001:db8:1a::130/64');
  await addresses(router, 'lan0', '192.0.2.129/25', '2001:db8:1a::1/64');
  await addresses(router, 'wan0', '198.51.100.2/25', '2001:db8:100::2/64');
  await addresses(wan, 'eth0', `${WAN4}/25`, `${WAN6}/64`);
  await lan.ip('route', 'add', 'default', 'via', '192.0.2.129');
  await lan.ip('-6', 'route', 'add', 'default', 'via', '2001:db8:1a::1');
  await router.ip('route', 'add', 'default', 'via', WAN4);
  await router.ip('-6', 'route', 'add', 'default', 'via', WAN6);
  await wan.ip('route', 'add', '192.0.2.128/25', 'via', '198.51.100.2');
  await wan.ip('-6', 'route', 'add', '2001:db8:1a::/64', 'via', '2001:db8:100::2');
  await router.run(['sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
  await wan.run(['nft', '-f', '/dev/stdin'], {
    input: [
      'table inet probe {',
      '  chain in {',
      '    type filter hook input priority 0; policy accept;',
      `    ip saddr ${LAN4} icmp type echo-request counter`,
      '    ip6 saddr 2001:db8:1a::130 icmpv6 type echo-request counter',
      '  }',
      '}',
    ].join('\n'),
  });
  platform = createLinuxPlatform(router.run, { own: { interface: WG, table: TABLE } });
});

test('without Aerie, the LAN and the WAN reach each other', async () => {
  // Both ways: the tests below are not vacuous.
  for (const a of [WAN4, WAN6]) assert.ok(await eventuallyPings(lan, a), `baseline: lan reaches ${a}`);
  assert.ok(await eventuallyPings(wan, LAN4), 'baseline: the careless ISP reaches the laptop');
});

test.after(() => {
  for (const c of started) c.kill('SIGKILL');
  nets.cleanup();
});

test("nft accepts every golden of the router's table (nft -c -f, nothing loaded)", async () => {
  const dir = fileURLToPath(new URL('../unit/golden/', import.meta.url));
  const files = readdirSync(dir).filter((f) => f.startsWith('gateway-') && f.endsWith('.nft'));
  assert.ok(files.length >= 4, files.join(', '));
  for (const f of files) {
    const r = await router.run(['nft', '-c', '-f', `${dir}${f}`], { allowFail: true });
    assert.is(r.code, 0, `${f}: ${r.stderr}`);
  }
  assert.is(await nftTable(), null, 'a check loads nothing');
});

test('set() brings up tunnel, rules, table and kill switch; a second set() only reads', async () => {
  await platform.set(desired);
  assert.equal(await rules(4), ['7375 iif lan0']);
  assert.equal(await rules(6), ['7375 iif lan0']);
  assert.equal(await tableRoutes(4), [
    'unicast 192.0.2.128/25 dev lan0 metric 100',
    `unicast default dev ${WG} metric 100`,
    'unreachable default metric 65535',
  ].sort());
  assert.equal(await tableRoutes(6), [
    'unicast 2001:db8:1a::/64 dev lan0 metric 100',
    `unicast default dev ${WG} metric 100`,
    'unreachable default metric 65535',
  ].sort());
  assert.match((await nftTable())!, /kill switch: LAN traffic leaves by no other way/);
  assert.equal(await wgLink(), { up: true, mtu: 1420, addrs: ['2001:db8:a0::2/64', '203.0.113.130/25'] });
  const dump = (await router.run(['wg', 'show', WG, 'dump'])).stdout;
  assert.match(dump, new RegExp(`^${vm.publicKey.replace(/[+/]/g, '\\$&')}\\t\\(none\\)\\t203\\.0\\.113\\.10:51820\\t0\\.0\\.0\\.0/0,::/0\\t0\\t0\\t\\d+\\t25$`, 'm'));
  assert.ok(nets.pids().length >= 1, 'wireguard-go runs in the router namespace');

  const rec = recording(router.run);
  await createLinuxPlatform(rec.run, { own: { interface: WG, table: TABLE } }).set(desired);
  const writes = rec.argvs.filter((a) => !READ_ONLY.test(a));
  // A fresh adapter re-applies the nft table once (it cannot know it is ours unchanged); nothing else.
  assert.equal(writes, ['nft -f /dev/stdin']);
  rec.argvs.length = 0;
  const rec2 = recording(router.run);
  const same = createLinuxPlatform(rec2.run, { own: { interface: WG, table: TABLE } });
  await same.set(desired);
  rec2.argvs.length = 0;
  await same.set(desired);
  assert.ok(rec2.argvs.length > 0);
  assert.equal(rec2.argvs.filter((a) => !READ_ONLY.test(a)), [], 'the same adapter again: nothing to do');
});

test('drift is repaired: interface deleted by hand, table flushed, a rule removed', async () => {
  await router.ip('link', 'del', WG);
  await router.ip('-4', 'route', 'flush', 'table', String(TABLE));
  await router.ip('-6', 'rule', 'del', 'iif', 'lan0', 'lookup', String(TABLE));
  await platform.set(desired);
  assert.equal(await rules(6), ['7375 iif lan0']);
  assert.is((await tableRoutes(4)).length, 3);
  assert.ok((await wgLink())?.up);
  assert.match((await router.run(['wg', 'show', WG, 'peers'])).stdout, new RegExp(vm.publicKey.replace(/[+/]/g, '\\$&')));
});

/** Packets the kernel handed to the tunnel interface (wireguard-go reads them whether or not the VM answers). */
async function intoTunnel(): Promise<number> {
  const l = JSON.parse(await router.ip('-j', '-s', 'link', 'show', 'dev', WG)) as { stats64: { tx: { packets: number } } }[];
  return l[0]!.stats64.tx.packets;
}

/** Three echo requests from the laptop to the VM's overlay address, from the given source. */
async function pingVmFrom(source: string): Promise<void> {
  const v6 = source.includes(':');
  await lan.run(['ping', ...(v6 ? ['-6'] : []), '-c', '3', '-i', '0.2', '-W', '1', '-n', '-q', '-I', source, v6 ? '2001:db8:a0::1' : '203.0.113.129'], {
    allowFail: true,
    timeoutMs: 5000,
  });
}

test('anti-spoofing: a LAN packet into the tunnel from a source outside the LAN prefixes is dropped', async () => {
  // Only the firewall may be what drops them: no reverse-path filter on the router.
  await router.run(['sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.lan0.rp_filter=0']);
  const spoofed = ['203.0.113.140', '2001:db8:a0::40']; // overlay addresses, as if the laptop were another device
  await addresses(lan, 'eth0', '203.0.113.140/32', '2001:db8:a0::40/128');
  try {
    for (const [genuine, fake] of [[LAN4, spoofed[0]!], ['2001:db8:1a::130', spoofed[1]!]] as const) {
      let before = await intoTunnel();
      await pingVmFrom(genuine);
      assert.ok((await intoTunnel()) - before >= 3, `packets from ${genuine} enter the tunnel`);
      before = await intoTunnel();
      await pingVmFrom(fake);
      assert.is(await intoTunnel(), before, `not one packet from ${fake} entered the tunnel`);
    }
  } finally {
    await lan.ip('addr', 'del', '203.0.113.140/32', 'dev', 'eth0');
    await lan.ip('-6', 'addr', 'del', '2001:db8:a0::40/128', 'dev', 'eth0');
  }
});

test('kill switch on, tunnel down: the LAN reaches nothing on the WAN, even with a route there', async () => {
  const before = await arrivedAtWan();
  for (const a of [WAN4, WAN6]) assert.not.ok(await pings(lan, a), `lan must not reach ${a}`);
  // Routing gone wrong (a route to the WAN in our table): the nft kill switch still drops it.
  await plainRoutesToWan();
  for (const a of [WAN4, WAN6]) assert.not.ok(await pings(lan, a), `lan must not reach ${a} even when routed there`);
  assert.is(await arrivedAtWan(), before, 'not one packet from the laptop arrived on the WAN side');
  assert.not.ok(await pings(wan, LAN4), 'nothing from outside the tunnel reaches the LAN');
  // The router's own traffic keeps the main table.
  assert.ok(await pings(router, WAN4));
});

test('kill switch off: with a plain route the LAN gets out; an open flow is cut when it comes back on', async () => {
  await platform.set({ ...desired, killSwitch: false });
  assert.not.ok((await tableRoutes(4)).some((r) => r.startsWith('unreachable')), 'no unreachable fallback');
  assert.not.ok((await tableRoutes(4)).some((r) => r.includes('198.51.100.0/25')), 'routes we did not ask for are removed');
  await plainRoutesToWan();
  for (const a of [WAN4, WAN6]) assert.ok(await pings(lan, a), `lan reaches ${a} with the kill switch off`);
  assert.not.ok(await pings(wan, LAN4), 'new connections from the WAN into the LAN stay blocked');

  // Flows open before the kill switch comes back (conntrack "established") must be cut as well.
  const flows: { child: ChildProcess; out: string }[] = [WAN4, WAN6].map((a) => {
    const child = spawn('ip', ['netns', 'exec', lan.name, 'ping', ...(a.includes(':') ? ['-6'] : []), '-D', '-n', '-i', '0.2', '-w', '15', a], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const flow = { child, out: '' };
    child.stdout!.on('data', (d: Buffer) => (flow.out += d.toString()));
    return flow;
  });
  try {
    const replies = (f: { out: string }, after = 0) =>
      [...f.out.matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)].filter((m) => Number(m[1]) * 1000 > after).length;
    for (let i = 0; i < 40 && flows.some((f) => replies(f) < 3); i++) await sleep(100);
    for (const f of flows) assert.ok(replies(f) >= 3, `the flow runs: ${f.out}`);
    await platform.set(desired);
    await plainRoutesToWan(); // same path as before: only the firewall differs
    const since = Date.now();
    const arrived = await arrivedAtWan();
    await sleep(1500);
    // Both ways: the flow's packets do not leave, and the replies to any that did would not come in.
    assert.is(await arrivedAtWan(), arrived, 'no packet of the open flows reached the WAN side');
    for (const f of flows) assert.is(replies(f, since), 0, `no reply gets through: ${f.out.slice(-300)}`);
  } finally {
    for (const f of flows) f.child.kill('SIGKILL');
  }
});

test('DNS interception: port 53 from the LAN to any address reaches the router (UDP, TCP, IPv4, IPv6); DoT/DoQ refused at once', async () => {
  try {
    await tagServer(router, 'router', 53, ['192.0.2.129', '2001:db8:1a::1']);
    await tagServer(wan, 'wan', 53, [WAN4, WAN6]);
    await tagServer(wan, 'wan-853', 853, [WAN4, WAN6]);
    await interceptionHolds();
  } finally {
    await stopStarted();
  }
});

async function interceptionHolds(): Promise<void> {
  // Kill switch off and plain routes to the WAN: without interception the WAN servers would answer.
  await platform.set({ ...desired, killSwitch: false, dns: { ...desired.dns, intercept: false } });
  await plainRoutesToWan();
  for (const host of [WAN4, WAN6]) {
    assert.is((await probe(lan, 'udp', host, 53)).data, 'wan', `baseline: DNS to ${host} reaches it`);
    assert.is((await probe(lan, 'tcp', host, 853)).data, 'wan-853', `baseline: DoT to ${host} reaches it`);
  }
  await platform.set({ ...desired, killSwitch: false });
  await plainRoutesToWan();
  assert.match((await nftTable())!, /dns intercept: DNS from the LAN/);
  for (const host of [WAN4, WAN6]) {
    for (const proto of ['udp', 'tcp'] as const) {
      const r = await probe(lan, proto, host, 53);
      assert.equal([r.result, r.data], ['answer', 'router'], `${proto} to ${host}:53 is answered by the router`);
    }
    for (const proto of ['udp', 'tcp'] as const) {
      const r = await probe(lan, proto, host, 853);
      assert.is(r.result, 'refused', `${proto} to ${host}:853 is refused (${JSON.stringify(r)})`);
      assert.ok(r.ms < 1000, `and at once, not after a timeout (${r.ms} ms)`);
    }
  }
  // And with the kill switch on, the same.
  await platform.set(desired);
  assert.is((await probe(lan, 'udp', WAN4, 53)).data, 'router');
  assert.is((await probe(lan, 'tcp', WAN6, 853)).result, 'refused');
  const show = await platform.show(WG);
  assert.ok(show.dnsIntercept && show.killSwitch, 'show() reads both back from the kernel');
}

test("overlay guard: with the tunnel interface gone, the router's own packets to the VM do not leave by the WAN", async () => {
  // Every packet from the router to the overlay that arrives on the WAN side, counted there.
  await wan.run(['nft', '-f', '/dev/stdin'], {
    input: 'table inet guard {\n  chain pre {\n    type filter hook prerouting priority -300; policy accept;\n    ip daddr 203.0.113.128/25 counter\n    ip6 daddr 2001:db8:a0::/64 counter\n  }\n}\n',
  });
  const leaked = async () => {
    const out = (await wan.run(['nft', 'list', 'chain', 'inet', 'guard', 'pre'])).stdout;
    return [...out.matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  };
  await router.ip('link', 'del', WG);
  assert.match(await router.ip('route', 'get', '203.0.113.129'), /dev wan0/, 'without the tunnel, the main table sends it to the WAN');
  // Without our table the query leaves by the WAN: the counter sees it.
  await router.run(['nft', 'delete', 'table', 'inet', 'aerie_gw']);
  await probe(router, 'udp', '203.0.113.129', 53, 500);
  await probe(router, 'udp', '2001:db8:a0::1', 53, 500);
  assert.ok((await leaked()) >= 2, 'baseline: the counter sees a leak');
  await platform.set(desired);
  await router.ip('link', 'del', WG);
  const before = await leaked();
  for (const host of ['203.0.113.129', '2001:db8:a0::1']) {
    const r = await probe(router, 'udp', host, 53, 1000);
    assert.is(r.result, 'denied', `the send fails at once (${JSON.stringify(r)})`);
  }
  assert.is(await leaked(), before, 'not one packet to the overlay left by the WAN');
  // The router's own traffic elsewhere is untouched.
  assert.ok(await pings(router, WAN4));
  await platform.set(desired);
  assert.ok((await wgLink())?.up, 'the tunnel is back');
});

test('isolated devices: from a second LAN one answers the laptop but starts nothing towards it, and asks the router only for DNS', async () => {
  const iot = await nets.add('iot');
  const IOT4 = '198.51.100.140';
  const IOT6 = '2001:db8:1b::140';
  await link(router, 'lan1', iot, 'eth0');
  await addresses(iot, 'eth0', `${IOT4}/26`, `${IOT6}/64`);
  await addresses(router, 'lan1', '198.51.100.129/26', '2001:db8:1b::1/64');
  await iot.ip('route', 'add', 'default', 'via', '198.51.100.129');
  await iot.ip('-6', 'route', 'add', 'default', 'via', '2001:db8:1b::1');
  const twoLans: GatewayDesired = {
    ...desired,
    lan: [...desired.lan, { interface: 'lan1', prefixes: ['198.51.100.128/26', '2001:db8:1b::/64'] }],
  };
  try {
    await tagServer(router, 'router', 53, ['0.0.0.0', '::']);
    await tagServer(router, 'router-admin', 8053, ['0.0.0.0', '::']);
    await tagServer(lan, 'laptop', 8080, [LAN4, '2001:db8:1a::130']);
    await tagServer(iot, 'camera', 8080, [IOT4, IOT6]);
    await platform.set(twoLans);
    assert.is((await probe(iot, 'tcp', LAN4, 8080)).data, 'laptop', 'before: the camera reaches the laptop');
    await platform.set({ ...twoLans, isolated: [IOT4, '2001:db8:1b::/64'] });
    for (const [from, to, what] of [[iot, LAN4, 'IPv4'], [iot, '2001:db8:1a::130', 'IPv6']] as const) {
      for (const proto of ['tcp', 'udp'] as const) {
        const r = await probe(from, proto, to, 8080, 1000);
        assert.is(r.result, 'timeout', `the camera does not reach the laptop (${what}, ${proto}): ${JSON.stringify(r)}`);
      }
    }
    for (const [to, what] of [[IOT4, 'IPv4'], [IOT6, 'IPv6']] as const) {
      for (const proto of ['tcp', 'udp'] as const) {
        const r = await probe(lan, proto, to, 8080);
        assert.equal([r.result, r.data], ['answer', 'camera'], `the laptop reaches the camera and hears its answer (${what}, ${proto})`);
      }
    }
    // Of the router's services: DNS, not the rest; the laptop is not fenced in.
    for (const host of ['198.51.100.129', '2001:db8:1b::1']) {
      assert.is((await probe(iot, 'udp', host, 53)).data, 'router', `the camera asks the router's DNS at ${host}`);
      assert.is((await probe(iot, 'tcp', host, 8053, 1000)).result, 'timeout', `but reaches nothing else on it at ${host}`);
    }
    assert.is((await probe(lan, 'tcp', '192.0.2.129', 8053)).data, 'router-admin');
    assert.match((await nftTable())!, /chain input/);
    // Out of isolation: it reaches the laptop again, and the input chain is gone.
    await platform.set(twoLans);
    assert.is((await probe(iot, 'tcp', LAN4, 8080)).data, 'laptop');
    assert.not.match((await nftTable())!, /chain input/);
  } finally {
    await stopStarted();
    await platform.set(desired);
  }
});

test('set(null) removes everything of ours; again is read-only; plain routing is back', async () => {
  await platform.set(null);
  assert.equal(await rules(4), []);
  assert.equal(await rules(6), []);
  assert.equal(await tableRoutes(4), []);
  assert.equal(await tableRoutes(6), []);
  assert.is(await nftTable(), null);
  assert.is(await wgLink(), null);
  for (let i = 0; i < 20 && nets.pids().length > 0; i++) await sleep(100);
  assert.equal(nets.pids(), [], 'wireguard-go exited with its interface');
  const rec = recording(router.run);
  await createLinuxPlatform(rec.run, { own: { interface: WG, table: TABLE } }).set(null);
  assert.ok(rec.argvs.every((a) => READ_ONLY.test(a)), rec.argvs.join('\n'));
  for (const a of [WAN4, WAN6]) assert.ok(await pings(lan, a), `without Aerie the LAN reaches ${a} again`);
});

test.run();
