import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resolveEndpoint } from '../../gateway/endpoint.ts';
import { firstResolving, parseNameservers, wanResolver } from '../../gateway/wan-resolver.ts';
import { startUnbound, type Unbound } from './lib/unbound.ts';
import { setupOnce } from './setup.ts';

// The VM's endpoint name resolved with the WAN's DNS servers, as netifd lists
// them, against a real unbound on loopback: no tunnel needed.

let unbound: Unbound;
const dir = mkdtempSync(join(tmpdir(), 'aerie-wan-resolver-'));
const resolvFile = join(dir, 'resolv.conf.auto');

setupOnce(test, async () => {
  unbound = await startUnbound({
    zones: ['example.net'],
    records: ['vm.example.net. 300 IN A 203.0.113.10', 'v6only.example.net. 300 IN AAAA 2001:db8::10'],
  });
});
test.after(async () => {
  await unbound?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('nameserver lines as netifd writes them; junk and scoped addresses skipped', () => {
  const text = '# Interface wan\nnameserver 192.0.2.53\nnameserver 2001:db8::53\nnameserver fe80::1%eth1\nnameserver nonsense\nsearch lan\nnameserver 192.0.2.53\n';
  assert.equal(parseNameservers(text), ['192.0.2.53', '2001:db8::53']);
  assert.equal(parseNameservers(''), []);
});

test("the endpoint's name through the WAN's server; IPv6 when there is no IPv4", async () => {
  writeFileSync(resolvFile, '# Interface wan\nnameserver 127.0.0.1\n');
  const resolve = wanResolver(resolvFile, { port: unbound.port, timeoutMs: 2000 });
  assert.is(await resolveEndpoint('vm.example.net:51820', resolve), '203.0.113.10:51820');
  assert.is(await resolveEndpoint('v6only.example.net:51820', resolve), '[2001:db8::10]:51820');
  await resolveEndpoint('missing.example.net:51820', resolve).then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /do not resolve missing\.example\.net/),
  );
});

test('no WAN servers yet: says so, and the next resolver is asked', async () => {
  writeFileSync(resolvFile, '# Interface wan\n');
  const wan = wanResolver(resolvFile, { port: unbound.port, timeoutMs: 2000 });
  await wan('vm.example.net').then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /no DNS servers from the WAN/),
  );
  const both = firstResolving(wan, async () => '198.51.100.7');
  assert.is(await both('vm.example.net'), '198.51.100.7');
  // The file is read at each call: a new lease is used at once.
  writeFileSync(resolvFile, 'nameserver 127.0.0.1\n');
  assert.is(await both('vm.example.net'), '203.0.113.10');
  const none = firstResolving(wan, async () => {
    throw new Error('system resolver: no answer');
  });
  await none('missing.example.net').then(
    () => assert.unreachable(),
    (e: Error) => assert.match(e.message, /do not resolve .*; system resolver: no answer$/),
  );
});

test.run();
