import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// The lists directory: per source, the last good copy (<id>.list) and what is
// known about it (<id>.json). Both are replaced by rename, so a reader sees
// the old file or the new one, never half of one.

export interface SourceMeta {
  /** The URL the copy came from: a copy from another URL is not this source's. */
  url: string;
  /** HTTP validators of the copy, sent back on the next check. */
  etag: string | null;
  lastModified: string | null;
  /** File sources: the original's size and mtime when it was copied. */
  fileSize: number | null;
  fileMtimeMs: number | null;
  /** Unix ms when the copy was fetched; null: there is no copy. */
  updatedAt: number | null;
  /** Unix ms of the last attempt. */
  checkedAt: number | null;
  accepted: number;
  rejected: number;
  unsupported: number;
  /** Size of the copy. */
  bytes: number;
  /** Why the last attempt failed; null when it worked. */
  error: string | null;
}

export function emptyMeta(url: string): SourceMeta {
  return {
    url,
    etag: null,
    lastModified: null,
    fileSize: null,
    fileMtimeMs: null,
    updatedAt: null,
    checkedAt: null,
    accepted: 0,
    rejected: 0,
    unsupported: 0,
    bytes: 0,
    error: null,
  };
}

export const listPath = (dir: string, id: string) => join(dir, `${id}.list`);
export const metaPath = (dir: string, id: string) => join(dir, `${id}.json`);
const TEMP_PREFIX = '.tmp-';

/** A fresh temp file name in dir (renamed over the real file when complete). */
export function tempPath(dir: string, id: string): string {
  return join(dir, `${TEMP_PREFIX}${id}-${randomBytes(6).toString('hex')}`);
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

/** Temp files left by a process that stopped mid-download. */
export async function removeTemps(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name.startsWith(TEMP_PREFIX)) await rm(join(dir, name), { force: true });
  }
}

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown) => (typeof v === 'string' ? v : null);

/** The metadata of a source, or null when there is none (or it is unreadable: then the copy is fetched again). */
export async function readMeta(dir: string, id: string): Promise<SourceMeta | null> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(metaPath(dir, id), 'utf8'));
  } catch {
    return null;
  }
  if (typeof raw !== 'object' || raw === null) return null;
  const r = raw as Record<string, unknown>;
  const url = str(r['url']);
  if (url === null) return null;
  return {
    url,
    etag: str(r['etag']),
    lastModified: str(r['lastModified']),
    fileSize: num(r['fileSize']),
    fileMtimeMs: num(r['fileMtimeMs']),
    updatedAt: num(r['updatedAt']),
    checkedAt: num(r['checkedAt']),
    accepted: num(r['accepted']) ?? 0,
    rejected: num(r['rejected']) ?? 0,
    unsupported: num(r['unsupported']) ?? 0,
    bytes: num(r['bytes']) ?? 0,
    error: str(r['error']),
  };
}

export async function writeMeta(dir: string, id: string, meta: SourceMeta): Promise<void> {
  const tmp = tempPath(dir, id);
  try {
    await writeFile(tmp, `${JSON.stringify(meta, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    await rename(tmp, metaPath(dir, id));
  } finally {
    await rm(tmp, { force: true });
  }
}

export async function removeSourceFiles(dir: string, id: string): Promise<void> {
  await rm(listPath(dir, id), { force: true });
  await rm(metaPath(dir, id), { force: true });
}
