// What `aerie-cloud dns …` and /v1/dns do to the store, without a daemon:
// bad input is refused with the field named, and changes nothing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ValidationError } from '../../shared/errors.ts';
import { CoreError } from '../../cloud/core/errors.ts';
import { readDnsSettings } from '../../cloud/core/dns-settings.ts';
import { createDnsControl, listIdFor, ownNames, toListSources } from '../../cloud/dns/control.ts';
import { createListManager } from '../../cloud/dns/lists/blocklist.ts';
import { vmStates } from './vm-state.ts';

const test = suite('dns control');
const fresh = vmStates(test, 'dns-control');
const tmp = mkdtempSync(join(tmpdir(), 'aerie-dns-control-'));
test.after(() => rmSync(tmp, { recursive: true, force: true }));

async function control() {
  const vm = fresh();
  const lists = createListManager({ dir: join(vm.dir, 'lists'), sources: toListSources(vm.store.dns.lists()), ...ownNames(vm.store) });
  await lists.load();
  return { vm, lists, dns: createDnsControl({ store: vm.store, lists }) };
}

const refused = (fn: () => unknown, field: RegExp) => {
  try {
    fn();
  } catch (err) {
    assert.instance(err, ValidationError);
    assert.match((err as ValidationError).message, field);
    return;
  }
  assert.unreachable('accepted bad input');
};

test('list ids come from the URL, unique, never the reserved "custom"', () => {
  assert.is(listIdFor('https://raw.example/StevenBlack/hosts/master/hosts', new Set()), 'hosts');
  assert.is(listIdFor('https://lists.example/Ads_Big.txt', new Set(['ads-big'])), 'ads-big-2');
  assert.is(listIdFor('/srv/lists/custom.txt', new Set()), 'list-custom');
  assert.match(listIdFor('https://lists.example/', new Set()), /^[a-z0-9][a-z0-9-]{0,31}$/);
});

test('bad list URLs, names and upstreams are refused and store nothing', async () => {
  const { vm, dns } = await control();
  for (const url of ['ftp://lists.example/a.txt', 'lists.example/a.txt', 'https://user:pw@lists.example/a.txt', '']) {
    await dns.addList({ url }).then(
      () => assert.unreachable(`accepted ${url}`),
      (err) => assert.match((err as Error).message, /url/),
    );
  }
  await dns.addList({ url: '/srv/a.txt', id: 'Bad Id' }).then(
    () => assert.unreachable('accepted a bad id'),
    (err) => assert.match((err as Error).message, /^id: /),
  );
  assert.equal(vm.store.dns.lists(), []);

  refused(() => dns.setName('not a name!', { action: 'block' }), /name/);
  refused(() => dns.setName('ads.example', { action: 'maybe' }), /action/);
  assert.equal(vm.store.dns.names(), []);

  const before = readDnsSettings(vm.store.settings);
  refused(() => dns.setSettings({ upstreams: ['udp:127.0.0.1', 'smtp:192.0.2.1'] }), /upstreams\[1\]/);
  refused(() => dns.setSettings({ blockMode: 'refuse' }), /blockMode/);
  refused(() => dns.setSettings({ upstreams: [] }), /upstreams/);
  assert.equal(readDnsSettings(vm.store.settings), before);
});

test('a list added from a file is fetched, counted and blocks; the owner\'s names win', async () => {
  const { vm, dns } = await control();
  const file = join(tmp, 'ads.txt');
  writeFileSync(file, '0.0.0.0 ads.example\n||tracker.example^\n||tracker.example^$third-party\njunk line here\n');
  const added = await dns.addList({ url: file });
  assert.is(added.id, 'ads');
  await dns.addList({ url: file }).then(
    () => assert.unreachable('added the same URL twice'),
    (err) => assert.instance(err, CoreError),
  );
  for (let i = 0; i < 200 && dns.lists().updating; i++) await new Promise((r) => setTimeout(r, 25));
  const status = dns.lists().lists.find((l) => l.id === 'ads')!;
  assert.equal([status.accepted, status.unsupported, status.rejected, status.error], [2, 1, 1, null]);

  assert.is(dns.test('www.ads.example').verdict, 'blocked');
  assert.is(dns.test('www.ads.example').list, 'ads');
  assert.is(dns.test('example.org').verdict, 'forwarded');
  assert.is(dns.test('anything.aerie.internal').verdict, 'local');
  dns.setName('www.ads.example', { action: 'allow' });
  assert.is(dns.test('www.ads.example').verdict, 'allowed');
  assert.is(dns.test('ads.example').verdict, 'blocked');
  assert.equal(ownNames(vm.store), { allow: ['www.ads.example'], block: [] });
  dns.removeName('www.ads.example');
  assert.throws(() => dns.removeName('www.ads.example'), (e: unknown) => e instanceof CoreError && e.code === 'not_found');

  await dns.removeList('ads');
  assert.is(dns.test('ads.example').verdict, 'forwarded');
  assert.throws(() => dns.stats(), (e: unknown) => e instanceof CoreError && e.code === 'unavailable');
});

test.run();
