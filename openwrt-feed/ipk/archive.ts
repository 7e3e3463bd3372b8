import { gzipSync } from 'node:zlib';

/**
 * Just enough of POSIX ustar (IEEE 1003.1-1988, "ustar" magic, version "00")
 * and gzip (RFC 1952) for packages: regular files and directories, numeric
 * owners, one fixed mtime. opkg's unpacker (from BusyBox) reads ustar as well
 * as the GNU format OpenWrt's ipkg-build writes.
 */

export interface TarEntry {
  /** Archive name: "./etc/config/aerie", or "./etc/" (trailing slash) for a directory. */
  name: string;
  mode: number;
  /** Absent for a directory. */
  data?: Buffer;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  // width - 1 digits, then NUL, as tar's numeric fields are written.
  const s = value.toString(8);
  if (s.length > width - 1) throw new RangeError(`tar: ${value} does not fit a ${width}-byte field`);
  return `${s.padStart(width - 1, '0')}\0`;
}

/** ustar keeps 100 bytes of name plus a 155-byte prefix split at a '/'. */
function splitName(name: string): { name: string; prefix: string } {
  if (Buffer.byteLength(name) <= 100) return { name, prefix: '' };
  for (let i = name.lastIndexOf('/', name.length - 2); i > 0; i = name.lastIndexOf('/', i - 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100) return { name: rest, prefix };
  }
  throw new RangeError(`tar: name too long for ustar: ${name}`);
}

function header(entry: TarEntry, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  const size = entry.data?.length ?? 0;
  const { name, prefix } = splitName(entry.name);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(entry.mode & 0o7777, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii'); // uid: root, numerically
  h.write(octal(0, 8), 116, 'ascii'); // gid
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(mtime, 12), 136, 'ascii');
  h.write(entry.data === undefined ? '5' : '0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  // uname/gname stay empty: owners are numbers only, as with tar --numeric-owner.
  h.write(prefix, 345, 155, 'utf8');
  // The checksum is computed with its own field read as eight spaces.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/** A tar stream of the entries in the order given, ending in two zero blocks. */
export function tar(entries: readonly TarEntry[], mtime: number): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    parts.push(header(e, mtime));
    if (e.data) {
      parts.push(e.data);
      const pad = (BLOCK - (e.data.length % BLOCK)) % BLOCK;
      if (pad) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

/**
 * gzip with a fixed header, like `gzip -n`: no file name, mtime 0, and the OS
 * byte set to 3 (Unix) whatever system builds it (RFC 1952 §2.3.1).
 */
export function gzip(data: Buffer): Buffer {
  const out = gzipSync(data, { level: 9 });
  out.writeUInt32LE(0, 4);
  out[9] = 3;
  return out;
}

/**
 * Orders paths as `tar --sort=name` walks a tree: each directory's children
 * by name, a directory right before its contents.
 */
export function compareTarNames(a: string, b: string): number {
  const sa = a.replace(/\/$/, '').split('/');
  const sb = b.replace(/\/$/, '').split('/');
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    const x = Buffer.from(sa[i]!);
    const y = Buffer.from(sb[i]!);
    const c = Buffer.compare(x, y);
    if (c !== 0) return c;
  }
  return sa.length - sb.length;
}
