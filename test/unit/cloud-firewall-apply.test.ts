import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CommandError, type Runner } from '../../shared/run.ts';
import { ValidationError } from '../../shared/errors.ts';
import { createFirewall } from '../../cloud/firewall/apply.ts';
import { renderFirewall } from '../../cloud/firewall/render.ts';
import type { FirewallDesired } from '../../cloud/firewall/desired.ts';
import { labDesired } from './cloud-firewall-fixtures.ts';

const d: FirewallDesired = labDesired();
const LIST = 'nft -s list table inet aerie';

/** A pretend nft: `nft -f` stores the table, `nft -s list` shows it (as nft would, reformatted). */
function fakeNft(initial: string | null = null) {
  let table = initial;
  const calls: { argv: string[]; input?: string }[] = [];
  const run: Runner = async (argv, opts = {}) => {
    calls.push(opts.input === undefined ? { argv: [...argv] } : { argv: [...argv], input: opts.input });
    const cmd = argv.join(' ');
    if (cmd === LIST) {
      if (table === null) {
        const stderr = 'Error: No such file or directory\nlist table inet aerie\n';
        if (opts.allowFail) return { code: 1, stdout: '', stderr };
        throw new CommandError(argv, 1, stderr);
      }
      return { code: 0, stdout: `listed:${table}`, stderr: '' };
    }
    if (cmd === 'nft -j list table inet aerie') {
      if (table === null) return { code: 1, stdout: '', stderr: 'Error: No such file or directory' };
      // What the kernel would count by now: the phone sent 4 packets.
      const counter = { family: 'inet', table: 'aerie', name: 'sent-phone', packets: 4, bytes: 336 };
      return { code: 0, stdout: JSON.stringify({ nftables: [{ counter }] }), stderr: '' };
    }
    if (cmd === 'nft -f /dev/stdin') {
      const body = opts.input!.split('\n').slice(2).join('\n');
      table = body.trim() === '' ? null : body;
      return { code: 0, stdout: '', stderr: '' };
    }
    throw new Error(`unexpected command ${cmd}`);
  };
  return { run, calls, tamper: (t: string | null) => (table = t), table: () => table };
}

test('the whole table is replaced in one transaction that works whether or not it exists', async () => {
  const nft = fakeNft();
  await createFirewall(nft.run).set(d);
  const apply = nft.calls.filter((c) => c.argv[1] === '-f');
  assert.is(apply.length, 1);
  // No table before, so no counters to carry over: exactly the rendered text.
  assert.is(apply[0]!.input, `table inet aerie\ndelete table inet aerie\n${renderFirewall(d)}`);
  assert.is(nft.table(), renderFirewall(d));
});

test('a second set() with the same input only lists the table', async () => {
  const nft = fakeNft();
  const fw = createFirewall(nft.run);
  await fw.set(d);
  nft.calls.length = 0;
  await fw.set({ ...d, subjects: [...d.subjects].reverse() });
  assert.equal(nft.calls, [{ argv: LIST.split(' ') }]);
});

test('a table changed behind our back is put right on the next set()', async () => {
  const nft = fakeNft();
  const fw = createFirewall(nft.run);
  await fw.set(d);
  nft.tamper('table inet aerie {}\n');
  await fw.set(d);
  assert.is(nft.table(), renderFirewall(d));
  nft.tamper(null);
  await fw.set(d);
  assert.is(nft.table(), renderFirewall(d));
});

test('bad input runs nothing and leaves the table as it was', async () => {
  const nft = fakeNft('old rules');
  const fw = createFirewall(nft.run);
  const err = await fw.set({ ...d, wanInterface: 'much-too-long-name' }).then(() => null, (e: unknown) => e);
  assert.instance(err, ValidationError);
  assert.is((err as ValidationError).field, 'wanInterface');
  assert.equal(nft.calls, []);
  assert.is(nft.table(), 'old rules');
});

test('set(null) deletes the table if present, and otherwise only looks', async () => {
  const nft = fakeNft('old rules');
  const fw = createFirewall(nft.run);
  await fw.set(null);
  assert.is(nft.table(), null);
  assert.is(nft.calls.filter((c) => c.argv[1] === '-f').length, 1);
  nft.calls.length = 0;
  await fw.set(null);
  assert.equal(nft.calls, [{ argv: LIST.split(' ') }]);
});

test('a failure to list that is not "no such table" is reported, not taken for absence', async () => {
  const run: Runner = async (argv) => ({ code: 1, stdout: '', stderr: 'Error: Operation not permitted' + argv.length });
  const err = await createFirewall(run).set(null).then(() => null, (e: unknown) => e);
  assert.instance(err, CommandError);
  assert.match((err as Error).message, 'Operation not permitted');
});

test('changes run one at a time, in the order asked', async () => {
  const nft = fakeNft();
  const fw = createFirewall(nft.run);
  await Promise.all([fw.set(d), fw.set({ ...d, publishes: [], subjects: [] }), fw.set(null), fw.set(d)]);
  assert.is(nft.table(), renderFirewall(d));
});

test("a changed table starts each subject's counters where the old one left them", async () => {
  const nft = fakeNft();
  const fw = createFirewall(nft.run);
  await fw.set(d);
  const changed = { ...d, publishes: [{ name: 'web', proto: 'tcp' as const, port: 443, toAddress: '192.0.2.140', toPort: 80 }] };
  await fw.set(changed);
  assert.match(nft.table()!, /counter sent-phone \{\n\t\tcomment "[^"]+"\n\t\tpackets 4 bytes 336\n\t\}/);
  assert.is(nft.table(), renderFirewall(changed, { phone: { outPackets: 4, outBytes: 336, droppedPackets: 0, droppedBytes: 0 } }));
  // Nothing changed since: the same table, compared only, not applied again with newer counts.
  nft.calls.length = 0;
  await fw.set(changed);
  assert.equal(nft.calls, [{ argv: LIST.split(' ') }]);
});

test('the table is compared without counter values, which change with every packet', async () => {
  const nft = fakeNft();
  await createFirewall(nft.run).set(d);
  assert.ok(nft.calls.some((c) => c.argv.join(' ') === LIST));
  assert.not.ok(nft.calls.some((c) => c.argv.join(' ') === 'nft list table inet aerie'));
});

test('counters() reads `nft -j list` and parses it; no table means no counters', async () => {
  const listing = {
    nftables: [
      { metainfo: { version: '1.0.6', json_schema_version: 1 } },
      { counter: { family: 'inet', name: 'sent-phone', table: 'aerie', handle: 3, packets: 4, bytes: 336 } },
      { rule: { family: 'inet', table: 'aerie', chain: 'input', handle: 9, comment: 'ping, rate-limited', expr: [{ counter: { packets: 2, bytes: 168 } }, { accept: null }] } },
    ],
  };
  const calls: string[] = [];
  let present = true;
  const run: Runner = async (argv) => {
    calls.push(argv.join(' '));
    if (!present) return { code: 1, stdout: '', stderr: 'Error: No such file or directory\nlist table inet aerie' };
    return { code: 0, stdout: JSON.stringify(listing), stderr: '' };
  };
  const fw = createFirewall(run);
  const c = await fw.counters();
  assert.equal(calls, ['nft -j list table inet aerie']);
  assert.equal(c.rules, [{ chain: 'input', comment: 'ping, rate-limited', packets: 2, bytes: 168 }]);
  assert.equal(c.subjects, { phone: { outPackets: 4, outBytes: 336, droppedPackets: 0, droppedBytes: 0 } });
  present = false;
  assert.equal(await fw.counters(), { rules: [], subjects: {} });
});

test('counters() reports other nft failures', async () => {
  const run: Runner = async () => ({ code: 1, stdout: '', stderr: 'Error: Operation not permitted' });
  const err = await createFirewall(run).counters().then(() => null, (e: unknown) => e);
  assert.instance(err, CommandError);
  assert.match((err as Error).message, 'Operation not permitted');
});

test.run();
