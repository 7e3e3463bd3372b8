import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { buildGatewayBundle, NODE20 } from './lib/gateway-bundle.ts';

/**
 * The CLI as a user meets it: from source on this Node, and as the built
 * bundle on the router's Node 20 (/usr/bin/node).
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
let dir = '';
let bundle = '';

function cli(args: string[], node = process.execPath, entry = join(ROOT, 'gateway/main.ts')) {
  const r = spawnSync(node, [entry, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('setup: build the gateway bundle with the project\'s tsup config', async () => {
  dir = await mkdtemp(join(tmpdir(), 'aerie-gw-cli-'));
  bundle = await buildGatewayBundle(join(dir, 'dist'));
  const size = (await stat(bundle)).size;
  console.log(`  bundle: ${Math.round(size / 1024)} KiB`);
  assert.ok(size < 400 * 1024, `bundle under 400 KB (${size} bytes)`);
});

test('--help and --version', () => {
  const help = cli(['--help']);
  assert.is(help.code, 0);
  assert.match(help.stdout, /^Usage: aerie-gateway <command> \[options\]/);
  for (const word of ['pair CODE [--lan-interface IF]... [--name NAME] [--force]', 'run', 'down', 'status [--json]', '--config PATH']) {
    assert.ok(help.stdout.includes(word), word);
  }
  const version = cli(['--version']);
  assert.is(version.code, 0);
  assert.match(version.stdout, /^aerie-gateway \d+\.\d+\.\d+\n$/);
});

test('usage errors: one line on stderr, exit 1', () => {
  const cases: [string[], RegExp][] = [
    [[], /^aerie-gateway: no command given \(see --help\)\n$/],
    [['bogus'], /^aerie-gateway: unknown command "bogus" \(see --help\)\n$/],
    [['status', '--frobnicate'], /^aerie-gateway: unknown option --frobnicate \(see --help\)\n$/],
    [['run', '--json'], /^aerie-gateway: --json does not go with run\n$/],
    [['pair'], /^aerie-gateway: pair needs exactly one pairing code/],
    [['down', 'now'], /^aerie-gateway: down takes no arguments, got "now"\n$/],
    [['status', '--config'], /^aerie-gateway: option --config needs a value\n$/],
  ];
  for (const [args, re] of cases) {
    const r = cli(args);
    assert.is(r.code, 1, args.join(' '));
    assert.match(r.stderr, re);
    assert.is(r.stdout, '');
  }
});

test('pair with a bad code: one-line error, exit 1, nothing written', async () => {
  const configPath = join(dir, 'etc', 'gateway.json');
  const r = cli(['pair', 'AERIE1-NOTAREALCODE', '--config', configPath]);
  assert.is(r.code, 1);
  assert.match(r.stderr, /^aerie-gateway: the pairing code is (truncated|mistyped)[^\n]*\n$/);
  assert.not.ok(existsSync(join(dir, 'etc')));
});

test('status and down without a config', () => {
  const missing = join(dir, 'none.json');
  const text = cli(['status', '--config', missing]);
  assert.is(text.code, 0);
  assert.match(text.stdout, /not paired .*aerie-gateway pair CODE/);
  const json = JSON.parse(cli(['status', '--json', '--config', missing]).stdout);
  assert.is(json.tunnel, 'unpaired');
  assert.is(json.whoami, null);
});

test('a broken config is named, with the field', async () => {
  const path = join(dir, 'broken.json');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(path, JSON.stringify({ name: 'home', lanInterfaces: ['lan0'], lanPrefixes: [], vm: { publicKey: 'x' } }));
  const r = cli(['status', '--config', path]);
  assert.is(r.code, 1);
  assert.match(r.stderr, new RegExp(`^aerie-gateway: config ${path.replace(/[.]/g, '\\.')}: vm\\.publicKey: expected a base64 WireGuard key`));
});

test('the bundle runs on the router\'s Node 20', () => {
  // Not skipped when missing: the bundle's one promise is that it runs there.
  assert.ok(existsSync(NODE20), `needs the router's Node 20 at ${NODE20} to check the bundle on it`);
  const v = spawnSync(NODE20, ['--version'], { encoding: 'utf8' }).stdout.trim();
  assert.match(v, /^v20\./, `${NODE20} is Node 20`);
  const help = cli(['--help'], NODE20, bundle);
  assert.is(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: aerie-gateway/);
  assert.is(cli(['--version'], NODE20, bundle).code, 0);
  const status = cli(['status', '--json', '--config', join(dir, 'none.json')], NODE20, bundle);
  assert.is(status.code, 0, status.stderr);
  assert.is(JSON.parse(status.stdout).tunnel, 'unpaired');
  const bad = cli(['pair', 'AERIE1-XYZ', '--config', join(dir, 'x.json')], NODE20, bundle);
  assert.is(bad.code, 1);
  assert.is(bad.stderr.split('\n').length, 2, 'one line');
});

test.after(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.run();
