import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DAEMON_NODE_FLAGS } from '../../gateway/node-flags.ts';
import { buildIpks } from '../../openwrt-feed/build-ipk.ts';

/**
 * `make ipk`'s packages as opkg on OpenWrt 24.10 meets them: the outer
 * layout, control data, file modes and owners, reproducible bytes, and the
 * daemon inside starting on this machine's Node 20 (/usr/bin/node).
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODE20 = '/usr/bin/node';
const EPOCH = 1_700_000_000;
const pkgJson = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
const VERSION = pkgJson.version;
let work = '';
let outA = '';

interface Member {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  mtime: number;
  type: string;
  data: Buffer;
}

/** A ustar/GNU tar reader written apart from the builder, checking each header's checksum. */
function readTar(buf: Buffer): Member[] {
  const out: Member[] = [];
  for (let off = 0; off + 512 <= buf.length; ) {
    const h = buf.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (at: number, len: number) => h.subarray(at, at + len).toString('utf8').replace(/\0[\s\S]*$/, '');
    const num = (at: number, len: number) => parseInt(str(at, len).trim() || '0', 8);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
    assert.is(num(148, 8), sum, `header checksum at offset ${off}`);
    const prefix = str(345, 155);
    const size = num(124, 12);
    out.push({
      name: prefix ? `${prefix}/${str(0, 100)}` : str(0, 100),
      mode: num(100, 8),
      uid: num(108, 8),
      gid: num(116, 8),
      uname: str(265, 32),
      gname: str(297, 32),
      mtime: num(136, 12),
      type: str(156, 1) || '0',
      data: Buffer.from(buf.subarray(off + 512, off + 512 + size)),
    });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** What `gzip -n` would write: no name, no mtime, Unix. */
function gunzipFixed(gz: Buffer, what: string): Buffer {
  assert.equal([gz[0], gz[1], gz[2]], [0x1f, 0x8b, 8], `${what}: gzip, deflate`);
  assert.is(gz[3], 0, `${what}: no file name or other optional fields`);
  assert.is(gz.readUInt32LE(4), 0, `${what}: gzip mtime 0`);
  assert.is(gz[9], 3, `${what}: gzip OS byte Unix`);
  return gunzipSync(gz);
}

interface Ipk {
  outer: Member[];
  data: Member[];
  control: Member[];
  fields: Map<string, string>;
  dataTarBytes: number;
}

async function openIpk(path: string): Promise<Ipk> {
  const outer = readTar(gunzipFixed(await readFile(path), path));
  const member = (n: string) => outer.find((m) => m.name === n)?.data ?? Buffer.alloc(0);
  const dataTar = gunzipFixed(member('./data.tar.gz'), 'data.tar.gz');
  const control = readTar(gunzipFixed(member('./control.tar.gz'), 'control.tar.gz'));
  const text = control.find((m) => m.name === './control')?.data.toString('utf8') ?? '';
  const fields = new Map<string, string>();
  let last = '';
  for (const line of text.split('\n')) {
    if (line.startsWith(' ') && last) fields.set(last, `${fields.get(last)}\n${line.slice(1)}`);
    else if (line) {
      const i = line.indexOf(': ');
      last = line.slice(0, i);
      fields.set(last, line.slice(i + 2));
    }
  }
  return { outer, data: readTar(dataTar), control, fields, dataTarBytes: dataTar.length };
}

function runArgv(argv: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}) {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 30_000, ...opts });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

const byName = (ms: Member[], name: string) => {
  const m = ms.find((x) => x.name === name);
  assert.ok(m, `${name} is in the archive`);
  return m!;
};

test('setup: the gateway bundle exists and both packages build', async () => {
  assert.ok(existsSync(join(ROOT, 'dist/aerie-gateway.mjs')), 'dist/aerie-gateway.mjs exists (run make build first)');
  work = await mkdtemp(join(tmpdir(), 'aerie-ipk-'));
  outA = join(work, 'a');
  const built = await buildIpks({ outDir: outA });
  assert.equal(built.map((b) => b.name), ['aerie', 'luci-app-aerie']);
  assert.equal((await readdir(outA)).sort(), [`aerie_${VERSION}_all.ipk`, `luci-app-aerie_${VERSION}_all.ipk`]);
  for (const b of built) console.log(`  ${b.name}: ${Math.ceil(b.bytes / 1024)} KiB`);
});

test('reproducible: a second build gives the same bytes', async () => {
  const outB = join(work, 'b');
  await buildIpks({ outDir: outB });
  for (const f of await readdir(outA)) {
    assert.ok((await readFile(join(outA, f))).equals(await readFile(join(outB, f))), `${f} is byte-identical`);
  }
});

test('the CLI honours SOURCE_DATE_EPOCH: every entry has that mtime', async () => {
  const out = join(work, 'epoch');
  const r = runArgv([process.execPath, join(ROOT, 'openwrt-feed/build-ipk.ts'), '--out-dir', out], {
    env: { ...process.env, SOURCE_DATE_EPOCH: String(EPOCH) },
  });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`aerie_${VERSION.replace(/\./g, '\\.')}_all\\.ipk`));
  for (const f of await readdir(out)) {
    const ipk = await openIpk(join(out, f));
    for (const m of [...ipk.outer, ...ipk.data, ...ipk.control]) assert.is(m.mtime, EPOCH, `${f}: ${m.name} mtime`);
    assert.is(ipk.fields.get('SourceDateEpoch'), String(EPOCH));
  }
  const bad = runArgv([process.execPath, join(ROOT, 'openwrt-feed/build-ipk.ts'), '--out-dir', out], {
    env: { ...process.env, SOURCE_DATE_EPOCH: 'yesterday' },
  });
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /^build-ipk: SOURCE_DATE_EPOCH must be whole seconds/);
});

test('outer layout: debian-binary, data.tar.gz, control.tar.gz, as ipkg-build orders them', async () => {
  for (const f of await readdir(outA)) {
    const path = join(outA, f);
    const ipk = await openIpk(path);
    assert.equal(ipk.outer.map((m) => m.name), ['./debian-binary', './data.tar.gz', './control.tar.gz'], f);
    assert.is(byName(ipk.outer, './debian-binary').data.toString(), '2.0\n');
    // The system's tar (and BusyBox's, whose code opkg's unpacker comes from) read it the same way.
    const gnu = runArgv(['tar', '-tzf', path]);
    assert.is(gnu.stdout, './debian-binary\n./data.tar.gz\n./control.tar.gz\n', gnu.stderr);
    if (existsSync('/usr/bin/busybox') || existsSync('/bin/busybox')) {
      const bb = runArgv(['busybox', 'tar', '-tzf', path]);
      assert.is(bb.stdout, gnu.stdout, bb.stderr);
    }
  }
});

test('aerie: control fields, conffiles and what sysupgrade keeps', async () => {
  const ipk = await openIpk(join(outA, `aerie_${VERSION}_all.ipk`));
  const f = ipk.fields;
  assert.is(f.get('Package'), 'aerie');
  assert.is(f.get('Version'), VERSION);
  assert.is(f.get('Architecture'), 'all');
  assert.is(f.get('License'), 'MIT');
  assert.is(f.get('Section'), 'net');
  assert.ok(f.get('Source'), 'Source');
  const depends = (f.get('Depends') ?? '').split(/,\s*/);
  for (const d of ['node', 'kmod-wireguard', 'wireguard-tools', 'ca-bundle', 'ip-full']) assert.ok(depends.includes(d), `depends on ${d}`);
  assert.is(f.get('Installed-Size'), String(ipk.dataTarBytes), 'Installed-Size is the data tar size, as ipkg-build counts it');
  assert.ok((f.get('Description') ?? '').length > 20, 'a description');
  assert.is(byName(ipk.control, './conffiles').data.toString(), '/etc/config/aerie\n');
  assert.is(byName(ipk.data, './lib/upgrade/keep.d/aerie').data.toString(), '/etc/aerie/\n');
  assert.equal(
    ipk.control.map((m) => [m.name, m.mode]),
    [['./', 0o755], ['./conffiles', 0o644], ['./control', 0o644], ['./postinst', 0o755], ['./prerm', 0o755]],
  );
});

test('luci-app-aerie: control fields and every htdocs/ and root/ file in place', async () => {
  const ipk = await openIpk(join(outA, `luci-app-aerie_${VERSION}_all.ipk`));
  const f = ipk.fields;
  assert.is(f.get('Package'), 'luci-app-aerie');
  assert.is(f.get('Version'), VERSION);
  assert.is(f.get('Architecture'), 'all');
  assert.is(f.get('Section'), 'luci');
  const depends = (f.get('Depends') ?? '').split(/,\s*/);
  for (const d of ['aerie', 'luci-base']) assert.ok(depends.includes(d), `depends on ${d}`);
  assert.not.ok(ipk.control.some((m) => m.name === './conffiles'), 'no conffiles');
  const app = join(ROOT, 'openwrt-feed/luci-app-aerie');
  const expected: string[] = [];
  for (const [dir, to] of [['htdocs', '/www'], ['root', '']] as const) {
    const base = join(app, dir);
    if (!existsSync(base)) continue;
    for (const rel of (await readdir(base, { recursive: true, withFileTypes: true })).filter((e) => e.isFile())) {
      const path = `${to}${join(rel.parentPath, rel.name).slice(base.length)}`;
      if (!path.split('/').some((s) => s.startsWith('.'))) expected.push(`.${path}`);
    }
  }
  const files = ipk.data.filter((m) => m.type === '0').map((m) => m.name);
  assert.equal(files.sort(), expected.sort());
  assert.ok(files.some((n) => n.startsWith('./www/luci-static/resources/view/aerie/')), 'the LuCI views');
  for (const m of ipk.data) {
    if (m.type === '0' && m.name.startsWith('./www/')) assert.is(m.mode, 0o644, `${m.name} mode`);
  }
});

test('file modes, numeric owners, directories before their contents', async () => {
  for (const f of await readdir(outA)) {
    const ipk = await openIpk(join(outA, f));
    const names = ipk.data.map((m) => m.name);
    assert.is(names[0], './');
    for (const m of [...ipk.outer, ...ipk.data, ...ipk.control]) {
      assert.is(m.uid, 0, `${m.name} uid`);
      assert.is(m.gid, 0, `${m.name} gid`);
      assert.is(`${m.uname}${m.gname}`, '', `${m.name}: owners by number only`);
    }
    for (const m of ipk.data) {
      if (m.type === '5') {
        assert.is(m.mode, 0o755, `${m.name} directory mode`);
        assert.ok(m.name.endsWith('/'), `${m.name} directory name`);
      } else {
        assert.ok([0o644, 0o755].includes(m.mode), `${m.name} mode ${m.mode.toString(8)}`);
      }
      const parent = m.name.replace(/[^/]+\/?$/, '');
      if (m.name !== './') assert.ok(names.indexOf(parent) >= 0 && names.indexOf(parent) < names.indexOf(m.name), `${parent} before ${m.name}`);
    }
    // Siblings in byte order, each directory's subtree right after it (tar --sort=name).
    const key = (n: string) => n.replace(/\/$/, '').split('/');
    const sorted = [...names].sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
      return x.length - y.length;
    });
    assert.equal(names, sorted, `${f}: entries sorted`);
  }
  const aerie = await openIpk(join(outA, `aerie_${VERSION}_all.ipk`));
  const modes = Object.fromEntries(aerie.data.filter((m) => m.type === '0').map((m) => [m.name, m.mode]));
  assert.equal(modes, {
    './etc/config/aerie': 0o644,
    './etc/init.d/aerie': 0o755,
    './etc/uci-defaults/90-aerie': 0o755,
    './lib/upgrade/keep.d/aerie': 0o644,
    './usr/bin/aerie': 0o755,
    './usr/lib/aerie/aerie-gateway.mjs': 0o644,
  });
});

test('the bundled daemon starts on the router Node (/usr/bin/node >= 20) and prints its usage', async () => {
  const v = runArgv([NODE20, '--version']);
  assert.is(v.code, 0, `${NODE20} runs`);
  const major = Number(/^v(\d+)\./.exec(v.stdout)?.[1]);
  assert.ok(major >= 20, `${NODE20} is Node ${v.stdout.trim()}, 20 or newer`);
  const root = join(work, 'rootfs');
  await mkdir(root);
  const ipk = await openIpk(join(outA, `aerie_${VERSION}_all.ipk`));
  await writeFile(join(work, 'data.tar.gz'), gunzipSync(byName(ipk.outer, './data.tar.gz').data));
  const x = runArgv(['tar', '-xf', join(work, 'data.tar.gz'), '-C', root]);
  assert.is(x.code, 0, x.stderr);
  const bundle = join(root, 'usr/lib/aerie/aerie-gateway.mjs');
  const help = runArgv([NODE20, ...DAEMON_NODE_FLAGS, bundle, '--help']);
  assert.is(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: aerie-gateway <command> \[options\]/);
  const version = runArgv([NODE20, bundle, '--version']);
  assert.is(version.stdout, `aerie-gateway ${VERSION}\n`);
  // The wrapper and the init script run that very file.
  assert.match(await readFile(join(root, 'usr/bin/aerie'), 'utf8'), /^exec \/usr\/bin\/node \/usr\/lib\/aerie\/aerie-gateway\.mjs "\$@"$/m);
});

/** Runs the init script's functions under stand-ins for rc.common and procd, printing each procd call. */
const PROCD_STUB = `
init="$1"; result="$2"
procd_open_instance() { echo "open_instance"; }
procd_close_instance() { echo "close_instance"; }
procd_set_param() { echo "set_param $*"; }
procd_send_signal() { echo "send_signal $*"; }
procd_add_reload_trigger() { echo "reload_trigger $*"; }
procd_add_interface_trigger() { echo "interface_trigger $*"; }
procd_add_validation() { echo "validation $*"; }
uci_load_validate() {
	echo "validate $1 $2 $3"
	shift 4
	for spec in "$@"; do echo "option $spec"; done
	start_aerie main "$result"
}
. "$init"
case "$3" in
	start) start_service ;;
	reload) reload_service ;;
	triggers) service_triggers ;;
esac
`;

test('init script: shell syntax, the procd instance, triggers and validation', async () => {
  const files = join(ROOT, 'openwrt-feed/aerie/files');
  const ipkScripts = join(ROOT, 'openwrt-feed/ipk');
  const scripts = [
    ...['aerie.init', 'aerie.uci-defaults', 'aerie.cli'].map((f) => join(files, f)),
    ...(await readdir(ipkScripts)).filter((f) => /\.(postinst|prerm|postrm)$/.test(f)).map((f) => join(ipkScripts, f)),
  ];
  const shells = [['sh', '-n'], ...(existsSync('/usr/bin/busybox') ? [['busybox', 'sh', '-n']] : [])];
  for (const s of scripts) {
    for (const check of shells) {
      const r = runArgv([...check, s]);
      assert.is(r.code, 0, `${check.join(' ')} ${s}: ${r.stderr}`);
    }
  }
  const shellcheck = runArgv(['shellcheck', '--version']);
  if (shellcheck.code === 0) {
    const r = runArgv(['shellcheck', '-s', 'sh', ...scripts]);
    assert.is(r.code, 0, r.stdout);
  }

  const stub = join(work, 'procd-stub.sh');
  await writeFile(stub, PROCD_STUB);
  const init = join(files, 'aerie.init');
  const start = runArgv(['sh', stub, init, '0', 'start']);
  assert.is(start.code, 0, start.stderr);
  const lines = start.stdout.trim().split('\n');
  assert.is(lines[0], 'validate aerie aerie main');
  assert.equal(
    lines.filter((l) => l.startsWith('option ')),
    ['option enabled:bool:1', 'option kill_switch:bool:1', 'option dns_intercept:bool:1', 'option home_assistant:bool:1', 'option lan_network:list(string):lan'],
  );
  const command = `set_param command /usr/bin/node ${DAEMON_NODE_FLAGS.join(' ')} /usr/lib/aerie/aerie-gateway.mjs run --config /etc/aerie/gateway.json`;
  for (const want of ['open_instance', command, 'set_param file /usr/lib/aerie/aerie-gateway.mjs', 'set_param respawn', 'set_param stdout 1', 'set_param stderr 1', 'close_instance']) {
    assert.ok(lines.includes(want), `start_service: ${want}\n${start.stdout}`);
  }
  const invalid = runArgv(['sh', stub, init, '1', 'start']);
  assert.not.ok(invalid.stdout.includes('open_instance'), 'a config that fails validation starts nothing');
  assert.match(invalid.stderr, /not valid/);
  assert.is(runArgv(['sh', stub, init, '0', 'reload']).stdout, 'send_signal aerie\n');
  assert.equal(runArgv(['sh', stub, init, '0', 'triggers']).stdout.trim().split('\n'), [
    'reload_trigger aerie',
    'interface_trigger interface.* wan /etc/init.d/aerie reload',
    'validation validate_aerie_section',
  ]);
});

/** The subset of UCI's file syntax (uci(1)) /etc/config/aerie uses: config, option, list, comments. */
function parseUci(text: string): { type: string; name: string; options: Record<string, string | string[]> }[] {
  const sections: { type: string; name: string; options: Record<string, string | string[]> }[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(config|option|list)\s+(\S+)(?:\s+'([^']*)')?$/.exec(line);
    if (!m) throw new Error(`line ${i + 1}: not UCI: ${raw}`);
    const [, kw, key, value] = m as unknown as [string, string, string, string | undefined];
    if (kw === 'config') return void sections.push({ type: key, name: value ?? '', options: {} });
    const s = sections[sections.length - 1];
    if (!s || value === undefined) throw new Error(`line ${i + 1}: ${kw} outside a section or without a value`);
    if (kw === 'option') s.options[key] = value;
    else s.options[key] = [...((s.options[key] as string[] | undefined) ?? []), value];
  });
  return sections;
}

test('/etc/config/aerie: the defaults the init script validates against', async () => {
  const config = parseUci(await readFile(join(ROOT, 'openwrt-feed/aerie/files/aerie.config'), 'utf8'));
  assert.equal(config, [
    { type: 'aerie', name: 'main', options: { enabled: '1', kill_switch: '1', dns_intercept: '1', home_assistant: '1', lan_network: ['lan'] } },
  ]);
  // Each option's default in uci_load_validate is what the shipped file says.
  const init = await readFile(join(ROOT, 'openwrt-feed/aerie/files/aerie.init'), 'utf8');
  const specs = [...init.matchAll(/'(\w+):([\w()]+):([^']*)'/g)].map(([, name, , def]) => [name!, def!] as const);
  const opts = config[0]!.options;
  assert.equal(specs.map(([n]) => n).sort(), Object.keys(opts).sort());
  for (const [name, def] of specs) assert.equal([opts[name]].flat().join(' '), def, `${name} default`);
});

test('feed Makefile: version, dependencies and arch match the built package', async () => {
  const mk = await readFile(join(ROOT, 'openwrt-feed/aerie/Makefile'), 'utf8');
  assert.match(mk, new RegExp(`^PKG_VERSION:=${VERSION.replace(/\./g, '\\.')}$`, 'm'), 'PKG_VERSION is package.json\'s');
  assert.match(mk, /^\s*DEPENDS:=\+node \+kmod-wireguard \+wireguard-tools \+ca-bundle \+ip-full$/m);
  assert.match(mk, /^\s*PKGARCH:=all$/m);
  const node = await readFile(join(ROOT, 'openwrt-feed/node/Makefile'), 'utf8');
  assert.match(node, /^PKG_NAME:=node$/m);
  assert.match(node, /\$\(INSTALL_BIN\) \$\(PKG_INSTALL_DIR\)\/usr\/bin\/node \$\(1\)\/usr\/bin\//);
});

test.after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

test.run();
