// Lab 6: bad pairing input gets a clear error and changes nothing on either
// side: wrong fingerprint, reused code, expired code, garbage, an unreachable
// VM, and malformed requests sent straight to the pairing endpoint.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { decodePairingCode, encodePairingCode } from '../../shared/pairing-code.ts';
import { ADDR, createLab, type Lab } from './lib/lab.ts';
import { setUpAerie, type Aerie } from './lib/aerie.ts';

let lab: Lab | undefined;
let aerie: Aerie;
let usedCode = '';
const PAIR_URL = `https://${ADDR.vm.v4}:8443/v1/pair`;

async function devices(): Promise<string[]> {
  const { stdout } = await aerie.cloudCli(['device', 'list', '--json']);
  return (JSON.parse(stdout) as { name: string }[]).map((d) => d.name).sort();
}

/** `aerie-gateway pair` with a config of its own: must fail with one line and write nothing. */
async function refused(code: string, expect: RegExp, configName: string) {
  const configPath = join(lab!.logDir, `${configName}.json`);
  const r = await aerie.gatewayCli(['pair', code, '--lan-interface', 'lan0', '--name', configName], { allowFail: true, config: configPath });
  assert.is.not(r.code, 0, `exit status for ${configName}`);
  const lines = r.stderr.trim().split('\n');
  assert.is(lines.length, 1, `one line of error, got: ${r.stderr}`);
  assert.match(lines[0]!, expect, `error line: ${lines[0]}`);
  assert.not.ok(existsSync(configPath), 'no config written');
  assert.not.ok(existsSync(configPath.replace(/\.json$/, '.key')), 'no key written');
}

test.after(async () => {
  await lab?.destroy();
});

test('set up: the VM serves, nothing is paired', async () => {
  lab = await createLab();
  aerie = await setUpAerie(lab);
  await aerie.startCloud();
  assert.equal(await devices(), []);
});

test('a wrong fingerprint is refused before anything is sent, and the code stays usable', async () => {
  const code = await aerie.pairingCode();
  const decoded = decodePairingCode(code);
  const fingerprint = Uint8Array.from(decoded.fingerprint);
  fingerprint[0] = (fingerprint[0] ?? 0) ^ 0xff;
  await refused(encodePairingCode({ ...decoded, fingerprint }), /fingerprint|certificate/i, 'wrongfp');
  assert.equal(await devices(), []);
  // Nothing reached the VM, so the genuine code still works.
  await aerie.pairGateway(code);
  assert.equal(await devices(), ['home']);
  usedCode = code;
});

test('a used code is refused, nothing changes', async () => {
  assert.ok(usedCode, 'the router paired with a code');
  const before = await devices();
  await refused(usedCode, /used/i, 'second');
  assert.equal(await devices(), before);
});

test('an expired code is refused', async () => {
  const code = await aerie.pairingCode();
  // Age the newest code by hand rather than wait 15 minutes.
  const db = new DatabaseSync(join(aerie.stateDir, 'aerie.db'));
  db.prepare('UPDATE pairing_codes SET expires_at = ? WHERE id = (SELECT max(id) FROM pairing_codes)').run(Date.now() - 1000);
  db.close();
  const before = await devices();
  await refused(code, /expired/i, 'late');
  assert.equal(await devices(), before);
});

test('garbage and mistyped codes are refused locally', async () => {
  await refused('hello', /pairing code/i, 'garbage');
  const code = await aerie.pairingCode();
  const typo = code.slice(0, 20) + (code[20] === 'A' ? 'B' : 'A') + code.slice(21);
  await refused(typo, /mistyped|checksum/i, 'typo');
  await refused(code.slice(0, 40), /truncated|mistyped|short/i, 'short');
});

test('an unreachable VM gives a clear error', async () => {
  const decoded = decodePairingCode(await aerie.pairingCode());
  await refused(encodePairingCode({ ...decoded, host: '203.0.113.99' }), /203\.0\.113\.99/, 'nowhere');
});

test('malformed requests straight to the endpoint: 400 with the field named, then 429', async () => {
  const before = await devices();
  const post = (body: string) =>
    lab!.fetch('phone', PAIR_URL, { method: 'POST', body, headers: { 'content-type': 'application/json' }, insecure: true, timeoutMs: 5000 });
  const bad = await post('{"secret": ');
  assert.is(bad.status, 400);
  assert.is((JSON.parse(bad.body) as { error: { code: string } }).error.code, 'invalid_json');
  const wrongType = await post(JSON.stringify({ secret: 'AAAAAAAAAAAAAAAAAAAAAA', publicKey: 42, name: 'x', lanPrefixes: [] }));
  assert.is(wrongType.status, 400);
  assert.match((JSON.parse(wrongType.body) as { error: { message: string } }).error.message, /publicKey/);
  const huge = await post(JSON.stringify({ secret: 'A'.repeat(100_000) }));
  assert.ok(huge.status === 413 || huge.status === 400, `huge body: ${huge.status}`);
  // Failures are counted per address: soon the phone is told to wait.
  let limited = false;
  for (let i = 0; i < 8 && !limited; i++) limited = (await post('nope')).status === 429;
  assert.ok(limited, 'repeated failures are rate-limited');
  assert.equal(await devices(), before);
  const other = await lab!.fetch('router', `https://${ADDR.vm.v4}:8443/v1/health`, { insecure: true });
  assert.ok(other.ok, 'other addresses are not limited');
});

test.run();
