import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { migrations } from '../../cloud/store/migrations.ts';
import { openStore, StoreError } from '../../cloud/store/store.ts';
import type { NewDevice } from '../../cloud/store/devices.ts';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'aerie-store-'));
  dirs.push(d);
  return d;
}

const gateway: NewDevice = {
  name: 'home',
  role: 'gateway',
  publicKey: 'Hh5/+U5w9fx9r3SqaLJhQv3wJYiBU4Hh8sSxo3FC9kU=',
  hostIndex: 2,
  addressV4: '203.0.113.130',
  addressV6: '2001:db8:a0::2',
  lanPrefixes: ['192.0.2.128/25', '2001:db8:1a::/64'],
  createdAt: 1_700_000_000_000,
};
const phone: NewDevice = {
  ...gateway,
  name: 'phone',
  role: 'owner',
  publicKey: 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=',
  hostIndex: 3,
  addressV4: '203.0.113.131',
  addressV6: '2001:db8:a0::3',
  lanPrefixes: [],
};

test('DNS sources, own names and the per-device switch are stored and survive a reopen', () => {
  const dir = tempDir();
  const store = openStore(dir);
  store.devices.insert(gateway);
  store.dns.addList({ id: 'ads', url: 'https://lists.example/ads.txt', enabled: true, addedAt: 1 });
  store.dns.addList({ id: 'local', url: '/srv/lists/local.txt', enabled: true, addedAt: 2 });
  assert.throws(() => store.dns.addList({ id: 'again', url: 'https://lists.example/ads.txt', enabled: true, addedAt: 3 }), /UNIQUE/);
  assert.ok(store.dns.setListEnabled('local', false));
  assert.not.ok(store.dns.setListEnabled('missing', false));
  store.dns.setName({ name: 'ads.example', action: 'block', addedAt: 4 });
  store.dns.setName({ name: 'ads.example', action: 'allow', addedAt: 5 }); // one action per name: the last wins
  store.dns.setName({ name: 'tracker.example', action: 'block', addedAt: 6 });
  assert.ok(store.devices.setDnsBlocking('home', false));
  assert.not.ok(store.devices.setDnsBlocking('nobody', false));
  store.close();

  const again = openStore(dir);
  assert.equal(again.dns.lists().map((l) => [l.id, l.enabled]), [['ads', true], ['local', false]]);
  assert.equal(again.dns.names().map((n) => [n.name, n.action]), [['ads.example', 'allow'], ['tracker.example', 'block']]);
  assert.is(again.devices.get('home')?.dnsBlocking, false);
  assert.ok(again.dns.removeList('ads'));
  assert.not.ok(again.dns.removeList('ads'));
  assert.ok(again.dns.removeName('tracker.example'));
  assert.equal(again.dns.names().map((n) => n.name), ['ads.example']);
  again.close();
});

test('a database of the first schema keeps its devices, each with ad blocking on, after the upgrade', () => {
  const dir = tempDir();
  const old = new DatabaseSync(join(dir, 'aerie.db'));
  old.exec(migrations[0]!);
  old.exec('PRAGMA user_version = 1');
  old
    .prepare('INSERT INTO devices (name, role, public_key, host_index, address_v4, address_v6, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
    .run('home', 'gateway', gateway.publicKey, 2, gateway.addressV4, gateway.addressV6, 1);
  old.close();
  const store = openStore(dir);
  assert.is(store.version, migrations.length);
  assert.is(store.devices.get('home')?.dnsBlocking, true);
  assert.equal(store.dns.lists(), []);
  store.close();
});

test('a new database is migrated, in WAL mode, and its data survives a reopen', () => {
  const dir = tempDir();
  const store = openStore(dir);
  assert.is(store.version, migrations.length);
  store.settings.set('overlay_v4', '203.0.113.128/25');
  store.devices.insert(gateway);
  store.devices.insert(phone);
  store.devices.setEndpoint('home', '198.51.100.2:40000');
  const id = store.pairingCodes.insert({ secretHash: Buffer.alloc(32, 7), createdAt: 1, expiresAt: 2 });
  store.close();

  const raw = new DatabaseSync(join(dir, 'aerie.db'));
  assert.is(raw.prepare('PRAGMA journal_mode').get()?.journal_mode, 'wal');
  raw.close();

  const again = openStore(dir);
  assert.is(again.settings.get('overlay_v4'), '203.0.113.128/25');
  assert.equal(again.devices.get('home'), { ...gateway, endpoint: '198.51.100.2:40000', dnsBlocking: true });
  assert.equal(again.devices.list().map((d) => d.name), ['home', 'phone']);
  assert.is(again.devices.getByPublicKey(phone.publicKey)?.name, 'phone');
  const [code] = again.pairingCodes.all();
  assert.is(code?.id, id);
  assert.ok(Buffer.from(code!.secretHash).equals(Buffer.alloc(32, 7)));
  assert.is(code?.usedAt, null);
  again.close();
});

test('names, keys, indexes and home prefixes are unique', () => {
  const store = openStore(tempDir());
  store.devices.insert(gateway);
  assert.throws(() => store.devices.insert({ ...phone, name: 'home' }), /UNIQUE/);
  assert.throws(() => store.devices.insert({ ...phone, publicKey: gateway.publicKey }), /UNIQUE/);
  assert.throws(() => store.devices.insert({ ...phone, hostIndex: 2 }), /UNIQUE/);
  assert.throws(() => store.devices.insert({ ...phone, lanPrefixes: ['192.0.2.128/25'] }), /UNIQUE/);
  assert.is(store.devices.get('phone'), undefined, 'a failed insert leaves no half device');
  assert.throws(() => store.devices.insert({ ...phone, hostIndex: 1 }), /CHECK/, 'index 1 is the VM');
  assert.throws(() => store.devices.insert({ ...phone, role: 'admin' as never }), /CHECK/);
  store.close();
});

test('removing a device removes its prefixes, so another gateway may claim them', () => {
  const store = openStore(tempDir());
  store.devices.insert(gateway);
  assert.ok(store.devices.remove('home'));
  assert.not.ok(store.devices.remove('home'));
  store.devices.insert({ ...phone, name: 'home2', role: 'gateway', lanPrefixes: gateway.lanPrefixes });
  assert.equal(store.devices.get('home2')?.lanPrefixes, gateway.lanPrefixes);
  store.close();
});

test('a code is marked used once; expired codes can be pruned', () => {
  const store = openStore(tempDir());
  const a = store.pairingCodes.insert({ secretHash: Buffer.alloc(32, 1), createdAt: 0, expiresAt: 100 });
  store.pairingCodes.insert({ secretHash: Buffer.alloc(32, 2), createdAt: 0, expiresAt: 1000 });
  assert.ok(store.pairingCodes.markUsed(a, 50, 'home'));
  assert.not.ok(store.pairingCodes.markUsed(a, 60, 'other'), 'second use refused');
  assert.is(store.pairingCodes.all()[0]?.usedBy, 'home');
  assert.throws(() => store.pairingCodes.insert({ secretHash: Buffer.alloc(31), createdAt: 0, expiresAt: 1 }), /CHECK/);
  assert.is(store.pairingCodes.pruneExpired(500), 1);
  assert.is(store.pairingCodes.all().length, 1);
  store.close();
});

test('a transaction that throws leaves nothing behind', () => {
  const dir = tempDir();
  const store = openStore(dir);
  assert.throws(
    () =>
      store.transaction(() => {
        store.settings.set('x', '1');
        store.devices.insert(gateway);
        throw new Error('changed my mind');
      }),
    /changed my mind/,
  );
  assert.is(store.settings.get('x'), undefined);
  assert.is(store.devices.get('home'), undefined);
  assert.is(store.transaction(() => 42), 42);
  store.close();
});

test('a database from a newer aerie-cloud is refused, not damaged', () => {
  const dir = tempDir();
  openStore(dir).close();
  const raw = new DatabaseSync(join(dir, 'aerie.db'));
  raw.exec(`PRAGMA user_version = ${migrations.length + 1}`);
  raw.close();
  assert.throws(() => openStore(dir), (e: unknown) => e instanceof StoreError && /newer than this aerie-cloud/.test((e as Error).message));
  const check = new DatabaseSync(join(dir, 'aerie.db'));
  assert.is(check.prepare('PRAGMA user_version').get()?.user_version, migrations.length + 1);
  check.close();
});

test('openStore creates a missing state directory as 0700', () => {
  const dir = join(tempDir(), 'nested', 'state');
  openStore(dir).close();
  assert.is(statSync(dir).mode & 0o777, 0o700);
});

test.after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test.run();
