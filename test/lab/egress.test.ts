// Lab: the temporary IP. With an egress pool on (two extra IPv4 addresses of
// the VM and its IPv6 /64), the website sees a pool address instead of the
// VM's own; `egress rotate` changes it for new connections while a connection
// already open keeps its address; a destination on the exception list, by
// prefix or by name (through the VM's resolver), sees the stable address.
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ADDR, NODE24, REPO_ROOT, URLS, WEBSITE_PORT, createLab, waitFor, type Lab, type LabProcess } from './lib/lab.ts';
import { setUpAerie, type Aerie } from './lib/aerie.ts';
import { LAB_NAMES, addressesOf, dig, startLabDns } from './lib/dns.ts';
import { probePort } from './lib/probe.ts';

let lab: Lab | undefined;
let aerie: Aerie;
const POOL_V4 = ['203.0.113.11', '203.0.113.12'];
const POOL_V6_PREFIX = '2001:db8:203::/64';
const HOLDER = `${REPO_ROOT}/test/lab/servers/hold-connection.ts`;
/** The VM's pairing listener (TLS), on every address. */
const PAIRING_PORT = 8443;

/** What the website says the laptop's address is, over IPv4 or IPv6. */
async function seenAs(url: string): Promise<string> {
  const r = await lab!.fetch('lan', url, { timeoutMs: 3000 });
  assert.ok(r.ok, `${url}: ${r.error ?? r.status}`);
  return r.body.replace(/^website /, '').trim();
}

const answers = (p: LabProcess) =>
  p
    .output()
    .split('\n')
    .filter((l) => l.startsWith('ok '))
    .map((l) => l.slice(3).replace(/^website /, '').trim());

test.after(async () => {
  await lab?.destroy();
});

test('set up: a paired router; the VM has two extra IPv4 addresses and its IPv6 /64', async () => {
  lab = await createLab({ lockWaitMs: 180_000 });
  await startLabDns(lab);
  aerie = await setUpAerie(lab, { dnsUpstream: [`udp:${ADDR.labDns.v4}`], dnsLists: 'none' });
  for (const a of POOL_V4) await lab.run('vm', ['ip', 'addr', 'add', `${a}/25`, 'dev', 'eth0']);
  await aerie.startCloud();
  await aerie.pairGateway(await aerie.pairingCode());
  await aerie.startGateway();
  await aerie.startRouterDns();
  await aerie.waitLaptopThroughVm();
  assert.is(await seenAs(URLS.website4), ADDR.vm.v4, 'before: the VM\'s own address');
  assert.is(await seenAs(URLS.website6), ADDR.vm.v6);
});

test('bad pools are refused and change nothing', async () => {
  const notOurs = await aerie.cloudCli(['egress', 'pool', '--v6-prefix', '2001:db8:999::/64'], { allowFail: true });
  assert.is(notOurs.code, 1);
  assert.match(notOurs.stderr, /v6Prefix/);
  const notOursV4 = await aerie.cloudCli(['egress', 'pool', '--v4', '198.51.100.77'], { allowFail: true });
  assert.is(notOursV4.code, 1);
  assert.match(notOursV4.stderr, /v4/);
  assert.is(await seenAs(URLS.website4), ADDR.vm.v4);
});

test('on: the website sees a pool address, IPv4 and IPv6', async () => {
  await aerie.cloudCli(['egress', 'pool', '--v6-prefix', POOL_V6_PREFIX, ...POOL_V4.flatMap((a) => ['--v4', a])]);
  await aerie.cloudCli(['egress', 'on']);
  await waitFor('a pool address', async () => POOL_V4.includes(await seenAs(URLS.website4)), { timeoutMs: 10_000, intervalMs: 250 });
  const v6 = await seenAs(URLS.website6);
  assert.ok(v6.startsWith('2001:db8:203:') && v6 !== ADDR.vm.v6, `a random address of the /64, not the VM's own: ${v6}`);
  // A website that probes the address it saw finds nothing there: the VM's pairing listener answers only at its own.
  for (const temporary of [await seenAs(URLS.website4), v6]) {
    const probe = await probePort(lab!, 'internet', 'tcp', temporary, PAIRING_PORT, 1500);
    assert.is(probe.result, 'timeout', `pairing at the temporary ${temporary}: ${JSON.stringify(probe)}`);
  }
  assert.is((await probePort(lab!, 'internet', 'tcp', ADDR.vm.v4, PAIRING_PORT, 3000)).result, 'connected', "at the VM's own address it answers");
  // The router hears of it on its control channel and shows it.
  const routerSees = async () => {
    const status = JSON.parse((await aerie.gatewayCli(['status', '--json'])).stdout) as { vm: { settings: { egress: { v4: string; v6: string } | null } } | null };
    return status.vm?.settings?.egress ?? null;
  };
  await waitFor('the router to show the temporary address', async () => (await routerSees())?.v4 === (await seenAs(URLS.website4)), {
    timeoutMs: 10_000,
    intervalMs: 250,
  });
  assert.is((await routerSees())?.v6, v6);
  assert.match((await aerie.gatewayCli(['status'])).stdout, /^websites see: +203\.0\.113\.1[12], 2001:db8:203:.* \(temporary addresses of the VM\)$/m);
});

test('rotate: new connections get a new address; an open one keeps its own', async () => {
  const held = lab!.spawn('lan', [NODE24, HOLDER, ADDR.website.v4, String(WEBSITE_PORT)], { logFile: 'hold-egress.log' });
  try {
    await waitFor('the held connection to answer', () => answers(held).length >= 2, { timeoutMs: 10_000 });
    const before = answers(held).at(-1)!;
    assert.ok(POOL_V4.includes(before), before);
    const v6Before = await seenAs(URLS.website6);
    await aerie.cloudCli(['egress', 'rotate']);
    await waitFor('the new address', async () => (await seenAs(URLS.website4)) !== before, { timeoutMs: 10_000, intervalMs: 250 });
    const after = await seenAs(URLS.website4);
    assert.ok(POOL_V4.includes(after) && after !== before, `${before} → ${after}`);
    assert.is.not(await seenAs(URLS.website6), v6Before, 'IPv6 rotates too');
    const count = answers(held).length;
    await waitFor('the held connection to answer again', () => answers(held).length >= count + 2, { timeoutMs: 10_000 });
    assert.ok(answers(held).every((a) => a === before), 'the open connection kept its address');
  } finally {
    await lab!.stop(held);
  }
});

test('exceptions: a prefix, and a name through the VM\'s resolver, see the stable address', async () => {
  await aerie.cloudCli(['egress', 'except', 'add', `${ADDR.website.v4}/32`]);
  await waitFor('the stable address for the excepted prefix', async () => (await seenAs(URLS.website4)) === ADDR.vm.v4, {
    timeoutMs: 10_000,
    intervalMs: 250,
  });
  await aerie.cloudCli(['egress', 'except', 'remove', `${ADDR.website.v4}/32`]);
  await waitFor('a pool address again', async () => POOL_V4.includes(await seenAs(URLS.website4)), { timeoutMs: 10_000, intervalMs: 250 });

  await aerie.cloudCli(['egress', 'except', 'add', LAB_NAMES.website]);
  // The laptop looks the name up through the router, which asks the VM: the answer makes the exception.
  const r = await dig(lab!, 'lan', ADDR.routerLan.v4, LAB_NAMES.website);
  assert.equal(addressesOf(r), [ADDR.website.v4], JSON.stringify(r));
  assert.is(await seenAs(URLS.website4), ADDR.vm.v4, 'right after the answer, the first connection keeps the stable address');
  const listed = await lab!.run('vm', ['nft', 'list', 'set', 'inet', 'aerie', 'egress_except4']);
  assert.match(listed.stdout, new RegExp(ADDR.website.v4.replaceAll('.', '\\.')));
});

test('off: back to the VM\'s own address; an IPv6 connection open before keeps its temporary one until it ends', async () => {
  const held = lab!.spawn('lan', [NODE24, HOLDER, ADDR.website.v6, String(WEBSITE_PORT)], { logFile: 'hold-egress-v6.log' });
  let temporary = '';
  try {
    await waitFor('the held IPv6 connection to answer', () => answers(held).length >= 2, { timeoutMs: 10_000 });
    temporary = answers(held).at(-1)!;
    await aerie.cloudCli(['egress', 'off']);
    // IPv6 here: the IPv4 website is still on the exception list by its name.
    await waitFor('the VM\'s own address', async () => (await seenAs(URLS.website6)) === ADDR.vm.v6, { timeoutMs: 10_000, intervalMs: 250 });
    assert.is(await seenAs(URLS.website4), ADDR.vm.v4);
    // The provider's router forgets the VM's neighbours (as it does within a minute or so) and asks
    // again: the answers keep coming only while the address is still on the VM's WAN.
    await sleep(1000);
    await lab!.run('internet', ['ip', '-6', 'neigh', 'flush', 'dev', 'to-vm']);
    const count = answers(held).length;
    await sleep(3000);
    assert.ok(answers(held).length >= count + 8, `the open connection still gets answers (${answers(held).length - count} in 3 s)`);
    assert.ok(answers(held).every((a) => a === temporary), 'at its temporary address');
  } finally {
    await lab!.stop(held);
  }
  // Its connection ended: the daemon takes the address off at its next pass.
  await waitFor('only the VM\'s own IPv6 address on the WAN', async () => {
    const addrs = await lab!.run('vm', ['ip', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
    return addrs.stdout.match(/inet6 /g)?.length === 1;
  }, { timeoutMs: 30_000, intervalMs: 1000 });
});

test.run();
