import { existsSync } from 'node:fs';
import { open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { fileChunks } from './compile.ts';
import { createListParser, type ParseCounts } from './parse.ts';
import { sourceLocation, type ListSource } from './sources.ts';
import { emptyMeta, listPath, tempPath, type SourceMeta } from './store.ts';

// Fetching one source into its last good copy. The body goes to a temp file
// in the lists directory; only a complete download that parses into names is
// renamed over the copy. Anything else (an HTTP error, a reset or cut-short
// connection, a timeout, an HTML page, a file of no names) leaves the old
// copy as it was and is reported in `error`. HTTP checks are conditional
// (RFC 9110 §13.1: If-None-Match with the ETag, If-Modified-Since with
// Last-Modified); a 304 keeps the copy. Local files are copied too (a list
// edited into nonsense later does not take the last good one with it), and
// compared by size and mtime.

export interface FetchOptions {
  dir: string;
  fetch: typeof fetch;
  now: () => number;
  /** Fetch even when the copy looks current (no conditional request). */
  force?: boolean;
  onProgress?: (received: number, total: number | null) => void;
  /** Default 200 MiB: the biggest lists people use are under 100 MB. */
  maxBytes?: number;
  /** The whole download; default 10 minutes. */
  timeoutMs?: number;
  /** No byte for this long (the answer's headers included); default 60 s. */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface FetchResult {
  /** What to remember about the source now. */
  meta: SourceMeta;
  /** True when a new copy replaced the old one. */
  changed: boolean;
}

export const MAX_LIST_BYTES = 200 * 1024 * 1024;

class ListFetchError extends Error {}

interface Downloaded {
  bytes: number;
  etag: string | null;
  lastModified: string | null;
  fileSize: number | null;
  fileMtimeMs: number | null;
}

export async function fetchSource(source: ListSource, previous: SourceMeta | null, opts: FetchOptions): Promise<FetchResult> {
  const copy = listPath(opts.dir, source.id);
  const hasCopy = previous !== null && previous.url === source.url && previous.updatedAt !== null && existsSync(copy);
  const base = hasCopy ? previous : emptyMeta(source.url);
  const checkedAt = opts.now();
  const tmp = tempPath(opts.dir, source.id);
  try {
    const loc = sourceLocation(source.url);
    // Without a copy, or when forced, there is nothing to compare with.
    const against = hasCopy && !opts.force ? base : null;
    const got = loc.kind === 'http' ? await download(loc.url, against, tmp, opts) : await copyLocal(loc.path, against, tmp, opts);
    if (got === null) return { meta: { ...base, checkedAt, error: null }, changed: false };
    const counts = await check(tmp, hasCopy ? base.accepted : 0);
    await rename(tmp, copy);
    return {
      meta: { ...got, url: source.url, updatedAt: checkedAt, checkedAt, ...counts, error: null },
      changed: true,
    };
  } catch (e) {
    return { meta: { ...base, checkedAt, error: describe(e) }, changed: false };
  } finally {
    await rm(tmp, { force: true });
  }
}

/** The new copy must be a list: not an HTML page, and with names in it. */
async function check(path: string, hadNames: number): Promise<ParseCounts> {
  let firstByte = -1;
  const parser = createListParser(() => {});
  for await (const chunk of fileChunks(path)) {
    if (firstByte < 0) {
      let i = chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf ? 3 : 0;
      while (i < chunk.length && (chunk[i] === 0x20 || chunk[i] === 0x09 || chunk[i] === 0x0d || chunk[i] === 0x0a)) i++;
      if (i < chunk.length) firstByte = chunk[i]!;
      if (firstByte === 0x3c) throw new ListFetchError('got an HTML page (or other markup), not a list'); // '<'
    }
    parser.push(chunk);
  }
  const counts = parser.end();
  if (counts.accepted === 0) {
    const before = hadNames > 0 ? ` (the last good copy has ${hadNames})` : '';
    throw new ListFetchError(`no names found${before}: ${counts.rejected} lines rejected, ${counts.unsupported} unsupported`);
  }
  return counts;
}

async function download(url: string, previous: SourceMeta | null, tmp: string, opts: FetchOptions): Promise<Downloaded | null> {
  const maxBytes = opts.maxBytes ?? MAX_LIST_BYTES;
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const ctl = new AbortController();
  let why: string | null = null;
  const abort = (reason: string) => {
    if (why !== null) return;
    why = reason;
    ctl.abort();
  };
  const whole = setTimeout(() => abort(`not complete after ${timeoutMs / 1000} s`), timeoutMs);
  let idle = setTimeout(() => abort(`no data for ${idleMs / 1000} s`), idleMs);
  const stopped = () => abort('stopped');
  if (opts.signal?.aborted) stopped();
  opts.signal?.addEventListener('abort', stopped);
  const headers: Record<string, string> = { 'user-agent': 'aerie', accept: 'text/plain, */*;q=0.5' };
  if (previous?.etag) headers['if-none-match'] = previous.etag;
  if (previous?.lastModified) headers['if-modified-since'] = previous.lastModified;
  let fh: FileHandle | null = null;
  let received = 0;
  try {
    const res = await opts.fetch(url, { headers, signal: ctl.signal, redirect: 'follow' });
    if (res.status === 304) {
      await res.body?.cancel().catch(() => {});
      if (previous === null) throw new ListFetchError('HTTP 304 (not modified) to a request that was not conditional');
      return null;
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      throw new ListFetchError(`HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`);
    }
    // With a content coding, Content-Length counts the coded bytes, not the ones read.
    const coding = res.headers.get('content-encoding');
    const length = res.headers.get('content-length');
    const total = (coding === null || coding === 'identity') && length !== null && /^\d+$/.test(length) ? Number(length) : null;
    if (total !== null && total > maxBytes) throw new ListFetchError(`too big: ${total} bytes, the limit is ${maxBytes}`);
    if (!res.body) throw new ListFetchError('the answer has no body');
    fh = await open(tmp, 'wx', 0o600);
    opts.onProgress?.(0, total);
    const reader = res.body.getReader();
    for (;;) {
      const chunk = await reader.read().catch((e: unknown) => {
        if (why !== null) throw e;
        throw new ListFetchError(`the download broke off after ${received} bytes: ${describe(e)}`);
      });
      if (chunk.done) break;
      received += chunk.value.length;
      if (received > maxBytes) {
        await reader.cancel().catch(() => {});
        throw new ListFetchError(`too big: over ${maxBytes} bytes`);
      }
      await fh.write(chunk.value);
      clearTimeout(idle);
      idle = setTimeout(() => abort(`no data for ${idleMs / 1000} s`), idleMs);
      opts.onProgress?.(received, total);
    }
    if (total !== null && received !== total) throw new ListFetchError(`cut short: ${received} of ${total} bytes`);
    await fh.sync();
    return {
      bytes: received,
      etag: res.headers.get('etag'),
      lastModified: res.headers.get('last-modified'),
      fileSize: null,
      fileMtimeMs: null,
    };
  } catch (e) {
    if (why !== null) throw new ListFetchError(why === 'stopped' ? 'stopped' : `timed out: ${why}`);
    throw e;
  } finally {
    clearTimeout(whole);
    clearTimeout(idle);
    opts.signal?.removeEventListener('abort', stopped);
    await fh?.close().catch(() => {});
  }
}

async function copyLocal(path: string, previous: SourceMeta | null, tmp: string, opts: FetchOptions): Promise<Downloaded | null> {
  const maxBytes = opts.maxBytes ?? MAX_LIST_BYTES;
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw new ListFetchError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? describe(e)}`);
  }
  if (!st.isFile()) throw new ListFetchError(`${path} is not a file`);
  if (previous !== null && previous.fileSize === st.size && previous.fileMtimeMs === st.mtimeMs) return null;
  if (st.size > maxBytes) throw new ListFetchError(`too big: ${st.size} bytes, the limit is ${maxBytes}`);
  const out = await open(tmp, 'wx', 0o600);
  let received = 0;
  try {
    opts.onProgress?.(0, st.size);
    for await (const chunk of fileChunks(path)) {
      if (opts.signal?.aborted) throw new ListFetchError('stopped');
      received += chunk.length;
      if (received > maxBytes) throw new ListFetchError(`too big: over ${maxBytes} bytes`);
      await out.write(chunk);
      opts.onProgress?.(received, st.size);
    }
    await out.sync();
  } finally {
    await out.close();
  }
  return { bytes: received, etag: null, lastModified: null, fileSize: st.size, fileMtimeMs: st.mtimeMs };
}

/** A readable reason: fetch's "fetch failed" says little without its cause. */
function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = (e as { cause?: unknown }).cause;
  const detail = cause instanceof Error ? cause.message : typeof cause === 'string' ? cause : '';
  return detail && detail !== e.message ? `${e.message}: ${detail}` : e.message;
}
