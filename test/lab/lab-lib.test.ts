// Self-test of the lab library: the topology it builds carries traffic as the
// lab tests expect, and teardown leaves nothing behind, whatever happened.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { ADDR, HOSTS, LINKS, NODE24, URLS, createLab, waitFor, withLab, type Lab } from './lib/lab.ts';
import { isAlive, namespaceNames } from './lib/pids.ts';
import { BIG_TXT, LAB_NAMES, addressesOf, dig, getentAddresses, resolvConf, startLabDns } from './lib/dns.ts';

const PREFIX = 'aelib-';
const WG_IF = 'aelib-wg0';

const rootLinks = (): Set<string> => {
  const r = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
  return new Set(r.stdout.split('\n').map((l) => (l.split(': ')[1] ?? '').replace(/@.*$/, '')).filter(Boolean));
};
const ourIfnames = new Set([...LINKS.flatMap((l) => [l.a.ifname, l.b.ifname]), 'web', 'web-peer', WG_IF]);
const labNamespaces = (prefix: string) => namespaceNames().filter((n) => HOSTS.some((h) => n === prefix + h));

const MASQUERADE = `table inet aelib_nat {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" masquerade
  }
}
`;

let lab: Lab;

test.before(async () => {
  lab = await createLab({ prefix: PREFIX });
});

test.after(async () => {
  await lab?.destroy();
});

test('every host has its addresses and routes, and the servers answer', async () => {
  for (const { a, b } of LINKS) {
    for (const end of [a, b]) {
      const r = await lab.run(end.host, ['ip', '-o', 'address', 'show', 'dev', end.ifname]);
      for (const addr of end.addresses) assert.ok(r.stdout.includes(` ${addr} `), `${end.host} ${end.ifname} lacks ${addr}`);
    }
  }
  const site = await lab.fetch('internet', URLS.website6);
  assert.equal([site.status, site.body], [200, ADDR.website.v6]);
  const laptop = await lab.fetch('lan', URLS.laptop4);
  assert.equal([laptop.status, laptop.body], [200, `laptop ${ADDR.laptop.v4}`]);
});

test('a router that only routes: the website sees the laptop itself (the ISP routes the home LAN back)', async () => {
  await lab.run('router', ['nft', 'delete', 'table', 'inet', 'aelib_nat'], { allowFail: true });
  const v4 = await lab.fetch('lan', URLS.website4);
  const v6 = await lab.fetch('lan', URLS.website6);
  assert.equal([v4.ok, v4.body], [true, ADDR.laptop.v4], v4.error ?? '');
  assert.equal([v6.ok, v6.body], [true, ADDR.laptop.v6], v6.error ?? '');
});

test('a masquerading router: the website sees the router WAN address, over IPv4 and IPv6', async () => {
  await lab.run('router', ['nft', '-f', '-'], { input: MASQUERADE });
  try {
    const v4 = await lab.fetch('lan', URLS.website4);
    const v6 = await lab.fetch('lan', URLS.website6);
    assert.equal([v4.ok, v4.body], [true, ADDR.routerWan.v4], v4.error ?? '');
    assert.equal([v6.ok, v6.body], [true, ADDR.routerWan.v6], v6.error ?? '');
  } finally {
    await lab.run('router', ['nft', 'delete', 'table', 'inet', 'aelib_nat']);
  }
});

test('the phone reaches the website from its own addresses', async () => {
  const v4 = await lab.fetch('phone', URLS.website4);
  const v6 = await lab.fetch('phone', URLS.website6);
  assert.equal([v4.ok, v4.body], [true, ADDR.phone.v4], v4.error ?? '');
  assert.equal([v6.ok, v6.body], [true, ADDR.phone.v6], v6.error ?? '');
});

test('without a firewall on the router, the internet reaches the laptop (what the kill switch must stop)', async () => {
  const v4 = await lab.fetch('internet', URLS.laptop4);
  const v6 = await lab.fetch('internet', URLS.laptop6);
  assert.is(v4.body, `laptop ${ADDR.ispRouter.v4}`);
  assert.is(v6.body, `laptop ${ADDR.ispRouter.v6}`);
});

test('setLink down cuts the path and fetch reports the failure in time; up restores it', async () => {
  await lab.setLink('router', 'wan0', 'down');
  try {
    const started = Date.now();
    const r = await lab.fetch('lan', URLS.website4, { timeoutMs: 1_000 });
    assert.is(r.ok, false);
    assert.is(r.status, 0);
    assert.ok(r.error, 'a failed fetch carries curl\'s message');
    assert.ok(Date.now() - started < 4_000, 'fetch honours its timeout');
  } finally {
    await lab.setLink('router', 'wan0', 'up');
  }
  // Routes and addresses that "down" dropped are back, for both families.
  const v4 = await lab.fetch('lan', URLS.website4, { timeoutMs: 3_000 });
  const v6 = await lab.fetch('lan', URLS.website6, { timeoutMs: 3_000 });
  assert.is(v4.body, ADDR.laptop.v4, v4.error ?? '');
  assert.is(v6.body, ADDR.laptop.v6, v6.error ?? '');
});

test('the lab DNS server answers the lab names to anyone, over IPv4 and IPv6; a big answer is truncated over UDP', async () => {
  const dns = await startLabDns(lab);
  try {
    for (const server of [ADDR.labDns.v4, ADDR.labDns.v6]) {
      const r = await dig(lab, 'phone', server, LAB_NAMES.website);
      assert.equal(addressesOf(r), [ADDR.website.v4], r.output);
      assert.is(r.answers[0]!.ttl, 300);
    }
    assert.equal(addressesOf(await dig(lab, 'phone', ADDR.labDns.v6, LAB_NAMES.website, { type: 'AAAA' })), [ADDR.website.v6]);
    assert.is((await dig(lab, 'phone', ADDR.labDns.v4, 'nothing.example')).status, 'NXDOMAIN');
    const udp = await dig(lab, 'phone', ADDR.labDns.v4, LAB_NAMES.big, { type: 'TXT', extra: ['+ignore', '+noedns'] });
    assert.ok(udp.flags.includes('tc'), `truncated within 512 bytes: ${udp.output}`);
    const tcp = await dig(lab, 'phone', ADDR.labDns.v4, LAB_NAMES.big, { type: 'TXT', tcp: true });
    assert.is(tcp.answers.length, BIG_TXT.length);
    // A namespace's own resolv.conf: the phone resolves by it, the laptop does not see it.
    lab.setResolvConf('phone', resolvConf([ADDR.labDns.v4]));
    assert.equal(await getentAddresses(lab, 'phone', LAB_NAMES.website, 4), [ADDR.website.v4]);
    assert.ok(existsSync(`/etc/netns/${lab.ns.phone}/resolv.conf`));
  } finally {
    await dns.stop();
  }
  assert.ok(dns.proc.exit, 'stopped by its PID');
});

test('stop escalates to SIGKILL for a process that ignores SIGTERM; kill9 kills at once', async () => {
  const stubborn = lab.spawn('vm', ['sh', '-c', 'trap "" TERM; exec sleep 600']);
  const plain = lab.spawn('phone', ['sleep', '600']);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(isAlive(stubborn.pid) && isAlive(plain.pid));
  const e1 = await lab.stop(stubborn, { timeoutMs: 300 });
  assert.is(e1.signal, 'SIGKILL');
  const e2 = await lab.kill9(plain);
  assert.is(e2.signal, 'SIGKILL');
  assert.not.ok(isAlive(stubborn.pid) || isAlive(plain.pid));
});

test('destroy leaves no namespace, process or interface, including a daemon that detached', async () => {
  const before = rootLinks();
  const seen: number[] = [];
  const other = await createLab({ prefix: 'aelibd-', servers: true });
  try {
    seen.push(...other.processes().map((p) => p.pid));
    other.spawn('router', ['sleep', '600']);
    other.setResolvConf('lan', resolvConf([ADDR.routerLan.v4]));
    // wireguard-go forks itself into the background: not a child of ours.
    await other.run('vm', ['wireguard-go', WG_IF]);
    seen.push(...HOSTS.flatMap((h) => other.pids(h)));
    assert.ok(other.pids('vm').length > 0, 'wireguard-go runs in the vm namespace');
  } finally {
    await other.destroy();
  }
  assert.equal(labNamespaces('aelibd-'), []);
  assert.equal(seen.filter(isAlive), [], 'every process of the lab has ended');
  const stray = [...rootLinks()].filter((l) => !before.has(l) && ourIfnames.has(l));
  assert.equal(stray, []);
  assert.not.ok(existsSync(`/var/run/wireguard/${WG_IF}.sock`), 'no stale wireguard-go socket');
  assert.not.ok(existsSync(`/etc/netns/${other.ns.lan}`), 'no per-namespace /etc files');
});

test('withLab destroys the lab when the body throws, and the error reaches the caller', async () => {
  let pid = 0;
  const err = await withLab(
    async (l) => {
      pid = l.spawn('lan', ['sleep', '600']).pid;
      throw new Error('body failed');
    },
    { prefix: 'aelibw-', servers: false },
  ).catch((e: unknown) => e);
  assert.instance(err, Error);
  assert.is((err as Error).message, 'body failed');
  assert.equal(labNamespaces('aelibw-'), []);
  assert.not.ok(isAlive(pid));
});

test('a second lab with the same prefix is refused while the first one lives', async () => {
  const err = await createLab({ prefix: PREFIX, lockWaitMs: 0 }).catch((e: unknown) => e);
  assert.instance(err, Error);
  assert.match((err as Error).message, /in use/);
  // The refused attempt did not disturb the running lab.
  assert.is((await lab.fetch('phone', URLS.website4)).body, ADDR.phone.v4);
});

/** Runs a lab in another process; resolves once it is up, with the PIDs of its processes. */
async function childLab(prefix: string) {
  const code = `
    import { createLab } from ${JSON.stringify(new URL('./lib/lab.ts', import.meta.url).href)};
    const lab = await createLab({ prefix: ${JSON.stringify(prefix)} });
    const p = lab.spawn('vm', ['sleep', '600']);
    console.log(JSON.stringify({ sleeper: p.pid, website: lab.servers.website.pid }));
    setInterval(() => {}, 1000);
  `;
  const child = spawn(NODE24, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((r) => child.on('exit', (c, s) => r(c ?? (s ? 128 : null))));
  const lines = createInterface({ input: child.stdout });
  const first = await Promise.race([
    new Promise<string>((r) => lines.once('line', r)),
    new Promise<string>((_, j) => setTimeout(() => j(new Error('child lab did not come up in 20 s')), 20_000).unref()),
  ]);
  const { sleeper, website } = JSON.parse(first) as { sleeper: number; website: number };
  return { child, exited, sleeper, website };
}

test('SIGTERM to the test process still tears its lab down', async () => {
  const { child, exited, sleeper } = await childLab('aelibs-');
  assert.equal(labNamespaces('aelibs-').length, HOSTS.length);
  child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('timeout'), 20_000).unref())]);
  assert.is(code, 143);
  assert.equal(labNamespaces('aelibs-'), []);
  assert.not.ok(isAlive(sleeper));
});

test('createLab clears what a crashed run (SIGKILL, no teardown) left behind', async () => {
  const { child, exited, sleeper, website } = await childLab('aelibk-');
  child.kill('SIGKILL');
  await exited;
  assert.ok(isAlive(sleeper), 'the crashed run left its process behind');
  // The lab's own servers notice that their parent is gone and exit.
  await waitFor('the orphaned website to exit', () => !isAlive(website), { timeoutMs: 5_000 });
  assert.equal(labNamespaces('aelibk-').length, HOSTS.length);
  await withLab(
    async (l) => {
      assert.not.ok(isAlive(sleeper));
      assert.equal(l.pids('vm'), []);
      assert.is((await l.fetch('phone', URLS.website4)).body, ADDR.phone.v4);
    },
    { prefix: 'aelibk-' },
  );
  assert.equal(labNamespaces('aelibk-'), []);
});

test.run();
