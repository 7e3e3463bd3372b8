// Lab: DNS for the whole home and the phone goes through the VM's resolver,
// and the router makes it so. The laptop keeps asking the router (dnsmasq,
// as on OpenWrt), which forwards through the tunnel; a query to any other
// server is answered by the VM all the same; DNS over TLS/QUIC is refused at
// once; the phone gets names from the VM too; and with the tunnel down no
// answer comes from anywhere, not even by the router's own WAN.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADDR, PREFIX, WG_IF, createLab, waitFor, type Lab } from './lib/lab.ts';
import { setUpAerie, type Aerie } from './lib/aerie.ts';
import { ADS, BIG_TXT, LAB_NAMES, LAB_TTL, OTHER, addressesOf, dig, getentAddresses, resolvConf, startLabDns, type DigResult } from './lib/dns.ts';
import { probePort } from './lib/probe.ts';

let lab: Lab | undefined;
let aerie: Aerie;
const ROUTER = ADDR.routerLan;
const LAB_DNS = ADDR.labDns;
const VM_DNS = ADDR.vmTunnel;
const BLOCKED = { A: ['0.0.0.0'], AAAA: ['::'] };
const LIST_ID = 'lab-ads';

const show = (r: DigResult) => JSON.stringify({ status: r.status, answers: r.answers, error: r.error, ms: r.ms });

/** Nothing usable came back: no reply at all, or a failure code with no address. */
function noAnswer(r: DigResult, what: string): void {
  assert.equal(addressesOf(r), [], `${what}: no address (${show(r)})`);
  assert.is.not(r.status, 'NOERROR', `${what}: not a successful reply (${show(r)})`);
}

async function laptopResolves(timeoutMs: number): Promise<void> {
  await waitFor(
    'the laptop to resolve website.example through the router',
    async () => addressesOf(await dig(lab!, 'lan', ROUTER.v4, LAB_NAMES.website, { timeoutS: 1 }))[0] === ADDR.website.v4,
    { timeoutMs, intervalMs: 250 },
  );
}

test.after(async () => {
  await lab?.destroy();
});

test('set up: before Aerie the laptop reaches the lab DNS server itself, over plain DNS, TLS and UDP 853', async () => {
  // A benchmark may hold the lab for a while.
  lab = await createLab({ lockWaitMs: 180_000 });
  await startLabDns(lab);
  aerie = await setUpAerie(lab, { dnsUpstream: [`udp:${LAB_DNS.v4}`], dnsLists: 'none' });
  // Through the router's plain masquerade: what the enforcement below must change.
  assert.equal(addressesOf(await dig(lab, 'lan', LAB_DNS.v4, LAB_NAMES.ads)), [ADS.v4], 'the lab server gives the real address');
  assert.equal(addressesOf(await dig(lab, 'lan', LAB_DNS.v6, LAB_NAMES.ads, { type: 'AAAA' })), [ADS.v6]);
  assert.equal(addressesOf(await dig(lab, 'lan', LAB_DNS.v4, LAB_NAMES.other)), [OTHER.v4]);
  const tls = await dig(lab, 'lan', LAB_DNS.v4, LAB_NAMES.website, { tls: true, timeoutS: 3 });
  assert.equal(addressesOf(tls), [ADDR.website.v4], `DNS over TLS works before Aerie: ${show(tls)}`);
  const udp853 = await dig(lab, 'lan', LAB_DNS.v6, LAB_NAMES.website, { port: 853 });
  assert.equal(addressesOf(udp853), [ADDR.website.v4], `UDP 853 (the DNS over QUIC port) works before Aerie: ${show(udp853)}`);
});

test('the router is paired, and its resolver forwards to what the gateway wrote: the VM', async () => {
  await aerie.startCloud();
  await aerie.pairGateway(await aerie.pairingCode());
  await aerie.startGateway();
  await aerie.startRouterDns();
  await aerie.waitLaptopThroughVm();
  // The laptop's resolv.conf names the router, as DHCP would tell it.
  lab!.setResolvConf('lan', resolvConf([ROUTER.v4, ROUTER.v6], [], ['timeout:1', 'attempts:1']));
  await waitFor('the gateway to write the resolv file', () => existsSync(aerie.routerResolvFile), { timeoutMs: 10_000 });
  const resolv = readFileSync(aerie.routerResolvFile, 'utf8');
  assert.equal(resolv.split('\n').filter((l) => l.startsWith('nameserver')), [`nameserver ${VM_DNS.v4}`, `nameserver ${VM_DNS.v6}`]);
});

test('the VM blocks a list and a name of its own, and says why', async () => {
  const list = join(lab!.logDir, 'ads.list');
  writeFileSync(list, `# the lab's ad list\n${LAB_NAMES.ads}\n`);
  const add = await aerie.cloudCli(['dns', 'add-list', list, '--id', LIST_ID], { allowFail: true });
  await aerie.cloudCli(['dns', 'block', LAB_NAMES.other]);
  await waitFor(
    'dns test to report the list entry',
    async () => /block/i.test((await aerie.cloudCli(['dns', 'test', LAB_NAMES.tracker], { allowFail: true })).stdout),
    { timeoutMs: 15_000, intervalMs: 500 },
  );
  const explained = await aerie.cloudCli(['dns', 'test', LAB_NAMES.tracker]);
  assert.match(explained.stdout, new RegExp(LIST_ID), `says which list: ${explained.stdout}`);
  // Checked last, so that the rest of the test runs whatever it says.
  assert.is(add.code, 0, `dns add-list succeeds: ${add.stderr}`);
});

test('the laptop resolves through the router and the VM: lab names answered, listed and custom names blocked', async () => {
  await laptopResolves(20_000);
  const a = await dig(lab!, 'lan', ROUTER.v4, LAB_NAMES.website);
  assert.is(a.status, 'NOERROR', show(a));
  assert.equal(addressesOf(a), [ADDR.website.v4]);
  assert.ok(a.answers[0]!.ttl > 0 && a.answers[0]!.ttl <= LAB_TTL, `TTL from the lab server, at most ${LAB_TTL}: ${show(a)}`);
  assert.equal(addressesOf(await dig(lab!, 'lan', ROUTER.v6, LAB_NAMES.website, { type: 'AAAA' })), [ADDR.website.v6]);
  // A program on the laptop, through its resolv.conf.
  assert.equal(await getentAddresses(lab!, 'lan', LAB_NAMES.website, 4), [ADDR.website.v4]);
  assert.equal(await getentAddresses(lab!, 'lan', LAB_NAMES.website, 6), [ADDR.website.v6]);

  for (const name of [LAB_NAMES.ads, LAB_NAMES.tracker, LAB_NAMES.other]) {
    for (const type of ['A', 'AAAA'] as const) {
      const r = await dig(lab!, 'lan', ROUTER.v4, name, { type });
      assert.equal(addressesOf(r), BLOCKED[type], `${name} ${type} is blocked: ${show(r)}`);
    }
  }
  assert.equal(await getentAddresses(lab!, 'lan', LAB_NAMES.tracker, 4), BLOCKED.A);

  // More than fits a UDP reply: truncated, and dig's retry over TCP gets it all (router and VM both speak TCP).
  const big = await dig(lab!, 'lan', ROUTER.v4, LAB_NAMES.big, { type: 'TXT', timeoutS: 3 });
  assert.equal(big.answers.map((x) => x.data.replace(/^"|"$/g, '')).sort(), [...BIG_TXT].sort(), show(big));
});

test('status on the router: interception read back from the kernel, the VM resolver named', async () => {
  const s = JSON.parse((await aerie.gatewayCli(['status', '--json'])).stdout) as { dnsInterceptActive: boolean; dnsServers: string[]; dnsResolvFile: string };
  assert.is(s.dnsInterceptActive, true);
  assert.equal(s.dnsServers, [VM_DNS.v4, VM_DNS.v6]);
  assert.is(s.dnsResolvFile, aerie.routerResolvFile);
  assert.match((await aerie.gatewayCli(['status'])).stdout, /^dns: +intercepted/m);
});

test('a query to any other server is answered by the VM anyway: UDP and TCP, IPv4 and IPv6', async () => {
  // The lab server would never say 0.0.0.0 for ads.example: only the VM does.
  for (const server of [LAB_DNS.v4, LAB_DNS.v6]) {
    for (const tcp of [false, true]) {
      const r = await dig(lab!, 'lan', server, LAB_NAMES.ads, { tcp });
      assert.equal(addressesOf(r), BLOCKED.A, `@${server}${tcp ? ' over TCP' : ''}: ${show(r)}`);
      assert.equal(addressesOf(await dig(lab!, 'lan', server, LAB_NAMES.website, { tcp })), [ADDR.website.v4]);
    }
  }
  // An address with no DNS server at all (the ISP's router) answers too: the router did.
  assert.equal(addressesOf(await dig(lab!, 'lan', ADDR.ispRouter.v4, LAB_NAMES.website)), [ADDR.website.v4]);
});

test('DNS over TLS and over QUIC to the outside are refused at once', async () => {
  for (const server of [LAB_DNS.v4, LAB_DNS.v6]) {
    const tls = await dig(lab!, 'lan', server, LAB_NAMES.website, { tls: true, timeoutS: 3 });
    assert.equal(addressesOf(tls), [], `no answer over TLS from ${server}: ${show(tls)}`);
    assert.ok(tls.ms < 2000, `dig +tls gave up at once, not after its timeout: ${show(tls)}`);
    const tcp = await probePort(lab!, 'lan', 'tcp', server, 853);
    assert.is(tcp.result, 'refused', `TCP ${server}:853 gets a reset: ${JSON.stringify(tcp)}`);
    assert.ok(tcp.ms < 1000, `at once: ${JSON.stringify(tcp)}`);
    const udp = await probePort(lab!, 'lan', 'udp', server, 853);
    assert.is(udp.result, 'refused', `UDP ${server}:853 gets a port unreachable: ${JSON.stringify(udp)}`);
    const quic = await dig(lab!, 'lan', server, LAB_NAMES.website, { port: 853 });
    assert.equal(addressesOf(quic), [], `nothing over UDP 853: ${show(quic)}`);
  }
});

test('the phone resolves through the VM: device names in the zone, and the same blocking', async () => {
  await aerie.cloudCli(['device', 'add', 'laptop']);
  const devices = JSON.parse((await aerie.cloudCli(['device', 'list', '--json'])).stdout) as { name: string; addresses: string[] }[];
  const laptop = devices.find((d) => d.name === 'laptop')!.addresses.map((a) => a.split('/')[0]!);
  const v4 = laptop.filter((a) => a.includes('.'));
  const v6 = laptop.filter((a) => a.includes(':'));
  const config = await aerie.addPhone();
  assert.match(config, /^DNS = 203\.0\.113\.129, 2001:db8:a0::1\b/m, `the phone's config names the VM's resolver:\n${config.replace(/PrivateKey = .*/, 'PrivateKey = …')}`);
  assert.equal(await getentAddresses(lab!, 'phone', 'laptop.aerie.internal', 4), v4);
  assert.equal(await getentAddresses(lab!, 'phone', 'laptop.aerie.internal', 6), v6);
  assert.equal(await getentAddresses(lab!, 'phone', LAB_NAMES.ads, 4), BLOCKED.A);
  assert.equal(await getentAddresses(lab!, 'phone', LAB_NAMES.website, 4), [ADDR.website.v4]);
  // The overlay prefixes are where the names point.
  assert.ok(v4.length === 1 && v4[0]!.startsWith('203.0.113.'), `${PREFIX.overlay.v4}: ${v4}`);
  // Straight to the VM as well, and over IPv6.
  assert.equal(addressesOf(await dig(lab!, 'phone', VM_DNS.v6, LAB_NAMES.tracker)), BLOCKED.A);
});

test('tunnel down: no DNS answer reaches the laptop from anywhere; back up: answers again', async () => {
  await aerie.stopCloud();
  try {
    for (const server of [ROUTER.v4, ROUTER.v6, LAB_DNS.v4, LAB_DNS.v6]) {
      noAnswer(await dig(lab!, 'lan', server, LAB_NAMES.website), `VM down, UDP to ${server}`);
    }
    noAnswer(await dig(lab!, 'lan', LAB_DNS.v4, LAB_NAMES.website, { tcp: true }), 'VM down, TCP to the lab server');
    assert.equal(await getentAddresses(lab!, 'lan', LAB_NAMES.website, 4), []);
    // The answer is there to be had: the router itself reaches the lab server by its WAN.
    assert.equal(addressesOf(await dig(lab!, 'router', LAB_DNS.v4, LAB_NAMES.website)), [ADDR.website.v4]);
  } finally {
    await aerie.startCloud();
  }
  await laptopResolves(30_000);
  assert.equal(addressesOf(await dig(lab!, 'lan', LAB_DNS.v4, LAB_NAMES.ads)), BLOCKED.A);
});

test("tunnel interface gone, daemon dead: the router's own queries for the VM never take the WAN; a new daemon restores DNS", async () => {
  // Packets from the router for the overlay, counted where the WAN link arrives.
  await lab!.run('internet', ['nft', '-f', '/dev/stdin'], {
    input: [
      'table inet lab_leak {',
      '  chain pre {',
      '    type filter hook prerouting priority -300; policy accept;',
      `    iifname "to-router" ip daddr ${PREFIX.overlay.v4} counter`,
      `    iifname "to-router" ip6 daddr ${PREFIX.overlay.v6} counter`,
      '  }',
      '}',
      '',
    ].join('\n'),
  });
  const leaked = async () => {
    const out = (await lab!.run('internet', ['nft', 'list', 'chain', 'inet', 'lab_leak', 'pre'])).stdout;
    return [...out.matchAll(/counter packets (\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  };
  await lab!.kill9(aerie.gateway!);
  await lab!.run('router', ['ip', 'link', 'del', WG_IF.router]);
  assert.match((await lab!.run('router', ['ip', 'route', 'get', VM_DNS.v4])).stdout, /dev wan0/, 'the main table would send it by the WAN');
  // Baseline: without our table, the router's query for the VM does go out by the WAN.
  const table = (await lab!.run('router', ['nft', 'list', 'table', 'inet', 'aerie_gw'])).stdout;
  await lab!.run('router', ['nft', 'delete', 'table', 'inet', 'aerie_gw']);
  try {
    await dig(lab!, 'router', VM_DNS.v4, LAB_NAMES.website, { timeoutS: 1 });
    assert.ok((await leaked()) >= 1, 'the counter sees what leaks');
  } finally {
    await lab!.run('router', ['nft', '-f', '/dev/stdin'], { input: table });
  }
  const before = await leaked();
  for (const server of [ROUTER.v4, LAB_DNS.v6]) noAnswer(await dig(lab!, 'lan', server, LAB_NAMES.website), `no tunnel, to ${server}`);
  noAnswer(await dig(lab!, 'router', VM_DNS.v4, LAB_NAMES.website, { timeoutS: 1 }), "the router's own query");
  noAnswer(await dig(lab!, 'router', VM_DNS.v6, LAB_NAMES.website, { timeoutS: 1 }), "the router's own query over IPv6");
  assert.is(await leaked(), before, 'not one packet for the overlay left by the WAN');

  await aerie.startGateway();
  await laptopResolves(30_000);
});

test.run();
