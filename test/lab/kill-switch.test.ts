// Lab 3 and 4: the kill switch. When the VM goes away the laptop reaches
// nothing (new and already open connections, IPv4 and IPv6) while the router
// itself still can; when the VM returns, traffic flows again with no restart.
// kill -9 of the gateway daemon leaves the kill switch in the kernel.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ADDR, NODE24, REPO_ROOT, URLS, WEBSITE_PORT, createLab, waitFor, type Lab, type LabProcess } from './lib/lab.ts';
import { pairedAerie, type Aerie } from './lib/aerie.ts';
import { sleep } from './lib/pids.ts';

let lab: Lab | undefined;
let aerie: Aerie;

const HOLDER = `${REPO_ROOT}/test/lab/servers/hold-connection.ts`;
const answers = (p: LabProcess) => p.output().split('\n').filter((l) => l.startsWith('ok ')).length;

/** One open TCP connection per family from the laptop to the website, answering. */
async function holdConnections(): Promise<LabProcess[]> {
  const held = [ADDR.website.v4, ADDR.website.v6].map((host) =>
    lab!.spawn('lan', [NODE24, HOLDER, host, String(WEBSITE_PORT)], { logFile: `hold-${host.includes(':') ? 6 : 4}.log` }),
  );
  for (const p of held) await waitFor('the held connection to get answers', () => answers(p) >= 2, { timeoutMs: 10_000 });
  for (const p of held) assert.match(p.output(), new RegExp(`ok ${ADDR.vm.v4}|ok ${ADDR.vm.v6}`), `the held flow goes through the VM: ${p.output().slice(0, 200)}`);
  return held;
}

/** Everything a user would notice while the VM is away. */
async function assertCutOff(held: LabProcess[], what: string) {
  const before = held.map(answers);
  for (const url of [URLS.website4, URLS.website6]) {
    const r = await lab!.fetch('lan', url, { timeoutMs: 2000 });
    assert.is(r.status, 0, `${what}: a new connection from the laptop to ${url} must fail (website saw "${r.body}")`);
  }
  await sleep(1500);
  held.forEach((p, i) => {
    assert.is(answers(p), before[i], `${what}: the already open connection must get no answer`);
    assert.not.match(p.output(), /ok (198\.51\.100\.2|2001:db8:100::2)\b/, `${what}: nothing leaks by the WAN`);
  });
  const own4 = await lab!.fetch('router', URLS.website4, { timeoutMs: 3000 });
  const own6 = await lab!.fetch('router', URLS.website6, { timeoutMs: 3000 });
  assert.is(own4.body, ADDR.routerWan.v4, `${what}: the router itself still reaches the internet (IPv4)`);
  assert.is(own6.body, ADDR.routerWan.v6, `${what}: the router itself still reaches the internet (IPv6)`);
}

async function assertFlowsAgain() {
  await aerie.waitLaptopThroughVm(20_000);
  assert.is((await lab!.fetch('lan', URLS.website6, { timeoutMs: 3000 })).body, ADDR.vm.v6);
}

test.after(async () => {
  await lab?.destroy();
});

test('set up: paired, tunnel up', async () => {
  lab = await createLab();
  aerie = await pairedAerie(lab);
});

test('VM link down: the laptop is cut off, the router is not; link up: traffic resumes', async () => {
  const gatewayPid = aerie.gateway!.pid;
  const held = await holdConnections();
  await lab!.setLink('vm', 'eth0', 'down');
  try {
    await assertCutOff(held, 'VM link down');
  } finally {
    await lab!.setLink('vm', 'eth0', 'up');
  }
  await assertFlowsAgain();
  assert.is(aerie.gateway!.pid, gatewayPid);
  assert.is(aerie.gateway!.exit, null, 'the gateway daemon was not restarted');
  for (const p of held) await lab!.stop(p);
});

test('cloud daemon and its interface stopped: cut off; started again: traffic resumes', async () => {
  const held = await holdConnections();
  await aerie.stopCloud();
  const link = await lab!.run('vm', ['ip', 'link', 'show', 'aerie0'], { allowFail: true });
  assert.is.not(link.code, 0, 'stopping the cloud daemon removes its interface');
  await assertCutOff(held, 'cloud stopped');
  await aerie.startCloud();
  await assertFlowsAgain();
  assert.is(aerie.gateway!.exit, null, 'the gateway daemon was not restarted');
  for (const p of held) await lab!.stop(p);
});

test('policy rules removed by hand: the nft kill switch still keeps the laptop off the WAN', async () => {
  const held = await holdConnections();
  // What a network reload on a router might do: our ip rules vanish, so LAN traffic would take the main table.
  for (const family of ['-4', '-6']) {
    const rules = await lab!.run('router', ['ip', '-j', family, 'rule', 'show']);
    for (const r of JSON.parse(rules.stdout) as { priority: number; iif?: string }[]) {
      if (r.iif === 'lan0') await lab!.run('router', ['ip', family, 'rule', 'del', 'priority', String(r.priority), 'iif', 'lan0']);
    }
  }
  const r = await lab!.fetch('lan', URLS.website4, { timeoutMs: 1500 });
  assert.is.not(r.body, ADDR.routerWan.v4, 'no new connection leaves by the WAN');
  assert.not.match(held.map((p) => p.output()).join('\n'), /ok (198\.51\.100\.2|2001:db8:100::2)\b/);
  // The daemon notices the drift and puts the rules back.
  await assertFlowsAgain();
  for (const p of held) await lab!.stop(p);
});

test('kill -9 of the gateway leaves the kill switch in force; a new daemon restores service', async () => {
  await lab!.kill9(aerie.gateway!);
  const table = await lab!.run('router', ['nft', 'list', 'table', 'inet', 'aerie_gw'], { allowFail: true });
  assert.is(table.code, 0, 'the kill switch table stays in the kernel');
  await lab!.setLink('vm', 'eth0', 'down');
  try {
    await assertCutOff([], 'gateway killed, VM away');
  } finally {
    await lab!.setLink('vm', 'eth0', 'up');
  }
  await aerie.startGateway();
  await assertFlowsAgain();
});

test.run();
