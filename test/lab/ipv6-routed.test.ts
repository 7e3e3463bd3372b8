// Lab: a home's IPv6 from a prefix the provider routes to the VM. The router
// gets a /64 of it at pairing and announces it; the laptop's IPv6 goes through
// the tunnel and reaches the website with its own global address (no NAT66);
// and nothing from the internet starts a connection to it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { ADDR, LAPTOP_PORT, URLS, createLab, waitFor, type Lab } from './lib/lab.ts';
import { setUpAerie, type Aerie } from './lib/aerie.ts';
import { probePort } from './lib/probe.ts';

let lab: Lab | undefined;
let aerie: Aerie;
const ROUTED = '2001:db8:b00::/56';
let laptop = '';

test.after(async () => {
  await lab?.destroy();
});

test('set up: the provider routes a /56 to the VM; the router gets a /64 of it and the laptop an address', async () => {
  lab = await createLab({ lockWaitMs: 180_000 });
  aerie = await setUpAerie(lab, { homeV6Prefix: ROUTED });
  await lab.run('internet', ['ip', '-6', 'route', 'replace', ROUTED, 'via', ADDR.vm.v6]);
  await aerie.startCloud();
  await aerie.pairGateway(await aerie.pairingCode());
  await aerie.startGateway();
  await aerie.waitLaptopThroughVm();
  const config = JSON.parse(readFileSync(aerie.configPath, 'utf8')) as { vm: { homeV6?: string } };
  assert.is(config.vm.homeV6, '2001:db8:b00:2::/64');
  await waitFor(
    'the laptop to make an address of the routed /64',
    async () => {
      const r = await lab!.run('lan', ['ip', '-j', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
      const all = (JSON.parse(r.stdout) as { addr_info?: { local?: string }[] }[]).flatMap((l) => (l.addr_info ?? []).map((a) => a.local));
      laptop = all.find((a): a is string => typeof a === 'string' && a.startsWith('2001:db8:b00:2:')) ?? '';
      return laptop !== '';
    },
    { timeoutMs: 30_000, intervalMs: 500 },
  );
});

test('the website sees the laptop\'s own global address, through the tunnel', async () => {
  const r = await lab!.fetch('lan', URLS.website6, { timeoutMs: 5000, from: laptop });
  assert.ok(r.ok, r.error ?? String(r.status));
  assert.is(r.body.replace(/^website /, '').trim(), laptop, 'not NATed');
  // The IPv4 and the ULA-less rest still leave with the VM's address.
  assert.is((await lab!.fetch('lan', URLS.website4, { timeoutMs: 5000 })).body.replace(/^website /, '').trim(), ADDR.vm.v4);
});

test('nothing from the internet starts a connection to it', async () => {
  const r = await probePort(lab!, 'internet', 'tcp', laptop, LAPTOP_PORT, 1500);
  assert.ok(['timeout', 'unreachable'].includes(r.result), JSON.stringify(r));
});

test.run();
