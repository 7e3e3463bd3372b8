import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createAerieHandlers } from '../../gateway/rpc/handlers.ts';
import { toUbusError } from '../../gateway/rpc/errors.ts';
import { VM_SETTINGS } from '../../gateway/rpc/vm-settings.ts';
import { UBUS_STATUS } from '../../gateway/ubus/error.ts';
import { parseConfig, type LoadedConfig } from '../../gateway/config.ts';
import type { Platform, TunnelState } from '../../gateway/platform/platform.ts';
import { apiRequest } from '../../gateway/vm-api.ts';
import type { VmView } from '../../gateway/vm-view.ts';
import { generateKeyPair } from '../../shared/keys.ts';
import { vmApp } from './lib/vm-app.ts';
import { pairRequest, vmStates } from './vm-state.ts';

// The router's `aerie` handlers against the VM's real API app, store and DNS
// settings (driven without sockets, the router's tunnel address given as the
// caller), and apiRequest against a real HTTP server.

const test = suite('aerie handlers');
const fresh = vmStates(test, 'aerie-handlers');

const GATEWAY = '203.0.113.130';
const me = generateKeyPair();

async function setup(opts: { paired?: boolean; reachable?: boolean; tunnel?: Partial<TunnelState>; view?: VmView } = {}) {
  const vm = fresh();
  const calls: string[] = [];
  const { core, request } = await vmApp(vm, GATEWAY, { calls, reachable: () => opts.reachable !== false });
  const { code } = core.pairing.createCode();
  const home = core.pairing.redeem(pairRequest(code, { publicKey: me.publicKey }));
  const loaded: LoadedConfig = {
    privateKey: me.privateKey,
    config: parseConfig({
      name: home.name,
      lanInterfaces: ['br-lan'],
      lanPrefixes: [{ prefix: '192.0.2.128/25', interface: 'br-lan' }],
      vm: {
        publicKey: vm.state.publicKey,
        endpoint: '203.0.113.10:51820',
        addresses: [`${GATEWAY}/25`],
        overlay: ['203.0.113.128/25'],
        api: ['203.0.113.129'],
      },
    }),
  };
  const now = Math.floor(Date.now() / 1000);
  const platform: Platform = {
    name: 'fake',
    set: async () => {},
    show: async () => ({
      present: true,
      up: true,
      killSwitch: true,
      dnsIntercept: false,
      peers: [{ publicKey: vm.state.publicKey, endpoint: '203.0.113.10:51820', latestHandshake: now - 5, rxBytes: 1234, txBytes: 5678 }],
      ...opts.tunnel,
    }),
  };
  let unpaired = 0;
  const service = createAerieHandlers({
    configPath: '/etc/aerie/gateway.json',
    load: async () => (opts.paired === false ? null : loaded),
    platform,
    reconciler: { pass: async () => {}, state: () => ({ health: 'up', generation: 0, endpoint: '203.0.113.10:51820', lastError: null }) },
    request,
    pair: async () => {
      throw new Error('the pairing code is mistyped');
    },
    unpair: async () => {
      unpaired++;
    },
    qrSvg: (text) => `<svg data-length="${text.length}"></svg>`,
    ...(opts.view && { view: () => opts.view! }),
  });
  return { service, vm, core, calls, unpaired: () => unpaired };
}

/** What the ubus caller gets when a call fails (the object maps errors as toUbusError does). */
async function failure(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, Error);
    const u = toUbusError(e);
    return { status: u.status, message: u.message };
  }
  assert.unreachable('expected a UbusError');
  throw new Error('unreachable');
}

test('before pairing: status says so, VM calls say what is missing', async () => {
  const { service, calls } = await setup({ paired: false });
  const s = await service.status();
  assert.is(s['state'], 'unpaired');
  assert.is(s['dns'], null);
  assert.is((await failure(service.settings())).status, UBUS_STATUS.NO_DATA);
  assert.match((await failure(service.devices())).message, /not paired/);
  assert.is((await failure(service.unpair())).status, UBUS_STATUS.NO_DATA);
  assert.equal(calls, [], 'nothing was asked of a VM');
});

test('status: tunnel, handshake, bytes, switches in force, egress, warnings', async () => {
  const { service } = await setup();
  const s = (await service.status()) as Record<string, any>;
  assert.is(s['state'], 'up');
  assert.is(s['name'], 'home');
  assert.is(s['rx_bytes'], 1234);
  assert.ok(s['handshake_age'] >= 5 && s['handshake_age'] < 60);
  assert.equal(s['kill_switch'], { configured: true, active: true });
  assert.equal(s['dns_intercept'], { configured: true, active: false });
  assert.is(s['egress'], '203.0.113.10');
  assert.equal(s['isolated'], [], 'nothing known of the VM: nobody fenced in');
  assert.is(s['control'], 'off', 'no control channel in this daemon');
  assert.ok(s['warnings'].includes('DNS interception is configured but not in force'));
  // The API app here runs without the live resolver: its counters are missing, and the status says why.
  assert.is(s['dns'], null);
  assert.ok(s['warnings'].some((w: string) => /^DNS counters: the VM refused: .*running daemon/.test(w)), s['warnings'].join(' | '));
});

test('status: the isolated devices the router fences in, as the daemon copied them from the VM', async () => {
  const view: VmView = { settings: null, devices: null, firewall: { isolated: ['192.0.2.140', '2001:db8:1a::140'] }, syncedAt: null };
  const { service } = await setup({ view });
  const s = (await service.status()) as Record<string, any>;
  assert.equal(s['isolated'], ['192.0.2.140', '2001:db8:1a::140']);
  // 192.0.2.140 is one device of br-lan's 192.0.2.128/25: the others reach it there.
  assert.ok(s['warnings'].some((w: string) => /^isolated 192\.0\.2\.140 is on br-lan \(192\.0\.2\.128\/25\), where other devices reach it/.test(w)), s['warnings'].join(' | '));
  assert.not.ok(s['warnings'].some((w: string) => w.includes('2001:db8:1a::140')), 'no LAN prefix of its own holds it: nothing said');
});

test("VM switches are read and written through the VM's API; bad values change nothing", async () => {
  const { service, vm } = await setup();
  assert.equal(await service.settings(), { blocking: true, blockMode: 'null', upstreams: ['udp:127.0.0.1'] });
  assert.equal(Object.keys(await service.settings()), Object.keys(VM_SETTINGS), 'every switch LuCI may set, and no other');
  assert.equal(await service.set('blocking', false), { key: 'blocking', value: false });
  assert.is(vm.store.devices.get('home')!.dnsBlocking, false, 'stored on the VM');
  assert.equal(await service.set('blockMode', 'nxdomain'), { key: 'blockMode', value: 'nxdomain' });
  assert.equal(await service.set('upstreams', ['dot:dns.example@192.0.2.53', 'udp:127.0.0.1']), {
    key: 'upstreams',
    value: ['dot:dns.example@192.0.2.53', 'udp:127.0.0.1'],
  });

  // The VM's own check, word for word (the object checks shapes before; here it is bypassed).
  const bad = await failure(service.set('upstreams', ['carrier-pigeon:192.0.2.1']));
  assert.is(bad.status, UBUS_STATUS.INVALID_ARGUMENT);
  assert.match(bad.message, /^the VM refused: upstreams\[0\]: /);
  assert.match((await failure(service.set('colour', 1))).message, /key: expected one of blocking, blockMode, upstreams/);
  assert.equal((await service.settings())['upstreams'], ['dot:dns.example@192.0.2.53', 'udp:127.0.0.1'], 'unchanged by the refused value');
});

test('devices: list, add with a config and its QR code, remove; the router itself is not removable', async () => {
  const { service, core } = await setup();
  const before = (await service.devices())['devices'] as Record<string, any>[];
  assert.equal(before.map((d) => d['name']), ['home']);
  const added = (await service.deviceAdd('tablet', 'owner')) as Record<string, any>;
  assert.is(added['name'], 'tablet');
  assert.match(added['config'], /\[Interface\][\s\S]*PrivateKey = [\s\S]*\[Peer\]/);
  assert.is(added['qr_svg'], `<svg data-length="${added['config'].length}"></svg>`);
  assert.ok(core.devices.list().some((d) => d.name === 'tablet'));
  assert.match((await failure(service.deviceAdd('tablet', 'owner'))).message, /the VM refused: .*tablet/);
  assert.equal(await service.deviceRemove('tablet'), { removed: 'tablet' });
  assert.not.ok(core.devices.list().some((d) => d.name === 'tablet'));
  assert.match((await failure(service.deviceRemove('home'))).message, /use unpair/);
  assert.is((await failure(service.deviceRemove('nobody'))).status, UBUS_STATUS.NOT_FOUND);
});

test('pair and unpair; an unreachable VM is said so', async () => {
  const { service, unpaired } = await setup({ reachable: false });
  assert.match((await failure(service.pair('AERIE1-XXXX'))).message, /the pairing code is mistyped/);
  assert.equal(await service.unpair(), { unpaired: true });
  assert.is(unpaired(), 1);
  const away = await failure(service.devices());
  assert.is(away.status, UBUS_STATUS.CONNECTION_FAILED);
  assert.match(away.message, /does not answer through the tunnel \(connect EHOSTUNREACH/);
});

test('apiRequest sends JSON bodies with the method asked, and reads JSON back', async () => {
  const seen: { method?: string; type?: string; body: string }[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen.push({ method: req.method, type: req.headers['content-type'], body });
      res.writeHead(req.method === 'DELETE' ? 404 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req.method === 'DELETE' ? { error: { code: 'not_found', message: 'no' } } : { ok: true }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const port = (server.address() as AddressInfo).port;
    assert.equal(await apiRequest('127.0.0.1', 'PATCH', '/v1/dns', { blockMode: 'nxdomain' }, 2000, port), { status: 200, body: { ok: true } });
    assert.is((await apiRequest('127.0.0.1', 'DELETE', '/v1/devices/x', undefined, 2000, port)).status, 404);
    assert.equal(seen[0], { method: 'PATCH', type: 'application/json', body: '{"blockMode":"nxdomain"}' });
    assert.equal(seen[1], { method: 'DELETE', type: undefined, body: '' });
  } finally {
    await new Promise((r) => server.close(r));
  }
});

test.run();
