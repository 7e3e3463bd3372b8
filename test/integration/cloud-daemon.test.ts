// The daemon's start and stop with recording adapters: no interface, route or
// firewall is touched; the listeners bind loopback addresses only.
import { existsSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePrefix } from '../../shared/cidr.ts';
import { createRecordingRunner } from '../../shared/run.ts';
import { CoreError } from '../../cloud/core/errors.ts';
import { startDaemon, type DaemonDeps } from '../../cloud/daemon.ts';
import type { FirewallDesired } from '../../cloud/firewall/desired.ts';
import type { HubDesired } from '../../cloud/wg/hub.ts';
import mqtt from 'mqtt';
import { generateKeyPair } from '../../shared/keys.ts';
import { pairRequest, vmStates } from './vm-state.ts';
import { connectFrom, endClients, GATEWAY, inbox, OWNER, refusal, STRANGER, subscribe } from './lib/mqtt-broker-env.ts';

const freshVm = vmStates(test, 'daemon');

// The VM's own interface, as `ip -j addr show` reports it: a cloud network behind 1:1 NAT.
const IP_ADDR = JSON.stringify([
  { ifname: 'lo', link_type: 'loopback', flags: ['LOOPBACK'], addr_info: [{ local: '127.0.0.1', prefixlen: 8 }] },
  { ifname: 'eth0', link_type: 'ether', flags: ['UP'], addr_info: [{ local: '198.51.100.5', prefixlen: 25 }] },
]);

/**
 * A daemon whose hub and firewall only record what they are asked; its overlay
 * puts the VM on 127.77.0.1 and ::1, so the API can listen without an interface.
 */
function setup(over: { wanInterface?: string | null; pairingPort?: number } = {}) {
  const vm = freshVm();
  const state = {
    ...vm.state,
    overlay: { v4: parsePrefix('127.77.0.0/24'), v6: parsePrefix('::/126') },
    pairingPort: over.pairingPort ?? 0,
    wanInterface: over.wanInterface === undefined ? 'eth0' : over.wanInterface,
  };
  const calls: string[] = [];
  const { run } = createRecordingRunner({ 'ip -j addr show': { stdout: IP_ADDR } });
  const deps: DaemonDeps = {
    stateDir: vm.dir,
    state,
    store: vm.store,
    run,
    hub: {
      set: async (d: HubDesired | null) => void calls.push(d ? `hub ${d.interface}` : 'hub removed'),
      show: async () => [],
    },
    firewall: {
      set: async (d: FirewallDesired | null) => void calls.push(d ? `firewall out of ${d.wanInterface}` : 'firewall removed'),
      counters: async () => ({ rules: [], subjects: {} }),
      addEgressExceptions: async () => {},
      egressExceptions: async () => [],
    },
    ensureForwarding: async () => void calls.push('forwarding'),
    log: () => {},
    reconcileEveryMs: 60_000,
    dnsPort: 0,
    dnsUpdateAtStart: false,
  };
  return { vm, deps, calls };
}

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}

/** A port nothing listens on right now. */
async function freePort(host: string): Promise<number> {
  const probe = createServer();
  const port = await listen(probe, 0, host);
  await new Promise((r) => probe.close(r));
  return port;
}

function get(port: number, path: string, headers: Record<string, string> = {}) {
  return new Promise<number>((resolve, reject) => {
    const req = httpRequest({ host: '127.77.0.1', port, path, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

test('if a listener cannot bind after the hub is up, hub and firewall table are removed again', async () => {
  const { vm, deps, calls } = setup();
  const squatter = createServer();
  try {
    const port = await listen(squatter, 0, '127.77.0.1'); // the API's port is taken
    const err = await startDaemon({ ...deps, apiPort: port }).then(
      () => null,
      (e: unknown) => e as NodeJS.ErrnoException,
    );
    assert.is(err?.code, 'EADDRINUSE');
    assert.equal(calls, ['forwarding', 'hub aerie0', 'firewall out of eth0', 'hub removed', 'firewall removed']);
    assert.not.ok(existsSync(join(vm.dir, 'control.sock')), 'no control socket left');
    assert.throws(() => vm.store.devices.list(), 'the store is closed');
  } finally {
    await new Promise((r) => squatter.close(r));
  }
});

test('a failure before the hub was set up removes nothing', async () => {
  const { deps, calls } = setup({ wanInterface: null }); // and the runner knows no default route
  try {
    await startDaemon(deps);
    assert.unreachable('the start should fail');
  } catch (err) {
    assert.match((err as Error).message, /no default route/);
  }
  assert.equal(calls, []);
});

test('a started daemon checks Host on the overlay API, refuses home prefixes on its own networks, and cleans up on stop', async () => {
  const { vm, deps, calls } = setup({ pairingPort: await freePort('::') });
  const port = await freePort('127.77.0.1');
  const daemon = await startDaemon({ ...deps, apiPort: port });
  try {
    assert.is(await get(port, '/v1/health'), 200);
    assert.is(await get(port, '/v1/health', { host: `rebound.example:${port}` }), 421);
    assert.ok(existsSync(join(vm.dir, 'control.sock')));
    const { code } = daemon.core.pairing.createCode();
    assert.throws(
      () => daemon.core.pairing.redeem(pairRequest(code, { lanPrefixes: ['198.51.100.0/24'] })),
      (e: unknown) => e instanceof CoreError && /^lanPrefixes\[0\]: .*VM's own network 198\.51\.100\.0\/25/.test(e.message),
    );
    assert.is(daemon.core.pairing.redeem(pairRequest(code)).name, 'home', 'the default home prefixes are clear');
  } finally {
    await daemon.stop();
    await daemon.stop(); // twice is fine
  }
  assert.equal(calls.slice(-2), ['hub removed', 'firewall removed']);
  assert.is(calls.filter((c) => c === 'hub removed').length, 1);
  assert.not.ok(existsSync(join(vm.dir, 'control.sock')));
});

/** A daemon with API and MQTT on free ports of 127.77.0.1, and the router "home" (127.77.0.2) paired. */
async function startPaired() {
  const { deps } = setup({ pairingPort: await freePort('::') });
  const port = await freePort('127.77.0.1');
  const mqttPort = await freePort('127.77.0.1');
  const daemon = await startDaemon({ ...deps, apiPort: port, mqttPort });
  daemon.core.pairing.redeem(pairRequest(daemon.core.pairing.createCode().code));
  return { daemon, port, mqttPort };
}

test('the daemon serves MQTT on the overlay (TCP and WebSocket /mqtt): peers by address, devices by password, web pages refused', async () => {
  const { daemon, port, mqttPort } = await startPaired();
  try {
    daemon.core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey }); // an owner, 127.77.0.3
    const { password } = await daemon.core.mqtt.users.add({ name: 'plug' });

    const phone = await connectFrom(mqttPort, OWNER, { clientId: 'phone' });
    const box = inbox(phone);
    assert.equal(await subscribe(phone, ['home/#', 'aerie/gw/+/state']), [1, 1]);
    // A device behind the router, by user name and password, over WebSocket.
    const plug = await mqtt.connectAsync(`ws://127.77.0.1:${port}/mqtt`, {
      clientId: 'plug', username: 'plug', password, protocolVersion: 4, reconnectPeriod: 0, wsOptions: { localAddress: STRANGER },
    });
    await plug.publishAsync('home/plug/power', 'on', { qos: 1, retain: true });
    const router = await connectFrom(mqttPort, GATEWAY, { clientId: 'aerie-gw-home' });
    await router.publishAsync('aerie/gw/home/state', '{"tunnel":"up"}', { qos: 1, retain: true });
    const got = await box.wait(2);
    assert.equal(got.map((m) => `${m.topic}=${m.payload}`).sort(), ['aerie/gw/home/state={"tunnel":"up"}', 'home/plug/power=on']);
    // Who is connected, as `aerie-cloud mqtt clients` shows it.
    const who = await new Promise<{ clients: { id: string; caller: string; address: string }[] }>((resolve, reject) => {
      const req = httpRequest({ host: '127.77.0.1', port, path: '/v1/mqtt/clients', localAddress: OWNER, agent: false }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(text)) : reject(new Error(`HTTP ${res.statusCode}: ${text}`))));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(
      who.clients.map((c) => `${c.id} ${c.caller} ${c.address}`).sort(),
      [`aerie-gw-home gateway:home ${GATEWAY}`, `phone owner:phone ${OWNER}`, `plug user:plug ${STRANGER}`],
    );
    await plug.endAsync();
    await router.endAsync();

    // A web page in the owner's browser: another Origin is refused before any MQTT.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({
        host: '127.77.0.1', port, path: '/mqtt', localAddress: OWNER, agent: false,
        headers: { connection: 'Upgrade', upgrade: 'websocket', origin: 'http://evil.example', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-protocol': 'mqtt' },
      });
      req.on('upgrade', () => resolve(101));
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    assert.is(status, 403);
  } finally {
    await endClients();
    await daemon.stop();
  }
  // Stopped: nobody answers on the MQTT port any more.
  await refusal(connectFrom(mqttPort, OWNER, { clientId: 'late' }));
});

test('routers hear of changes on the control channel: a DNS setting, a device or the firewall, QoS 1, never retained', async () => {
  const { daemon, port, mqttPort } = await startPaired();
  try {
    const router = await connectFrom(mqttPort, GATEWAY, { clientId: 'aerie-gw-home', clean: false });
    const box = inbox(router);
    assert.equal(await subscribe(router, ['aerie/gw/home/cmd/#']), [1]);

    // The owner switches the block mode through the API, as the CLI and the web UI do.
    const patchDns = (body: unknown) =>
      new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          { host: '127.77.0.1', port, path: '/v1/dns', method: 'PATCH', localAddress: OWNER, agent: false, headers: { 'content-type': 'application/json' } },
          (res) => (res.resume(), resolve(res.statusCode ?? 0)),
        );
        req.on('error', reject);
        req.end(JSON.stringify(body));
      });
    assert.is(await patchDns({ blockMode: 'nxdomain' }), 401, 'not a device yet: refused, and nothing changed to tell');
    daemon.core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey }); // an owner, 127.77.0.3
    const first = await box.wait(1);
    assert.is(first[0]!.topic, 'aerie/gw/home/cmd/devices-changed');
    assert.equal(JSON.parse(first[0]!.payload).devices, ['phone']);
    assert.is(first[0]!.qos, 1);
    assert.not.ok(first[0]!.retain, 'a command is an event, not a state');
    assert.is(await patchDns({ blockMode: 'sometimes' }), 400);
    assert.is(await patchDns({ blockMode: 'nxdomain' }), 200);
    const [, second] = await box.wait(2);
    assert.is(second!.topic, 'aerie/gw/home/cmd/settings-changed');
    const payload = JSON.parse(second!.payload);
    assert.equal(payload.keys, ['blockMode']);
    assert.type(payload.id, 'string', 'an id, so a repeated delivery is applied once');
    // A firewall change: the router fences isolated devices in on its side too.
    daemon.core.firewall.hosts.add({ name: 'camera', address: '192.0.2.140' });
    const [, , third] = await box.wait(3);
    assert.is(third!.topic, 'aerie/gw/home/cmd/settings-changed');
    assert.equal(JSON.parse(third!.payload).keys, ['firewall']);
    await router.endAsync();
  } finally {
    await endClients();
    await daemon.stop();
  }
});

test.run();
