// Lab 5 and 7: a restarted cloud daemon brings its peers back from the store
// and traffic resumes by itself; a removed device can no longer send through
// the tunnel.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ADDR, URLS, createLab, waitFor, type Lab } from './lib/lab.ts';
import { pairedAerie, type Aerie } from './lib/aerie.ts';

let lab: Lab | undefined;
let aerie: Aerie;

test.after(async () => {
  await lab?.destroy();
});

test('set up: paired router and a phone', async () => {
  lab = await createLab();
  aerie = await pairedAerie(lab);
  await aerie.addPhone();
  const r = await lab.fetch('phone', URLS.laptop4, { timeoutMs: 5000 });
  assert.ok(r.ok, `phone reaches the laptop: ${r.error}`);
});

test('restart of the cloud daemon: peers come back from the store and traffic resumes', async () => {
  const gatewayPid = aerie.gateway!.pid;
  await aerie.stopCloud();
  assert.is((await lab!.fetch('lan', URLS.website4, { timeoutMs: 1500 })).status, 0, 'nothing flows while the VM is down');
  await aerie.startCloud();
  const { stdout } = await aerie.cloudCli(['status', '--json']);
  const status = JSON.parse(stdout) as { daemon: boolean; peers: { name: string; role: string }[] };
  assert.ok(status.daemon, 'status comes from the running daemon');
  assert.equal(status.peers.map((p) => `${p.name}:${p.role}`).sort(), ['home:gateway', 'phone:owner']);
  const wg = await lab!.run('vm', ['wg', 'show', 'aerie0', 'peers']);
  assert.is(wg.stdout.trim().split('\n').length, 2, 'both peers are back on the interface');

  await aerie.waitLaptopThroughVm(20_000);
  assert.is((await lab!.fetch('lan', URLS.website6, { timeoutMs: 3000 })).body, ADDR.vm.v6);
  await waitFor('the phone to reach the laptop again', async () => (await lab!.fetch('phone', URLS.laptop4, { timeoutMs: 1000 })).ok, {
    timeoutMs: 30_000,
    intervalMs: 250,
  });
  assert.is(aerie.gateway!.pid, gatewayPid);
  assert.is(aerie.gateway!.exit, null, 'the gateway was not restarted');
});

test('a removed device can no longer send through the tunnel', async () => {
  assert.ok((await lab!.fetch('phone', URLS.website4, { timeoutMs: 3000 })).ok, 'before: the phone uses the tunnel');
  const { stdout } = await aerie.cloudCli(['device', 'remove', 'phone']);
  assert.match(stdout, /Removed phone/);
  await waitFor('the phone to be cut off', async () => (await lab!.fetch('phone', URLS.website4, { timeoutMs: 1000 })).status === 0, {
    timeoutMs: 10_000,
    intervalMs: 250,
  });
  assert.is((await lab!.fetch('phone', URLS.laptop4, { timeoutMs: 1500 })).status, 0, 'the phone no longer reaches home');
  const peers = await lab!.run('vm', ['wg', 'show', 'aerie0', 'peers']);
  assert.is(peers.stdout.trim().split('\n').length, 1, 'only the router is left on the interface');
  // The rest of the home is unaffected.
  assert.is((await lab!.fetch('lan', URLS.website4, { timeoutMs: 3000 })).body, ADDR.vm.v4);
});

test.run();
