import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createOpenwrtPlatform } from '../../gateway/platform/openwrt/openwrt.ts';
import { readDesiredFromUci } from '../../gateway/platform/openwrt/readback.ts';
import { readSystemView } from '../../gateway/platform/openwrt/system-view.ts';
import { renderKillSwitch } from '../../gateway/platform/kill-switch.ts';
import type { GatewayDesired } from '../../gateway/platform/platform.ts';
import { UBUS_STATUS, UbusError } from '../../gateway/ubus/error.ts';
import { ValidationError } from '../../shared/errors.ts';
import type { Runner } from '../../shared/run.ts';
import { golden } from './gateway-golden.ts';
import { platformContract } from './gateway-platform-contract.ts';
import { createFakeUbus, writes, type FakeUbusOptions, type Fixture, type RecordedCall } from './lib/fake-uci.ts';
import {
  openwrtConfigured,
  openwrtDefaults,
  openwrtDesired,
  openwrtNetifd,
  openwrtNetifdWithGuest,
  openwrtWithGuest,
  ROUTER_PRIVATE,
  VM_PUBLIC,
} from './lib/openwrt-fixtures.ts';

// The adapter against a fake rpcd (test/unit/lib/fake-uci.ts): what it asks
// rpcd and netifd for, and what the router's UCI looks like afterwards.

const desired = openwrtDesired();

const noWg: Runner = async () => ({ code: 1, stdout: '', stderr: 'Unable to access interface: No such device\n' });

async function setup(fixture: Fixture = openwrtDefaults(), fake: FakeUbusOptions = {}, run: Runner = noWg) {
  const dir = await mkdtemp(join(tmpdir(), 'aerie-owrt-'));
  const sys = createFakeUbus(fixture, { netifd: openwrtNetifd(), ...fake });
  const logs: string[] = [];
  const stateFile = join(dir, 'state.json');
  const forwardFile = join(dir, 'aerie', 'forward.nft');
  const make = () =>
    createOpenwrtPlatform({ ubus: sys.ubus, run, own: { interface: 'aerie', table: 7375 }, stateFile, forwardFile, log: (m) => logs.push(m) });
  return { dir, sys, logs, stateFile, forwardFile, platform: make(), make, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** The calls as golden JSON, with the temporary directory made stable. */
const callsText = (calls: RecordedCall[], dir: string) => `${JSON.stringify(calls, null, 2).replaceAll(dir, '$TMP')}\n`;

const exists = (path: string) => stat(path).then(() => true, () => false);

const section = (snap: ReturnType<ReturnType<typeof createFakeUbus>['snapshot']>, config: string, name: string) =>
  snap[config]?.find((s) => s.name === name);

test('golden: desired state in, the exact ubus calls out (fresh router)', async () => {
  const t = await setup();
  try {
    await t.platform.set(desired);
    golden('openwrt-set-fresh.json', callsText(t.sys.calls, t.dir));
    // One commit per changed config, firewall (the kill switch) first.
    assert.equal(t.sys.events, ['firewall', 'network', 'dhcp']);
    assert.equal(t.sys.pending(), {});
  } finally {
    await t.cleanup();
  }
});

test('golden: kill switch and DNS interception switched off', async () => {
  const t = await setup();
  try {
    await t.platform.set(desired);
    t.sys.calls.length = 0;
    await t.platform.set({ ...desired, killSwitch: false, dns: { ...desired.dns, intercept: false } });
    golden('openwrt-switches-off.json', callsText(t.sys.calls, t.dir));
  } finally {
    await t.cleanup();
  }
});

test('golden: set(null) after set', async () => {
  const t = await setup();
  try {
    await t.platform.set(desired);
    t.sys.calls.length = 0;
    await t.platform.set(null);
    golden('openwrt-set-null.json', callsText(t.sys.calls, t.dir));
  } finally {
    await t.cleanup();
  }
});

test('the UCI it writes: netifd WireGuard interface, peer, rules, routes, fw4 zone, dnsmasq upstream', async () => {
  const t = await setup();
  try {
    await t.platform.set(desired);
    const snap = t.sys.snapshot();
    // As the hand-written fixture (the OpenWrt wiki's way) has them.
    const byHand = openwrtConfigured('unused')['network']!;
    for (const name of ['aerie', 'aerie_peer']) {
      const want = byHand.find((x) => x.name === name)!;
      assert.is(section(snap, 'network', name)?.type, want.type, name);
      assert.equal(section(snap, 'network', name)?.options, want.options, name);
    }
    assert.is(section(snap, 'network', 'aerie')?.options['private_key'], ROUTER_PRIVATE);
    assert.equal(section(snap, 'network', 'aerie_rule_0')?.options, { in: 'lan', lookup: '7375', priority: '7375' });
    assert.is(section(snap, 'network', 'aerie_rule6_0')?.type, 'rule6');
    assert.equal(section(snap, 'network', 'aerie_unreachable')?.options, {
      interface: 'loopback', type: 'unreachable', table: '7375', metric: '65535', target: '0.0.0.0/0',
    });
    assert.equal(section(snap, 'network', 'aerie_overlay_0')?.options, { interface: 'aerie', target: '203.0.113.128/25', table: 'main' });
    assert.equal(section(snap, 'firewall', 'aerie_zone')?.options.mtu_fix, '1');
    assert.equal(section(snap, 'firewall', 'aerie_dns_0')?.options.target, 'DNAT');
    assert.equal(section(snap, 'firewall', 'aerie_dot_0')?.options.dest_port, '853');
    // The LAN's own forwarding to the WAN is switched off, not deleted.
    const lanWan = snap.firewall!.find((s) => s.type === 'forwarding' && s.options.src === 'lan' && s.options.dest === 'wan')!;
    assert.is(lanWan.options.enabled, '0');
    assert.equal(snap.dhcp![0]!.options.server, ['203.0.113.129', '2001:db8:a0::1']);
    assert.is(snap.dhcp![0]!.options.noresolv, '1');
  } finally {
    await t.cleanup();
  }
});

test('the fw4 include: the kill switch rules name the real LAN and WAN devices (PPPoE on its l3_device)', async () => {
  const t = await setup(openwrtDefaults(), { netifd: { ...openwrtNetifd(), wan: { device: 'eth1', l3_device: 'pppoe-wan' } } });
  try {
    await t.platform.set(desired);
    const inc = section(t.sys.snapshot(), 'firewall', 'aerie_forward')!;
    assert.equal(inc.options, { type: 'nftables', path: t.forwardFile, position: 'chain-pre', chain: 'forward' });
    const text = await readFile(t.forwardFile, 'utf8');
    assert.match(text, /^iifname \{ "br-lan" \} oifname \{ "eth1", "pppoe-wan" \} drop comment "aerie kill switch:/m);
    assert.match(text, /^iifname \{ "eth1", "pppoe-wan" \} oifname \{ "br-lan" \} drop comment/m);
    assert.is((await stat(t.forwardFile)).mode & 0o777, 0o644);
    // The WAN comes up on another device (an LTE fallback): the file is rewritten and fw4 reloads it (a commit of firewall).
    t.sys.setNetifd('wan', { device: 'eth1', l3_device: 'wwan0' });
    t.sys.calls.length = 0;
    t.sys.events.length = 0;
    await t.platform.set(desired);
    assert.match(await readFile(t.forwardFile, 'utf8'), /oifname \{ "eth1", "wwan0" \} drop/);
    assert.equal(t.sys.events, ['firewall']);
  } finally {
    await t.cleanup();
  }
});

test('set twice: the second set makes no call that changes anything', async () => {
  const t = await setup();
  try {
    await t.platform.set(desired);
    t.sys.calls.length = 0;
    await t.platform.set(desired);
    assert.equal(writes(t.sys.calls), []);
    assert.equal(t.sys.calls.map((c) => `${c.object} ${c.method}`), [
      'uci get', 'uci get', 'uci get', 'network.interface dump',
    ]);
  } finally {
    await t.cleanup();
  }
});

test('set(null) restores the original UCI exactly, even from a fresh process', async () => {
  const t = await setup();
  try {
    const before = t.sys.snapshot();
    await t.platform.set(desired);
    assert.is((await stat(t.stateFile)).mode & 0o777, 0o600);
    // Another process (the CLI's "disable") knows only the state file.
    await t.make().set(null);
    assert.equal(t.sys.snapshot(), before);
    assert.equal(t.sys.pending(), {});
    assert.is(await exists(t.stateFile), false, 'the state file goes');
    assert.is(await readFile(t.forwardFile, 'utf8').catch(() => null), null, 'the include file goes too');
    // Nothing left to do.
    t.sys.calls.length = 0;
    await t.make().set(null);
    assert.equal(writes(t.sys.calls), []);
  } finally {
    await t.cleanup();
  }
});

test('the home\'s IPv6 /64 from the VM: on the LAN network and announced by odhcpd; set(null) puts both back', async () => {
  const t = await setup();
  try {
    const before = t.sys.snapshot();
    const lan = desired.lan[0]!;
    await t.platform.set({ ...desired, homeV6: { interface: lan.interface, prefix: '2001:db8:a0:2::/64' } });
    const snap = t.sys.snapshot();
    assert.equal(section(snap, 'network', 'lan')?.options['ip6addr'], ['2001:db8:a0:2::1/64']);
    assert.is(section(snap, 'dhcp', 'lan')?.options['ra'], 'server');
    assert.is(section(snap, 'network', 'lan')?.options['ip6assign'], '60', 'the rest of the LAN stays');
    await t.make().set(null);
    assert.equal(t.sys.snapshot(), before);
  } finally {
    await t.cleanup();
  }
});

test("the home's /64 goes beside the LAN's own static IPv6 addresses, and a new /64 replaces only the old one", async () => {
  const fixture = openwrtDefaults();
  fixture.network!.find((x) => x.name === 'lan')!.options!.ip6addr = ['2001:db8:1a::1/64'];
  const t = await setup(fixture);
  try {
    const before = t.sys.snapshot();
    const lan = desired.lan[0]!.interface;
    await t.platform.set({ ...desired, homeV6: { interface: lan, prefix: '2001:db8:a0:2::/64' } });
    assert.equal(section(t.sys.snapshot(), 'network', 'lan')?.options['ip6addr'], ['2001:db8:1a::1/64', '2001:db8:a0:2::1/64']);
    await t.make().set({ ...desired, homeV6: { interface: lan, prefix: '2001:db8:a0:3::/64' } });
    assert.equal(section(t.sys.snapshot(), 'network', 'lan')?.options['ip6addr'], ['2001:db8:1a::1/64', '2001:db8:a0:3::1/64']);
    await t.make().set(null);
    assert.equal(t.sys.snapshot(), before);
  } finally {
    await t.cleanup();
  }
});

test('isolated devices: fw4 rules let them ask the router only for DNS, DHCP and time; the include keeps them off other networks; set(null) removes both', async () => {
  const t = await setup();
  try {
    const before = t.sys.snapshot();
    await t.platform.set({ ...desired, isolated: ['192.0.2.140', '192.0.2.144/28', '2001:db8:1a::140'] });
    const snap = t.sys.snapshot();
    const svc = section(snap, 'firewall', 'aerie_iso4_svc_0');
    const drop = section(snap, 'firewall', 'aerie_iso4_0');
    assert.equal(
      [svc?.type, svc?.options['src'], svc?.options['src_ip'], svc?.options['family'], svc?.options['proto'], svc?.options['dest_port'], svc?.options['target']],
      ['rule', 'lan', ['192.0.2.140/32', '192.0.2.144/28'], 'ipv4', 'tcp udp', '53 67 123 547', 'ACCEPT'],
    );
    assert.equal([drop?.options['src_ip'], drop?.options['dest'], drop?.options['target']], [['192.0.2.140/32', '192.0.2.144/28'], undefined, 'DROP']);
    assert.equal(section(snap, 'firewall', 'aerie_iso6_0')?.options['src_ip'], ['2001:db8:1a::140/128']);
    const names = snap['firewall']!.map((x) => x.name);
    assert.ok(names.indexOf('aerie_iso4_svc_0') < names.indexOf('aerie_iso4_0'), 'the accept comes first');
    const include = await readFile(t.forwardFile, 'utf8');
    assert.match(include, /ip saddr \{ 192\.0\.2\.140\/32, 192\.0\.2\.144\/28 \} ct direction original drop comment "isolated device:/);
    // Nobody isolated any more: the rules go, the store is as before once Aerie is removed.
    await t.platform.set(desired);
    assert.not.ok(t.sys.snapshot()['firewall']!.some((x) => x.name.startsWith('aerie_iso')));
    assert.not.match(await readFile(t.forwardFile, 'utf8'), /isolated/);
    await t.make().set(null);
    assert.equal(t.sys.snapshot(), before);
    // A malformed address is refused before anything changes.
    const err = await t.platform.set({ ...desired, isolated: ['192.0.2.300'] }).catch((e: unknown) => e);
    assert.ok(err instanceof ValidationError && err.field === 'isolated[0]', String(err));
    assert.equal(t.sys.snapshot(), before);
  } finally {
    await t.cleanup();
  }
});

test('kill switch off and on again: the LAN forwarding comes back as it was, the fallback routes and kill switch rules go', async () => {
  const fixture = openwrtDefaults();
  fixture.firewall!.find((s) => s.type === 'forwarding')!.options!.enabled = '1';
  const t = await setup(fixture);
  try {
    const before = t.sys.snapshot();
    await t.platform.set(desired);
    assert.is((await t.platform.show('aerie')).killSwitch, true);
    await t.platform.set({ ...desired, killSwitch: false });
    let snap = t.sys.snapshot();
    assert.is(snap.firewall!.find((s) => s.type === 'forwarding' && s.options.dest === 'wan')!.options.enabled, '1');
    assert.is(section(snap, 'network', 'aerie_unreachable'), undefined);
    // The include stays, for anti-spoofing; only the kill switch's rules leave it.
    assert.ok(section(snap, 'firewall', 'aerie_forward'));
    const text = await readFile(t.forwardFile, 'utf8');
    assert.not.match(text, /kill switch:/);
    assert.match(text, /anti-spoofing:/);
    const s = await t.platform.show('aerie');
    assert.is(s.killSwitch, false);
    assert.is(s.dnsIntercept, true);
    await t.platform.set(desired);
    snap = t.sys.snapshot();
    assert.is(snap.firewall!.find((s) => s.type === 'forwarding' && s.options.dest === 'wan')!.options.enabled, '0');
    assert.is((await t.platform.show('aerie')).killSwitch, true);
    await t.platform.set(null);
    assert.equal(t.sys.snapshot(), before);
  } finally {
    await t.cleanup();
  }
});

test('an error from rpcd midway: the staged changes are reverted, nothing half-applied remains', async () => {
  let n = 0;
  const t = await setup(openwrtDefaults(), {
    fail: (c) => (c.object === 'uci' && ['add', 'set', 'delete'].includes(c.method) && ++n === 6 ? new UbusError(UBUS_STATUS.UNKNOWN_ERROR, 'simulated') : undefined),
  });
  try {
    const before = t.sys.snapshot();
    let error: Error | undefined;
    await t.platform.set(desired).catch((e: Error) => (error = e));
    assert.ok(error, 'set rejects');
    assert.match(error!.message, /^uci (add|set|delete) (network|firewall|dhcp)\.\w+ failed: UNKNOWN_ERROR/);
    assert.equal(t.sys.snapshot(), before);
    assert.equal(t.sys.pending(), {});
    assert.equal(t.sys.events, [], 'nothing committed');
    assert.ok(t.sys.calls.some((c) => c.method === 'revert'));
    assert.is(await exists(t.stateFile), false, 'the state file goes');
    assert.ok(t.logs.some((l) => /reverted/.test(l)));
  } finally {
    await t.cleanup();
  }
});

test('the include file cannot be written: the staged UCI is reverted too', async () => {
  const t = await setup();
  try {
    const before = t.sys.snapshot();
    await writeFile(join(t.dir, 'aerie'), 'a file where the directory should be\n');
    await t.platform.set(desired).then(
      () => assert.unreachable('should fail'),
      (e: NodeJS.ErrnoException) => assert.ok(e.code === 'EEXIST' || e.code === 'ENOTDIR', e.message),
    );
    assert.equal(t.sys.snapshot(), before);
    assert.equal(t.sys.pending(), {});
    assert.is(await exists(t.stateFile), false);
  } finally {
    await t.cleanup();
  }
});

test('uncommitted changes of someone else: refused before anything changes', async () => {
  const t = await setup();
  try {
    // Someone ran `uci set firewall...` and did not commit.
    await t.sys.ubus.call('uci', 'set', { config: 'firewall', section: '@defaults[0]', values: { drop_invalid: '1' } });
    t.sys.calls.length = 0;
    await t.platform.set(desired).then(
      () => assert.unreachable('should refuse'),
      (e: Error) => assert.match(e.message, /firewall has uncommitted changes/),
    );
    assert.equal(writes(t.sys.calls), []);
  } finally {
    await t.cleanup();
  }
});

test('staged changes of our own, left by a pass that died halfway, are dropped and the pass goes on', async () => {
  const t = await setup();
  try {
    await t.sys.ubus.call('uci', 'add', { config: 'network', type: 'rule', name: 'aerie_rule_0', values: { in: 'wan' } });
    await t.platform.set(desired);
    assert.equal(t.sys.pending(), {});
    assert.is(section(t.sys.snapshot(), 'network', 'aerie_rule_0')?.options.in, 'lan');
    assert.ok(t.logs.some((l) => /reverted the uncommitted changes of network/.test(l)));
  } finally {
    await t.cleanup();
  }
});

test('a new peer generation restarts the interface (netifd re-creates the device); a fresh process does not', async () => {
  const t = await setup();
  try {
    await t.platform.set(desired);
    t.sys.calls.length = 0;
    await t.platform.set({ ...desired, peer: { ...desired.peer, generation: 1 } });
    assert.equal(writes(t.sys.calls).map((c) => `${c.object} ${c.method}`), ['network.interface.aerie down', 'network.interface.aerie up']);
    t.sys.calls.length = 0;
    await t.make().set({ ...desired, peer: { ...desired.peer, generation: 2 } });
    assert.equal(writes(t.sys.calls), []);
  } finally {
    await t.cleanup();
  }
});

test('a changed endpoint: the peer section is updated, committed, and the interface restarted to read it', async () => {
  const t = await setup();
  try {
    await t.platform.set(desired);
    t.sys.calls.length = 0;
    await t.platform.set({ ...desired, peer: { ...desired.peer, endpoint: '[2001:db8::10]:443' } });
    assert.equal(writes(t.sys.calls).map((c) => `${c.object} ${c.method} ${JSON.stringify(c.args)}`), [
      'uci set {"config":"network","section":"aerie_peer","values":{"endpoint_host":"2001:db8::10","endpoint_port":"443"}}',
      'uci commit {"config":"network"}',
      'network reload {}',
      'network.interface.aerie down {}',
      'network.interface.aerie up {}',
    ]);
  } finally {
    await t.cleanup();
  }
});

test('LAN devices map to UCI networks through netifd; an unknown device is refused before any change', async () => {
  const t = await setup();
  try {
    await t.platform.set({ ...desired, lan: [{ interface: 'br-guest', prefixes: [] }] }).then(
      () => assert.unreachable(),
      (e: unknown) => {
        assert.ok(e instanceof ValidationError);
        assert.is(e.field, 'lan[0].interface');
      },
    );
    assert.equal(writes(t.sys.calls), []);
    // Down, netifd knows no l3_device: UCI's device option still tells.
    t.sys.setNetifd('lan', { up: false, l3_device: '' });
    await t.platform.set(desired);
    assert.is(section(t.sys.snapshot(), 'network', 'aerie_rule_0')?.options.in, 'lan');
  } finally {
    await t.cleanup();
  }
});

test('a foreign interface of the same name is never taken over', async () => {
  const fixture = openwrtDefaults();
  fixture.network!.push({ name: 'aerie', type: 'interface', options: { proto: 'static', device: 'eth3' } });
  const t = await setup(fixture);
  try {
    await t.platform.set(desired).then(
      () => assert.unreachable(),
      (e: Error) => assert.match(e.message, /network\.aerie exists and is not Aerie's/),
    );
    assert.equal(writes(t.sys.calls), []);
    // set(null) leaves it alone too.
    await t.platform.set(null);
    assert.ok(section(t.sys.snapshot(), 'network', 'aerie'));
  } finally {
    await t.cleanup();
  }
});

test('UCI fixtures in, the same desired state out', async () => {
  const t = await setup();
  try {
    await t.platform.set(desired);
    assert.equal(readDesiredFromUci(await readSystemView(t.sys.ubus)), desired);
    const off = { ...desired, killSwitch: false, dns: { ...desired.dns, intercept: false } };
    await t.platform.set(off);
    assert.equal(readDesiredFromUci(await readSystemView(t.sys.ubus)), off);
    // Written by hand, as the OpenWrt wiki describes each piece.
    const hand = createFakeUbus(openwrtConfigured('/etc/aerie/forward.nft'), { netifd: openwrtNetifd() });
    assert.equal(readDesiredFromUci(await readSystemView(hand.ubus)), desired);
    const none = createFakeUbus(openwrtDefaults(), { netifd: openwrtNetifd() });
    assert.is(readDesiredFromUci(await readSystemView(none.ubus)), null);
  } finally {
    await t.cleanup();
  }
});

/** The include's rules, without its header comment. */
const ruleLines = async (path: string) => (await readFile(path, 'utf8')).split('\n').filter((l) => l !== '' && !l.startsWith('#'));

// Two LANs, several prefixes of each family, in no particular order.
const twoLans: GatewayDesired = {
  ...desired,
  lan: [
    { interface: 'br-lan', prefixes: ['192.0.2.0/25', '2001:db8:1a::/64', '192.0.2.128/25', '2001:db8:1b::/64'] },
    { interface: 'br-guest', prefixes: ['198.51.100.0/24', '2001:db8:1c::/64'] },
  ],
};
const SPOOF4 =
  'iifname { "br-guest", "br-lan" } oifname "aerie" ip saddr != { 192.0.2.0/25, 192.0.2.128/25, 198.51.100.0/24 } drop' +
  ' comment "aerie anti-spoofing: IPv4 from the LAN into the tunnel whose source is not a LAN address"';
const SPOOF6 =
  'iifname { "br-guest", "br-lan" } oifname "aerie" ip6 saddr != { 2001:db8:1a::/64, 2001:db8:1b::/64, 2001:db8:1c::/64 } drop' +
  ' comment "aerie anti-spoofing: IPv6 from the LAN into the tunnel whose source is not a LAN address"';

test('anti-spoofing: the include drops LAN packets into the tunnel from any source outside the LAN prefixes, both families, kill switch on or off', async () => {
  const t = await setup(openwrtWithGuest(), { netifd: openwrtNetifdWithGuest() });
  try {
    await t.platform.set(twoLans);
    let lines = await ruleLines(t.forwardFile);
    assert.equal(lines.slice(0, 2), [SPOOF4, SPOOF6]);
    assert.equal(lines.slice(2).map((l) => /comment "([^:]+):/.exec(l)?.[1]), ['aerie kill switch', 'aerie kill switch']);
    // nft refuses a rule comment over 128 characters, and fw4 the whole ruleset with it.
    for (const l of lines) assert.ok(/comment "(.*)"$/.exec(l)![1]!.length <= 128, l);
    assert.is((await t.platform.show('aerie')).killSwitch, true);

    const off = { ...twoLans, killSwitch: false };
    await t.platform.set(off);
    lines = await ruleLines(t.forwardFile);
    assert.equal(lines, [SPOOF4, SPOOF6]);
    assert.equal(section(t.sys.snapshot(), 'firewall', 'aerie_forward')?.options, {
      type: 'nftables', path: t.forwardFile, position: 'chain-pre', chain: 'forward',
    });
    assert.is((await t.platform.show('aerie')).killSwitch, false);
    assert.equal(readDesiredFromUci(await readSystemView(t.sys.ubus)), off);
  } finally {
    await t.cleanup();
  }
});

test('anti-spoofing: the same rules as the Linux adapter, and a family without a LAN prefix is dropped whole', async () => {
  const t = await setup();
  try {
    const cases: GatewayDesired['lan'][] = [
      desired.lan,
      [{ interface: 'br-lan', prefixes: ['192.0.2.0/24'] }],
      [{ interface: 'br-lan', prefixes: ['2001:db8:1a::/64', '2001:db8:1a::/64'] }],
      [{ interface: 'br-lan', prefixes: [] }],
    ];
    for (const lan of cases) {
      await t.platform.set({ ...desired, lan });
      const linux = renderKillSwitch({
        tunnel: 'aerie', lanInterfaces: ['br-lan'], lanPrefixes: lan.flatMap((l) => l.prefixes), killSwitch: true, mtu: 1420,
      });
      const matchOf = (l: string) => l.trim().replace(/ comment ".*"$/, '');
      const want = linux.split('\n').filter((l) => l.includes('(anti-spoofing)')).map(matchOf);
      assert.equal((await ruleLines(t.forwardFile)).filter((l) => l.includes('anti-spoofing')).map(matchOf), want, JSON.stringify(lan));
    }
    assert.equal((await ruleLines(t.forwardFile)).slice(0, 2), [
      'iifname { "br-lan" } oifname "aerie" meta nfproto ipv4 drop comment "aerie anti-spoofing: IPv4 from the LAN into the tunnel as the LAN has no prefix of that family"',
      'iifname { "br-lan" } oifname "aerie" meta nfproto ipv6 drop comment "aerie anti-spoofing: IPv6 from the LAN into the tunnel as the LAN has no prefix of that family"',
    ]);
  } finally {
    await t.cleanup();
  }
});

test('a LAN prefix change rewrites the include, and the firewall commit makes fw4 load it', async () => {
  const t = await setup();
  try {
    await t.platform.set({ ...desired, killSwitch: false });
    t.sys.events.length = 0;
    await t.platform.set({ ...desired, killSwitch: false, lan: [{ interface: 'br-lan', prefixes: ['192.0.2.0/24', '203.0.113.0/26', '2001:db8:1a::/64'] }] });
    assert.ok(t.sys.events.includes('firewall'), t.sys.events.join());
    assert.match((await ruleLines(t.forwardFile))[0]!, /ip saddr != \{ 192\.0\.2\.0\/24, 203\.0\.113\.0\/26 \} drop/);
    // The IPv6 prefix goes: its route (network) and, committed first, every IPv6 source (firewall).
    t.sys.events.length = 0;
    await t.platform.set({ ...desired, killSwitch: false, lan: [{ interface: 'br-lan', prefixes: ['192.0.2.0/24'] }] });
    assert.equal(t.sys.events, ['firewall', 'network']);
    assert.match((await ruleLines(t.forwardFile))[1]!, /meta nfproto ipv6 drop/);
  } finally {
    await t.cleanup();
  }
});

test('set(null) with the kill switch off: the whole store as it was, the include file gone, from a fresh process', async () => {
  const t = await setup(openwrtWithGuest(), { netifd: openwrtNetifdWithGuest() });
  try {
    const before = t.sys.snapshot();
    await t.platform.set({ ...twoLans, killSwitch: false });
    assert.equal(await ruleLines(t.forwardFile), [SPOOF4, SPOOF6]);
    await t.make().set(null);
    assert.equal(t.sys.snapshot(), before);
    assert.equal(t.sys.pending(), {});
    assert.is(await exists(t.forwardFile), false);
    assert.is(await exists(t.stateFile), false);
  } finally {
    await t.cleanup();
  }
});

test('show(): the kill switch reads as off while the include is there, even where the LAN has no forwarding to the WAN', async () => {
  const fixture = openwrtDefaults();
  fixture.firewall = fixture.firewall!.filter((s) => s.type !== 'forwarding');
  const t = await setup(fixture);
  try {
    await t.platform.set({ ...desired, killSwitch: false });
    assert.ok(section(t.sys.snapshot(), 'firewall', 'aerie_forward'));
    assert.is((await t.platform.show('aerie')).killSwitch, false);
    assert.is(readDesiredFromUci(await readSystemView(t.sys.ubus))?.killSwitch, false);
    await t.platform.set(desired);
    assert.is((await t.platform.show('aerie')).killSwitch, true);
  } finally {
    await t.cleanup();
  }
});

test('the include section of an older version (aerie_kill_switch) gives way to aerie_forward', async () => {
  const fixture = openwrtDefaults();
  const path = '/etc/aerie/forward.nft';
  fixture.firewall!.push({ name: 'aerie_kill_switch', type: 'include', options: { type: 'nftables', path, position: 'chain-pre', chain: 'forward' } });
  const t = await setup(fixture);
  try {
    await t.platform.set(desired);
    const snap = t.sys.snapshot();
    assert.is(section(snap, 'firewall', 'aerie_kill_switch'), undefined);
    assert.ok(section(snap, 'firewall', 'aerie_forward'));
  } finally {
    await t.cleanup();
  }
});

test('show(): netifd status and wg dump; no interface is not an error', async () => {
  const now = 1_800_000_000;
  const run: Runner = async (argv) => {
    if (argv.join(' ') !== 'wg show aerie dump') return { code: 1, stdout: '', stderr: 'no\n' };
    return {
      code: 0,
      stdout: `${ROUTER_PRIVATE}\tpub\t51820\toff\n${VM_PUBLIC}\t(none)\t203.0.113.10:51820\t0.0.0.0/0,::/0\t${now}\t1024\t2048\t25\n`,
      stderr: '',
    };
  };
  const t = await setup(openwrtDefaults(), {}, run);
  try {
    await t.platform.set(desired);
    const s = await t.platform.show('aerie');
    assert.equal(s, {
      present: true,
      up: true,
      killSwitch: true,
      dnsIntercept: true,
      peers: [{ publicKey: VM_PUBLIC, endpoint: '203.0.113.10:51820', latestHandshake: now, rxBytes: 1024, txBytes: 2048 }],
    });
    assert.not.ok(JSON.stringify(s).includes(ROUTER_PRIVATE));
    const none = await setup();
    try {
      assert.equal(await none.platform.show('aerie'), { present: false, up: false, killSwitch: false, dnsIntercept: false, peers: [] });
    } finally {
      await none.cleanup();
    }
  } finally {
    await t.cleanup();
  }
});

test('the private key is never logged', async () => {
  const t = await setup();
  try {
    await t.platform.set(desired);
    await t.platform.set({ ...desired, peer: { ...desired.peer, generation: 1 } });
    await t.platform.set(null);
    assert.ok(t.logs.length > 0);
    for (const l of t.logs) assert.not.ok(l.includes(ROUTER_PRIVATE), l);
  } finally {
    await t.cleanup();
  }
});

// The contract every adapter meets, here against the fake rpcd.
platformContract('openwrt', async () => {
  const t = await setup();
  let mark = 0;
  return {
    platform: t.platform,
    desired: (d: Partial<GatewayDesired> = {}) => ({ ...openwrtDesired(), ...d }),
    mark: () => void (mark = t.sys.calls.length),
    changes: () => writes(t.sys.calls.slice(mark)).map((c) => `${c.object} ${c.method} ${JSON.stringify(c.args)}`),
    owned: async () => {
      const snap = t.sys.snapshot();
      const ours = Object.entries(snap).flatMap(([config, list]) =>
        list.filter((s) => s.name.startsWith('aerie')).map((s) => `${config}.${s.name}`),
      );
      const file = await readFile(t.forwardFile, 'utf8').then(() => [t.forwardFile], () => []);
      return [...ours, ...file];
    },
    cleanup: t.cleanup,
  };
});

test.run();
