// A config that does not load at start must not leave the home on the WAN:
// the daemon exits with the error, and the kill switch is in the kernel.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NetnsSet, type Netns } from './gateway-netns.ts';
import { requireRoot, setupOnce } from './setup.ts';

const MAIN = fileURLToPath(new URL('../../gateway/main.ts', import.meta.url));
const nets = new NetnsSet(`aerie-t-gwf-${process.pid}`);
let ns: Netns;
const dir = mkdtempSync(join(tmpdir(), 'aerie-fail-closed-'));
const config = join(dir, 'gateway.json');

function run() {
  const r = spawnSync('ip', ['netns', 'exec', ns.name, process.execPath, MAIN, 'run', '--config', config], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  return { code: r.status, stderr: r.stderr };
}
const table = async () => (await ns.run(['nft', 'list', 'table', 'inet', 'aerie_gw'], { allowFail: true })).stdout;

setupOnce(test, async () => {
  requireRoot('gateway-fail-closed', ['ip', 'nft']);
  ns = await nets.add('router');
});

test.after(() => {
  nets.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test('a config that does not validate: exit 1 with the error, and the LAN is kept off the WAN', async () => {
  writeFileSync(
    config,
    JSON.stringify({ name: 'home', lanInterfaces: ['lan0', 'bad name!'], interface: 'aerie', vm: { overlay: ['203.0.113.128/25', 'junk'] } }),
  );
  const r = run();
  assert.is(r.code, 1);
  assert.match(r.stderr, /the kill switch is in place/);
  assert.match(r.stderr, /aerie-gateway: config/);
  const listing = await table();
  assert.match(listing, /iifname "lan0" drop comment "kill switch:/, 'LAN traffic leaves by no way but the tunnel');
  assert.not.match(listing, /bad name/);
  // DNS stays intercepted, and the router's own queries for the VM cannot take the WAN.
  assert.match(listing, /iifname "lan0" meta l4proto \{ tcp, udp \} th dport 53 redirect to :53 comment "dns intercept:/);
  assert.match(listing, /ip daddr 203\.0\.113\.128\/25 oifname != \{ "lo", "aerie" \} drop/);
  assert.not.match(listing, /junk/);
});

test('a kill switch from the last good config is kept as it is', async () => {
  await ns.run(['nft', 'delete', 'table', 'inet', 'aerie_gw']);
  const good = 'table inet aerie_gw {\n\tchain forward {\n\t\ttype filter hook forward priority filter - 10; policy accept;\n\t\tiifname "lan0" oifname != "aerie" drop comment "kill switch: from a good config"\n\t}\n}\n';
  await ns.run(['nft', '-f', '/dev/stdin'], { input: good });
  const before = await table();
  writeFileSync(config, '{"lanInterfaces": ["lan0"], "vm": 3}');
  assert.is(run().code, 1);
  assert.is(await table(), before);
});

test('unreadable JSON or the kill switch turned off: exit 1, nothing applied', async () => {
  await ns.run(['nft', 'delete', 'table', 'inet', 'aerie_gw']);
  for (const text of ['{"lanInterfaces": ["lan0"', JSON.stringify({ lanInterfaces: ['lan0'], killSwitch: false, vm: 1 })]) {
    writeFileSync(config, text);
    const r = run();
    assert.is(r.code, 1);
    assert.not.match(r.stderr, /kill switch is in place/);
    assert.is(await table(), '', 'no table was made');
  }
});

test.run();
