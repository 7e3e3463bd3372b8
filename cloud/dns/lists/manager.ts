import { existsSync } from 'node:fs';
import { ValidationError, describeInput } from '../../../shared/errors.ts';
import { createSerialQueue } from '../../../shared/serial-queue.ts';
import type { Blocklist } from './blocklist.ts';
import { compileLists, EMPTY_LISTS, fileChunks, type CompiledLists } from './compile.ts';
import { fetchSource } from './fetch.ts';
import { createBlocklist } from './matcher.ts';
import { normalizeDomain } from './names.ts';
import { checkSources, type ListSource } from './sources.ts';
import { smallTable } from './table.ts';
import { ensureDir, listPath, readMeta, removeSourceFiles, removeTemps, writeMeta, type SourceMeta } from './store.ts';

// Keeps the Blocklist current: last good copies on disk, fetched on a
// schedule and on demand, compiled off to the side and swapped in with one
// assignment. current() never waits; a query that holds the old Blocklist
// finishes with it. Loading, updating and changing sources run one at a time.

export interface SourceStatus {
  id: string;
  url: string;
  enabled: boolean;
  /** From the last good copy: names accepted, lines rejected, rules unsupported. */
  accepted: number;
  rejected: number;
  unsupported: number;
  /** Unix ms of the last good copy; null: none yet. */
  updatedAt: number | null;
  /** Unix ms of the last check. */
  checkedAt: number | null;
  /** Why the last check failed (the last good copy is still used); null when it worked. */
  error: string | null;
  /** Size of the last good copy. */
  bytes: number;
  downloading: { received: number; total: number | null } | null;
}

export interface ListManagerOptions {
  /** Last good copies and their metadata live here (created 0700). */
  dir: string;
  sources: ListSource[];
  /** Names (and their subdomains) never blocked. */
  allow: string[];
  /** The owner's own blocks (source id 'custom'). */
  block: string[];
  /** Default 24 h. */
  refreshEveryMs?: number;
  log?: (line: string) => void;
  fetch?: typeof fetch;
  now?: () => number;
  /** Called after each new list is in force (the daemon returns the compile's memory then). */
  onCompiled?: () => void;
}

export interface ListManager {
  current(): Blocklist;
  sources(): SourceStatus[];
  /** Loads last good copies from dir and compiles (no network). */
  load(): Promise<void>;
  /** Fetches enabled sources (conditional requests; a failure keeps the last good copy), recompiles, swaps. */
  update(opts?: {
    force?: boolean;
    only?: string;
    onProgress?: (p: { id: string; received: number; total: number | null }) => void;
  }): Promise<SourceStatus[]>;
  /** Recompiles from what is on disk; new sources are fetched by update(). */
  setSources(sources: ListSource[]): Promise<void>;
  /** Cheap: the big lists are not parsed again. */
  setAllow(names: string[]): void;
  setBlock(names: string[]): void;
  /** The refresh schedule (an unref'd timer: it never keeps the process alive). */
  start(): void;
  stop(): void;
}

const DAY_MS = 24 * 3600_000;
/** After a failed check, try again sooner than the normal interval. */
const RETRY_MS = 3600_000;
/** setTimeout's limit. */
const MAX_DELAY_MS = 2 ** 31 - 1;

function normalizeAll(names: unknown, field: string): string[] {
  if (!Array.isArray(names)) throw new ValidationError(field, `expected a list of domain names, got ${describeInput(names)}`);
  return names.map((n, i) => normalizeDomain(n as string, `${field}[${i}]`));
}

export function createListManager(opts: ListManagerOptions): ListManager {
  const dir = opts.dir;
  const doFetch = opts.fetch ?? globalThis.fetch;
  const now = opts.now ?? Date.now;
  const log = opts.log ?? (() => {});
  const every = opts.refreshEveryMs ?? DAY_MS;
  if (!Number.isInteger(every) || every < 1 || every > MAX_DELAY_MS) {
    throw new ValidationError('refreshEveryMs', `expected whole milliseconds from 1 to ${MAX_DELAY_MS}, got ${describeInput(every)}`);
  }
  let sources = checkSources(opts.sources, 'sources');
  let allow = smallTable(normalizeAll(opts.allow, 'allow'));
  let custom = smallTable(normalizeAll(opts.block, 'block'));
  let lists: CompiledLists = EMPTY_LISTS;
  let current = createBlocklist(lists, allow, custom);
  /** Whether `lists` reflects the copies on disk at least once. */
  let compiled = false;
  const metas = new Map<string, SourceMeta>();
  let metasRead = false;
  const downloading = new Map<string, { received: number; total: number | null }>();
  const serial = createSerialQueue();
  let started = false;
  let timer: NodeJS.Timeout | null = null;
  let scheduledRun: AbortController | null = null;

  const hasCopy = (s: ListSource) => {
    const m = metas.get(s.id);
    return m !== undefined && m.url === s.url && m.updatedAt !== null && existsSync(listPath(dir, s.id));
  };

  function status(s: ListSource): SourceStatus {
    const m = metas.get(s.id);
    const d = downloading.get(s.id);
    const mine = m !== undefined && m.url === s.url;
    return {
      id: s.id,
      url: s.url,
      enabled: s.enabled,
      accepted: mine && m.updatedAt !== null ? m.accepted : 0,
      rejected: mine && m.updatedAt !== null ? m.rejected : 0,
      unsupported: mine && m.updatedAt !== null ? m.unsupported : 0,
      updatedAt: mine ? m.updatedAt : null,
      checkedAt: mine ? m.checkedAt : null,
      error: mine ? m.error : null,
      bytes: mine && m.updatedAt !== null ? m.bytes : 0,
      downloading: d ? { received: d.received, total: d.total } : null,
    };
  }

  /** Reads what is on disk once: copies from another URL than the source's now are removed. */
  async function readMetas(): Promise<void> {
    await ensureDir(dir);
    if (metasRead) return;
    await removeTemps(dir);
    for (const s of sources) {
      const m = await readMeta(dir, s.id);
      if (m !== null && m.url !== s.url) await removeSourceFiles(dir, s.id);
      else if (m !== null) metas.set(s.id, m);
    }
    metasRead = true;
  }

  async function recompile(): Promise<void> {
    const inputs = sources.filter((s) => s.enabled && hasCopy(s)).map((s) => ({ id: s.id, read: () => fileChunks(listPath(dir, s.id)) }));
    const result = await compileLists(inputs);
    for (const [id, counts] of result.counts) {
      const m = metas.get(id);
      if (m) metas.set(id, { ...m, ...counts });
    }
    lists = result;
    current = createBlocklist(lists, allow, custom);
    compiled = true;
    opts.onCompiled?.();
    log(
      `dns lists: ${current.names} names from ${inputs.length} lists (${result.parsed} entries) ` +
        `compiled in ${Math.round(result.ms)} ms, ${current.bytes} bytes`,
    );
  }

  async function runUpdate(o: Parameters<ListManager['update']>[0] = {}, signal?: AbortSignal): Promise<SourceStatus[]> {
    await readMetas();
    if (o.only !== undefined && !sources.some((s) => s.id === o.only)) {
      throw new ValidationError('only', `expected the id of a list source, got ${describeInput(o.only)}`);
    }
    const targets = sources.filter((s) => (o.only !== undefined ? s.id === o.only : s.enabled));
    let changed = false;
    for (const s of targets) {
      if (signal?.aborted) break;
      const progress = { received: 0, total: null as number | null };
      downloading.set(s.id, progress);
      try {
        const r = await fetchSource(s, metas.get(s.id) ?? null, {
          dir,
          fetch: doFetch,
          now,
          force: o.force === true,
          ...(signal ? { signal } : {}),
          onProgress: (received, total) => {
            progress.received = received;
            progress.total = total;
            try {
              o.onProgress?.({ id: s.id, received, total });
            } catch {
              // a caller's display problem is not a download problem
            }
          },
        });
        if (signal?.aborted) break; // stop(): not a failure of the source
        metas.set(s.id, r.meta);
        await writeMeta(dir, s.id, r.meta);
        if (r.changed && s.enabled) changed = true;
        if (r.meta.error !== null) log(`dns lists: ${s.id}: ${r.meta.error}; keeping the last good copy`);
        else if (r.changed) log(`dns lists: ${s.id}: new copy, ${r.meta.accepted} names, ${r.meta.rejected} lines rejected, ${r.meta.unsupported} unsupported`);
        else log(`dns lists: ${s.id}: not modified`);
      } finally {
        downloading.delete(s.id);
      }
    }
    // Also when nothing changed but the copies on disk were never compiled (update() without load()).
    if (changed || !compiled) await recompile();
    return sources.map(status);
  }

  function schedule(ms: number): void {
    timer = setTimeout(tick, Math.max(0, Math.min(ms, MAX_DELAY_MS)));
    timer.unref();
  }

  function tick(): void {
    timer = null;
    const run = new AbortController();
    scheduledRun = run;
    serial(() => runUpdate({}, run.signal))
      .catch((e: unknown) => log(`dns lists: scheduled update failed: ${e instanceof Error ? e.message : String(e)}`))
      .finally(() => {
        if (scheduledRun === run) scheduledRun = null;
        if (!started || timer !== null) return;
        const failed = sources.some((s) => s.enabled && metas.get(s.id)?.error);
        schedule(failed ? Math.min(every, RETRY_MS) : every);
      });
  }

  return {
    current: () => current,
    sources: () => sources.map(status),
    load: () =>
      serial(async () => {
        await readMetas();
        await recompile();
      }),
    update: (o) => serial(() => runUpdate(o)),
    async setSources(list) {
      const next = checkSources(list, 'sources');
      await serial(async () => {
        await readMetas();
        for (const old of sources) {
          if (next.some((s) => s.id === old.id)) continue;
          await removeSourceFiles(dir, old.id);
          metas.delete(old.id);
        }
        for (const s of next) {
          if (metas.get(s.id)?.url === s.url || !metas.has(s.id)) continue;
          await removeSourceFiles(dir, s.id); // the copy of another URL
          metas.delete(s.id);
        }
        sources = next;
        await recompile();
      });
    },
    setAllow(names) {
      allow = smallTable(normalizeAll(names, 'allow'));
      current = createBlocklist(lists, allow, custom);
    },
    setBlock(names) {
      custom = smallTable(normalizeAll(names, 'block'));
      current = createBlocklist(lists, allow, custom);
    },
    start() {
      if (started) return;
      started = true;
      const checked = sources.filter((s) => s.enabled).map((s) => metas.get(s.id)?.checkedAt ?? -Infinity);
      const due = checked.length === 0 ? now() + every : Math.min(...checked) + every;
      schedule(Number.isFinite(due) ? due - now() : 0);
    },
    stop() {
      started = false;
      if (timer !== null) clearTimeout(timer);
      timer = null;
      scheduledRun?.abort();
    },
  };
}
