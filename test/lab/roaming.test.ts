// The tunnel follows both ends by itself: the router's WAN address changes
// (a new lease from the ISP), and the VM moves to a new address behind the
// same DNS name. No daemon is restarted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { ADDR, URLS, createLab, waitFor, type Lab } from './lib/lab.ts';
import { setUpAerie, type Aerie } from './lib/aerie.ts';

const VM_NAME = 'vm.aerie.test';
const VM_NEW = '203.0.113.11';
const ROUTER_WAN_NEW = '198.51.100.3';

let lab: Lab | undefined;
let aerie: Aerie;
let hostsDir = '';

/** The router's /etc/hosts: `ip netns exec` mounts /etc/netns/NS/hosts over it. Rewritten in place so the mount sees it. */
function routerHosts(vmAddress: string) {
  writeFileSync(`${hostsDir}/hosts`, `127.0.0.1 localhost\n::1 localhost\n${vmAddress} ${VM_NAME}\n`);
}

const websiteSees = async () => (await lab!.fetch('lan', URLS.website4, { timeoutMs: 1000 })).body;

test.after(async () => {
  await lab?.destroy();
  if (hostsDir) rmSync(hostsDir, { recursive: true, force: true });
});

test('set up: the VM is known to the router by name', async () => {
  lab = await createLab();
  hostsDir = `/etc/netns/${lab.ns.router}`;
  mkdirSync(hostsDir, { recursive: true });
  routerHosts(ADDR.vm.v4);
  aerie = await setUpAerie(lab, { publicEndpoint: VM_NAME });
  await aerie.startCloud();
  await aerie.pairGateway(await aerie.pairingCode());
  await aerie.startGateway();
  await aerie.waitLaptopThroughVm();
});

test('the router gets a new WAN address: traffic resumes through the VM, which follows it', async () => {
  // Old address first: deleting a primary address also deletes its secondaries.
  await lab!.run('router', ['ip', 'addr', 'del', `${ADDR.routerWan.v4}/25`, 'dev', 'wan0']);
  await lab!.run('router', ['ip', 'addr', 'add', `${ROUTER_WAN_NEW}/25`, 'dev', 'wan0']);
  await lab!.run('router', ['ip', 'route', 'replace', 'default', 'via', ADDR.ispRouter.v4, 'dev', 'wan0']);
  await waitFor('the laptop to reach the website through the VM', async () => (await websiteSees()) === ADDR.vm.v4, {
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  await waitFor('the VM to see the router at its new address', async () => {
    const { stdout } = await aerie.cloudCli(['status', '--json']);
    const home = (JSON.parse(stdout) as { peers: { name: string; endpoint: string | null }[] }).peers.find((p) => p.name === 'home');
    return home?.endpoint?.startsWith(`${ROUTER_WAN_NEW}:`);
  }, { timeoutMs: 15_000, intervalMs: 500 });
});

test('the VM moves to a new address under the same name: the router follows without a restart', async () => {
  const gatewayPid = aerie.gateway!.pid;
  await lab!.run('vm', ['ip', 'addr', 'del', `${ADDR.vm.v4}/25`, 'dev', 'eth0']);
  await lab!.run('vm', ['ip', 'addr', 'add', `${VM_NEW}/25`, 'dev', 'eth0']);
  await lab!.run('vm', ['ip', 'route', 'replace', 'default', 'via', ADDR.ispVm.v4, 'dev', 'eth0']);
  routerHosts(VM_NEW);
  await waitFor('the website to see the VM at its new address', async () => (await websiteSees()) === VM_NEW, {
    timeoutMs: 45_000,
    intervalMs: 250,
  });
  assert.is(aerie.gateway!.pid, gatewayPid);
  assert.is(aerie.gateway!.exit, null, 'the gateway daemon was not restarted');
});

test.run();
