// createEgressAddresses against the real `ip`, in a network namespace this test
// creates and removes (needs root): a veth "eth0" stands for the VM's WAN.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRunner } from '../../shared/run.ts';
import { createEgressAddresses } from '../../cloud/egress/addresses.ts';
import { readWanView } from '../../cloud/egress/wan.ts';
import { requireRoot, setupOnce } from './setup.ts';

const NS = `aerie-egress-${process.pid}`;
const host = createRunner();
let traced: string[] = [];
const run = createRunner({ prefix: ['ip', 'netns', 'exec', NS], trace: (argv) => traced.push(argv.slice(4).join(' ')) });
const dir = mkdtempSync(join(tmpdir(), 'aerie-egress-'));
const stateFile = join(dir, 'egress-addresses.json');

const A = '2001:db8:203::a1';
const B = '2001:db8:203::b2';
const C = '2001:db8:203::c3';
const FOREIGN = '2001:db8:203::f00';

async function cleanup(): Promise<void> {
  await host(['ip', 'netns', 'del', NS], { allowFail: true });
  rmSync(dir, { recursive: true, force: true });
}

setupOnce(test, async () => {
  requireRoot('cloud-egress-addresses', ['ip']);
  await host(['ip', 'netns', 'del', NS], { allowFail: true });
  for (const argv of [
    ['ip', 'netns', 'add', NS],
    ['ip', '-n', NS, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'up0'],
    ['ip', '-n', NS, 'link', 'set', 'eth0', 'up'],
    ['ip', '-n', NS, 'link', 'set', 'up0', 'up'],
    ['ip', '-n', NS, 'addr', 'add', '2001:db8:203::10/64', 'dev', 'eth0', 'nodad'],
    ['ip', '-n', NS, 'addr', 'add', '203.0.113.10/25', 'dev', 'eth0'],
    // Someone else's /128 on the same interface: never ours to remove.
    ['ip', '-n', NS, 'addr', 'add', `${FOREIGN}/128`, 'dev', 'eth0', 'nodad'],
  ]) {
    await host(argv);
  }
});
test.after(cleanup);
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void cleanup().finally(() => process.exit(1)));

/** The global IPv6 addresses on eth0 with their length and whether deprecated. */
async function v6(): Promise<string[]> {
  const { stdout } = await run(['ip', '-j', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
  const links = JSON.parse(stdout) as { addr_info?: { local?: string; prefixlen: number; preferred_life_time?: number }[] }[];
  return links
    .flatMap((l) => l.addr_info ?? [])
    .filter((a) => a.local !== undefined)
    .map((a) => `${a.local}/${a.prefixlen}${a.preferred_life_time === 0 ? ' deprecated' : ''}`)
    .sort();
}

test('adds the wanted /128s, deprecated so that the VM keeps its own source address', async () => {
  const eg = createEgressAddresses(run, { stateFile });
  await eg.set({ interface: 'eth0', v6: [A, B] });
  assert.equal(await v6(), ['2001:db8:203::10/64', `${A}/128 deprecated`, `${B}/128 deprecated`, `${FOREIGN}/128`]);
  assert.equal(JSON.parse(readFileSync(stateFile, 'utf8')), { interface: 'eth0', addresses: [A, B] });
});

test('the same set again changes nothing (only a listing)', async () => {
  const eg = createEgressAddresses(run, { stateFile });
  traced = [];
  await eg.set({ interface: 'eth0', v6: [B, A] });
  assert.equal(traced, ['ip -j -6 addr show dev eth0']);
});

test('replacing: the new one added, the one no longer wanted removed; a foreign address stays even when named', async () => {
  // A new adapter (a restarted daemon) knows what the earlier one added from the file.
  const eg = createEgressAddresses(run, { stateFile });
  await eg.set({ interface: 'eth0', v6: [B, C, FOREIGN] });
  assert.equal(await v6(), ['2001:db8:203::10/64', `${B}/128 deprecated`, `${C}/128 deprecated`, `${FOREIGN}/128`]);
  assert.equal(JSON.parse(readFileSync(stateFile, 'utf8')).addresses, [B, C], 'the foreign address was there already: not ours');
});

test('an address no longer wanted stays while open connections leave by it, and goes once they ended', async () => {
  let open = new Set([B]);
  const eg = createEgressAddresses(run, { stateFile, inUse: (list) => new Set(list.filter((a) => open.has(a))) });
  await eg.set({ interface: 'eth0', v6: [C] });
  assert.ok((await v6()).includes(`${B}/128 deprecated`), 'still in use: kept');
  assert.equal(JSON.parse(readFileSync(stateFile, 'utf8')).addresses, [C, B], 'and still ours');
  open = new Set();
  await eg.set({ interface: 'eth0', v6: [C] });
  assert.not.ok((await v6()).includes(`${B}/128 deprecated`), 'its connections ended: gone');
  assert.equal(JSON.parse(readFileSync(stateFile, 'utf8')).addresses, [C]);
});

test('set(null) removes only ours; the readWanView of the WAN sees the rest', async () => {
  const eg = createEgressAddresses(run, { stateFile });
  await eg.set(null);
  assert.equal(await v6(), ['2001:db8:203::10/64', `${FOREIGN}/128`]);
  const view = await readWanView(run, 'eth0');
  assert.equal(view.addresses.sort(), ['2001:db8:203::10', '2001:db8:203::f00', '203.0.113.10']);
  assert.ok(view.prefixes.includes('2001:db8:203::/64') && view.prefixes.includes('203.0.113.0/25'), JSON.stringify(view.prefixes));
  // A route via a gateway leads to someone else's network: not a prefix of the VM's.
  await run(['ip', '-6', 'route', 'add', '2001:db8:dead::/64', 'via', '2001:db8:203::1', 'dev', 'eth0']);
  try {
    assert.not.ok((await readWanView(run, 'eth0')).prefixes.includes('2001:db8:dead::/64'));
  } finally {
    await run(['ip', '-6', 'route', 'del', '2001:db8:dead::/64', 'via', '2001:db8:203::1', 'dev', 'eth0']);
  }
  // Nothing left to remove: a second set(null) runs no command.
  traced = [];
  await eg.set(null);
  assert.equal(traced, []);
});

test('an address removed by hand is added again; a bad address is refused before any command', async () => {
  const eg = createEgressAddresses(run, { stateFile });
  await eg.set({ interface: 'eth0', v6: [A] });
  await run(['ip', '-6', 'addr', 'del', `${A}/128`, 'dev', 'eth0']);
  await eg.set({ interface: 'eth0', v6: [A] });
  assert.ok((await v6()).includes(`${A}/128 deprecated`));
  traced = [];
  let err: unknown;
  await eg.set({ interface: 'eth0', v6: ['203.0.113.11'] }).catch((e: unknown) => (err = e));
  assert.match(String(err), /v6\[0\]/);
  assert.equal(traced, []);
  await eg.set(null);
});

test.run();
