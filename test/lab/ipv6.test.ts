// Lab: IPv6 for the home from the VM. At pairing the VM gives the router a
// /64; the router takes its first address on the LAN and announces it, the
// laptop makes an address of it by itself, and through the tunnel the website
// sees the VM's IPv6 address. An address of the ISP's own IPv6 on the LAN
// does not leave by the router's WAN: the kill switch holds for it too.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { ADDR, URLS, createLab, waitFor, type Lab } from './lib/lab.ts';
import { pairedAerie, type Aerie } from './lib/aerie.ts';

let lab: Lab | undefined;
let aerie: Aerie;
let homeV6 = '';
/** The "ISP's" IPv6 on the home LAN, which must not be a way out. */
const ISP = { prefix: '2001:db8:1b::/64', router: '2001:db8:1b::1', laptop: '2001:db8:1b::130' };

/** The laptop's global addresses inside `prefix` ("2001:db8:a0:2::/64"). */
async function laptopAddressesIn(prefix: string): Promise<string[]> {
  const base = prefix.replace(/::\/64$/, ':');
  const r = await lab!.run('lan', ['ip', '-j', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
  const links = JSON.parse(r.stdout) as { addr_info?: { local?: string }[] }[];
  return links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local)).filter((a): a is string => typeof a === 'string' && a.startsWith(base));
}

test.after(async () => {
  await lab?.destroy();
});

test('pairing gives the home an IPv6 /64 of the VM, and the router announces it', async () => {
  lab = await createLab({ lockWaitMs: 180_000 });
  aerie = await pairedAerie(lab);
  const config = JSON.parse(readFileSync(aerie.configPath, 'utf8')) as { vm: { homeV6?: string } };
  homeV6 = config.vm.homeV6 ?? '';
  assert.match(homeV6, /^2001:db8:a0:[0-9a-f]+::\/64$/, 'a /64 beside the overlay');
  const routerAddr = await lab.run('router', ['ip', '-6', 'addr', 'show', 'dev', 'lan0']);
  assert.ok(routerAddr.stdout.includes(homeV6.replace('::/64', '::1/64')), routerAddr.stdout);
  await waitFor('the laptop to make an address of the announced prefix', async () => (await laptopAddressesIn(homeV6)).length > 0, {
    timeoutMs: 30_000,
    intervalMs: 500,
  });
});

test('the laptop reaches the website over IPv6 from that address, and the website sees the VM', async () => {
  const [mine] = await laptopAddressesIn(homeV6);
  const r = await lab!.fetch('lan', URLS.website6, { timeoutMs: 5000, from: mine! });
  assert.ok(r.ok, `${mine} → website: ${r.error}`);
  assert.is(r.body.replace(/^website /, '').trim(), ADDR.vm.v6);
  // The VM routes the prefix to the router: the VM itself reaches the laptop there.
  const ping = await lab!.run('vm', ['ping', '-6', '-c', '1', '-W', '2', mine!], { allowFail: true });
  assert.is(ping.code, 0, `the VM reaches ${mine} through the tunnel: ${ping.stdout}`);
});

test('an address of the ISP\'s IPv6 on the LAN cannot leave by the router\'s WAN', async () => {
  await lab!.run('router', ['ip', '-6', 'addr', 'add', `${ISP.router}/64`, 'dev', 'lan0', 'nodad']);
  await lab!.run('lan', ['ip', '-6', 'addr', 'add', `${ISP.laptop}/64`, 'dev', 'eth0', 'nodad']);
  // The ISP routes its prefix to the router, as it would.
  await lab!.run('internet', ['ip', '-6', 'route', 'replace', ISP.prefix, 'via', ADDR.routerWan.v6]);
  const r = await lab!.fetch('lan', URLS.website6, { timeoutMs: 2000, from: ISP.laptop });
  assert.is(r.status, 0, `the ISP's IPv6 must not be a way out: ${r.body}`);
  // The home's own addresses still go through the tunnel.
  const [mine] = await laptopAddressesIn(homeV6);
  assert.is((await lab!.fetch('lan', URLS.website6, { timeoutMs: 5000, from: mine! })).body.replace(/^website /, '').trim(), ADDR.vm.v6);
});

test('unpair: the router takes its address and announcements away', async () => {
  await lab!.stop(aerie.gateway!);
  await aerie.gatewayCli(['unpair']);
  const routerAddr = await lab!.run('router', ['ip', '-6', 'addr', 'show', 'dev', 'lan0']);
  assert.not.ok(routerAddr.stdout.includes(homeV6.replace('::/64', '::1/64')), routerAddr.stdout);
  const comms = lab!.pids('router').map((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      return '';
    }
  });
  assert.not.ok(comms.includes('radvd'), `radvd stopped: ${comms.join(', ')}`);
});

test.run();
