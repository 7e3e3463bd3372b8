// The VM's rendered firewall against the real nft, inside network namespaces
// this test creates and removes (needs root, ip, nft, ping):
//
//   peer ns ── p0 ═ veth ═ aerie0 ── vm ns ── eth0 ═ veth ═ up0 (in peer ns, no address: what goes out is gone)
//   peer: phone 203.0.113.131 / 2001:db8:a0::3, tablet .132, a spoofed 198.51.100.77
//   vm:   203.0.113.129 / 2001:db8:a0::1 on aerie0, 198.51.100.2 on eth0
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createRunner } from '../../shared/run.ts';
import { createFirewall } from '../../cloud/firewall/apply.ts';
import { parseCounters } from '../../cloud/firewall/counters.ts';
import { renderFirewall } from '../../cloud/firewall/render.ts';
import type { FirewallCounters } from '../../cloud/firewall/desired.ts';
import { labDesired, withPolicy } from '../unit/cloud-firewall-fixtures.ts';
import { requireRoot, setupOnce } from './setup.ts';

const pid = process.pid;
const NS = { vm: `aerie-fwchk-${pid}`, peer: `aerie-fwpeer-${pid}` };
const GOLDEN = new URL('../unit/golden/', import.meta.url);

const host = createRunner();
let traced: string[] = [];
const vm = createRunner({ prefix: ['ip', 'netns', 'exec', NS.vm], trace: (argv) => traced.push(argv.slice(4).join(' ')) });
const peer = createRunner({ prefix: ['ip', 'netns', 'exec', NS.peer] });

// The tablet (a member) may not reach the internet; the phone (an owner) may.
const desired = withPolicy('tablet', { internet: 'block' });

async function cleanup(): Promise<void> {
  // Deleting a namespace takes its veth and dummy along; nothing runs in them after a ping ends.
  for (const ns of Object.values(NS)) await host(['ip', 'netns', 'del', ns], { allowFail: true });
}

setupOnce(test, setup);
test.after(cleanup);
// Interrupted (Ctrl-C, a runner's timeout): still take down what we made.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => void cleanup().finally(() => process.exit(1)));
}

async function setup(): Promise<void> {
  requireRoot('cloud-firewall-nft', ['ip', 'nft', 'ping']);
  await cleanup(); // a crashed earlier run with the same pid
  const steps: string[][] = [
    ['ip', 'netns', 'add', NS.vm],
    ['ip', 'netns', 'add', NS.peer],
    ['ip', '-n', NS.vm, 'link', 'add', 'aerie0', 'type', 'veth', 'peer', 'name', 'p0', 'netns', NS.peer],
    // No dummy module on every kernel: a veth whose far end has no address answers no ARP either.
    ['ip', '-n', NS.vm, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'up0', 'netns', NS.peer],
    ['ip', '-n', NS.vm, 'addr', 'add', '203.0.113.129/25', 'dev', 'aerie0'],
    ['ip', '-n', NS.vm, 'addr', 'add', '2001:db8:a0::1/64', 'dev', 'aerie0', 'nodad'],
    ['ip', '-n', NS.vm, 'addr', 'add', '198.51.100.2/24', 'dev', 'eth0'],
    ['ip', '-n', NS.peer, 'addr', 'add', '203.0.113.131/25', 'dev', 'p0'],
    ['ip', '-n', NS.peer, 'addr', 'add', '203.0.113.132/25', 'dev', 'p0'],
    ['ip', '-n', NS.peer, 'addr', 'add', '198.51.100.77/32', 'dev', 'p0'],
    ['ip', '-n', NS.peer, 'addr', 'add', '2001:db8:a0::3/64', 'dev', 'p0', 'nodad'],
    ...[NS.vm, NS.peer].flatMap((ns) => [['ip', '-n', ns, 'link', 'set', 'lo', 'up']]),
    ['ip', '-n', NS.vm, 'link', 'set', 'aerie0', 'up'],
    ['ip', '-n', NS.vm, 'link', 'set', 'eth0', 'up'],
    ['ip', '-n', NS.peer, 'link', 'set', 'p0', 'up'],
    ['ip', '-n', NS.peer, 'link', 'set', 'up0', 'up'],
    ['ip', '-n', NS.peer, 'route', 'add', 'default', 'via', '203.0.113.129'],
    ['ip', 'netns', 'exec', NS.vm, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'],
  ];
  for (const argv of steps) await host(argv);
}

const ping = (args: string[]) => peer(['ping', '-c', '1', '-W', '1', ...args], { allowFail: true });

/** One ping that must get an answer (a few tries: the first may wait for neighbour discovery). */
async function answered(args: string[]): Promise<boolean> {
  for (let i = 0; i < 5; i++) if ((await ping(args)).code === 0) return true;
  return false;
}

const rule = (c: FirewallCounters, chain: string, comment: string) => {
  const found = c.rules.find((r) => r.chain === chain && r.comment === comment);
  assert.ok(found, `no rule "${comment}" in ${chain}`);
  return found;
};

test('nft accepts every golden ruleset (nft -c -f, nothing loaded)', async () => {
  const dir = fileURLToPath(GOLDEN);
  const files = readdirSync(dir).filter((f) => f.startsWith('cloud-firewall-') && f.endsWith('.nft')).sort();
  assert.ok(files.length >= 8, `only ${files.length} golden files`);
  for (const f of files) {
    const r = await vm(['nft', '-c', '-f', `${dir}${f}`], { allowFail: true });
    assert.is(r.code, 0, `${f}: ${r.stderr}`);
  }
  assert.is((await vm(['nft', 'list', 'tables'])).stdout.trim(), '', 'a check loads nothing');
});

test('nft refuses a broken ruleset, so the check above can fail', async () => {
  const broken = renderFirewall(labDesired()).replace('counter drop comment "nothing else reaches the VM"', 'counter drop comment "x" bogus');
  const r = await vm(['nft', '-c', '-f', '/dev/stdin'], { input: broken, allowFail: true });
  assert.is.not(r.code, 0);
});

test('the rendered table loads, and a second set() with traffic in between only lists it', async () => {
  const fw = createFirewall(vm);
  await fw.set(desired);
  assert.ok(await answered(['-I', '203.0.113.131', '203.0.113.129']), 'the phone pings the VM');
  traced = [];
  await fw.set(desired);
  assert.equal(traced, ['nft -s list table inet aerie'], 'counters moved, but the rules did not');
});

test('real counters: ping accepted, internet for the owner, refused for the blocked member, spoofing dropped', async () => {
  const fw = createFirewall(vm);
  assert.ok(await answered(['-I', '2001:db8:a0::3', '2001:db8:a0::1']), 'the phone pings the VM over IPv6');
  // Out by eth0, where nothing answers ARP: the forward path counts them all the same.
  await ping(['-I', '203.0.113.131', '198.51.100.1']);
  await ping(['-I', '203.0.113.132', '198.51.100.1']);
  await ping(['-I', '198.51.100.77', '203.0.113.129']);

  const raw = (await vm(['nft', '-j', 'list', 'table', 'inet', 'aerie'])).stdout;
  const c = parseCounters(JSON.parse(raw));
  assert.equal(await fw.counters().then((x) => Object.keys(x.subjects)), Object.keys(c.subjects));

  assert.ok(rule(c, 'input', 'ping, rate-limited').packets >= 1);
  assert.ok(rule(c, 'input', 'ping over IPv6, rate-limited').packets >= 1);
  assert.ok(rule(c, 'from-tunnel', 'peers, gateways and homes may reach the internet').packets >= 1);
  assert.ok(rule(c, 'postrouting', "NAT of overlay and home IPv4 to the VM's address").packets >= 1);
  assert.ok(rule(c, 'from-tunnel', 'IPv4 subjects whose internet is blocked').packets >= 1);
  assert.ok(rule(c, 'prerouting', 'anti-spoofing: from the tunnel only overlay and home IPv4 sources').packets >= 1);
  assert.ok(rule(c, 'refused', 'counted for the IPv4 subject it came from').bytes >= 84);

  const { phone, tablet, router } = c.subjects;
  assert.ok(phone && tablet && router);
  assert.ok(phone.outPackets >= 1 && phone.outBytes >= 84, JSON.stringify(phone));
  assert.is(phone.droppedPackets, 0);
  assert.ok(tablet.outPackets >= 1 && tablet.droppedPackets >= 1 && tablet.droppedBytes >= 84, JSON.stringify(tablet));
  assert.equal(router, { outPackets: 0, outBytes: 0, droppedPackets: 0, droppedBytes: 0 });

  // Every rendered rule comes back with its counter.
  const rendered = renderFirewall(desired).split('\n').filter((l) => l.includes(' comment "') && l.startsWith('\t\t') && !l.startsWith('\t\tcomment'));
  assert.is(c.rules.length, rendered.length);
});

test("a changed ruleset keeps each subject's counters; its rule counters start again", async () => {
  const fw = createFirewall(vm);
  const before = await fw.counters();
  assert.ok(before.subjects.phone!.outPackets >= 1);
  traced = [];
  await fw.set(withPolicy('tablet', { internet: 'allow' }));
  assert.ok(traced.includes('nft -f /dev/stdin'), 'the new ruleset was applied');
  const after = await fw.counters();
  assert.ok(after.subjects.phone!.outPackets >= before.subjects.phone!.outPackets, JSON.stringify(after.subjects.phone));
  assert.ok(after.subjects.tablet!.droppedPackets >= before.subjects.tablet!.droppedPackets);
  assert.is(rule(after, 'from-tunnel', 'IPv4 subjects whose internet is blocked').packets, 0);
  // And the tablet now gets out.
  await ping(['-I', '203.0.113.132', '198.51.100.1']);
  const now = await fw.counters();
  assert.ok(now.subjects.tablet!.outPackets > after.subjects.tablet!.outPackets);
  assert.is(now.subjects.tablet!.droppedPackets, after.subjects.tablet!.droppedPackets);
});

test('egress: new connections leave with the pool address, an excepted destination with the main one; resolver elements fit the except set', async () => {
  const fw = createFirewall(vm);
  await fw.set({ ...desired, egress: { v4: '198.51.100.11', v6: null, sources: ['phone'], exceptPrefixes: ['198.51.100.9', '2001:db8:99::/64'] } });
  const snat = 'temporary IPv4 address for new connections; excepted destinations keep the main address';
  const masq = "NAT of overlay and home IPv4 to the VM's address";
  const before = await fw.counters();
  await ping(['-I', '203.0.113.131', '198.51.100.1']);
  const afterPool = await fw.counters();
  assert.ok(rule(afterPool, 'postrouting', snat).packets > rule(before, 'postrouting', snat).packets, 'the phone went out with the pool address');
  assert.is(rule(afterPool, 'postrouting', masq).packets, rule(before, 'postrouting', masq).packets);
  await ping(['-I', '203.0.113.131', '198.51.100.9']);
  const afterExcept = await fw.counters();
  assert.is(rule(afterExcept, 'postrouting', snat).packets, rule(afterPool, 'postrouting', snat).packets, 'the excepted destination saw no SNAT');
  assert.ok(rule(afterExcept, 'postrouting', masq).packets > rule(afterPool, 'postrouting', masq).packets);
  // The daemon's way of adding the addresses its resolver returned for an excepted domain.
  await fw.addEgressExceptions(['192.0.2.7', '2001:db8:98::7'], 3600);
  const listed = (family: 4 | 6) => vm(['nft', 'list', 'set', 'inet', 'aerie', `egress_except${family}`]).then((r) => r.stdout);
  assert.match(await listed(4), /192\.0\.2\.7 timeout 1h/);
  assert.match(await listed(6), /2001:db8:98::7 timeout 1h/);
  // nft refuses an address inside an excepted prefix (an overlap); the other family still gets its own.
  const err = await fw.addEgressExceptions(['192.0.2.8', '2001:db8:99::5'], 3600).catch((e: unknown) => e);
  assert.match(String(err), /overlaps/);
  assert.match(await listed(4), /192\.0\.2\.8 timeout 1h/);
  // What a restarted daemon reads back: the single addresses, not the excepted prefixes.
  assert.equal((await fw.egressExceptions()).sort(), ['192.0.2.7', '192.0.2.8', '198.51.100.9', '2001:db8:98::7']);
});

test('set(null) removes the table; counters() then reports none', async () => {
  const fw = createFirewall(vm);
  await fw.set(null);
  assert.is((await vm(['nft', 'list', 'tables'])).stdout.trim(), '');
  assert.equal(await fw.counters(), { rules: [], subjects: {} });
  assert.equal(await fw.egressExceptions(), [], 'no sets: nothing excepted');
});

test.run();
