import { createServer as createHttpsServer, type Server } from 'node:https';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePrefix } from '../../shared/cidr.ts';
import { generateKeyPair } from '../../shared/keys.ts';
import { createRecordingRunner } from '../../shared/run.ts';
import { createPublicApp } from '../../cloud/api/public.ts';
import { createCore } from '../../cloud/core/core.ts';
import { openStore } from '../../cloud/store/store.ts';
import { generateSelfSignedCert } from '../../cloud/tls-cert.ts';
import { loadConfig } from '../../gateway/config.ts';
import { pair, PairError } from '../../gateway/pair.ts';
import { setupOnce } from './setup.ts';

// The contract between the two sides: the gateway's pair client against the
// VM's real pairing app and store (not a stand-in), over TLS on loopback.

const LAN0 = JSON.stringify([
  {
    ifname: 'lan0',
    addr_info: [
      { family: 'inet', local: '192.0.2.129', prefixlen: 25, scope: 'global' },
      { family: 'inet6', local: '2001:db8:1a::1', prefixlen: 64, scope: 'global' },
    ],
  },
]);
const run = createRecordingRunner({ 'ip -j addr show dev lan0': { stdout: LAN0 } }).run;

let dir = '';
let server: Server;
let core: ReturnType<typeof createCore>;
const vm = generateKeyPair();

// A VM state with its pairing listener.
setupOnce(test, async () => {
  dir = await mkdtemp(join(tmpdir(), 'aerie-gw-paircloud-'));
  const cert = generateSelfSignedCert({ host: '127.0.0.1' });
  const store = openStore(join(dir, 'vm'));
  const config = {
    interface: 'aerie0',
    publicKey: vm.publicKey,
    overlay: { v4: parsePrefix('203.0.113.128/25'), v6: parsePrefix('2001:db8:a0::/64') },
    publicHost: '127.0.0.1',
    publicPort: 51820,
    listenPort: 51820,
    pairingPort: 0,
    tls: { fingerprint: new Uint8Array(cert.fingerprint) },
  };
  core = createCore({ store, config });
  server = createAdaptorServer({
    fetch: createPublicApp({ core, logError: () => {} }).fetch,
    createServer: createHttpsServer,
    serverOptions: { key: cert.keyPem, cert: cert.certPem },
  }) as unknown as Server;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  config.pairingPort = (server.address() as AddressInfo).port;
});

test('a code from the VM pairs the router; the same code again is refused and changes nothing', async () => {
  const { code } = core.pairing.createCode();
  const configPath = join(dir, 'router', 'gateway.json');
  const result = await pair({ code, configPath, run, lanInterfaces: ['lan0'], name: 'home' });
  const config = (await loadConfig(configPath))!;
  assert.is(config.vm.publicKey, vm.publicKey);
  assert.is(config.vm.endpoint, '127.0.0.1:51820');
  assert.equal(config.vm.addresses, ['203.0.113.130/25', '2001:db8:a0::2/64']);
  assert.equal(config.vm.api, ['203.0.113.129', '2001:db8:a0::1']);
  const device = core.devices.list().find((d) => d.name === 'home');
  assert.is(device?.publicKey, result.publicKey, 'the VM stored the key the router made');

  const again = join(dir, 'router2', 'gateway.json');
  try {
    await pair({ code, configPath: again, run, lanInterfaces: ['lan0'], name: 'home2' });
    assert.unreachable();
  } catch (e) {
    assert.instance(e, PairError);
    assert.match((e as Error).message, /^the VM refused the pairing code: this pairing code has already been used/);
  }
  assert.equal(await readdir(dir), ['router', 'vm']);
  assert.is(core.devices.list().length, 1);
});

test.after(async () => {
  server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test.run();
