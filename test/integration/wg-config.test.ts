import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '../../shared/keys.ts';
import { parseWgDump, renderWgConf, type WgConf } from '../../shared/wg-conf.ts';
import { renderWgQuick } from '../../shared/wg-quick.ts';
import { wgSyncConf } from '../../shared/wg-syncconf.ts';
import { withWgSandbox } from './wg-sandbox.ts';

// What we render, through the real wg and wg-quick, on a throwaway interface
// (needs root: see wg-sandbox.ts). The golden texts are in test/unit.

test('the real wg takes what we render on /dev/stdin and reports it back through the dump', async () => {
  const own = generateKeyPair();
  const a = generateKeyPair().publicKey;
  const b = generateKeyPair().publicKey;
  const conf: WgConf = {
    privateKey: own.privateKey,
    listenPort: 51999,
    peers: [
      { publicKey: a, allowedIps: ['203.0.113.130/32', '192.0.2.128/25', '2001:db8:a0::2/128', '2001:db8:1a::/64'], keepalive: 25 },
      { publicKey: b, allowedIps: ['203.0.113.131'], endpoint: '[2001:db8:192::10]:51820' },
      { publicKey: generateKeyPair().publicKey, allowedIps: [], endpoint: '192.0.2.10:1' },
    ],
  };
  await withWgSandbox(async (iface, run) => {
    await wgSyncConf(run, iface, renderWgConf(conf));
    assert.is((await run(['wg', 'show', iface, 'public-key'])).stdout.trim(), own.publicKey);
    assert.is((await run(['wg', 'show', iface, 'listen-port'])).stdout.trim(), '51999');
    const peers = parseWgDump((await run(['wg', 'show', iface, 'dump'])).stdout);
    const byKey = new Map(peers.map((p) => [p.publicKey, p]));
    assert.is(peers.length, 3);
    for (const want of conf.peers) {
      const got = byKey.get(want.publicKey);
      assert.ok(got, 'peer missing');
      const canonical = want.allowedIps.map((p) => (p.includes('/') ? p : `${p}/32`));
      assert.equal([...got.allowedIps].sort(), [...canonical].sort());
      assert.is(got.endpoint, want.endpoint ?? null);
      assert.is(got.keepalive, want.keepalive ?? 0);
      assert.is(got.latestHandshake, 0);
    }
    // syncconf drops the peers that are gone.
    await wgSyncConf(run, iface, renderWgConf({ ...conf, peers: [conf.peers[1]!] }));
    const after = parseWgDump((await run(['wg', 'show', iface, 'dump'])).stdout);
    assert.equal(after.map((p) => p.publicKey), [b]);
  });
});

test('wg-quick strips our wg-quick config to what wg takes, and wg takes the result', async () => {
  const me = generateKeyPair();
  const vm = generateKeyPair();
  const text = renderWgQuick({
    name: 'phone',
    privateKey: me.privateKey,
    addresses: ['203.0.113.131/32', '2001:DB8:A0::3/128'],
    dns: ['203.0.113.129', '2001:db8:a0::1'],
    mtu: 1420,
    peer: { publicKey: vm.publicKey, endpoint: '203.0.113.10:51820', allowedIps: ['0.0.0.0/0', '::/0'], keepalive: 25 },
  });
  await withWgSandbox(async (iface, run) => {
    const dir = await mkdtemp(join(tmpdir(), 'aerie-test-'));
    try {
      const file = join(dir, 'aerie-phone.conf');
      await writeFile(file, text, { mode: 0o600 });
      const stripped = await run(['wg-quick', 'strip', file]);
      assert.is(stripped.stderr, '', 'wg-quick warned');
      assert.not.match(stripped.stdout, /^(Address|DNS|MTU)/m);
      assert.match(stripped.stdout, /^# Aerie device: phone$/m);
      await wgSyncConf(run, iface, stripped.stdout);
      assert.is((await run(['wg', 'show', iface, 'public-key'])).stdout.trim(), me.publicKey);
      const [peer] = parseWgDump((await run(['wg', 'show', iface, 'dump'])).stdout);
      assert.ok(peer);
      assert.is(peer.publicKey, vm.publicKey);
      assert.is(peer.endpoint, '203.0.113.10:51820');
      assert.equal([...peer.allowedIps].sort(), ['0.0.0.0/0', '::/0']);
      assert.is(peer.keepalive, 25);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test.run();
