// Lab: the VM's firewall. The internet cannot reach the VM's tunnel services
// (API, DNS, MQTT) or any home device through the VM, even with a route that
// points at them; a home service is reachable from the internet only while it
// is published; a LAN host fenced in ("isolated") reaches only DNS and MQTT on
// the VM, while the owner's phone still reaches it; a device with its internet
// blocked cannot go out; and the firewall counts what it refused per device.
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
/** A second address of the laptop's: the "IoT device" the owner fences in. */
const IOT = { v4: '192.0.2.140' };
const PUBLIC_PORT = 8444;
const CAMERA_PORT = 7000;
const TAG_SERVER = `${REPO_ROOT}/test/lab/servers/tag-server.ts`;

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
  aerie = await pairedAerie(lab);
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
  await aerie.cloudCli(['unpublish', 'laptop-web']);
  await waitFor('the service to be gone', async () => (await lab!.fetch('internet', `http://${VM}:${PUBLIC_PORT}/`, { timeoutMs: 1000 })).status === 0, {
    timeoutMs: 10_000,
    intervalMs: 200,
  });
});

test('an isolated LAN host reaches DNS and MQTT on the VM but not the internet; the phone still reaches it', async () => {
  await lab!.run('lan', ['ip', 'addr', 'add', `${IOT.v4}/25`, 'dev', 'eth0'], { allowFail: true });
  await aerie.cloudCli(['firewall', 'host', 'add', 'camera', IOT.v4]);
  const viaIot = (url: string) => lab!.fetch('lan', url, { timeoutMs: 1500, from: IOT.v4 });
  assert.ok((await viaIot(URLS.website4)).ok, 'before: the camera goes out');
  await aerie.cloudCli(['firewall', 'policy', 'camera', '--isolated', 'on']);
  await waitFor('the camera to be fenced in', async () => (await viaIot(URLS.website4)).status === 0, { timeoutMs: 10_000, intervalMs: 250 });
  assert.is((await viaIot(`http://${TUNNEL}/v1/health`)).status, 0, 'not the API either');
  // The router intercepts the LAN's DNS and asks the VM; the camera's names still resolve.
  const dns = await dig(lab!, 'lan', ADDR.routerLan.v4, 'phone.aerie.internal', { extra: ['-b', IOT.v4], timeoutS: 2 });
  assert.is(dns.status, 'NOERROR', `DNS through the router and the VM: ${JSON.stringify(dns)}`);
  const mqtt = await probePort(lab!, 'lan', 'tcp', TUNNEL, 1883, 2000, IOT.v4);
  assert.ok(['connected', 'answer'].includes(mqtt.result), `MQTT on the VM: ${JSON.stringify(mqtt)}`);
  // The laptop (another address of the home) is not fenced in; the owner's phone may reach the camera.
  assert.ok((await lab!.fetch('lan', URLS.website4, { timeoutMs: 3000 })).ok, 'the laptop still goes out');
  const camera = lab!.spawn('lan', [NODE24, TAG_SERVER, 'camera', String(CAMERA_PORT), IOT.v4, '--tcp-only'], { logFile: 'camera.log' });
  try {
    await waitFor('the camera\'s service', async () => (await probePort(lab!, 'lan', 'tcp', IOT.v4, CAMERA_PORT, 1000)).result === 'answer', {
      timeoutMs: 10_000,
      intervalMs: 200,
    });
    const r = await probePort(lab!, 'phone', 'tcp', IOT.v4, CAMERA_PORT, 3000);
    assert.equal([r.result, r.data], ['answer', 'camera'], `the phone reaches the camera: ${JSON.stringify(r)}`);
  } finally {
    await lab!.stop(camera);
  }
  await aerie.cloudCli(['firewall', 'policy', 'camera', '--isolated', 'off']);
  await waitFor('the camera out again', async () => (await viaIot(URLS.website4)).ok, { timeoutMs: 10_000, intervalMs: 250 });
});

test('a phone with its internet blocked cannot go out but still reaches home; the rules count it', async () => {
  assert.ok((await lab!.fetch('phone', URLS.website4, { timeoutMs: 3000 })).ok);
  await aerie.cloudCli(['firewall', 'policy', 'phone', '--internet', 'block']);
  await waitFor('the phone to be blocked', async () => (await lab!.fetch('phone', URLS.website4, { timeoutMs: 1000 })).status === 0, {
    timeoutMs: 10_000,
    intervalMs: 250,
  });
  assert.ok((await lab!.fetch('phone', URLS.laptop4, { timeoutMs: 3000 })).ok, 'home is not the internet');
  const stats = JSON.parse((await aerie.cloudCli(['firewall', 'stats', '--json'])).stdout) as {
    subjects: Record<string, { droppedPackets: number }>;
  };
  assert.ok((stats.subjects['phone']?.droppedPackets ?? 0) > 0, JSON.stringify(stats.subjects));
  await aerie.cloudCli(['firewall', 'policy', 'phone', '--internet', 'allow']);
  await waitFor('the phone out again', async () => (await lab!.fetch('phone', URLS.website4, { timeoutMs: 1000 })).ok, { timeoutMs: 10_000, intervalMs: 250 });
});

test.run();
