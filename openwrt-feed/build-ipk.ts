// `make ipk`: the aerie and luci-app-aerie packages for OpenWrt 24.10 (opkg),
// built without the OpenWrt SDK from `make build`'s bundle and the files in
// this feed. Both are architecture "all": the bundle runs on the router's Node.
//
//   node openwrt-feed/build-ipk.ts [--out-dir DIR]     (default dist/ipk)
//
// Reproducible: every entry has one mtime, SOURCE_DATE_EPOCH when set, else
// the last commit's time (as OpenWrt's build does), else 0; names sorted,
// owners numeric 0, gzip headers fixed. The same tree and Node version give
// the same bytes.
import { lstat, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createRunner, type Runner } from '../shared/run.ts';
import { buildIpk, type IpkSpec, type PackageFile } from './ipk/ipk.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface BuildOptions {
  /** The project checkout (default: the one this file is in). */
  root?: string;
  /** Where the .ipk files go (default <root>/dist/ipk). */
  outDir?: string;
  env?: NodeJS.ProcessEnv;
  run?: Runner;
}

export interface BuiltPackage {
  name: string;
  path: string;
  bytes: number;
}

/** SOURCE_DATE_EPOCH (reproducible-builds.org), else the last commit's time, else 0. */
export async function sourceDateEpoch(root: string, env: NodeJS.ProcessEnv = process.env, run: Runner = createRunner()): Promise<number> {
  const given = env['SOURCE_DATE_EPOCH'];
  if (given !== undefined && given !== '') {
    if (!/^\d{1,11}$/.test(given)) throw new Error(`SOURCE_DATE_EPOCH must be whole seconds since 1970, got ${JSON.stringify(given)}`);
    return Number(given);
  }
  const r = await run(['git', '-C', root, 'log', '-1', '--format=%ct'], { allowFail: true }).catch(() => null);
  const t = r?.code === 0 ? r.stdout.trim() : '';
  return /^\d+$/.test(t) ? Number(t) : 0;
}

async function file(path: string, mode: number, from: string): Promise<PackageFile> {
  return { path, mode, data: await readFile(from) };
}

// Paths OpenWrt runs as programs; anything else executable in the source tree keeps its x bit too.
const EXEC_DIRS = ['/etc/init.d/', '/etc/uci-defaults/', '/usr/bin/', '/usr/sbin/', '/usr/libexec/'];

/** Every file under dir, mapped below prefix ("/www" for htdocs/, "" for root/). Dotfiles and editor backups are left out, as luci.mk does. */
async function tree(dir: string, prefix: string): Promise<PackageFile[]> {
  const out: PackageFile[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw e;
  }
  for (const name of names.sort()) {
    if (name.startsWith('.') || name.endsWith('~')) continue;
    const from = join(dir, name);
    const to = `${prefix}/${name}`;
    const st = await lstat(from);
    if (st.isDirectory()) out.push(...(await tree(from, to)));
    else if (st.isFile()) {
      const exec = (st.mode & 0o111) !== 0 || EXEC_DIRS.some((d) => to.startsWith(d));
      out.push(await file(to, exec ? 0o755 : 0o644, from));
    } else throw new Error(`${from}: only files and directories can go in a package (no links)`);
  }
  return out;
}

async function aerieSpec(root: string, version: string, mtime: number): Promise<IpkSpec> {
  const bundle = join(root, 'dist/aerie-gateway.mjs');
  try {
    await stat(bundle);
  } catch {
    throw new Error(`${relative(root, bundle)} is missing: run 'make build' first`);
  }
  const files = join(root, 'openwrt-feed/aerie/files');
  const scripts = join(root, 'openwrt-feed/ipk');
  return {
    control: {
      package: 'aerie',
      version,
      // libc: OpenWrt's build adds it to every package that is not a kernel module.
      depends: ['libc', 'node', 'kmod-wireguard', 'wireguard-tools', 'ca-bundle', 'ip-full'],
      source: 'feeds/aerie/aerie',
      license: 'MIT',
      section: 'net',
      description: [
        'Aerie gateway: tunnels the whole home network over WireGuard to your own VM,',
        'with a kill switch and DNS interception. Needs Node 20 or newer.',
      ].join('\n'),
    },
    files: [
      await file('/usr/lib/aerie/aerie-gateway.mjs', 0o644, bundle),
      await file('/usr/bin/aerie', 0o755, join(files, 'aerie.cli')),
      await file('/etc/init.d/aerie', 0o755, join(files, 'aerie.init')),
      await file('/etc/config/aerie', 0o644, join(files, 'aerie.config')),
      await file('/etc/uci-defaults/90-aerie', 0o755, join(files, 'aerie.uci-defaults')),
    ],
    // /etc/aerie/ holds the pairing (JSON and the 0600 key), made at pairing time.
    conffiles: ['/etc/config/aerie', '/etc/aerie/'],
    scripts: {
      postinst: await readFile(join(scripts, 'aerie.postinst')),
      prerm: await readFile(join(scripts, 'aerie.prerm')),
    },
    mtime,
  };
}

async function luciSpec(root: string, version: string, mtime: number): Promise<IpkSpec> {
  const app = join(root, 'openwrt-feed/luci-app-aerie');
  const scripts = join(root, 'openwrt-feed/ipk');
  // luci.mk's layout: htdocs/ is served from /www, root/ is the filesystem; po/ needs po2lmo, so it stays out.
  const files = [...(await tree(join(app, 'htdocs'), '/www')), ...(await tree(join(app, 'root'), ''))];
  if (files.length === 0) throw new Error(`${relative(root, app)} has no files under htdocs/ or root/`);
  return {
    control: {
      package: 'luci-app-aerie',
      version,
      depends: ['libc', 'luci-base', 'aerie'],
      source: 'feeds/aerie/luci-app-aerie',
      license: 'MIT',
      section: 'luci',
      description: 'LuCI pages for Aerie (Services → Aerie): status, switches, pairing and devices.',
    },
    files,
    conffiles: [],
    scripts: {
      postinst: await readFile(join(scripts, 'luci-app-aerie.postinst')),
      postrm: await readFile(join(scripts, 'luci-app-aerie.postrm')),
    },
    mtime,
  };
}

export async function buildIpks(opts: BuildOptions = {}): Promise<BuiltPackage[]> {
  const root = resolve(opts.root ?? ROOT);
  const outDir = resolve(opts.outDir ?? join(root, 'dist/ipk'));
  const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string' || !/^\d+\.\d+\.\d+([-+.~][0-9A-Za-z.+~-]*)?$/.test(pkg.version)) {
    throw new Error(`package.json: version must look like 1.2.3, got ${JSON.stringify(pkg.version)}`);
  }
  const mtime = await sourceDateEpoch(root, opts.env, opts.run);
  const specs = [await aerieSpec(root, pkg.version, mtime), await luciSpec(root, pkg.version, mtime)];
  await mkdir(outDir, { recursive: true });
  const built: BuiltPackage[] = [];
  for (const spec of specs) {
    const { fileName, ipk } = buildIpk(spec);
    const path = join(outDir, fileName);
    await writeFile(path, ipk);
    built.push({ name: spec.control.package, path, bytes: ipk.length });
  }
  return built;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { 'out-dir': { type: 'string' } }, strict: true });
  for (const b of await buildIpks({ ...(values['out-dir'] ? { outDir: values['out-dir'] } : {}) })) {
    process.stdout.write(`${relative(process.cwd(), b.path) || b.path} (${Math.ceil(b.bytes / 1024)} KiB)\n`);
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`build-ipk: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  });
}
