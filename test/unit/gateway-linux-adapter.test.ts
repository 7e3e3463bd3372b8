import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Runner, RunResult } from '../../shared/run.ts';
import { createLinuxPlatform } from '../../gateway/platform/linux.ts';
import type { GatewayDesired } from '../../gateway/platform/platform.ts';
import { sampleDesired } from './gateway-fixtures.ts';

// The real kernel is exercised in test/integration/gateway-linux.test.ts; here a
// small fake `ip` shows what the adapter asks for and in which order.

const desired = sampleDesired();

function fakeSystem(kernelWireguard: boolean, failing: RegExp[] = [], answer: (line: string) => RunResult | undefined = () => undefined) {
  const links = new Map([['lan0', { up: true, mtu: 1500 }]]);
  const calls: { argv: string[]; input?: string }[] = [];
  const ok = (stdout = ''): RunResult => ({ code: 0, stdout, stderr: '' });
  const run: Runner = async (argv, opts = {}) => {
    calls.push({ argv: [...argv], ...(opts.input !== undefined ? { input: opts.input } : {}) });
    const line = argv.join(' ');
    let r: RunResult = ok();
    const special = answer(line);
    if (special) {
      r = special;
    } else if (failing.some((re) => re.test(line))) {
      r = { code: 2, stdout: '', stderr: 'RTNETLINK answers: Operation not permitted\n' };
    } else if (line === 'ip -j link show') {
      r = ok(JSON.stringify([...links].map(([ifname, l]) => ({ ifname, mtu: l.mtu, flags: l.up ? ['UP'] : [] }))));
    } else if (/^ip link add \S+ type wireguard$/.test(line)) {
      if (kernelWireguard) links.set(argv[3]!, { up: false, mtu: 1420 });
      else r = { code: 2, stdout: '', stderr: 'Error: Unknown device type.\n' };
    } else if (argv.includes('wireguard-go')) {
      links.set(argv.at(-1)!, { up: false, mtu: 1420 });
    } else if (/^ip link set dev \S+ up$/.test(line)) {
      links.get(argv[4]!)!.up = true;
    } else if (/^ip link del dev \S+$/.test(line)) {
      links.delete(argv[4]!);
    } else if (line.startsWith('wg show')) {
      r = { code: 1, stdout: '', stderr: 'Unable to access interface\n' };
    } else if (line.startsWith('nft list')) {
      r = { code: 1, stdout: '', stderr: 'Error: No such file or directory\n' };
    } else if (/^ip -j -[46] route show table 7375$/.test(line)) {
      r = { code: 2, stdout: '[', stderr: 'Error: ipv4: FIB table does not exist.\nDump terminated\n' };
    } else if (line.startsWith('ip -j')) {
      r = ok('[]');
    }
    if (r.code !== 0 && !opts.allowFail) throw new Error(`${line} failed: ${r.stderr}`);
    return r;
  };
  return { run, calls, links };
}

const index = (calls: { argv: string[] }[], re: RegExp) => calls.findIndex((c) => re.test(c.argv.join(' ')));

test('no kernel WireGuard: falls back to wireguard-go; the private key only ever on stdin', async () => {
  const sys = fakeSystem(false);
  const logs: string[] = [];
  const p = createLinuxPlatform(sys.run, { own: { interface: 'aerie', table: 7375 }, log: (m) => logs.push(m) });
  await p.set(desired);
  // Without the variables that keep it in the foreground or our pipes open.
  assert.ok(sys.calls.some((c) => c.argv.join(' ') === 'env -u LOG_LEVEL -u WG_PROCESS_FOREGROUND wireguard-go aerie'));
  assert.ok(logs.some((l) => /wireguard-go/.test(l)));
  for (const c of sys.calls) assert.not.ok(c.argv.some((a) => a.includes(desired.privateKey)), `key in argv: ${c.argv.join(' ')}`);
  const sync = sys.calls.find((c) => c.argv[0] === 'wg' && c.argv[1] === 'syncconf');
  assert.equal(sync?.argv, ['wg', 'syncconf', 'aerie', '/dev/stdin']);
  assert.ok(sync!.input!.includes(`PrivateKey = ${desired.privateKey}`));
  assert.ok(sync!.input!.includes('Endpoint = 203.0.113.10:51820'));
});

test('kernel WireGuard when there is one', async () => {
  const sys = fakeSystem(true);
  await createLinuxPlatform(sys.run, { own: { interface: 'aerie', table: 7375 } }).set(desired);
  assert.is(index(sys.calls, /wireguard-go/), -1);
  assert.ok(sys.links.get('aerie')?.up);
});

test('the kill switch is in place before LAN traffic is diverted; the fallback before the rules', async () => {
  const sys = fakeSystem(false);
  await createLinuxPlatform(sys.run, { own: { interface: 'aerie', table: 7375 } }).set(desired);
  const nft = index(sys.calls, /^nft -f \/dev\/stdin$/);
  const unreachable = index(sys.calls, /^ip -4 route replace unreachable default table 7375/);
  const rule = index(sys.calls, /^ip -4 rule add iif lan0 lookup 7375 priority 7375$/);
  const link = index(sys.calls, / wireguard-go aerie$/);
  assert.ok(nft >= 0 && unreachable > nft && rule > unreachable && link > rule, `order nft ${nft} < unreachable ${unreachable} < rule ${rule} < link ${link}`);
  const input = sys.calls[nft]!.input!;
  assert.match(input, /^table inet aerie_gw\ndelete table inet aerie_gw\n/);
  assert.match(input, /iifname \{ "lan0" \} drop comment/);
  // The tunnel route comes once the link is up.
  assert.ok(index(sys.calls, /^ip -4 route replace default dev aerie table 7375 metric 100$/) > link);
});

test('moving to another interface: the new kill switch first, then the old link goes; the nft table never does', async () => {
  const sys = fakeSystem(true);
  const logs: string[] = [];
  const p = createLinuxPlatform(sys.run, { own: { interface: 'aerie', table: 7375 }, log: (m) => logs.push(m) });
  await p.set(desired);
  sys.calls.length = 0;
  await p.set({ ...desired, interface: 'aerie2', table: 7376 });
  const nftWrites = sys.calls.filter((c) => c.argv.join(' ') === 'nft -f /dev/stdin');
  assert.is(nftWrites.length, 1, 'one atomic replace');
  assert.match(nftWrites[0]!.input!, /oifname "aerie2"/);
  assert.not.match(nftWrites[0]!.input!, /"aerie"/);
  const nft = index(sys.calls, /^nft -f/);
  const oldLink = index(sys.calls, /^ip link del dev aerie$/);
  const oldRule = index(sys.calls, /^ip -4 rule del .*lookup 7375/);
  assert.ok(nft >= 0 && oldLink > nft, `kill switch ${nft} before the old link goes ${oldLink}`);
  assert.ok(oldRule === -1 || oldRule > nft);
  assert.not.ok(sys.links.has('aerie'));
  assert.ok(sys.links.get('aerie2')?.up);
  assert.equal(logs.filter((l) => /could not remove/.test(l)), []);
});

test('the old link cannot be removed: logged once, the new state applies, later passes do not retry', async () => {
  const sys = fakeSystem(true, [/^ip link del dev aerie$/]);
  const logs: string[] = [];
  const p = createLinuxPlatform(sys.run, { own: { interface: 'aerie', table: 7375 }, log: (m) => logs.push(m) });
  await p.set(desired);
  await p.set({ ...desired, interface: 'aerie2' }); // resolves: the new tunnel is up
  assert.ok(sys.links.get('aerie2')?.up);
  assert.equal(logs.filter((l) => /could not remove the old tunnel aerie /.test(l)).length, 1, logs.join('\n'));
  sys.calls.length = 0;
  await p.set({ ...desired, interface: 'aerie2' });
  assert.is(index(sys.calls, /^ip link del/), -1, 'not again at every pass');
  // set(null) removes what is owned now: the new interface.
  await p.set(null);
  assert.ok(index(sys.calls, /^ip link del dev aerie2$/) >= 0);
});

test('enabling IPv6 forwarding: the WAN keeps accepting router advertisements (accept_ra 1 -> 2 first)', async () => {
  const sysctl: Record<string, string> = {
    'net.ipv4.ip_forward': '0',
    'net.ipv6.conf.all.forwarding': '0',
    'net.ipv6.conf.wan0.accept_ra': '1',
    'net.ipv6.conf.wan0/2.accept_ra': '0',
  };
  const sys = fakeSystem(true, [], (line) => {
    const read = /^sysctl -n (\S+)$/.exec(line);
    if (read) return { code: 0, stdout: `${sysctl[read[1]!]}\n`, stderr: '' };
    if (line === 'ip -j -6 route show default') {
      return { code: 0, stdout: JSON.stringify([{ dst: 'default', nexthops: [{ dev: 'wan0' }, { dev: 'wan0.2' }] }]), stderr: '' };
    }
    return undefined;
  });
  const p = createLinuxPlatform(sys.run, { own: { interface: 'aerie', table: 7375 } });
  await p.set(desired);
  const writes = sys.calls.map((c) => c.argv.join(' ')).filter((l) => l.startsWith('sysctl -qw'));
  assert.equal(writes, [
    'sysctl -qw net.ipv4.ip_forward=1',
    'sysctl -qw net.ipv6.conf.wan0.accept_ra=2',
    'sysctl -qw net.ipv6.conf.all.forwarding=1',
  ]);
  // Already forwarding: accept_ra is left as it is.
  Object.assign(sysctl, { 'net.ipv4.ip_forward': '1', 'net.ipv6.conf.all.forwarding': '1' });
  sys.calls.length = 0;
  await p.set(desired);
  assert.is(index(sys.calls, /^sysctl -qw/), -1);
});

test('a host without IPv6: the IPv4 part is applied, nothing IPv6 is tried, said once', async () => {
  const sys = fakeSystem(true, [], (line) => {
    if (line === 'sysctl -n net.ipv6.conf.all.forwarding') {
      return { code: 255, stdout: '', stderr: 'sysctl: cannot stat /proc/sys/net/ipv6/conf/all/forwarding: No such file or directory\n' };
    }
    if (/^ip (-j )?-6 /.test(line) || / 2001:db8:/.test(line)) {
      return { code: 2, stdout: '', stderr: 'RTNETLINK answers: Address family not supported by protocol\n' };
    }
    return undefined;
  });
  const logs: string[] = [];
  const p = createLinuxPlatform(sys.run, { own: { interface: 'aerie', table: 7375 }, log: (m) => logs.push(m) });
  await p.set(desired);
  await p.set(desired);
  assert.equal(sys.calls.filter((c) => /^ip (-j )?-6 |2001:db8:|ipv6/.test(c.argv.join(' ')) && !c.argv.includes('-n')), []);
  assert.ok(index(sys.calls, /^ip -4 rule add iif lan0 lookup 7375/) >= 0);
  assert.ok(index(sys.calls, /^sysctl -qw net\.ipv4\.ip_forward=1$/) >= 0);
  assert.equal(logs.filter((l) => /no IPv6/.test(l)).length, 1);
  await p.set(null);
});

test('bad desired state is refused before any command runs', async () => {
  const sys = fakeSystem(false);
  const p = createLinuxPlatform(sys.run, { own: { interface: 'aerie', table: 7375 } });
  for (const bad of [
    { ...desired, table: 254 },
    { ...desired, interface: 'a"b' },
    { ...desired, privateKey: 'x' },
    { ...desired, peer: { ...desired.peer, endpoint: 'nope' } },
    { ...desired, dns: { ...desired.dns, servers: ['203.0.113.129', 'vm.example'] } },
    { ...desired, dns: { ...desired.dns, resolvFile: 'resolv.conf' } },
  ]) {
    try {
      await p.set(bad);
      assert.unreachable();
    } catch (e) {
      assert.not.match((e as Error).message, /unreachable/);
    }
  }
  assert.equal(sys.calls, []);
});

test('DNS interception and the overlay guard go into the one atomic nft replace; off leaves them out', async () => {
  const sys = fakeSystem(true);
  const p = createLinuxPlatform(sys.run, { own: { interface: 'aerie', table: 7375 } });
  await p.set(desired);
  const input = sys.calls.find((c) => c.argv.join(' ') === 'nft -f /dev/stdin')!.input!;
  assert.match(input, /chain dns_redirect \{[^}]*iifname \{ "lan0" \} meta l4proto \{ tcp, udp \} th dport 53 redirect to :53 comment/);
  assert.match(input, /iifname \{ "lan0" \} tcp dport 853 reject with tcp reset/);
  assert.match(input, /ip daddr \{ 203\.0\.113\.128\/25 \} oifname != \{ "lo", "aerie" \} drop/);
  sys.calls.length = 0;
  await p.set({ ...desired, dns: { ...desired.dns, intercept: false } });
  const off = sys.calls.find((c) => c.argv.join(' ') === 'nft -f /dev/stdin')!.input!;
  assert.not.match(off, /dport (53|853)|redirect/);
  assert.match(off, /chain output/, 'the overlay guard does not depend on interception');
});

test('the resolv file: the VM resolver addresses, written atomically once, rewritten only on change, left by set(null)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'aerie-gw-resolv-'));
  try {
    const file = join(dir, 'sub', 'resolv.aerie');
    const sys = fakeSystem(true);
    const logs: string[] = [];
    const p = createLinuxPlatform(sys.run, { own: { interface: 'aerie', table: 7375 }, log: (m) => logs.push(m) });
    const d = { ...desired, dns: { ...desired.dns, resolvFile: file } };
    await p.set(d);
    const text = await readFile(file, 'utf8');
    assert.equal(
      text.split('\n').filter((l) => !l.startsWith('#')),
      ['nameserver 203.0.113.129', 'nameserver 2001:db8:a0::1', ''],
    );
    assert.is((await stat(file)).mode & 0o777, 0o644);
    assert.equal(logs.filter((l) => l.includes(file)).length, 1);
    // Same state: the file is not touched (dnsmasq re-reads a file whose mtime changes).
    const before = (await stat(file)).mtimeMs;
    await new Promise((r) => setTimeout(r, 20));
    await p.set(d);
    assert.is((await stat(file)).mtimeMs, before);
    // An edit by hand is put right; new addresses replace the old.
    await writeFile(file, 'nameserver 198.51.100.53\n');
    await p.set({ ...d, dns: { ...d.dns, servers: ['203.0.113.129'] } });
    assert.equal((await readFile(file, 'utf8')).split('\n').filter((l) => l.startsWith('nameserver')), ['nameserver 203.0.113.129']);
    // No temporary files are left beside it.
    assert.equal(await readdir(join(dir, 'sub')), ['resolv.aerie']);
    await p.set(null);
    assert.match(await readFile(file, 'utf8'), /^nameserver 203\.0\.113\.129$/m, 'left in place: DNS fails closed');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('show() reads interception back from nft', async () => {
  let listing = '';
  const sys = fakeSystem(true, [], (line) => (line.startsWith('nft list') && listing ? { code: 0, stdout: listing, stderr: '' } : undefined));
  const p = createLinuxPlatform(sys.run, { own: { interface: 'aerie', table: 7375 } });
  assert.is((await p.show('aerie')).dnsIntercept, false);
  listing = 'table inet aerie_gw {\n\tchain dns_redirect {\n\t\tiifname "lan0" meta l4proto { tcp, udp } th dport 53 redirect to :53 comment "dns intercept: x"\n\t}\n}\n';
  const s = await p.show('aerie');
  assert.is(s.dnsIntercept, true);
  assert.is(s.killSwitch, false);
});

test.run();
