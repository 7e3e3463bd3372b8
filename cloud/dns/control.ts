// What the API and the CLI can do with DNS: settings, blocklist sources, the
// owner's own names, `dns test`, counters. Changes go to the store first and
// then to the running parts (list manager, resolver) through the hooks.
import * as v from 'valibot';
import { ValidationError } from '../../shared/errors.ts';
import { DeviceName, parseWith } from '../../shared/schemas.ts';
import { checkBlockMode, DNS_KEYS, readDnsSettings, type DnsSettings } from '../core/dns-settings.ts';
import { CoreError } from '../core/errors.ts';
import type { DnsListRow, NameAction } from '../store/dns.ts';
import type { Store } from '../store/store.ts';
import { normalizeDomain, type ListManager, type SourceStatus } from './lists/blocklist.ts';
import type { Resolver } from './resolver.ts';
import { formatUpstream, parseUpstream } from './upstream/spec.ts';

export interface UpstreamHealth {
  upstream: string;
  ok: boolean;
  lastError: string | null;
  rttMs: number | null;
}

/** What only the daemon has. */
export interface DnsLive {
  resolver: Resolver;
  upstreams(): UpstreamHealth[];
  /** The device names answered under the zone. */
  localNames(): string[];
  /** Rebuild resolver and upstreams from the stored settings. */
  settingsChanged(): void;
  /** A device's blocking switch changed. */
  devicesChanged(): void;
}

export interface DnsControlDeps {
  store: Store;
  lists: ListManager;
  live?: DnsLive | null;
  now?: () => number;
  /** A setting changed (its names: blockMode, upstreams, lists, names, blocking), after it is stored. */
  onChanged?: (keys: string[]) => void;
}

export interface DnsTestResult {
  name: string;
  /** What the resolver does with the name. */
  verdict: 'blocked' | 'allowed' | 'local' | 'forwarded';
  reason: string;
  matched: string | null;
  list: string | null;
}

export interface DnsOverview extends DnsSettings {
  running: boolean;
  lists: number;
  blockedNames: number;
  allowed: string[];
  blocked: string[];
}

export interface DnsStats {
  devices: Record<string, { queries: number; blocked: number; cached: number; local: number; forwarded: number; failed: number }>;
  cache: { entries: number; hits: number; misses: number };
  blocklist: { names: number; bytes: number };
  upstreams: UpstreamHealth[];
}

export interface DnsControl {
  overview(): DnsOverview;
  setSettings(body: unknown): DnsSettings;
  lists(): { updating: boolean; lists: SourceStatus[] };
  /** Stores the source and starts fetching it (see lists().updating). */
  addList(body: unknown): Promise<SourceStatus>;
  removeList(id: string): Promise<SourceStatus>;
  setListEnabled(id: string, body: unknown): Promise<SourceStatus>;
  /** Starts a refresh of one or every source; resolves once it is under way. */
  update(body: unknown): { updating: boolean };
  setName(name: string, body: unknown): { name: string; action: NameAction };
  removeName(name: string): { name: string };
  test(name: string): DnsTestResult;
  stats(): DnsStats;
  deviceBlocking(device: string): { device: string; blocking: boolean };
  setDeviceBlocking(device: string, body: unknown): { device: string; blocking: boolean };
  recent(): { device: string | null; queries: ReturnType<Resolver['recent']['list']> };
  setRecent(body: unknown): { device: string | null };
}

const ListId = v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'expected 1-32 lowercase letters, digits and hyphens'));
const AddListBody = v.strictObject({
  url: v.pipe(v.string(), v.minLength(1, 'expected a URL or an absolute path'), v.maxLength(2048, 'expected at most 2048 characters')),
  id: v.optional(ListId),
});
const SettingsBody = v.strictObject({
  blockMode: v.optional(v.string()),
  upstreams: v.optional(v.pipe(v.array(v.string()), v.minLength(1, 'expected at least one upstream'), v.maxLength(8, 'expected at most 8 upstreams'))),
});
const UpdateBody = v.optional(v.strictObject({ id: v.optional(ListId), force: v.optional(v.boolean()) }));
const EnabledBody = v.strictObject({ enabled: v.boolean() });
const NameBody = v.strictObject({ action: v.picklist(['allow', 'block'], 'expected "allow" or "block"') });
const BlockingBody = v.strictObject({ blocking: v.boolean() });
const RecentBody = v.strictObject({ device: v.nullable(DeviceName) });

/** http(s) URLs, file:// URLs and absolute paths; anything else is refused before it is stored. */
export function checkListUrl(text: string, field = 'url'): string {
  const url = text.trim();
  if (url.startsWith('/')) return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ValidationError(field, `expected an http(s):// or file:// URL or an absolute path, got ${JSON.stringify(text)}`);
  }
  if (!['http:', 'https:', 'file:'].includes(parsed.protocol)) {
    throw new ValidationError(field, `expected an http(s):// or file:// URL or an absolute path, got ${parsed.protocol}`);
  }
  if (parsed.username || parsed.password) throw new ValidationError(field, 'a list URL must not carry a user name or password');
  return parsed.href;
}

/** "https://example.net/lists/Ads_Big.txt" → "ads-big", unique among `taken`. */
export function listIdFor(url: string, taken: ReadonlySet<string>): string {
  const last = url.split(/[/?#]/).filter(Boolean).pop() ?? 'list';
  const base =
    last
      .replace(/\.[a-z0-9]{1,4}$/i, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 28) || 'list';
  // "custom" names the owner's own blocked names.
  let id = /^[a-z0-9]/.test(base) && base !== 'custom' ? base : `list-${base}`.slice(0, 32);
  for (let n = 2; taken.has(id) && n < 1000; n++) id = `${base.slice(0, 27)}-${n}`;
  return id;
}

export function toListSources(rows: DnsListRow[]) {
  return rows.map((r) => ({ id: r.id, url: r.url, enabled: r.enabled }));
}

/** The owner's names, split by action, for the list manager. */
export function ownNames(store: Store): { allow: string[]; block: string[] } {
  const rows = store.dns.names();
  return {
    allow: rows.filter((r) => r.action === 'allow').map((r) => r.name),
    block: rows.filter((r) => r.action === 'block').map((r) => r.name),
  };
}

export function createDnsControl(deps: DnsControlDeps): DnsControl {
  const { store, lists } = deps;
  const now = deps.now ?? Date.now;
  let updating: Promise<unknown> | null = null;

  const needLive = (what: string): DnsLive => {
    if (!deps.live) throw new CoreError('unavailable', `${what} needs the running daemon (aerie-cloud serve)`);
    return deps.live;
  };
  const changed = (keys: string[]) => {
    if (keys.length > 0) deps.onChanged?.(keys);
  };
  const status = (id: string): SourceStatus => {
    const s = lists.sources().find((x) => x.id === id);
    if (!s) throw new CoreError('not_found', `there is no blocklist "${id}" (see \`aerie-cloud dns lists\`)`);
    return s;
  };
  // One update at a time; a request during an update runs after it.
  const startUpdate = (opts: { only?: string; force?: boolean }) => {
    const previous = updating ?? Promise.resolve();
    const run = previous
      .then(() => lists.update({ ...(opts.only && { only: opts.only }), ...(opts.force && { force: true }) }))
      .catch(() => {}) // each source's status carries its own error
      .finally(() => {
        if (updating === run) updating = null;
      });
    updating = run;
  };
  const syncSources = () => lists.setSources(toListSources(store.dns.lists()));
  const syncNames = () => {
    const { allow, block } = ownNames(store);
    lists.setAllow(allow);
    lists.setBlock(block);
  };

  return {
    overview() {
      const names = ownNames(store);
      return {
        ...readDnsSettings(store.settings),
        running: Boolean(deps.live),
        lists: store.dns.lists().filter((l) => l.enabled).length,
        blockedNames: lists.current().names,
        allowed: names.allow,
        blocked: names.block,
      };
    },

    setSettings(body) {
      const req = parseWith(SettingsBody, body ?? {});
      const blockMode = req.blockMode === undefined ? undefined : checkBlockMode(req.blockMode, 'blockMode');
      const upstreams = req.upstreams?.map((u, i) => formatUpstream(parseUpstream(u, `upstreams[${i}]`)));
      store.transaction(() => {
        if (blockMode) store.settings.set(DNS_KEYS.blockMode, blockMode);
        if (upstreams) store.settings.set(DNS_KEYS.upstreams, JSON.stringify(upstreams));
      });
      deps.live?.settingsChanged();
      changed([...(blockMode ? ['blockMode'] : []), ...(upstreams ? ['upstreams'] : [])]);
      return readDnsSettings(store.settings);
    },

    lists: () => ({ updating: updating !== null, lists: lists.sources() }),

    async addList(body) {
      const req = parseWith(AddListBody, body);
      const url = checkListUrl(req.url);
      const rows = store.dns.lists();
      if (rows.some((r) => r.url === url)) throw new CoreError('conflict', `${url} is already a blocklist`);
      const id = req.id ?? listIdFor(url, new Set(rows.map((r) => r.id)));
      if (rows.some((r) => r.id === id)) throw new CoreError('conflict', `a blocklist with id "${id}" exists; pick another --id`);
      store.dns.addList({ id, url, enabled: true, addedAt: now() });
      try {
        await syncSources();
      } catch (err) {
        // The list manager refused the source: leave the store as it was.
        store.dns.removeList(id);
        await syncSources().catch(() => {});
        throw err;
      }
      startUpdate({ only: id });
      changed(['lists']);
      return status(id);
    },

    async removeList(id) {
      const before = status(id);
      if (!store.dns.removeList(id)) throw new CoreError('not_found', `there is no blocklist "${id}"`);
      await syncSources();
      changed(['lists']);
      return before;
    },

    async setListEnabled(id, body) {
      const { enabled } = parseWith(EnabledBody, body);
      if (!store.dns.setListEnabled(id, enabled)) throw new CoreError('not_found', `there is no blocklist "${id}"`);
      await syncSources();
      if (enabled) startUpdate({ only: id });
      changed(['lists']);
      return status(id);
    },

    update(body) {
      const req = parseWith(UpdateBody, body) ?? {};
      if (req.id) status(req.id);
      startUpdate({ ...(req.id && { only: req.id }), ...(req.force && { force: true }) });
      return { updating: true };
    },

    setName(name, body) {
      const { action } = parseWith(NameBody, body);
      const normalized = normalizeDomain(name, 'name');
      store.dns.setName({ name: normalized, action, addedAt: now() });
      syncNames();
      changed(['names']);
      return { name: normalized, action };
    },

    removeName(name) {
      const normalized = normalizeDomain(name, 'name');
      if (!store.dns.removeName(normalized)) {
        throw new CoreError('not_found', `${normalized} is neither on your allowlist nor on your blocklist`);
      }
      syncNames();
      changed(['names']);
      return { name: normalized };
    },

    test(name) {
      const normalized = normalizeDomain(name, 'name');
      const { zone } = readDnsSettings(store.settings);
      if (normalized === zone || normalized.endsWith(`.${zone}`)) {
        const host = normalized.slice(0, -zone.length - 1);
        const known = deps.live ? deps.live.localNames().includes(host) : Boolean(store.devices.get(host));
        return {
          name: normalized,
          verdict: 'local',
          reason: known || normalized === zone ? `answered by Aerie from its device list (zone ${zone})` : `not a device: Aerie answers NXDOMAIN in its zone ${zone}`,
          matched: null,
          list: null,
        };
      }
      const e = lists.current().explain(normalized);
      const matchedText = e.matched && e.matched !== normalized ? `${e.matched}, a parent of ${normalized},` : normalized;
      if (e.reason === 'allowlist') {
        return { name: normalized, verdict: 'allowed', reason: `${matchedText} is on your allowlist`, matched: e.matched, list: null };
      }
      if (e.blocked) {
        const by = e.reason === 'custom' ? 'your own blocklist' : `the blocklist "${e.list}"`;
        return { name: normalized, verdict: 'blocked', reason: `${matchedText} is on ${by}`, matched: e.matched, list: e.list };
      }
      return { name: normalized, verdict: 'forwarded', reason: 'on no list: resolved by the upstream', matched: null, list: null };
    },

    stats() {
      const live = needLive('live DNS counters');
      const s = live.resolver.stats();
      const b = lists.current();
      return { devices: s.devices, cache: s.cache, blocklist: { names: b.names, bytes: b.bytes }, upstreams: live.upstreams() };
    },

    deviceBlocking(device) {
      parseWith(DeviceName, device, 'device');
      const d = store.devices.get(device);
      if (!d) throw new CoreError('not_found', `there is no device named "${device}"`);
      return { device, blocking: d.dnsBlocking };
    },

    setDeviceBlocking(device, body) {
      parseWith(DeviceName, device, 'device');
      const { blocking } = parseWith(BlockingBody, body);
      if (!store.devices.setDnsBlocking(device, blocking)) throw new CoreError('not_found', `there is no device named "${device}"`);
      deps.live?.devicesChanged();
      changed(['blocking']);
      return { device, blocking };
    },

    recent() {
      const live = needLive('the recent-queries view');
      return { device: live.resolver.recent.device(), queries: live.resolver.recent.list() };
    },

    setRecent(body) {
      const { device } = parseWith(RecentBody, body);
      const live = needLive('the recent-queries view');
      if (device === null) {
        live.resolver.recent.disable();
        return { device: null };
      }
      if (!store.devices.get(device)) throw new CoreError('not_found', `there is no device named "${device}"`);
      live.resolver.recent.enable(device);
      return { device };
    },
  };
}
