// Lab 1 and 2: pairing carries the whole home through the VM, over IPv4 and
// IPv6; a phone reaches home through the VM; the internet cannot reach home.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ADDR, PREFIX, URLS, createLab, type Lab } from './lib/lab.ts';
import { setUpAerie, type Aerie } from './lib/aerie.ts';

let lab: Lab | undefined;
let aerie: Aerie;

test.after(async () => {
  await lab?.destroy();
});

test('without Aerie the website sees the router; after pairing it sees the VM, over IPv4 and IPv6', async () => {
  lab = await createLab();
  aerie = await setUpAerie(lab);
  const before4 = await lab.fetch('lan', URLS.website4);
  const before6 = await lab.fetch('lan', URLS.website6);
  assert.is(before4.body, ADDR.routerWan.v4, 'baseline: the router masquerades the LAN');
  assert.is(before6.body, ADDR.routerWan.v6);

  await aerie.startCloud();
  await aerie.pairGateway(await aerie.pairingCode());
  await aerie.startGateway();
  await aerie.waitLaptopThroughVm();

  assert.is((await lab.fetch('lan', URLS.website4)).body, ADDR.vm.v4);
  assert.is((await lab.fetch('lan', URLS.website6)).body, ADDR.vm.v6);
  // The router's own traffic keeps the main table: it still leaves by its WAN.
  assert.is((await lab.fetch('router', URLS.website4)).body, ADDR.routerWan.v4);

  const { stdout } = await aerie.gatewayCli(['status', '--json']);
  const status = JSON.parse(stdout) as { tunnel: string; killSwitchActive: boolean; whoami: { name: string; role: string } | null };
  assert.is(status.tunnel, 'up');
  assert.ok(status.killSwitchActive, 'status reads the kill switch from the kernel');
  assert.equal(status.whoami && { name: status.whoami.name, role: status.whoami.role }, { name: 'home', role: 'gateway' });
});

test('the VM knows callers by their tunnel address: home devices are "lan", not admins', async () => {
  const api = `http://${ADDR.vmTunnel.v4}`;
  const whoami = await lab!.fetch('lan', `${api}/v1/whoami`);
  assert.ok(whoami.ok, `laptop → whoami: ${whoami.error ?? whoami.status}`);
  assert.equal(JSON.parse(whoami.body), { name: 'home', role: 'lan', address: ADDR.laptop.v4, gateway: 'home' });
  const devices = await lab!.fetch('lan', `${api}/v1/devices`);
  assert.is(devices.status, 403);
  assert.is((JSON.parse(devices.body) as { error: { code: string } }).error.code, 'forbidden');
  // From outside the tunnel the API does not answer at all, even to a neighbour that routes the overlay to the VM.
  await lab!.run('internet', ['ip', 'route', 'replace', PREFIX.overlay.v4, 'via', ADDR.vm.v4]);
  assert.is((await lab!.fetch('internet', `${api}/v1/health`, { timeoutMs: 1500 })).status, 0);
  await lab!.run('internet', ['ip', 'route', 'del', PREFIX.overlay.v4]);
});

test('the phone reaches the laptop at its LAN address; the internet cannot', async () => {
  assert.ok(lab, 'the lab is up');
  await aerie.addPhone();
  const v4 = await lab!.fetch('phone', URLS.laptop4, { timeoutMs: 5000 });
  assert.ok(v4.ok, `phone → laptop over IPv4: ${v4.error}`);
  assert.match(v4.body, /^laptop 203\.0\.113\.\d+$/, 'the laptop sees the phone by its tunnel address');
  const v6 = await lab!.fetch('phone', URLS.laptop6, { timeoutMs: 5000 });
  assert.ok(v6.ok, `phone → laptop over IPv6: ${v6.error}`);
  // The phone's full tunnel: the website sees the VM, not the phone.
  assert.is((await lab!.fetch('phone', URLS.website4)).body, ADDR.vm.v4);
  // An owner's phone is an admin of the API.
  const devices = await lab!.fetch('phone', `http://${ADDR.vmTunnel.v4}/v1/devices`);
  assert.is(devices.status, 200);
  assert.equal((JSON.parse(devices.body) as { devices: { name: string }[] }).devices.map((d) => d.name).sort(), ['home', 'phone']);

  for (const url of [URLS.laptop4, URLS.laptop6]) {
    const r = await lab!.fetch('internet', url, { timeoutMs: 2000 });
    assert.not.ok(r.ok, `the internet must not reach ${url}`);
    assert.is(r.status, 0);
  }
});

test.run();
