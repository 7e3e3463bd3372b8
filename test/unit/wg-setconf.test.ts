import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ValidationError } from '../../shared/errors.ts';
import { CommandError, type Runner } from '../../shared/run.ts';
import { wgSetConf } from '../../shared/wg-setconf.ts';

const CONF = '[Interface]\nPrivateKey = QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=\n';

/** A runner that looks at the config file while "wg" would be reading it. */
function inspectingRunner(fail = false) {
  const seen: { argv: string[]; content: string; fileMode: number; dirMode: number; input?: string }[] = [];
  const run: Runner = async (argv, opts = {}) => {
    const file = argv[3]!;
    seen.push({
      argv: [...argv],
      content: readFileSync(file, 'utf8'),
      fileMode: statSync(file).mode & 0o777,
      dirMode: statSync(dirname(file)).mode & 0o777,
      ...(opts.input === undefined ? {} : { input: opts.input }),
    });
    if (fail) throw new CommandError(argv, 1, 'Line unrecognized');
    return { code: 0, stdout: '', stderr: '' };
  };
  return { run, seen };
}

test('the config reaches wg as a private file that is gone afterwards, never in argv', async () => {
  const base = await mkdtemp(join(tmpdir(), 'aerie-test-'));
  try {
    const { run, seen } = inspectingRunner();
    await wgSetConf(run, 'aerie0', CONF, { dir: base });
    await wgSetConf(run, 'aerie0', CONF, { dir: base, sync: true });
    assert.is(seen.length, 2);
    assert.equal(seen[0]!.argv.slice(0, 3), ['wg', 'setconf', 'aerie0']);
    assert.equal(seen[1]!.argv.slice(0, 3), ['wg', 'syncconf', 'aerie0']);
    for (const s of seen) {
      assert.is(s.content, CONF);
      assert.is(s.fileMode, 0o600);
      assert.is(s.dirMode, 0o700);
      assert.ok(s.argv[3]!.startsWith(base));
      assert.not.ok(s.argv.join(' ').includes('PrivateKey'));
      assert.is(s.input, undefined);
      assert.not.ok(existsSync(s.argv[3]!));
    }
    assert.equal(await readdir(base), []);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('the file is removed when wg fails too, and the failure comes through', async () => {
  const base = await mkdtemp(join(tmpdir(), 'aerie-test-'));
  try {
    const { run } = inspectingRunner(true);
    let thrown: unknown;
    try {
      await wgSetConf(run, 'aerie0', CONF, { dir: base });
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown instanceof CommandError);
    assert.equal(await readdir(base), []);
  } finally {
    await rm(base, { recursive: true, force: true });
  }
});

test('interface names that wg could misread are refused before anything runs', async () => {
  const { run, seen } = inspectingRunner();
  for (const iface of ['', '-h', '--help', 'a'.repeat(16), 'aerie 0', 'aerie/0', '../x', '.', '..', 'eth0\n']) {
    let thrown: unknown;
    try {
      await wgSetConf(run, iface, CONF);
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown instanceof ValidationError && thrown.field === 'interface', JSON.stringify(iface));
  }
  assert.is(seen.length, 0);
});

test.run();
