// The hub's command plan against a pretend system (no root needed). The real
// kernel, wg and wireguard-go are exercised by test/integration/cloud-platform.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CommandError, type RunResult, type Runner } from '../../shared/run.ts';
import { ValidationError } from '../../shared/errors.ts';
import { generateKeyPair, publicKeyFromPrivate } from '../../shared/keys.ts';
import { createHub, type HubDesired } from '../../cloud/wg/hub.ts';

interface Peer {
  publicKey: string;
  allowedIps: string[];
  endpoint: string | null;
  keepalive: number;
}

/** Just enough of ip, wg and wireguard-go for the hub, with every argv recorded. */
function fakeSystem(opts: { kernel?: boolean; userspace?: RunResult[] } = {}) {
  const userspace = [...(opts.userspace ?? [])];
  const s = {
    link: null as null | { name: string; mtu: number; up: boolean; kind: string },
    addresses: [] as string[],
    routes: [] as { family: string; dst: string; dev: string }[],
    wg: { privateKey: '', port: 0, peers: [] as Peer[] },
    confs: [] as string[],
  };
  const calls: string[][] = [];
  const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stderr: '' });
  const handle = (a: string[], input?: string): RunResult => {
    const cmd = a.join(' ');
    const name = s.link?.name;
    if (a[0] === 'ip' && a[1] === '-j' && a[2] === '-d' && a[3] === 'link') {
      if (a[6] !== name) return { code: 1, stdout: '', stderr: `Device "${a[6]}" does not exist.\n` };
      const flags = ['POINTOPOINT', 'NOARP', ...(s.link!.up ? ['UP'] : [])];
      return ok(JSON.stringify([{ ifname: name, flags, mtu: s.link!.mtu, linkinfo: { info_kind: s.link!.kind } }]));
    }
    if (a[0] === 'ip' && a[1] === 'link' && a[2] === 'add') {
      if (!opts.kernel) return { code: 2, stdout: '', stderr: 'Error: Unknown device type.\n' };
      s.link = { name: a[4]!, mtu: 1420, up: false, kind: 'wireguard' };
      return ok();
    }
    if (a[0] === 'env') {
      const r = userspace.shift() ?? ok();
      if (r.code === 0) s.link = { name: a.at(-1)!, mtu: 1420, up: false, kind: 'tun' };
      return r;
    }
    if (cmd === `wg show ${name} dump`) {
      const head = [s.wg.privateKey || '(none)', s.wg.privateKey ? publicKeyFromPrivate(s.wg.privateKey) : '(none)', String(s.wg.port), 'off'];
      const peers = s.wg.peers.map((p) =>
        [p.publicKey, '(none)', p.endpoint ?? '(none)', p.allowedIps.join(',') || '(none)', '0', '0', '0', p.keepalive ? String(p.keepalive) : 'off'].join('\t'),
      );
      return ok([head.join('\t'), ...peers].join('\n') + '\n');
    }
    if (a[0] === 'wg' && a[1] === 'syncconf' && a[3] === '/dev/stdin') {
      const text = input ?? '';
      s.confs.push(text);
      const kept = new Map(s.wg.peers.map((p) => [p.publicKey, p.keepalive]));
      s.wg = { privateKey: '', port: 0, peers: [] };
      for (const line of text.split('\n')) {
        const [k, v] = line.split(' = ');
        if (k === 'PrivateKey') s.wg.privateKey = v!;
        if (k === 'ListenPort') s.wg.port = Number(v);
        // Like wg: a peer that stays keeps its keepalive unless the config sets one.
        if (k === 'PublicKey') s.wg.peers.push({ publicKey: v!, allowedIps: [], endpoint: null, keepalive: kept.get(v!) ?? 0 });
        if (k === 'AllowedIPs') s.wg.peers.at(-1)!.allowedIps = v!.split(', ');
        if (k === 'Endpoint') s.wg.peers.at(-1)!.endpoint = v!;
        if (k === 'PersistentKeepalive') s.wg.peers.at(-1)!.keepalive = Number(v);
      }
      return ok();
    }
    if (a[0] === 'wg' && a[1] === 'set') {
      s.wg.peers.find((p) => p.publicKey === a[4])!.keepalive = Number(a[6]);
      return ok();
    }
    if (cmd === `ip link set dev ${name} up`) return (s.link!.up = true), ok();
    if (a[0] === 'ip' && a[1] === 'link' && a[2] === 'set' && a[5] === 'mtu') return (s.link!.mtu = Number(a[6])), ok();
    if (cmd === `ip -j addr show dev ${name}`) {
      const info = s.addresses.map((x) => ({ local: x.split('/')[0], prefixlen: Number(x.split('/')[1]), scope: 'global' }));
      return ok(JSON.stringify([{ addr_info: [...info, { local: 'fe80::1', prefixlen: 64, scope: 'link' }] }]));
    }
    if (a[0] === 'ip' && a[1] === 'addr' && a[2] === 'del') return (s.addresses = s.addresses.filter((x) => x !== a[3])), ok();
    if (a[0] === 'ip' && a[1] === 'addr' && a[2] === 'replace') return s.addresses.push(a[3]!), ok();
    if (a[0] === 'ip' && a[1] === '-j' && a[3] === 'route') {
      const fam = a[2]!.slice(1);
      return ok(JSON.stringify(s.routes.filter((r) => r.family === fam).map((r) => ({ dst: r.dst, dev: r.dev }))));
    }
    if (a[0] === 'ip' && a[2] === 'route' && a[3] === 'del') {
      s.routes = s.routes.filter((r) => !(r.dst === a[4] && r.family === a[1]!.slice(1)));
      return ok();
    }
    if (a[0] === 'ip' && a[2] === 'route' && a[3] === 'replace') {
      s.routes.push({ family: a[1]!.slice(1), dst: a[4]!, dev: a[6]! });
      return ok();
    }
    if (cmd === `ip link del dev ${name}`) {
      s.routes = s.routes.filter((r) => r.dev !== name);
      s.link = null;
      s.addresses = [];
      s.wg = { privateKey: '', port: 0, peers: [] };
      return ok();
    }
    throw new Error(`unexpected command: ${cmd}`);
  };
  const run: Runner = async (argv, o = {}) => {
    calls.push([...argv]);
    const r = handle([...argv], o.input);
    if (r.code !== 0 && !o.allowFail) throw new CommandError(argv, r.code, r.stderr);
    return r;
  };
  return { run, calls, s };
}

const hubKey = generateKeyPair();
const phone = generateKeyPair().publicKey;
const router = generateKeyPair().publicKey;

function desired(over: Partial<HubDesired> = {}): HubDesired {
  return {
    interface: 'aerie0',
    privateKey: hubKey.privateKey,
    listenPort: 51820,
    addresses: ['203.0.113.129/25', '2001:db8:a0::1/64'],
    mtu: 1380,
    peers: [
      { publicKey: router, allowedIps: ['203.0.113.130/32', '192.0.2.128/25', '2001:db8:1a::/64'], keepalive: 25 },
      { publicKey: phone, allowedIps: ['203.0.113.131/32'] },
    ],
    routes: ['192.0.2.128/25', '2001:db8:1a::/64'],
    ...over,
  };
}

const mutating = (calls: string[][]) =>
  calls.filter((a) => !(a[0] === 'ip' && a[1] === '-j') && a.join(' ') !== 'wg show aerie0 dump');

test('with kernel WireGuard: ip link add, and no wireguard-go', async () => {
  const sys = fakeSystem({ kernel: true });
  await createHub(sys.run).set(desired());
  assert.is(sys.s.link?.kind, 'wireguard');
  assert.not.ok(sys.calls.some((a) => a.includes('wireguard-go')));
  assert.equal(mutating(sys.calls), [
    ['ip', 'link', 'add', 'dev', 'aerie0', 'type', 'wireguard'],
    ['wg', 'syncconf', 'aerie0', '/dev/stdin'],
    ['ip', 'link', 'set', 'dev', 'aerie0', 'mtu', '1380'],
    ['ip', 'link', 'set', 'dev', 'aerie0', 'up'],
    ['ip', 'addr', 'replace', '2001:db8:a0::1/64', 'dev', 'aerie0'],
    ['ip', 'addr', 'replace', '203.0.113.129/25', 'dev', 'aerie0'],
    ['ip', '-4', 'route', 'replace', '192.0.2.128/25', 'dev', 'aerie0', 'proto', '174', 'table', 'main'],
    ['ip', '-6', 'route', 'replace', '2001:db8:1a::/64', 'dev', 'aerie0', 'proto', '174', 'table', 'main'],
  ]);
});

test('without it: wireguard-go, started with a clean environment so that it forks and lets go of our pipes', async () => {
  const sys = fakeSystem();
  await createHub(sys.run).set(desired());
  assert.ok(sys.calls.some((a) => a.join(' ') === 'env -u LOG_LEVEL -u WG_PROCESS_FOREGROUND wireguard-go aerie0'));
  assert.is(sys.s.link?.kind, 'tun');
});

test('wireguard-go finding the old socket still in use is tried again, a bounded number of times', async () => {
  const busy = { code: 1, stdout: 'ERROR: (aerie0) UAPI listen error: unix socket in use\n', stderr: '' };
  const sys = fakeSystem({ userspace: [busy, busy] });
  await createHub(sys.run).set(desired());
  assert.is(sys.calls.filter((a) => a[0] === 'env').length, 3);

  const stuck = fakeSystem({ userspace: Array.from({ length: 50 }, () => busy) });
  const err = await createHub(stuck.run).set(desired()).then(() => null, (e: unknown) => e);
  assert.match(String(err), /Unknown device type.*socket in use/);
  assert.ok(stuck.calls.filter((a) => a[0] === 'env').length <= 20);
});

test('the private key reaches wg only on its standard input, never in argv', async () => {
  const sys = fakeSystem();
  await createHub(sys.run).set(desired());
  for (const argv of sys.calls) assert.not.ok(argv.join(' ').includes(hubKey.privateKey));
  assert.is(sys.s.confs.length, 1);
  assert.ok(sys.s.confs[0]!.includes(`PrivateKey = ${hubKey.privateKey}`));
});

test('a second set() only reads', async () => {
  const sys = fakeSystem();
  const hub = createHub(sys.run);
  await hub.set(desired());
  sys.calls.length = 0;
  await hub.set(desired({ addresses: ['2001:db8:a0::1/64', '203.0.113.129/25', '203.0.113.129/25'] }));
  assert.equal(mutating(sys.calls), []);
});

test('stale peers, addresses and routes go; a dropped keepalive is turned off', async () => {
  const sys = fakeSystem();
  const hub = createHub(sys.run);
  await hub.set(desired());
  sys.s.routes.push({ family: '4', dst: '198.51.100.0/24', dev: 'eth9' }); // ours, left by an older run
  await hub.set(
    desired({
      addresses: ['203.0.113.129/26'],
      peers: [{ publicKey: router, allowedIps: ['203.0.113.130/32', '192.0.2.128/25'] }],
      routes: ['192.0.2.128/25'],
    }),
  );
  assert.equal(sys.s.wg.peers.map((p) => [p.publicKey, p.keepalive]), [[router, 0]]);
  assert.equal(sys.s.addresses, ['203.0.113.129/26']);
  assert.equal(sys.s.routes, [{ family: '4', dst: '192.0.2.128/25', dev: 'aerie0' }]);
});

test('bad input: ValidationError naming the field, nothing run, the key never in the message', async () => {
  const sys = fakeSystem();
  const hub = createHub(sys.run);
  const cases: [Partial<HubDesired>, string][] = [
    [{ interface: 'aerie0-is-too-long' }, 'interface'],
    [{ privateKey: hubKey.privateKey.slice(1) }, 'privateKey'],
    [{ listenPort: 70000 }, 'listenPort'],
    [{ mtu: 1279 }, 'mtu'],
    [{ addresses: ['203.0.113.129/33'] }, 'addresses[0]'],
    [{ routes: ['192.0.2.129/25'] }, 'routes[0]'],
    [{ peers: [{ publicKey: 'x', allowedIps: [] }] }, 'peers[0].publicKey'],
    [{ peers: [{ publicKey: phone, allowedIps: ['203.0.113.131/32'], keepalive: -1 }] }, 'peers[0].keepalive'],
  ];
  for (const [over, field] of cases) {
    const err = await hub.set(desired(over)).then(() => null, (e: unknown) => e);
    assert.instance(err, ValidationError, field);
    assert.is((err as ValidationError).field, field);
    assert.not.ok((err as Error).message.includes(hubKey.privateKey.slice(1)));
  }
  assert.equal(sys.calls, []);
});

test('set(null) removes our routes and the interface; then only looks', async () => {
  const sys = fakeSystem();
  const hub = createHub(sys.run);
  await hub.set(desired());
  sys.s.routes.push({ family: '6', dst: '2001:db8:2::/64', dev: 'eth9' }); // ours, elsewhere
  await hub.set(null);
  assert.is(sys.s.link, null);
  assert.equal(sys.s.routes, []);
  sys.calls.length = 0;
  await hub.set(null);
  assert.equal(mutating(sys.calls), []);
  assert.equal(await hub.show(), []);
});

test('a new interface name replaces the old interface', async () => {
  const sys = fakeSystem();
  const hub = createHub(sys.run);
  await hub.set(desired());
  await hub.set(desired({ interface: 'aerie1' }));
  assert.ok(sys.calls.some((a) => a.join(' ') === 'ip link del dev aerie0'));
  assert.is(sys.s.link?.name, 'aerie1');
  assert.equal(sys.s.routes.map((r) => r.dev), ['aerie1', 'aerie1']);
});

test('show() reports peers without the private key', async () => {
  const sys = fakeSystem();
  const hub = createHub(sys.run);
  await hub.set(desired());
  const stats = await hub.show();
  assert.equal(stats.map((p) => p.publicKey).sort(), [phone, router].sort());
  assert.equal(Object.keys(stats[0]!).sort(), ['endpoint', 'latestHandshake', 'publicKey', 'rxBytes', 'txBytes']);
  assert.not.ok(JSON.stringify(stats).includes(hubKey.privateKey));
});

test.run();
