// `aerie-cloud egress …` run from source, through a daemon's control socket and
// on a state directory alone; mistakes are one line on stderr.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPair } from '../../shared/keys.ts';
import { createCore } from '../../cloud/core/core.ts';
import { runCloudCli as cli, cloudCliOk as ok, cloudCliRefuses, withControlSocket as withDaemon } from './lib/cloud-cli.ts';
import { pairRequest, vmStates } from './vm-state.ts';

const freshVm = vmStates(test, 'egress-cli');

const WAN = {
  addresses: ['203.0.113.10', '203.0.113.11', '203.0.113.12', '2001:db8:203::10'],
  prefixes: ['203.0.113.0/25', '2001:db8:203::/64'],
};

/** A state directory with the gateway "home", owner "phone"; a core on it with a fixed WAN, as the daemon would have. */
function setup() {
  const vm = freshVm();
  const core = createCore({ store: vm.openAgain(), config: vm.state, egressWan: () => WAN });
  const { code } = core.pairing.createCode();
  core.pairing.redeem(pairRequest(code));
  core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey });
  return { dir: vm.dir, core };
}

test('with a daemon: pool, on, rotate, schedule, exceptions, per device, off', async () => {
  const { dir, core } = setup();
  await withDaemon(dir, core, async () => {
    assert.is(
      await ok(dir, 'egress'),
      "Temporary address: off; websites see the VM's main address.\nPool: none (set one with `aerie-cloud egress pool`)\nCurrent: none\nRotation: by hand (`aerie-cloud egress rotate`)\nExceptions: none\n",
    );
    const pool = await ok(dir, 'egress', 'pool', '--v6-prefix', '2001:db8:203::/64', '--v4', '203.0.113.11', '--v4', '203.0.113.12');
    assert.match(pool, /^Pool: IPv6 2001:db8:203::\/64; IPv4 203\.0\.113\.11, 203\.0\.113\.12$/m);
    assert.match(pool, /^Current: 203\.0\.113\.11, 2001:db8:203:0:[0-9a-f:]+ \(picked /m);
    // Only the IPv4 part changes; the prefix stays.
    await ok(dir, 'egress', 'pool', '--v4', '203.0.113.12');
    assert.equal(core.egress.get().pool, { v6Prefix: '2001:db8:203::/64', v4: ['203.0.113.12'] });
    assert.match(await ok(dir, 'egress', 'on'), /^Temporary address: on for every device and LAN host\.$/m);
    const before = core.egress.get().current.v6!;
    const rotated = await ok(dir, 'egress', 'rotate');
    const after = core.egress.get().current.v6!;
    assert.is.not(after, before);
    assert.is(rotated, `New connections now leave with 203.0.113.12 and ${after}; open ones keep their address.\n`);
    assert.match(await ok(dir, 'egress', 'schedule', '1h'), /^Rotation: every 1h, next at /m);
    assert.is(await ok(dir, 'egress', 'except', 'add', 'Example-Bank.com'), "example-bank.com and its subdomains will see the VM's main address.\n");
    assert.is(await ok(dir, 'egress', 'except', 'add', '198.51.100.0/24'), "198.51.100.0/24 will see the VM's main address.\n");
    assert.is(await ok(dir, 'egress', 'except', 'list'), 'Exceptions: example-bank.com, 198.51.100.0/24\n');
    assert.is(await ok(dir, 'egress', 'except', 'remove', '198.51.100.0/24'), '198.51.100.0/24 is no longer an exception.\n');
    assert.match(await ok(dir, 'egress', 'off'), /^Temporary address: off/m);
    assert.match(await ok(dir, 'egress', 'on', '--device', 'phone'), /^Temporary address: on for phone\.$/m);
    const json = JSON.parse(await ok(dir, 'egress', '--json'));
    assert.equal([json.mode, json.devices, json.schedule, json.exceptions], ['devices', ['phone'], '1h', { domains: ['example-bank.com'], prefixes: [] }]);
    assert.equal(core.egress.firewall(), { v4: '203.0.113.12', v6: after, sources: ['phone'], exceptPrefixes: [] });
  });
});

test('without a daemon the state directory is changed; a pool the WAN does not have is refused', async () => {
  const { dir, core } = setup();
  core.egress.setPool({ v4: ['203.0.113.11'] });
  await ok(dir, 'egress', 'on', '--device', 'phone');
  await ok(dir, 'egress', 'schedule', '30m');
  assert.equal([core.egress.get().mode, core.egress.get().schedule], ['devices', '30m']);
  // This machine's WAN is not the lab VM's: documentation prefixes are not on it.
  const r = await cli(dir, 'egress', 'pool', '--v6-prefix', '2001:db8:99::/64');
  assert.is(r.status, 1);
  assert.match(r.stderr, /^aerie-cloud: v6Prefix: 2001:db8:99::\/64 is not the VM's|^aerie-cloud: checking the pool needs the VM's WAN addresses/);
  assert.equal(core.egress.get().pool, { v6Prefix: null, v4: ['203.0.113.11'] });
});

test('mistakes: one line saying what is wrong, exit 1, nothing stored', async () => {
  const { dir, core } = setup();
  await withDaemon(dir, core, async () => {
    const usage: [string[], RegExp][] = [
      [['egress', 'bogus'], /^aerie-cloud: unknown egress command: bogus$/],
      [['egress', 'rotate', 'now'], /^aerie-cloud: egress rotate takes no argument, got now$/],
      [['egress', 'on', '--v4', '203.0.113.11'], /^aerie-cloud: --v6-prefix and --v4 go with egress pool only$/],
      [['egress', 'rotate', '--device', 'phone'], /^aerie-cloud: --device goes with egress on and egress off only$/],
      [['egress', 'except', 'add'], /^aerie-cloud: expected: egress except add DOMAIN\|PREFIX$/],
      [['egress', 'except'], /^aerie-cloud: egress except needs add, remove or list$/],
      [['egress', 'schedule', '1h', '2h'], /^aerie-cloud: expected: egress schedule/],
    ];
    await cloudCliRefuses(dir, usage, { usage: true });
    const refused: [string[], RegExp][] = [
      [['egress', 'on'], /^aerie-cloud: there is no egress pool yet/],
      [['egress', 'rotate'], /^aerie-cloud: there is no egress pool yet/],
      [['egress', 'pool', '--v6-prefix', '2001:db8:99::/64'], /^aerie-cloud: v6Prefix: 2001:db8:99::\/64 is not the VM's/],
      [['egress', 'pool', '--v4', '198.51.100.7'], /^aerie-cloud: v4\[0\]: 198\.51\.100\.7 is not an address of the VM's WAN interface/],
      [['egress', 'schedule', '2m'], /^aerie-cloud: every: 2m is too often/],
      [['egress', 'except', 'add', '198.51.100.1/24'], /^aerie-cloud: value: .*198\.51\.100\.0\/24/],
      [['egress', 'except', 'remove', 'example.com'], /^aerie-cloud: example\.com is not an exception$/],
      [['egress', 'off', '--device', 'nobody'], /^aerie-cloud: "nobody" does not use the temporary address$/],
    ];
    await cloudCliRefuses(dir, refused);
  });
  const info = core.egress.get();
  assert.equal([info.mode, info.pool, info.schedule, info.exceptions], ['off', { v6Prefix: null, v4: [] }, 'off', { domains: [], prefixes: [] }]);
});

test.run();
