import { test } from 'uvu';
import { createLinuxPlatform } from '../../gateway/platform/linux.ts';
import type { GatewayDesired } from '../../gateway/platform/platform.ts';
import { publicKeyFromPrivate } from '../../shared/keys.ts';
import { sampleDesired } from './gateway-fixtures.ts';
import type { Runner, RunResult } from '../../shared/run.ts';
import { platformContract } from './gateway-platform-contract.ts';

// The platform contract against the Linux adapter. Its fake kernel keeps
// state (links, addresses, rules, routes, our nft table, the WireGuard peer)
// so that what set() did is what the next read sees; the real kernel is in
// test/integration/gateway-linux.test.ts.

const base: GatewayDesired = { ...sampleDesired(), overlay: ['203.0.113.128/25', '2001:db8:a0::/64'] };
const me = { publicKey: publicKeyFromPrivate(base.privateKey) };

interface Route {
  type?: string;
  dst: string;
  dev?: string;
  metric: number;
}

function fakeKernel() {
  const links = new Map<string, { up: boolean; mtu: number; addrs: string[] }>([['lan0', { up: true, mtu: 1500, addrs: [] }]]);
  const rules: { family: string; priority: number; iif: string; table: string }[] = [];
  const routes = new Map<string, Route[]>(); // "4 7375" → routes
  let nft: string | null = null;
  let wg: { privateKey: string; peers: { publicKey: string; endpoint: string; allowed: string; keepalive: number }[] } | null = null;
  const changes: string[] = [];
  const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stderr: '' });
  const err = (stderr: string, code = 1): RunResult => ({ code, stdout: '', stderr });

  function routeCmd(argv: readonly string[]): void {
    // ip -4 route replace|del [unreachable] DST [dev X] table T metric M
    const family = argv[1]!.slice(1);
    const op = argv[3]!;
    let i = 4;
    const type = argv[i] === 'unreachable' ? (i++, 'unreachable') : undefined;
    const dst = argv[i++]!;
    const dev = argv[i] === 'dev' ? argv[i + 1] : undefined;
    const table = argv[argv.indexOf('table') + 1]!;
    const metric = Number(argv[argv.indexOf('metric') + 1]);
    const key = `${family} ${table === '254' ? 'main' : table}`;
    const list = (routes.get(key) ?? []).filter((r) => !(r.dst === dst && r.metric === metric && (r.type ?? 'unicast') === (type ?? 'unicast')));
    if (op === 'replace') list.push({ ...(type ? { type } : {}), dst, ...(dev ? { dev } : {}), metric });
    routes.set(key, list);
  }

  const run: Runner = async (argv, opts = {}) => {
    const line = argv.join(' ');
    let r: RunResult = ok();
    const a = (n: number) => argv[n] ?? '';
    if (line.startsWith('sysctl -n')) r = ok('1\n');
    else if (line === 'ip -j link show') r = ok(JSON.stringify([...links].map(([ifname, l]) => ({ ifname, mtu: l.mtu, flags: l.up ? ['UP'] : [] }))));
    else if (/^ip -j -[46] route show table \d+$/.test(line)) {
      const list = routes.get(`${a(2).slice(1)} ${a(6)}`) ?? [];
      r = list.length ? ok(JSON.stringify(list)) : err('Error: ipv4: FIB table does not exist.\nDump terminated\n', 2);
    } else if (/^ip -j -[46] route show table main dev \S+$/.test(line)) {
      r = ok(JSON.stringify((routes.get(`${a(2).slice(1)} main`) ?? []).filter((x) => x.dev === a(8))));
    } else if (/^ip -j -[46] rule show$/.test(line)) {
      r = ok(JSON.stringify(rules.filter((x) => x.family === a(2).slice(1)).map(({ priority, iif, table }) => ({ priority, iif, table }))));
    } else if (/^ip -[46] rule (add|del) /.test(line)) {
      const rule = { family: a(1).slice(1), iif: a(5), table: a(7), priority: Number(a(9)) };
      const i = rules.findIndex((x) => JSON.stringify(x) === JSON.stringify(rule));
      if (a(3) === 'add') rules.push(rule);
      else if (i >= 0) rules.splice(i, 1);
      changes.push(line);
    } else if (/^ip -[46] route (replace|del) /.test(line)) {
      routeCmd(argv);
      changes.push(line);
    } else if (/^ip link add \S+ type wireguard$/.test(line)) {
      links.set(a(3), { up: false, mtu: 1420, addrs: [] });
      changes.push(line);
    } else if (/^ip link set dev \S+ (up|mtu \d+)$/.test(line)) {
      const l = links.get(a(4))!;
      if (a(5) === 'up') l.up = true;
      else l.mtu = Number(a(6));
      changes.push(line);
    } else if (/^ip link del dev \S+$/.test(line)) {
      links.delete(a(4));
      if (a(4) === base.interface) wg = null;
      for (const [k, list] of routes) routes.set(k, list.filter((x) => x.dev !== a(4)));
      changes.push(line);
    } else if (/^ip -j addr show dev \S+$/.test(line)) {
      const l = links.get(a(5));
      r = ok(JSON.stringify(l ? [{ addr_info: l.addrs.map((x) => ({ local: x.split('/')[0], prefixlen: Number(x.split('/')[1]), scope: 'global' })) }] : []));
    } else if (/^ip addr (replace|del) \S+ dev \S+$/.test(line)) {
      const l = links.get(a(5))!;
      l.addrs = l.addrs.filter((x) => x !== a(3));
      if (a(2) === 'replace') l.addrs.push(a(3));
      changes.push(line);
    } else if (line === `wg show ${base.interface} dump`) {
      r = wg && links.has(base.interface)
        ? ok([`${wg.privateKey}\t${me.publicKey}\t51820\toff`, ...wg.peers.map((p) => `${p.publicKey}\t(none)\t${p.endpoint}\t${p.allowed}\t0\t0\t0\t${p.keepalive || 'off'}`)].join('\n') + '\n')
        : err('Unable to access interface: No such device\n');
    } else if (/^wg syncconf \S+ \/dev\/stdin$/.test(line)) {
      const conf = opts.input ?? '';
      const get = (k: string) => new RegExp(`^${k} = (.*)$`, 'm').exec(conf)?.[1];
      wg = {
        privateKey: get('PrivateKey')!,
        peers: [{ publicKey: get('PublicKey')!, endpoint: get('Endpoint') ?? '(none)', allowed: (get('AllowedIPs') ?? '').replaceAll(' ', ''), keepalive: Number(get('PersistentKeepalive') ?? 0) }],
      };
      changes.push(line);
    } else if (/^wg set /.test(line)) {
      if (wg && argv.includes('remove')) wg.peers = wg.peers.filter((p) => p.publicKey !== a(4));
      changes.push(line);
    } else if (line === 'nft list table inet aerie_gw') {
      r = nft === null ? err('Error: No such file or directory\n') : ok(nft);
    } else if (line === 'nft -f /dev/stdin') {
      const body = (opts.input ?? '').split('\n').slice(2).join('\n');
      nft = body.trim() === '' ? null : body;
      changes.push(`${line} (${nft === null ? 'delete' : 'replace'} table)`);
    } else {
      r = err(`fake kernel: unexpected ${line}\n`, 127);
    }
    if (r.code !== 0 && !opts.allowFail) throw new Error(`${line} failed: ${r.stderr}`);
    return r;
  };

  /** What of the adapter's is in the fake kernel. */
  const owned = () => [
    ...(links.has(base.interface) ? [`link ${base.interface}`] : []),
    ...rules.filter((x) => x.table === String(base.table)).map((x) => `rule ${JSON.stringify(x)}`),
    ...[...routes].filter(([k]) => k.endsWith(` ${base.table}`)).flatMap(([k, list]) => list.map((x) => `route ${k} ${x.dst}`)),
    ...[...routes].flatMap(([k, list]) => list.filter((x) => x.dev === base.interface).map((x) => `route ${k} ${x.dst}`)),
    ...(nft !== null ? ['nft table inet aerie_gw'] : []),
  ];
  return { run, changes, owned };
}

platformContract('linux', async () => {
  const k = fakeKernel();
  const platform = createLinuxPlatform(k.run, { own: { interface: base.interface, table: base.table } });
  let mark = 0;
  return {
    platform,
    desired: (over = {}) => ({ ...structuredClone(base), ...over }),
    mark: () => void (mark = k.changes.length),
    changes: () => k.changes.slice(mark),
    owned: async () => k.owned(),
    cleanup: async () => {},
  };
});

test.run();
