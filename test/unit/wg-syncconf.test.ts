import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ValidationError } from '../../shared/errors.ts';
import { createRecordingRunner } from '../../shared/run.ts';
import { wgSyncConf } from '../../shared/wg-syncconf.ts';

// The real wg reading it through /dev/stdin: test/integration/wg-config.test.ts.

const KEY = 'QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=';
const CONF = `[Interface]\nPrivateKey = ${KEY}\n`;

test('the config reaches wg syncconf as its input, read through /dev/stdin, never in argv', async () => {
  const { run, calls } = createRecordingRunner();
  await wgSyncConf(run, 'aerie0', CONF);
  assert.equal(calls, [{ argv: ['wg', 'syncconf', 'aerie0', '/dev/stdin'], input: CONF }]);
});

test('a failure of wg comes through', async () => {
  const { run } = createRecordingRunner({ 'wg syncconf aerie0 /dev/stdin': { code: 1, stderr: 'Line unrecognized' } });
  const err = await wgSyncConf(run, 'aerie0', CONF).then(() => null, (e: unknown) => e);
  assert.match(String(err), /wg syncconf aerie0 \/dev\/stdin failed \(exit 1\): Line unrecognized/);
  assert.not.ok(String(err).includes(KEY));
});

test('interface names that wg could misread are refused before anything runs', async () => {
  const { run, calls } = createRecordingRunner();
  for (const iface of ['', '-h', '--help', 'a'.repeat(16), 'aerie 0', 'aerie/0', '../x', '.', '..', 'eth0\n']) {
    const err = await wgSyncConf(run, iface, CONF).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof ValidationError && err.field === 'interface', JSON.stringify(iface));
  }
  assert.is(calls.length, 0);
});

test.run();
