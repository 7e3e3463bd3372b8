// `aerie-cloud firewall …`, `publish`, `unpublish`, `publishes` run from
// source, on a state directory alone and through a daemon's control socket;
// print, stats and apply need the daemon; mistakes are one line on stderr.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPair } from '../../shared/keys.ts';
import type { FirewallLive } from '../../cloud/api/firewall.ts';
import { createCore } from '../../cloud/core/core.ts';
import { runCloudCli as cli, cloudCliOk as ok, cloudCliRefuses, withControlSocket } from './lib/cloud-cli.ts';
import { pairRequest, vmStates } from './vm-state.ts';

const freshVm = vmStates(test, 'fw-cli');

/** A state directory with the gateway "home" (192.0.2.128/25, 2001:db8:1a::/64), owner "phone", member "guest"; a core on it as a second process would have. */
function setup() {
  const vm = freshVm();
  const core = createCore({ store: vm.openAgain(), config: vm.state });
  const { code } = core.pairing.createCode();
  core.pairing.redeem(pairRequest(code));
  core.devices.add({ name: 'phone', publicKey: generateKeyPair().publicKey });
  core.devices.add({ name: 'guest', role: 'member', publicKey: generateKeyPair().publicKey });
  return { dir: vm.dir, core };
}

/** What the owner would type, and what the store holds after each step. */
async function session(dir: string, core: ReturnType<typeof setup>['core']) {
  assert.is(await ok(dir, 'firewall', 'hosts'), 'No LAN hosts. Name one with `aerie-cloud firewall host add NAME ADDRESS...`.\n');
  assert.match(await ok(dir, 'firewall', 'host', 'add', 'camera', '192.0.2.140', '2001:db8:1a::240'), /^Added LAN host camera \(192\.0\.2\.140, 2001:db8:1a::240, behind home\)\./);
  await ok(dir, 'firewall', 'host', 'add', 'iot', '2001:db8:1a::100/120');
  assert.equal(core.firewall.hosts.list().map((h) => h.name), ['camera', 'iot']);
  assert.match(await ok(dir, 'firewall', 'hosts'), /^NAME +ADDRESSES +GATEWAY\ncamera +192\.0\.2\.140, 2001:db8:1a::240 +home\niot +2001:db8:1a::100\/120 +home\n$/);

  assert.is(await ok(dir, 'firewall', 'policy', 'camera', '--isolated', 'on', '--internet', 'block'), 'camera (LAN host): internet block, isolated on\n');
  assert.is(await ok(dir, 'firewall', 'policy', 'guest', '--lan-access', 'on'), 'guest (member): internet allow, isolated off, lan-access on\n');
  assert.is(await ok(dir, 'firewall', 'policy', 'camera'), 'camera (LAN host): internet block, isolated on\n', 'without flags it shows the policy');
  assert.equal(core.firewall.policies.get('camera').policy, { internet: 'block', isolated: true, lanAccess: false });
  assert.equal(core.firewall.policies.get('guest').policy.lanAccess, true);
  const table = await ok(dir, 'firewall', 'policies');
  assert.match(table, /^NAME +KIND +INTERNET +ISOLATED +LAN ACCESS\ncamera +host +block +on +-\nguest +member +allow +off +on\nhome +gateway +allow +off +-\niot +host +allow +off +-\nphone +owner +allow +off +-\n$/);
  const json = JSON.parse(await ok(dir, 'firewall', 'policies', '--json'));
  assert.equal(json[0], { name: 'camera', kind: 'host', policy: { internet: 'block', isolated: true, lanAccess: false } });

  assert.match(await ok(dir, 'publishes'), /^Nothing is published: no device at home is reachable from the internet\.\n$/);
  assert.is(
    await ok(dir, 'publish', 'web', '--port', '443', '--to', '192.0.2.140:8443'),
    "Published web: tcp port 443 on the VM's public address reaches 192.0.2.140:8443 from the whole internet.\n",
  );
  await ok(dir, 'publish', 'game', '--port', '27015', '--to', '[2001:db8:1a::140]', '--proto', 'udp');
  assert.equal(core.firewall.publishes.list(), [
    { name: 'game', proto: 'udp', port: 27015, toAddress: '2001:db8:1a::140', toPort: 27015 },
    { name: 'web', proto: 'tcp', port: 443, toAddress: '192.0.2.140', toPort: 8443 },
  ]);
  assert.match(await ok(dir, 'publishes'), /^NAME +PROTO +PORT +TO\ngame +udp +27015 +\[2001:db8:1a::140\]:27015\nweb +tcp +443 +192\.0\.2\.140:8443\n$/);
  assert.is(await ok(dir, 'unpublish', 'game'), 'Unpublished game: udp port 27015 no longer reaches [2001:db8:1a::140]:27015.\n');
  assert.equal(JSON.parse(await ok(dir, 'publishes', '--json')).map((p: { name: string }) => p.name), ['web']);

  assert.is(await ok(dir, 'firewall', 'ssh'), 'SSH is open on TCP port 22 from anywhere.\n');
  assert.is(await ok(dir, 'firewall', 'ssh', '2200'), 'SSH is open on TCP port 2200 from anywhere.\n');
  assert.equal(core.firewall.settings.get(), { sshPort: 2200 });
  assert.match(await ok(dir, 'firewall', 'ssh', 'off'), /^SSH is closed: .*provider's console/);
  assert.equal(core.firewall.settings.get(), { sshPort: null });

  assert.is(await ok(dir, 'firewall', 'host', 'remove', 'iot'), 'Removed LAN host iot (2001:db8:1a::100/120) and its policy.\n');
  assert.equal(core.firewall.hosts.list().map((h) => h.name), ['camera']);
}

test('without a daemon, the CLI works on the state directory; print, stats and apply say they need it', async () => {
  const { dir, core } = setup();
  await session(dir, core);
  for (const sub of ['print', 'stats', 'apply']) {
    const r = await cli(dir, 'firewall', sub);
    assert.is(r.status, 1, sub);
    assert.is(r.stdout, '');
    assert.is(r.stderr, `aerie-cloud: firewall ${sub} needs the running daemon (start it with \`aerie-cloud serve\`)\n`);
  }
});

test('with a daemon, the CLI goes through its control socket, and prints, counts and applies', async () => {
  const { dir, core } = setup();
  let applies = 0;
  const live: FirewallLive = {
    print: () => `table inet aerie {\n\t# ${core.firewall.subjects().length} subjects\n}\n`,
    stats: async () => ({
      rules: [{ chain: 'input', comment: 'nothing else reaches the VM', packets: 12, bytes: 2048 }],
      subjects: { phone: { outPackets: 5, outBytes: 300, droppedPackets: 2, droppedBytes: 120 } },
    }),
    apply: async () => void applies++,
  };
  await withControlSocket(
    dir,
    core,
    async (seen) => {
      await session(dir, core);
      assert.ok(seen.includes('POST /v1/firewall/publishes') && seen.includes('PATCH /v1/firewall/settings'), seen.join(', '));
      assert.is(await ok(dir, 'firewall', 'print'), 'table inet aerie {\n\t# 4 subjects\n}\n');
      assert.is(await ok(dir, 'firewall', 'apply'), 'Applied the firewall ruleset.\n');
      assert.is(applies, 1);
      const stats = await ok(dir, 'firewall', 'stats');
      assert.match(stats, /^NAME +SENT +BYTES +DROPPED +BYTES\nphone +5 +300 B +2 +120 B\n\nCHAIN +PACKETS +BYTES +RULE\ninput +12 +2\.0 KiB +nothing else reaches the VM\n$/);
      assert.equal(JSON.parse(await ok(dir, 'firewall', 'stats', '--json')).subjects.phone.droppedPackets, 2);
    },
    { firewall: live },
  );
});

test('mistakes: one line saying what is wrong (and where help is), exit 1, nothing stored', async () => {
  const { dir, core } = setup();
  const usage: [string[], RegExp][] = [
    [['firewall'], /^aerie-cloud: firewall needs one of: print, apply, stats/],
    [['firewall', 'bogus'], /^aerie-cloud: unknown firewall command: bogus$/],
    [['firewall', 'host', 'add', 'camera'], /^aerie-cloud: expected: firewall host add NAME ADDRESS\.\.\. \(its IPv4 and IPv6 addresses, or a prefix\)$/],
    [['firewall', 'host', 'rename'], /^aerie-cloud: firewall host needs add or remove$/],
    [['firewall', 'policy'], /^aerie-cloud: expected: firewall policy NAME/],
    [['firewall', 'policies', '--isolated', 'on'], /^aerie-cloud: --internet, --isolated and --lan-access go with firewall policy only$/],
    [['firewall', 'ssh', '22', '23'], /^aerie-cloud: expected: firewall ssh \[PORT\|off\]$/],
    [['firewall', 'print', 'now'], /^aerie-cloud: firewall print takes no argument, got now$/],
    [['publish', 'web', '--port', '443'], /^aerie-cloud: publish needs --port PUBLIC and --to ADDRESS\[:PORT\]$/],
    [['publish', '--port', '443', '--to', '192.0.2.140'], /^aerie-cloud: expected: publish NAME --port PUBLIC/],
    [['unpublish', 'web', '--port', '443'], /^aerie-cloud: --port, --to and --proto go with publish only$/],
    [['publishes', '--colour'], /^aerie-cloud: Unknown option '--colour'/],
  ];
  await cloudCliRefuses(dir, usage, { usage: true });
  const refused: [string[], RegExp][] = [
    [['firewall', 'host', 'add', 'camera', '203.0.113.5'], /^aerie-cloud: addresses\[0\]: 203\.0\.113\.5 is not inside any gateway's home prefix/],
    [['firewall', 'host', 'add', 'phone', '192.0.2.140'], /^aerie-cloud: "phone" is already a device's name/],
    [['firewall', 'host', 'remove', 'nobody'], /^aerie-cloud: there is no LAN host named "nobody"$/],
    [['firewall', 'policy', 'guest', '--isolated', 'maybe'], /^aerie-cloud: isolated: expected on or off, got "maybe"$/],
    [['firewall', 'policy', 'guest', '--internet', 'never'], /^aerie-cloud: internet: expected "allow" or "block", got "never"$/],
    [['firewall', 'policy', 'phone', '--lan-access', 'on'], /^aerie-cloud: lanAccess: only members have this switch/],
    [['firewall', 'policy', 'nobody', '--internet', 'block'], /^aerie-cloud: there is no device or LAN host named "nobody"$/],
    [['firewall', 'ssh', 'ssh'], /^aerie-cloud: sshPort: expected a port number from 1 to 65535, got "ssh"$/],
    [['firewall', 'ssh', '8443'], /^aerie-cloud: sshPort: 8443 is the VM's pairing port$/],
    [['publish', 'web', '--port', 'https', '--to', '192.0.2.140'], /^aerie-cloud: port: expected a port number from 1 to 65535, got "https"$/],
    [['publish', 'web', '--port', '443', '--to', '192.0.2.140:http'], /^aerie-cloud: toPort: expected a port number from 1 to 65535, got "http"$/],
    [['publish', 'web', '--port', '443', '--to', 'nas.lan:443'], /^aerie-cloud: toAddress: expected the IP address of a device behind the router, got "nas\.lan"$/],
    [['publish', 'web', '--port', '443', '--to', '198.51.100.7:443'], /^aerie-cloud: toAddress: 198\.51\.100\.7 is not inside any gateway's home prefix/],
    [['publish', 'web', '--port', '22', '--to', '192.0.2.140'], /^aerie-cloud: port: 22\/tcp is the VM's SSH port/],
    [['publish', 'wg', '--port', '51820', '--to', '192.0.2.140', '--proto', 'udp'], /^aerie-cloud: port: 51820\/udp is the VM's WireGuard port/],
    [['publish', 'web', '--port', '443', '--to', '192.0.2.140', '--proto', 'quic'], /^aerie-cloud: proto: expected "tcp" or "udp", got "quic"$/],
    [['unpublish', 'web'], /^aerie-cloud: there is no publish named "web"$/],
  ];
  await cloudCliRefuses(dir, refused);
  assert.equal(core.firewall.hosts.list(), []);
  assert.equal(core.firewall.publishes.list(), []);
  assert.equal(core.firewall.settings.get(), { sshPort: 22 });
  assert.equal(core.firewall.policies.get('guest').policy, { internet: 'allow', isolated: false, lanAccess: false });
});

test('the usage lists the firewall commands', async () => {
  const { dir } = setup();
  const r = await cli(dir, '--help');
  for (const command of [
    'firewall print',
    'firewall apply',
    'firewall stats [--json]',
    'firewall host add NAME ADDRESS...',
    'firewall host remove NAME',
    'firewall policies',
    'firewall policy NAME [--internet allow|block] [--isolated on|off] [--lan-access on|off]',
    'firewall ssh [PORT|off]',
    'publish NAME --port PUBLIC --to ADDRESS[:PORT] [--proto tcp|udp]',
    'unpublish NAME',
    'publishes',
  ]) {
    assert.ok(r.stdout.includes(`aerie-cloud ${command}`), command);
  }
});

test.run();
