// Lab: the VM's firewall. The internet cannot reach the VM's tunnel services
// (API, DNS, MQTT) or any home device through the VM, even with a route that
// points at them; a home service is reachable from the internet only while it
// is published; an IoT device fenced in ("isolated") on its own home network
// reaches only DNS and MQTT on the VM, neither the internet nor the laptop nor
// the router's own services, while the laptop and the owner's phone still
// reach it; bad input is refused with the field named and changes no rule;
// a device with its internet blocked cannot go out; and the firewall counts
// what it refused per device.
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ADDR, LAPTOP_PORT, NODE24, PREFIX, REPO_ROOT, URLS, createLab, waitFor, type Lab } from './lib/lab.ts';
import { pairedAerie, type Aerie } from './lib/aerie.ts';
import { dig } from './lib/dns.ts';
import { probePort } from './lib/probe.ts';

let lab: Lab | undefined;
let aerie: Aerie;
const VM = ADDR.vm.v4;
const TUNNEL = ADDR.vmTunnel.v4;
const PUBLIC_PORT = 8444;
const CAMERA_PORT = 7000;
const ROUTER_ADMIN_PORT = 8053;
const VM_SERVICE_PORT = 8445;
const TAG_SERVER = `${REPO_ROOT}/test/lab/servers/tag-server.ts`;
const HOLDER = `${REPO_ROOT}/test/lab/servers/hold-connection.ts`;

/** From the internet namespace, a route that sends the overlay and one home address to the VM, as an attacker's would. */
async function routeInternetViaVm(on: boolean): Promise<void> {
  for (const to of [PREFIX.overlay.v4, `${ADDR.laptop.v4}/32`]) {
    await lab!.run('internet', ['ip', 'route', on ? 'replace' : 'del', to, 'via', ADDR.vm.v4], { allowFail: !on });
  }
}

test.after(async () => {
  await lab?.destroy();
});

test('set up: paired router, a phone, the firewall applied', async () => {
  lab = await createLab({ lockWaitMs: 180_000 });
  // The IoT devices have a network of their own (lan1): between two networks the router can fence them in.
  aerie = await pairedAerie(lab, { lanInterfaces: ['lan0', 'lan1'] });
  await aerie.addPhone();
  await aerie.startRouterDns();
  const { stdout } = await aerie.cloudCli(['firewall', 'print']);
  assert.match(stdout, /table inet aerie/);
  const listed = await lab.run('vm', ['nft', 'list', 'table', 'inet', 'aerie']);
  assert.match(listed.stdout, /chain input/, 'the table in the kernel has our input chain');
});

test('the internet reaches neither the VM\'s tunnel services nor a home device, even routed at them', async () => {
  await routeInternetViaVm(true);
  try {
    for (const [proto, port, what] of [['tcp', 80, 'API'], ['tcp', 1883, 'MQTT'], ['udp', 53, 'DNS'], ['tcp', 53, 'DNS over TCP']] as const) {
      const r = await probePort(lab!, 'internet', proto, TUNNEL, port, 1500);
      assert.ok(['timeout', 'unreachable'].includes(r.result), `${what} on ${TUNNEL}:${port} from the internet: ${JSON.stringify(r)}`);
      const pub = await probePort(lab!, 'internet', proto, VM, port, 1500);
      assert.ok(['timeout', 'unreachable'].includes(pub.result), `${what} on the public ${VM}:${port}: ${JSON.stringify(pub)}`);
    }
    const laptop = await probePort(lab!, 'internet', 'tcp', ADDR.laptop.v4, LAPTOP_PORT, 1500);
    assert.ok(['timeout', 'unreachable'].includes(laptop.result), `the laptop through the VM: ${JSON.stringify(laptop)}`);
    // The same services answer through the tunnel.
    assert.ok((await lab!.fetch('phone', `http://${TUNNEL}/v1/health`, { timeoutMs: 3000 })).ok, 'the phone reaches the API');
  } finally {
    await routeInternetViaVm(false);
  }
});

test('a published home service is reachable from the internet, and stops being reachable when unpublished', async () => {
  const before = await lab!.fetch('internet', `http://${VM}:${PUBLIC_PORT}/`, { timeoutMs: 1500 });
  assert.is(before.status, 0, 'nothing is published yet');
  await aerie.cloudCli(['publish', 'laptop-web', '--port', String(PUBLIC_PORT), '--to', `${ADDR.laptop.v4}:${LAPTOP_PORT}`]);
  await waitFor('the published service to answer', async () => (await lab!.fetch('internet', `http://${VM}:${PUBLIC_PORT}/`, { timeoutMs: 1000 })).ok, {
    timeoutMs: 10_000,
    intervalMs: 200,
  });
  const r = await lab!.fetch('internet', `http://${VM}:${PUBLIC_PORT}/`, { timeoutMs: 3000 });
  assert.match(r.body, /^laptop /, 'the laptop answered');
  const bad = await aerie.cloudCli(['publish', 'again', '--port', String(PUBLIC_PORT), '--to', `${ADDR.laptop.v4}:22`], { allowFail: true });
  assert.is(bad.code, 1, 'the same port twice is refused');
  // A port a program of the VM listens on is not taken from it.
  const vmService = lab!.spawn('vm', [NODE24, TAG_SERVER, 'vm-web', String(VM_SERVICE_PORT), '0.0.0.0', '--tcp-only'], { logFile: 'vm-web.log' });
  try {
    await waitFor('the VM\'s own service', async () => (await probePort(lab!, 'vm', 'tcp', VM, VM_SERVICE_PORT, 1000)).result === 'answer', { timeoutMs: 10_000, intervalMs: 200 });
    const busy = await aerie.cloudCli(['publish', 'shadow', '--port', String(VM_SERVICE_PORT), '--to', `${ADDR.laptop.v4}:${LAPTOP_PORT}`], { allowFail: true });
    assert.is(busy.code, 1);
    assert.match(busy.stderr, new RegExp(`${VM_SERVICE_PORT}/tcp is in use: a program on the VM listens on every address`));
    assert.is((await probePort(lab!, 'internet', 'tcp', VM, VM_SERVICE_PORT, 1500)).result, 'timeout', 'and the firewall still keeps it from the internet');
  } finally {
    await lab!.stop(vmService);
  }
  await aerie.cloudCli(['unpublish', 'laptop-web']);
  await waitFor('the service to be gone', async () => (await lab!.fetch('internet', `http://${VM}:${PUBLIC_PORT}/`, { timeoutMs: 1000 })).status === 0, {
    timeoutMs: 10_000,
    intervalMs: 200,
  });
});

test('an isolated IoT device reaches DNS and MQTT but not the internet, the laptop or the router; the laptop and the phone reach it', async () => {
  const viaIot = (url: string) => lab!.fetch('iot', url, { timeoutMs: 1500 });
  assert.ok((await viaIot(URLS.website4)).ok, 'before: the camera goes out');
  assert.ok((await viaIot(URLS.laptop4)).ok, 'before: the camera reaches the laptop');
  assert.ok((await viaIot(URLS.website6)).ok, 'before: and over IPv6');
  const pingsVm = async () => (await lab!.run('iot', ['ping', '-c', '1', '-W', '1', TUNNEL], { allowFail: true })).code === 0;
  assert.ok(await pingsVm(), 'before: the camera pings the VM');
  const routerAdmin = lab!.spawn('router', [NODE24, TAG_SERVER, 'router-admin', String(ROUTER_ADMIN_PORT), ADDR.routerIot.v4, ADDR.routerLan.v4, '--tcp-only'], {
    logFile: 'router-admin.log',
  });
  const camera = lab!.spawn('iot', [NODE24, TAG_SERVER, 'camera', String(CAMERA_PORT), ADDR.iot.v4, ADDR.iot.v6, '--tcp-only'], { logFile: 'camera.log' });
  try {
    await waitFor('the camera\'s and the router\'s services', async () =>
      (await probePort(lab!, 'iot', 'tcp', ADDR.iot.v4, CAMERA_PORT, 1000)).result === 'answer' &&
      (await probePort(lab!, 'iot', 'tcp', ADDR.routerIot.v4, ROUTER_ADMIN_PORT, 1000)).result === 'answer', { timeoutMs: 10_000, intervalMs: 200 });
    // A connection to the VM's API open before the camera is fenced in: it must not outlive the fence.
    const apiHeld = lab!.spawn('iot', [NODE24, HOLDER, TUNNEL, '80'], { logFile: 'hold-camera-api.log' });
    const apiAnswers = () => apiHeld.output().split('\n').filter((l) => l.startsWith('ok ')).length;
    await waitFor('the open API connection to answer', () => apiAnswers() >= 2, { timeoutMs: 10_000 });
    // One device, both its addresses: one name, one policy.
    await aerie.cloudCli(['firewall', 'host', 'add', 'camera', ADDR.iot.v4, ADDR.iot.v6]);
    await aerie.cloudCli(['firewall', 'policy', 'camera', '--isolated', 'on']);
    // The VM fences it off the internet; the router, told on the control channel, off the rest of the home.
    await waitFor('the camera to be fenced in', async () =>
      (await viaIot(URLS.website4)).status === 0 && (await viaIot(URLS.laptop4)).status === 0, { timeoutMs: 10_000, intervalMs: 250 });
    assert.is((await viaIot(URLS.website6)).status, 0, 'nor the internet over IPv6');
    assert.is((await viaIot(URLS.laptop6)).status, 0, 'nor the laptop over IPv6');
    assert.is((await viaIot(`http://${TUNNEL}/v1/health`)).status, 0, 'not the VM\'s API');
    assert.not.ok(await pingsVm(), 'not even a ping to the VM');
    const cut = apiAnswers();
    await sleep(1500);
    assert.is(apiAnswers(), cut, 'the API connection it had open gets no more answers');
    await lab!.stop(apiHeld);
    const admin = await probePort(lab!, 'iot', 'tcp', ADDR.routerIot.v4, ROUTER_ADMIN_PORT, 1500);
    assert.is(admin.result, 'timeout', `not the router's own services: ${JSON.stringify(admin)}`);
    assert.is((await probePort(lab!, 'lan', 'tcp', ADDR.routerLan.v4, ROUTER_ADMIN_PORT, 1500)).data, 'router-admin', 'the laptop still reaches them');
    // DNS: the router answers (the query goes on to the VM through the tunnel); MQTT on the VM.
    const dns = await dig(lab!, 'iot', ADDR.routerIot.v4, 'phone.aerie.internal', { timeoutS: 2 });
    assert.is(dns.status, 'NOERROR', `DNS through the router and the VM: ${JSON.stringify(dns)}`);
    const anyServer = await dig(lab!, 'iot', ADDR.labDns.v4, 'phone.aerie.internal', { timeoutS: 2 });
    assert.is(anyServer.status, 'NOERROR', `DNS to any address is answered by the router: ${JSON.stringify(anyServer)}`);
    const mqtt = await probePort(lab!, 'iot', 'tcp', TUNNEL, 1883, 2000);
    assert.ok(['connected', 'answer'].includes(mqtt.result), `MQTT on the VM: ${JSON.stringify(mqtt)}`);
    // The owner's devices reach the camera, at home and away.
    for (const [from, to] of [['lan', ADDR.iot.v4], ['lan', ADDR.iot.v6], ['phone', ADDR.iot.v4]] as const) {
      const r = await probePort(lab!, from, 'tcp', to, CAMERA_PORT, 3000);
      assert.equal([r.result, r.data], ['answer', 'camera'], `${from} reaches the camera at ${to}: ${JSON.stringify(r)}`);
    }
    assert.ok((await lab!.fetch('lan', URLS.website4, { timeoutMs: 3000 })).ok, 'the laptop is not fenced in');
    const status = (await aerie.gatewayCli(['status'])).stdout;
    assert.match(status, /^isolated: +198\.51\.100\.140, 2001:db8:1c::140: /m, 'the router says whom it fences in');
    // One address of lan1's network: the router says that others there would reach it past any firewall.
    assert.match(status, /isolated 198\.51\.100\.140 is on lan1 \(198\.51\.100\.128\/26\), where other devices reach it/);
  } finally {
    await lab!.stop(camera);
    await lab!.stop(routerAdmin);
  }
  await aerie.cloudCli(['firewall', 'policy', 'camera', '--isolated', 'off']);
  await waitFor('the camera out again', async () => (await viaIot(URLS.website4)).ok && (await viaIot(URLS.laptop4)).ok, { timeoutMs: 10_000, intervalMs: 250 });
});

test('the whole IoT network isolated: fenced in the same way, with no neighbour to warn of', async () => {
  const viaIot = (url: string) => lab!.fetch('iot', url, { timeoutMs: 1500 });
  await aerie.cloudCli(['firewall', 'host', 'remove', 'camera']);
  await aerie.cloudCli(['firewall', 'host', 'add', 'iot', PREFIX.iotLan.v4, PREFIX.iotLan.v6]);
  await aerie.cloudCli(['firewall', 'policy', 'iot', '--isolated', 'on']);
  await waitFor('the IoT network to be fenced in', async () =>
    (await viaIot(URLS.website4)).status === 0 && (await viaIot(URLS.laptop6)).status === 0, { timeoutMs: 10_000, intervalMs: 250 });
  const status = (await aerie.gatewayCli(['status'])).stdout;
  assert.match(status, /^isolated: +198\.51\.100\.128\/26, 2001:db8:1c::\/64: reach DNS and MQTT on the VM, and on this router only DNS, DHCP and time$/m);
  await aerie.cloudCli(['firewall', 'host', 'remove', 'iot']);
  await waitFor('the IoT network out again', async () => (await viaIot(URLS.website4)).ok && (await viaIot(URLS.laptop4)).ok, { timeoutMs: 10_000, intervalMs: 250 });
});

test('bad input gets a clear error naming the field, and the table in the kernel stays as it was', async () => {
  const table = async () => (await lab!.run('vm', ['nft', '-s', 'list', 'table', 'inet', 'aerie'])).stdout;
  await aerie.cloudCli(['publish', 'web', '--port', String(PUBLIC_PORT), '--to', `${ADDR.laptop.v4}:${LAPTOP_PORT}`]);
  await waitFor('the publish in the kernel', async () => (await table()).includes('published web'), { timeoutMs: 10_000, intervalMs: 200 });
  const before = await table();
  const refused: [string[], RegExp][] = [
    [['publish', 'web2', '--port', String(PUBLIC_PORT), '--to', `${ADDR.laptop.v4}:22`], /port: .*already published as "web"/],
    [['publish', 'ssh', '--port', '22', '--to', `${ADDR.laptop.v4}:22`], /port: 22\/tcp is the VM's SSH port/],
    [['publish', 'away', '--port', '8446', '--to', `${ADDR.website.v4}:80`], /toAddress: 192\.0\.2\.80 is not inside any gateway's home prefix/],
    [['firewall', 'host', 'add', 'outside', ADDR.website.v4], /addresses\[0\]: 192\.0\.2\.80 is not inside any gateway's home prefix/],
    [['firewall', 'host', 'add', 'phone', ADDR.iot.v4], /"phone" is already a device's name/],
    [['firewall', 'policy', 'nobody', '--isolated', 'on'], /there is no device or LAN host named "nobody"/],
    [['firewall', 'policy', 'phone', '--internet', 'sometimes'], /internet: expected "allow" or "block"/],
    [['egress', 'pool', '--v6-prefix', '2001:db8:dead::/64'], /v6Prefix: 2001:db8:dead::\/64 is not the VM's/],
  ];
  for (const [args, message] of refused) {
    const r = await aerie.cloudCli(args, { allowFail: true });
    assert.is(r.code, 1, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
  assert.fixture(await table(), before, 'not one rule changed');
  await aerie.cloudCli(['unpublish', 'web']);
});

test('a phone with its internet blocked cannot go out, not even on a connection it already had, but still reaches home; the rules count it', async () => {
  assert.ok((await lab!.fetch('phone', URLS.website4, { timeoutMs: 3000 })).ok);
  // A connection open before the block, asking every 250 ms.
  const held = lab!.spawn('phone', [NODE24, HOLDER, ADDR.website.v4, '80'], { logFile: 'hold-phone.log' });
  const answers = () => held.output().split('\n').filter((l) => l.startsWith('ok ')).length;
  try {
    await waitFor('the open connection to answer', () => answers() >= 2, { timeoutMs: 10_000 });
    await aerie.cloudCli(['firewall', 'policy', 'phone', '--internet', 'block']);
    await waitFor('the phone to be blocked', async () => (await lab!.fetch('phone', URLS.website4, { timeoutMs: 1000 })).status === 0, {
      timeoutMs: 10_000,
      intervalMs: 250,
    });
    const cut = answers();
    await sleep(2000);
    assert.is(answers(), cut, 'the connection opened before the block gets no more answers (8 asked meanwhile)');
  } finally {
    await lab!.stop(held);
  }
  assert.ok((await lab!.fetch('phone', URLS.laptop4, { timeoutMs: 3000 })).ok, 'home is not the internet');
  const stats = JSON.parse((await aerie.cloudCli(['firewall', 'stats', '--json'])).stdout) as {
    subjects: Record<string, { droppedPackets: number }>;
  };
  assert.ok((stats.subjects['phone']?.droppedPackets ?? 0) > 0, JSON.stringify(stats.subjects));
  await aerie.cloudCli(['firewall', 'policy', 'phone', '--internet', 'allow']);
  await waitFor('the phone out again', async () => (await lab!.fetch('phone', URLS.website4, { timeoutMs: 1000 })).ok, { timeoutMs: 10_000, intervalMs: 250 });
});

test.run();
