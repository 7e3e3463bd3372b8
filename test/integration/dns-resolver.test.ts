// The VM's resolver as the daemon composes it (store, lists, upstreams, server),
// against real unbound on loopback. The VM "overlay" is 127.77.0.0/24 + ::/126,
// so the resolver listens on 127.77.0.1 and ::1 without an interface.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePrefix } from '../../shared/cidr.ts';
import { generateKeyPair } from '../../shared/keys.ts';
import { createCore } from '../../cloud/core/core.ts';
import { startDns, type DnsRuntime } from '../../cloud/dns/runtime.ts';
import { generateSelfSignedCert } from '../../cloud/tls-cert.ts';
import { ask } from './lib/dns-client.ts';
import { startUnbound, type Unbound } from './lib/unbound.ts';
import { setupOnce } from './setup.ts';
import { vmStates } from './vm-state.ts';

const test = suite('dns resolver');
const fresh = vmStates(test, 'dns');
const VM = '127.77.0.1';

const tls = generateSelfSignedCert({ host: 'dns.test', commonName: 'dns.test' });
const RECORDS = [
  'website.example. 300 IN A 192.0.2.80',
  'website.example. 300 IN AAAA 2001:db8:80::80',
  'ads.example. 300 IN A 192.0.2.81',
  'tracker.ads.example. 300 IN A 192.0.2.81',
  'cdn.ads.example. 300 IN A 192.0.2.82',
  'filler.example. 300 IN A 192.0.2.90',
  // 40 TXT records: far more than 512 bytes, so UDP without EDNS gets TC.
  ...Array.from({ length: 40 }, (_, i) => `big.example. 300 IN TXT record-${i}-${'x'.repeat(40)}`),
];

let unbound: Unbound;
let dot: Unbound;
let dns: DnsRuntime;
let port = 0;
let phone = '';
const dir = mkdtempSync(join(tmpdir(), 'aerie-dns-lists-'));
const listFile = join(dir, 'ads.txt');
const logs: string[] = [];

setupOnce(test, async () => {
  unbound = await startUnbound({ zones: ['example.'], records: RECORDS });
  dot = await startUnbound({ zones: ['example.'], records: ['dot-only.example. 300 IN A 192.0.2.85'], dot: tls });
  const vm = fresh();
  const state = { ...vm.state, overlay: { v4: parsePrefix('127.77.0.0/24'), v6: parsePrefix('::/126') } };
  const core = createCore({ store: vm.store, config: state });
  phone = core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey }).device.addressV4;
  writeFileSync(listFile, '# lab ads\n0.0.0.0 ads.example\n');
  dns = await startDns({
    store: vm.store,
    overlay: state.overlay,
    listsDir: join(vm.dir, 'lists'),
    log: (l) => logs.push(l),
    port: 0,
    upstreamCa: tls.certPem,
    updateAtStart: false,
  });
  core.events.on('devices-changed', () => dns.devicesChanged());
  port = dns.addresses().find((a) => a.address === VM)!.port;
  dns.control.setSettings({ upstreams: [`udp:127.0.0.1:${unbound.port}`] });
  await dns.control.addList({ url: listFile, id: 'lab' });
  await waitUpdated();
});

test.after(async () => {
  await dns?.stop();
  await unbound?.stop();
  await dot?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function waitUpdated(): Promise<void> {
  for (let i = 0; i < 200 && dns.control.lists().updating; i++) await new Promise((r) => setTimeout(r, 25));
  assert.not.ok(dns.control.lists().updating, 'the list update ended');
}

const a = (name: string, type = 'A', o: Parameters<typeof ask>[4] = {}) => ask(VM, port, name, type, { from: phone, ...o });
const addressesOf = (r: Awaited<ReturnType<typeof ask>>) => r?.answers.map((x) => x.data) ?? null;

test('a name resolves through unbound with its TTL, then from the cache with a smaller one', async () => {
  const first = await a('website.example');
  assert.equal(addressesOf(first), ['192.0.2.80']);
  assert.is(first!.answers[0]!.ttl, 300);
  await new Promise((r) => setTimeout(r, 1100));
  const again = await a('WebSite.Example');
  assert.equal(addressesOf(again), ['192.0.2.80']);
  assert.ok(again!.answers[0]!.ttl < 300, `cached TTL counts down (got ${again!.answers[0]!.ttl})`);
  assert.is(again!.answers[0]!.name, 'WebSite.Example', 'the question case is kept');
  assert.equal(addressesOf(await a('website.example', 'AAAA')), ['2001:db8:80::80']);
  assert.is(dns.control.stats().devices['phone']?.cached, 1);
});

test('a listed name and its subdomains are blocked; the allowlist wins; the switch per device works', async () => {
  assert.equal(addressesOf(await a('ads.example')), ['0.0.0.0']);
  assert.equal(addressesOf(await a('tracker.ads.example')), ['0.0.0.0']);
  assert.equal(addressesOf(await a('tracker.ads.example', 'AAAA')), ['::']);
  const https = await a('ads.example', 'HTTPS');
  assert.is(https?.rcode, 'NOERROR');
  assert.equal(https?.answers, []);
  assert.is(dns.control.test('cdn.ads.example').verdict, 'blocked');
  assert.match(dns.control.test('cdn.ads.example').reason, /ads\.example, a parent of cdn\.ads\.example, is on the blocklist "lab"/);

  dns.control.setName('cdn.ads.example', { action: 'allow' });
  assert.equal(addressesOf(await a('cdn.ads.example')), ['192.0.2.82']);
  assert.equal(addressesOf(await a('ads.example')), ['0.0.0.0'], 'the parent stays blocked');

  dns.control.setName('filler.example', { action: 'block' });
  assert.equal(addressesOf(await a('filler.example')), ['0.0.0.0']);

  dns.control.setDeviceBlocking('phone', { blocking: false });
  assert.equal(dns.control.deviceBlocking('phone'), { device: 'phone', blocking: false });
  assert.equal(addressesOf(await a('ads.example')), ['192.0.2.81'], 'blocking off for the phone');
  dns.control.setDeviceBlocking('phone', { blocking: true });
  assert.is(dns.control.deviceBlocking('phone').blocking, true);
  assert.throws(() => dns.control.deviceBlocking('nobody'), /there is no device named "nobody"/);
  assert.equal(addressesOf(await a('tracker.ads.example')), ['0.0.0.0']);

  dns.control.setSettings({ blockMode: 'nxdomain' });
  assert.is((await a('ads.example'))?.rcode, 'NXDOMAIN');
  dns.control.setSettings({ blockMode: 'null' });
  assert.ok(dns.control.stats().devices['phone']!.blocked >= 5);
});

test('devices have names in the zone, and strangers get no answer', async () => {
  assert.equal(addressesOf(await a('phone.aerie.internal')), [phone]);
  assert.is((await a('nobody.aerie.internal'))?.rcode, 'NXDOMAIN');
  assert.is(await a('website.example', 'A', { from: '127.0.0.1', timeoutMs: 500 }), null, 'not a tunnel peer: dropped');
  assert.equal(addressesOf(await a('website.example', 'A', { from: VM })), ['192.0.2.80'], 'the VM itself may ask');
});

test('an answer too large for UDP sets TC, and the same query over TCP gets it all', async () => {
  const udp = await a('big.example', 'TXT');
  assert.ok(udp?.tc, 'TC set');
  const tcp = await a('big.example', 'TXT', { tcp: true });
  assert.is(tcp?.answers.length, 40);
  assert.not.ok(tcp?.tc);
});

test('a dead upstream gives SERVFAIL; DoT with a checked certificate works', async () => {
  dns.control.setSettings({ upstreams: ['udp:127.0.0.1:9'] });
  const dead = await a('filler2.example', 'A', { timeoutMs: 8000 });
  assert.is(dead?.rcode, 'SERVFAIL');
  assert.equal(addressesOf(await a('website.example')), ['192.0.2.80'], 'cached answers still served');

  dns.control.setSettings({ upstreams: [`dot:dns.test@127.0.0.1:${dot.dotPort}`] });
  assert.equal(addressesOf(await a('dot-only.example', 'A', { timeoutMs: 5000 })), ['192.0.2.85']);
  assert.ok(dns.control.stats().upstreams.some((u) => u.upstream.startsWith('dot:') && u.ok));

  dns.control.setSettings({ upstreams: [`dot:wrong.test@127.0.0.1:${dot.dotPort}`] });
  assert.is((await a('other.example', 'A', { timeoutMs: 8000 }))?.rcode, 'SERVFAIL', 'a certificate for another name is refused');
  dns.control.setSettings({ upstreams: [`udp:127.0.0.1:${unbound.port}`] });
});

test('replacing a big list under a steady stream of queries fails none of them', async () => {
  const names = Array.from({ length: 300_000 }, (_, i) => `t${i}.tracker${i % 997}.example`);
  writeFileSync(listFile, `${names.join('\n')}\nads.example\nswapped.example\n`);
  let sent = 0;
  let failed = 0;
  let running = true;
  const client = async () => {
    for (let i = 0; running && i < 100_000; i++) {
      const blocked = i % 3 === 0;
      const r = await a(blocked ? 'tracker.ads.example' : 'website.example', 'A', { timeoutMs: 1000 });
      sent++;
      const want = blocked ? '0.0.0.0' : '192.0.2.80';
      if (!r || r.rcode !== 'NOERROR' || r.answers[0]?.data !== want) failed++;
    }
  };
  const clients = Array.from({ length: 4 }, client);
  dns.control.update({ id: 'lab' });
  await waitUpdated();
  running = false;
  await Promise.all(clients);
  assert.ok(sent > 50, `queries ran during the swap (${sent})`);
  assert.is(failed, 0, `${failed} of ${sent} queries failed during the swap`);
  assert.equal(addressesOf(await a('swapped.example')), ['0.0.0.0'], 'the new list is in force');
  assert.equal(addressesOf(await a('t123.tracker123.example')), ['0.0.0.0']);
  assert.is(dns.control.lists().lists.find((l) => l.id === 'lab')?.accepted, 300_002);
});

test.run();
