import { compareTarNames, gzip, tar, type TarEntry } from './archive.ts';

/**
 * An .ipk as opkg on OpenWrt 24.10 reads it, laid out as OpenWrt's
 * scripts/ipkg-build writes one: a gzip'd tar holding ./debian-binary ("2.0"),
 * ./data.tar.gz (the files, from "./") and ./control.tar.gz (control,
 * conffiles, maintainer scripts), in that order.
 */

export interface PackageFile {
  /** Where it lands on the router: "/etc/config/aerie". */
  path: string;
  mode: number;
  data: Buffer;
}

export interface ControlInfo {
  package: string;
  version: string;
  depends: string[];
  /** Where the package's source lives in its feed: "feeds/aerie/aerie". */
  source: string;
  license: string;
  section: string;
  description: string;
}

export type ScriptName = 'preinst' | 'postinst' | 'prerm' | 'postrm';

export interface IpkSpec {
  control: ControlInfo;
  files: PackageFile[];
  /**
   * Paths sysupgrade and opkg keep. As OpenWrt's build does it, those that are
   * files of the package go to control's conffiles, the others (directories
   * such as "/etc/aerie/", files made later) to /lib/upgrade/keep.d/<package>.
   */
  conffiles: string[];
  scripts: Partial<Record<ScriptName, Buffer>>;
  /** Every entry's mtime, in seconds since the epoch. */
  mtime: number;
}

// ipkg-build refuses other characters in a package name.
const NAME = /^[a-z0-9][a-z0-9.+-]*$/;

/** The directories every file needs, "./" first, as tar names with a trailing slash. */
function directories(paths: readonly string[]): string[] {
  const dirs = new Set<string>(['./']);
  for (const p of paths) {
    const parts = p.split('/').slice(1, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(`./${parts.slice(0, i).join('/')}/`);
  }
  return [...dirs];
}

function checkPath(path: string): void {
  if (!path.startsWith('/') || path.endsWith('/') || path.split('/').slice(1).some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`ipk: not a clean absolute file path: ${JSON.stringify(path)}`);
  }
}

function dataTar(files: readonly PackageFile[], mtime: number): Buffer {
  const seen = new Set<string>();
  for (const f of files) {
    checkPath(f.path);
    if (seen.has(f.path)) throw new Error(`ipk: ${f.path} is in the package twice`);
    seen.add(f.path);
  }
  const entries: TarEntry[] = [
    ...directories(files.map((f) => f.path)).map((name) => ({ name, mode: 0o755 })),
    ...files.map((f) => ({ name: `.${f.path}`, mode: f.mode, data: f.data })),
  ];
  entries.sort((a, b) => compareTarNames(a.name, b.name));
  return tar(entries, mtime);
}

/** The control file: OpenWrt's field order (include/package-pack.mk), Description last with continuation lines indented. */
export function controlText(c: ControlInfo, installedSize: number, mtime: number): string {
  const lines = [
    `Package: ${c.package}`,
    `Version: ${c.version}`,
    ...(c.depends.length ? [`Depends: ${c.depends.join(', ')}`] : []),
    `Source: ${c.source}`,
    `SourceName: ${c.package}`,
    `License: ${c.license}`,
    `Section: ${c.section}`,
    `SourceDateEpoch: ${mtime}`,
    'Architecture: all',
    `Installed-Size: ${installedSize}`,
  ];
  const [first = '', ...rest] = c.description.trim().split('\n').map((l) => l.trim());
  lines.push(`Description: ${first}`, ...rest.map((l) => ` ${l === '' ? '.' : l}`));
  return `${lines.join('\n')}\n`;
}

export function buildIpk(spec: IpkSpec): { fileName: string; ipk: Buffer } {
  const { control: c, mtime } = spec;
  if (!NAME.test(c.package)) throw new Error(`ipk: package name ${JSON.stringify(c.package)} has characters ipkg-build refuses`);
  if (!Number.isSafeInteger(mtime) || mtime < 0) throw new Error(`ipk: mtime must be whole seconds >= 0, got ${mtime}`);
  const regular = new Set(spec.files.map((f) => f.path));
  const conffiles = spec.conffiles.filter((p) => regular.has(p)).sort();
  const keep = spec.conffiles.filter((p) => !regular.has(p));
  const files = keep.length
    ? [...spec.files, { path: `/lib/upgrade/keep.d/${c.package}`, mode: 0o644, data: Buffer.from(`${keep.join('\n')}\n`) }]
    : spec.files;
  const data = dataTar(files, mtime);
  // ipkg-build's Installed-Size: the uncompressed data.tar, in bytes.
  const controlEntries: TarEntry[] = [
    { name: './', mode: 0o755 },
    { name: './control', mode: 0o644, data: Buffer.from(controlText(c, data.length, mtime)) },
  ];
  if (conffiles.length) controlEntries.push({ name: './conffiles', mode: 0o644, data: Buffer.from(`${conffiles.join('\n')}\n`) });
  for (const [name, body] of Object.entries(spec.scripts)) {
    if (body) controlEntries.push({ name: `./${name}`, mode: 0o755, data: body });
  }
  controlEntries.sort((a, b) => compareTarNames(a.name, b.name));
  const outer = tar(
    [
      { name: './debian-binary', mode: 0o644, data: Buffer.from('2.0\n') },
      { name: './data.tar.gz', mode: 0o644, data: gzip(data) },
      { name: './control.tar.gz', mode: 0o644, data: gzip(tar(controlEntries, mtime)) },
    ],
    mtime,
  );
  return { fileName: `${c.package}_${c.version}_all.ipk`, ipk: gzip(outer) };
}
