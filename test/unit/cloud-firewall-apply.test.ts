import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CommandError, type Runner } from '../../shared/run.ts';
import { ValidationError } from '../../shared/errors.ts';
import { createFirewall } from '../../cloud/firewall/apply.ts';
import { renderFirewall, type FirewallDesired } from '../../cloud/firewall/render.ts';

const d: FirewallDesired = { wanInterface: 'eth0', tunnelInterface: 'aerie0', natSources: ['203.0.113.128/25'] };

/** A pretend nft: `nft -f` stores the table, `nft list` shows it (as nft would, reformatted). */
function fakeNft(initial: string | null = null) {
  let table = initial;
  const calls: { argv: string[]; input?: string }[] = [];
  const run: Runner = async (argv, opts = {}) => {
    calls.push(opts.input === undefined ? { argv: [...argv] } : { argv: [...argv], input: opts.input });
    const cmd = argv.join(' ');
    if (cmd === 'nft list table inet aerie') {
      if (table === null) {
        const stderr = 'Error: No such file or directory\nlist table inet aerie\n';
        if (opts.allowFail) return { code: 1, stdout: '', stderr };
        throw new CommandError(argv, 1, stderr);
      }
      return { code: 0, stdout: `listed:${table}`, stderr: '' };
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
  assert.is(apply[0]!.input, `table inet aerie\ndelete table inet aerie\n${renderFirewall(d)}`);
  assert.is(nft.table(), renderFirewall(d));
});

test('a second set() with the same input only lists the table', async () => {
  const nft = fakeNft();
  const fw = createFirewall(nft.run);
  await fw.set(d);
  nft.calls.length = 0;
  await fw.set({ ...d, natSources: ['203.0.113.128/25', '203.0.113.128/25'] });
  assert.equal(nft.calls, [{ argv: ['nft', 'list', 'table', 'inet', 'aerie'] }]);
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
  assert.equal(nft.calls, [{ argv: ['nft', 'list', 'table', 'inet', 'aerie'] }]);
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
  await Promise.all([fw.set(d), fw.set({ ...d, natSources: [] }), fw.set(null), fw.set(d)]);
  assert.is(nft.table(), renderFirewall(d));
});

test.run();
