import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { renderForwardInclude } from '../../gateway/platform/openwrt/forward-include.ts';
import { addresses, eventuallyPings, link, NetnsSet, pings, sleep, type Netns } from './gateway-netns.ts';
import { requireRoot, setupOnce } from './setup.ts';

/**
 * The rules the OpenWrt adapter hands fw4 (its include, pasted at the top of
 * fw4's forward chain), in the real kernel with real packets, inside a chain
 * shaped as fw4's: the include, then the established/related accept, then
 * the zone forwardings, policy drop.
 *
 *   lan (192.0.2.130, spoofs 198.51.100.9) ── lan0 [router] aerie ── vm (203.0.113.129)
 *   iot (198.51.100.140) ── lan1 ──┘   └── wan0 ── wan (198.51.100.1)
 */

const nets = new NetnsSet(`aerie-t-owrt-${process.pid}`);
let lan: Netns;
let router: Netns;
let vm: Netns;
let wan: Netns;
let iot: Netns;
const IOT = '198.51.100.140';

const VM = '203.0.113.129';
const WAN = '198.51.100.1';
const SPOOF = '198.51.100.9';

/** fw4's forward chain with our include at its top (position chain-pre). */
function fw4Like(include: string): string {
  const rules = include.split('\n').filter((l) => l && !l.startsWith('#'));
  return [
    'table inet fw4 {',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    ...rules.map((r) => `    ${r}`),
    '    ct state vmap { established : accept, related : accept }',
    '    iifname { "lan0", "lan1" } oifname { "aerie", "wan0", "lan0", "lan1" } accept',
    '  }',
    '}',
    '',
  ].join('\n');
}

async function load(killSwitch: boolean, isolated: string[] = []): Promise<void> {
  const include = renderForwardInclude({
    tunnel: 'aerie',
    lanDevices: ['lan0', 'lan1'],
    lanPrefixes: ['192.0.2.128/25', '198.51.100.128/26'],
    wanDevices: killSwitch ? ['wan0'] : null,
    isolated,
  });
  await router.run(['nft', 'flush', 'ruleset']);
  await router.run(['nft', '-f', '-'], { input: fw4Like(include) });
}

const pingFrom = async (source: string, dst: string) =>
  (await lan.run(['ping', '-c', '1', '-W', '1', '-n', '-q', '-I', source, dst], { allowFail: true, timeoutMs: 5000 })).code === 0;

setupOnce(test, async () => {
  requireRoot('the fw4 include test', ['ip', 'nft', 'ping']);
  [lan, router, vm, wan, iot] = [await nets.add('lan'), await nets.add('router'), await nets.add('vm'), await nets.add('wan'), await nets.add('iot')];
  await link(lan, 'eth0', router, 'lan0');
  await link(iot, 'eth0', router, 'lan1');
  await addresses(iot, 'eth0', `${IOT}/26`);
  await addresses(router, 'lan1', '198.51.100.129/26');
  await iot.ip('route', 'add', 'default', 'via', '198.51.100.129');
  await link(router, 'aerie', vm, 'eth0');
  await link(router, 'wan0', wan, 'eth0');
  await addresses(lan, 'eth0', '192.0.2.130/25', `${SPOOF}/32`);
  await addresses(router, 'lan0', '192.0.2.129/25');
  await addresses(router, 'aerie', '203.0.113.130/25');
  await addresses(router, 'wan0', '198.51.100.2/30');
  await addresses(vm, 'eth0', `${VM}/25`);
  await addresses(wan, 'eth0', `${WAN}/30`);
  await lan.ip('route', 'add', 'default', 'via', '192.0.2.129');
  await vm.ip('route', 'add', 'default', 'via', '203.0.113.130');
  await wan.ip('route', 'add', 'default', 'via', '198.51.100.2');
  await router.run(['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
});

test.after(() => nets.cleanup());

test('anti-spoofing: into the tunnel only from a LAN address', async () => {
  await load(false);
  assert.ok(await eventuallyPings(lan, VM), 'a LAN address reaches the VM through the tunnel');
  assert.not.ok(await pingFrom(SPOOF, VM), 'another source is dropped before the tunnel');
  assert.ok(await pingFrom('192.0.2.130', VM));
});

test('the kill switch cuts a flow that was already open, in a chain where established flows are accepted', async () => {
  await load(false);
  assert.ok(await eventuallyPings(lan, WAN), 'without the kill switch the WAN answers');
  // One ping process is one ICMP flow: established for conntrack after its first reply.
  const flow = lan.run(['ping', '-c', '25', '-i', '0.2', '-W', '1', '-n', '-q', WAN], { allowFail: true, timeoutMs: 15_000 });
  await sleep(1500);
  await load(true);
  const summary = /(\d+) packets transmitted, (\d+) received/.exec((await flow).stdout);
  assert.ok(summary, 'ping printed its summary');
  const [sent, received] = [Number(summary![1]), Number(summary![2])];
  assert.ok(received >= 3, `the flow was open before (${received} of ${sent} answered)`);
  assert.ok(sent - received >= 10, `and cut after (${received} of ${sent} answered)`);
  assert.ok(await pings(lan, VM), 'the tunnel still works');
  assert.not.ok(await pingFrom(SPOOF, VM), 'and anti-spoofing still holds');
});

test('an isolated device on its own network answers the laptop but starts nothing towards it; the tunnel stays open to it', async () => {
  await load(true, [IOT]);
  assert.ok(await eventuallyPings(lan, IOT), 'the laptop reaches the isolated device, and its replies come back');
  assert.not.ok(await eventuallyPings(iot, '192.0.2.130', 3), 'the isolated device does not reach the laptop, in three tries');
  assert.ok(await eventuallyPings(iot, VM), 'into the tunnel it goes (the VM fences it in there)');
  await load(true, []);
  assert.ok(await eventuallyPings(iot, '192.0.2.130'), 'no longer isolated: it reaches the laptop');
  // A flow it had open when it was isolated is cut as well (one ping process is one ICMP flow).
  const flow = iot.run(['ping', '-c', '25', '-i', '0.2', '-W', '1', '-n', '-q', '192.0.2.130'], { allowFail: true, timeoutMs: 15_000 });
  await sleep(1500);
  await load(true, [IOT]);
  const summary = /(\d+) packets transmitted, (\d+) received/.exec((await flow).stdout);
  assert.ok(summary, 'ping printed its summary');
  const [sent, received] = [Number(summary![1]), Number(summary![2])];
  assert.ok(received >= 3 && sent - received >= 10, `open before, cut after (${received} of ${sent} answered)`);
});

test.run();
