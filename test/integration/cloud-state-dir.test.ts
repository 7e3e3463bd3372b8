import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatPrefix, prefixContains, parseAddress, parsePrefix } from '../../shared/cidr.ts';
import { ValidationError } from '../../shared/errors.ts';
import { publicKeyFromPrivate } from '../../shared/keys.ts';
import { initState, loadState, openState, StateError } from '../../cloud/state-dir.ts';

const roots: string[] = [];
function stateDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'aerie-state-'));
  roots.push(root);
  return join(root, 'state');
}
const mode = (p: string) => statSync(p).mode & 0o777;
const lab = { publicEndpoint: '203.0.113.10', overlayV4: '203.0.113.128/25', overlayV6: '2001:db8:a0::/64' };

test('init creates the directory, keys and certificate with private modes', () => {
  const dir = stateDir();
  const { state, created, report } = initState({ stateDir: dir, ...lab, wanInterface: 'eth0' });
  assert.ok(created);
  assert.is(mode(dir), 0o700);
  assert.is(mode(join(dir, 'wireguard.key')), 0o600);
  assert.is(mode(join(dir, 'tls.key')), 0o600);
  assert.ok(existsSync(join(dir, 'aerie.db')));
  const priv = readFileSync(join(dir, 'wireguard.key'), 'utf8').trim();
  assert.is(state.publicKey, publicKeyFromPrivate(priv));
  assert.is(formatPrefix(state.overlay.v4), '203.0.113.128/25');
  assert.is(formatPrefix(state.overlay.v6), '2001:db8:a0::/64');
  assert.is(state.publicHost, '203.0.113.10');
  assert.is(state.listenPort, 51820);
  assert.is(state.publicPort, 51820);
  assert.is(state.pairingPort, 8443);
  assert.is(state.wanInterface, 'eth0');
  assert.is(state.interface, 'aerie0');
  const cert = new X509Certificate(state.tls.certPem);
  assert.ok(cert.checkIP('203.0.113.10'), 'the certificate names the public host');
  assert.is(cert.fingerprint256.replaceAll(':', '').toLowerCase(), state.tls.fingerprint.toString('hex'));
  assert.ok(report.some((l) => l.includes(state.publicKey)), 'the report shows the public key');
  assert.not.ok(report.join('\n').includes(priv), 'the report never shows the private key');
});

test('without prefixes, init picks a random /22 in 100.64.0.0/10 and a ULA /64', () => {
  const { state } = initState({ stateDir: stateDir(), publicEndpoint: 'vm.example.org' });
  assert.is(state.overlay.v4.length, 22);
  assert.ok(prefixContains(parsePrefix('100.64.0.0/10'), { family: 4, value: state.overlay.v4.network }));
  assert.is(state.overlay.v6.length, 64);
  assert.ok(prefixContains(parsePrefix('fd00::/8'), { family: 6, value: state.overlay.v6.network }));
  assert.is(state.wanInterface, null);
});

test('a second init keeps keys, certificate and prefixes, and says so', () => {
  const dir = stateDir();
  const first = initState({ stateDir: dir, publicEndpoint: 'vm.example.org' });
  const second = initState({ stateDir: dir, publicEndpoint: 'vm.example.org' });
  assert.not.ok(second.created);
  assert.is(second.state.privateKey, first.state.privateKey);
  assert.ok(second.state.tls.fingerprint.equals(first.state.tls.fingerprint));
  assert.is(formatPrefix(second.state.overlay.v4), formatPrefix(first.state.overlay.v4));
  assert.is(formatPrefix(second.state.overlay.v6), formatPrefix(first.state.overlay.v6));
  assert.ok(second.report.some((l) => /kept the existing WireGuard key/.test(l)));
  assert.ok(second.report.some((l) => /kept the existing TLS certificate/.test(l)));
  // Giving the same prefixes again is fine.
  initState({
    stateDir: dir,
    publicEndpoint: 'vm.example.org',
    overlayV4: formatPrefix(first.state.overlay.v4),
    overlayV6: formatPrefix(first.state.overlay.v6),
  });
});

test('changing the prefixes of existing state is refused and changes nothing', () => {
  const dir = stateDir();
  initState({ stateDir: dir, ...lab });
  const before = readFileSync(join(dir, 'wireguard.key'), 'utf8');
  assert.throws(
    () => initState({ stateDir: dir, ...lab, overlayV4: '100.64.0.0/22', publicEndpoint: '203.0.113.99' }),
    (e: unknown) => e instanceof StateError && /overlay IPv4 prefix .* is 203\.0\.113\.128\/25/.test((e as Error).message),
  );
  assert.throws(() => initState({ stateDir: dir, ...lab, overlayV6: 'fd00:1::/64' }), /overlay IPv6 prefix/);
  const state = loadState(dir);
  assert.is(state.publicHost, '203.0.113.10', 'the refused run did not update the endpoint either');
  assert.is(readFileSync(join(dir, 'wireguard.key'), 'utf8'), before);
});

test('endpoint, ports and WAN interface can be updated by a later init', () => {
  const dir = stateDir();
  initState({ stateDir: dir, ...lab });
  const { state, report } = initState({ stateDir: dir, publicEndpoint: '[2001:db8:203::10]:51821', wanInterface: 'ens3', pairingPort: 9443 });
  assert.is(state.publicHost, '2001:db8:203::10');
  assert.is(state.publicPort, 51821);
  assert.is(state.listenPort, 51821, 'without --listen-port the endpoint port is the listen port');
  assert.is(state.pairingPort, 9443);
  assert.is(state.wanInterface, 'ens3');
  assert.ok(report.some((l) => l === 'public host changed from 203.0.113.10 to 2001:db8:203::10'));
  const natted = initState({ stateDir: dir, publicEndpoint: '203.0.113.10:4500', listenPort: 51820 });
  assert.is(natted.state.publicPort, 4500);
  assert.is(natted.state.listenPort, 51820);
  assert.is(initState({ stateDir: dir, publicEndpoint: '203.0.113.10' }).state.listenPort, 51820, 'kept');
});

test('bad options are refused before anything is written', () => {
  const bad: [Record<string, unknown>, string][] = [
    [{ publicEndpoint: 'not a host' }, 'publicEndpoint'],
    [{ publicEndpoint: '203.0.113.10:0' }, 'publicEndpoint'],
    [{ publicEndpoint: '203.0.113.10', overlayV4: '2001:db8::/64' }, 'overlayV4'],
    [{ publicEndpoint: '203.0.113.10', overlayV4: '100.64.0.1/22' }, 'overlayV4'],
    [{ publicEndpoint: '203.0.113.10', overlayV4: '100.64.0.0/31' }, 'overlayV4'],
    [{ publicEndpoint: '203.0.113.10', overlayV6: '100.64.0.0/22' }, 'overlayV6'],
    [{ publicEndpoint: '203.0.113.10', wanInterface: 'eth0; rm -rf /' }, 'wanInterface'],
    [{ publicEndpoint: '203.0.113.10', wanInterface: 'a-name-far-too-long' }, 'wanInterface'],
    [{ publicEndpoint: '203.0.113.10', listenPort: 70000 }, 'listenPort'],
    [{ publicEndpoint: '203.0.113.10', homeV6Prefix: '192.0.2.0/24' }, 'homeV6Prefix'],
    [{ publicEndpoint: '203.0.113.10', homeV6Prefix: '2001:db8:b00::/64' }, 'homeV6Prefix'],
  ];
  for (const [opts, field] of bad) {
    const dir = stateDir();
    assert.throws(
      () => initState({ stateDir: dir, ...(opts as { publicEndpoint: string }) }),
      (e: unknown) => e instanceof ValidationError && e.field === field,
      JSON.stringify(opts),
    );
    assert.not.ok(existsSync(dir), `nothing created for ${JSON.stringify(opts)}`);
  }
});

test('the homes\' routed IPv6 prefix: set at init, read back, never over the overlay, fixed once routers use it', () => {
  const dir = stateDir();
  assert.is(initState({ stateDir: dir, ...lab }).state.homeV6Prefix, null, 'none unless asked for');
  const { state } = initState({ stateDir: dir, ...lab, homeV6Prefix: '2001:db8:b00::/56' });
  assert.is(formatPrefix(state.homeV6Prefix!), '2001:db8:b00::/56');
  assert.is(formatPrefix(loadState(dir).homeV6Prefix!), '2001:db8:b00::/56');
  assert.throws(
    () => initState({ stateDir: dir, ...lab, homeV6Prefix: '2001:db8:a0::/48' }),
    (e: unknown) => e instanceof ValidationError && e.field === 'homeV6Prefix' && /overlaps the overlay/.test(e.message),
  );
  assert.is(formatPrefix(loadState(dir).homeV6Prefix!), '2001:db8:b00::/56', 'unchanged');
});

test('loadState reads back what init wrote, and explains missing state', () => {
  const dir = stateDir();
  assert.throws(() => loadState(dir), (e: unknown) => e instanceof StateError && /aerie-cloud init/.test((e as Error).message));
  const { state } = initState({ stateDir: dir, ...lab });
  const loaded = loadState(dir);
  assert.equal({ ...loaded, tls: null }, { ...state, tls: null });
  assert.ok(loaded.tls.fingerprint.equals(state.tls.fingerprint));
  assert.is(parseAddress(loaded.publicHost).family, 4);
});

test('a damaged key is reported without showing its content; a lost certificate is recreated', () => {
  const dir = stateDir();
  const { state } = initState({ stateDir: dir, ...lab });
  rmSync(join(dir, 'tls.crt'));
  const again = initState({ stateDir: dir, ...lab });
  assert.is(again.state.publicKey, state.publicKey);
  assert.not.ok(again.state.tls.fingerprint.equals(state.tls.fingerprint), 'new certificate');
  writeFileSync(join(dir, 'wireguard.key'), 'secret-garbage-that-is-not-a-key\n');
  for (const fn of [() => loadState(dir), () => initState({ stateDir: dir, ...lab })]) {
    assert.throws(fn, (e: unknown) => /not hold a valid WireGuard private key/.test((e as Error).message) && !(e as Error).message.includes('secret-garbage'));
  }
});

test('init tightens a key file that became readable by others', () => {
  const dir = stateDir();
  initState({ stateDir: dir, ...lab });
  chmodSync(join(dir, 'wireguard.key'), 0o644);
  chmodSync(dir, 0o755);
  initState({ stateDir: dir, ...lab });
  assert.is(mode(join(dir, 'wireguard.key')), 0o600);
  assert.is(mode(dir), 0o700);
});

const noState = (e: unknown) => e instanceof StateError && /holds no Aerie state; create it with: aerie-cloud init/.test(e.message);

test('opening a mistyped state directory is an error that creates nothing', () => {
  const dir = stateDir();
  assert.throws(() => openState(dir), noState);
  assert.not.ok(existsSync(dir), 'no directory made');
  mkdirSync(dir);
  assert.throws(() => openState(dir), noState);
  assert.equal(readdirSync(dir), [], 'no empty database left behind');
  initState({ stateDir: dir, ...lab });
  const { store, state } = openState(dir);
  try {
    assert.is(state.overlay.v4.length, 25);
    assert.equal(store.devices.list(), []);
  } finally {
    store.close();
  }
});

test('the CLI on a mistyped --state-dir says so, exits 1 and creates nothing', () => {
  const dir = stateDir();
  mkdirSync(dir);
  const main = join(import.meta.dirname, '../../cloud/main.ts');
  for (const args of [['status'], ['device', 'list'], ['pair']]) {
    const r = spawnSync(process.execPath, [main, ...args, '--state-dir', dir], { encoding: 'utf8', timeout: 20_000 });
    assert.is(r.status, 1, args.join(' '));
    assert.match(r.stderr, /holds no Aerie state; create it with: aerie-cloud init/);
    assert.equal(readdirSync(dir), [], `${args.join(' ')} left nothing behind`);
  }
});

test('key files readable by other users are refused, with the chmod that fixes it', () => {
  const dir = stateDir();
  initState({ stateDir: dir, ...lab });
  for (const [file, mode] of [['wireguard.key', 0o644], ['tls.key', 0o640], ['wireguard.key', 0o604]] as const) {
    const path = join(dir, file);
    chmodSync(path, mode);
    assert.throws(
      () => loadState(dir),
      (e: unknown) =>
        e instanceof StateError &&
        e.message.includes(`${path} is readable by other users (mode ${mode.toString(8)})`) &&
        e.message.includes(`chmod 600 ${path}`),
      file,
    );
    chmodSync(path, 0o600);
    assert.ok(loadState(dir).publicKey, 'fine again after the chmod');
  }
  chmodSync(join(dir, 'tls.crt'), 0o644);
  assert.ok(loadState(dir), 'the certificate is public');
});

test.after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

test.run();
