// `aerie-cloud dns …`: the resolver's settings, blocklists, names and counters,
// through the same API the daemon serves.
import type { ControlClient } from '../control/client.ts';
import type { DnsOverview, DnsStats, DnsTestResult } from '../dns/control.ts';
import type { SourceStatus } from '../dns/lists/blocklist.ts';
import { bytes, table } from './output.ts';

export const DNS_USAGE = `  aerie-cloud dns [--json]                  settings and a summary
  aerie-cloud dns lists [--json]            blocklists: names, rejected lines, last update
  aerie-cloud dns add-list URL|PATH [--id ID]
  aerie-cloud dns remove-list ID | enable-list ID | disable-list ID
  aerie-cloud dns update [ID] [--force]     fetch lists now (only what changed, unless --force)
  aerie-cloud dns allow NAME | block NAME   NAME and its subdomains, always allowed / blocked
  aerie-cloud dns unallow NAME | unblock NAME
  aerie-cloud dns test NAME [--json]        is NAME blocked, and why
  aerie-cloud dns stats [--json]            queries, blocked, cached per device
  aerie-cloud dns upstream SPEC...          udp:IP[:PORT] tcp:IP[:PORT] dot:HOST@IP[:PORT] doh:URL
  aerie-cloud dns block-mode null|nxdomain  answer blocked names 0.0.0.0/:: or NXDOMAIN
  aerie-cloud dns device NAME on|off        ad blocking for one device (a router: its whole home)
  aerie-cloud dns recent [DEVICE | --off]   in-memory view of one device's recent queries`;

export class DnsUsageError extends Error {}

export interface DnsCliContext {
  api: ControlClient;
  daemon: boolean;
  json: boolean;
  tty: boolean;
  out: (text: string) => void;
  /** Progress lines on a terminal (stderr), rewritten in place. */
  progress: (text: string) => void;
  sleep?: (ms: number) => Promise<void>;
}

const enc = encodeURIComponent;

const ago = (ms: number | null, now = Date.now()) => {
  if (ms === null) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 120) return `${s} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} days ago`;
};

export function listsTable(lists: SourceStatus[]): string {
  if (lists.length === 0) return 'No blocklists. Add one with `aerie-cloud dns add-list URL`.';
  const rows = [['ID', 'ON', 'NAMES', 'REJECTED', 'UNSUPPORTED', 'UPDATED', 'URL']];
  for (const l of lists) {
    rows.push([l.id, l.enabled ? 'yes' : 'no', String(l.accepted), String(l.rejected), String(l.unsupported), ago(l.updatedAt), l.url]);
  }
  const errors = lists.filter((l) => l.error).map((l) => `${l.id}: ${l.error}${l.updatedAt ? ' (the last good copy stays in use)' : ''}`);
  return [table(rows), ...(errors.length ? ['', ...errors] : [])].join('\n');
}

export function statsText(s: DnsStats): string {
  const rows = [['DEVICE', 'QUERIES', 'BLOCKED', 'CACHED', 'LOCAL', 'FAILED']];
  for (const [name, c] of Object.entries(s.devices).sort(([a], [b]) => a.localeCompare(b))) {
    const pct = c.queries ? ` (${Math.round((100 * c.blocked) / c.queries)} %)` : '';
    rows.push([name, String(c.queries), `${c.blocked}${pct}`, String(c.cached), String(c.local), String(c.failed)]);
  }
  const lines = [
    rows.length > 1 ? table(rows) : 'No queries since the daemon started.',
    '',
    `blocklist: ${s.blocklist.names} names in ${bytes(s.blocklist.bytes)}`,
    `cache:     ${s.cache.entries} entries, ${s.cache.hits} hits, ${s.cache.misses} misses`,
    ...s.upstreams.map((u) => `upstream:  ${u.upstream} ${u.ok ? 'ok' : `failing${u.lastError ? `: ${u.lastError}` : ''}`}${u.rttMs !== null ? ` (${Math.round(u.rttMs)} ms)` : ''}`),
  ];
  return lines.join('\n');
}

function overviewText(o: DnsOverview): string {
  return [
    `resolver:   ${o.running ? 'running' : 'not running (start it with `aerie-cloud serve`)'}`,
    `zone:       ${o.zone}`,
    `upstreams:  ${o.upstreams.join(', ')}`,
    `blocked:    ${o.blockMode === 'null' ? 'answered 0.0.0.0 and ::' : 'answered NXDOMAIN'}; ${o.blockedNames} names from ${o.lists} list(s)`,
    `allowlist:  ${o.allowed.join(', ') || '-'}`,
    `own blocks: ${o.blocked.join(', ') || '-'}`,
  ].join('\n');
}

/** Waits for a list update to end, showing downloads on a terminal. Bounded: 30 minutes. */
async function followUpdate(ctx: DnsCliContext, ids: string[] | null): Promise<SourceStatus[]> {
  const sleep = ctx.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const deadline = Date.now() + 30 * 60_000;
  for (;;) {
    const { updating, lists } = await ctx.api.request<{ updating: boolean; lists: SourceStatus[] }>('GET', '/v1/dns/lists');
    const mine = ids ? lists.filter((l) => ids.includes(l.id)) : lists;
    if (ctx.tty) {
      const busy = mine.filter((l) => l.downloading);
      ctx.progress(
        busy
          .map((l) => `${l.id}: ${bytes(l.downloading!.received)}${l.downloading!.total ? ` of ${bytes(l.downloading!.total)}` : ''}`)
          .join(', '),
      );
    }
    if (!updating) {
      if (ctx.tty) ctx.progress('');
      return mine;
    }
    if (Date.now() > deadline) throw new Error('the list update is still running after 30 minutes; see `aerie-cloud dns lists`');
    await sleep(250);
  }
}

function summary(lists: SourceStatus[]): string {
  return lists
    .map((l) =>
      l.error
        ? `${l.id}: ${l.error}${l.updatedAt ? ' (kept the last good copy)' : ''}`
        : `${l.id}: ${l.accepted} names${l.rejected ? `, ${l.rejected} lines rejected` : ''}${l.unsupported ? `, ${l.unsupported} rules that DNS cannot express` : ''}`,
    )
    .join('\n');
}

function one(args: string[], what: string): string {
  if (args.length !== 1 || !args[0]) throw new DnsUsageError(`expected ${what}`);
  return args[0];
}

export async function runDns(ctx: DnsCliContext, sub: string | undefined, args: string[], flags: { id?: string; force?: boolean; off?: boolean }): Promise<void> {
  const { api, out } = ctx;
  const show = (value: unknown, text: () => string) => out(ctx.json ? JSON.stringify(value, null, 2) : text());
  switch (sub) {
    case undefined: {
      const o = await api.request<DnsOverview>('GET', '/v1/dns');
      return show(o, () => overviewText(o));
    }
    case 'lists': {
      const { lists } = await api.request<{ lists: SourceStatus[] }>('GET', '/v1/dns/lists');
      return show(lists, () => listsTable(lists));
    }
    case 'add-list': {
      const url = one(args, 'a URL or an absolute path');
      const { list } = await api.request<{ list: SourceStatus }>('POST', '/v1/dns/lists', { url, ...(flags.id && { id: flags.id }) });
      out(`Added blocklist ${list.id}; fetching it…`);
      const done = await followUpdate(ctx, [list.id]);
      out(summary(done));
      if (done.some((l) => l.error && !l.updatedAt)) process.exitCode = 1;
      return;
    }
    case 'remove-list': {
      const { list } = await api.request<{ list: SourceStatus }>('DELETE', `/v1/dns/lists/${enc(one(args, 'a list id'))}`);
      return out(`Removed blocklist ${list.id}.`);
    }
    case 'enable-list':
    case 'disable-list': {
      const enabled = sub === 'enable-list';
      const id = one(args, 'a list id');
      await api.request('PATCH', `/v1/dns/lists/${enc(id)}`, { enabled });
      if (!enabled) return out(`Blocklist ${id} is off.`);
      return out(summary(await followUpdate(ctx, [id])));
    }
    case 'update': {
      if (args.length > 1) throw new DnsUsageError('expected at most one list id');
      const id = args[0];
      await api.request('POST', '/v1/dns/lists/update', { ...(id && { id }), ...(flags.force && { force: true }) });
      const done = await followUpdate(ctx, id ? [id] : null);
      out(summary(done.filter((l) => l.enabled)));
      return;
    }
    case 'allow':
    case 'block': {
      const r = await api.request<{ name: string }>('PUT', `/v1/dns/names/${enc(one(args, 'a domain name'))}`, { action: sub });
      return out(sub === 'allow' ? `${r.name} and its subdomains are never blocked.` : `${r.name} and its subdomains are blocked.`);
    }
    case 'unallow':
    case 'unblock': {
      const r = await api.request<{ name: string }>('DELETE', `/v1/dns/names/${enc(one(args, 'a domain name'))}`);
      return out(`${r.name} is off your ${sub === 'unallow' ? 'allowlist' : 'blocklist'}.`);
    }
    case 'test': {
      const r = await api.request<DnsTestResult>('GET', `/v1/dns/test/${enc(one(args, 'a domain name'))}`);
      return show(r, () => `${r.name}: ${r.verdict} (${r.reason})`);
    }
    case 'stats': {
      const s = await api.request<DnsStats>('GET', '/v1/dns/stats');
      return show(s, () => statsText(s));
    }
    case 'upstream': {
      if (args.length === 0) throw new DnsUsageError('expected one or more upstreams, e.g. udp:127.0.0.1');
      const r = await api.request<{ upstreams: string[] }>('PATCH', '/v1/dns', { upstreams: args });
      return out(`Upstreams, in order: ${r.upstreams.join(', ')}${ctx.daemon ? '' : ' (used when the daemon starts)'}`);
    }
    case 'block-mode': {
      const r = await api.request<{ blockMode: string }>('PATCH', '/v1/dns', { blockMode: one(args, 'null or nxdomain') });
      return out(`Blocked names are answered ${r.blockMode === 'null' ? 'with 0.0.0.0 and ::' : 'NXDOMAIN'}.`);
    }
    case 'device': {
      if (args.length !== 2 || !['on', 'off'].includes(args[1]!)) throw new DnsUsageError('expected: dns device NAME on|off');
      const r = await api.request<{ device: string; blocking: boolean }>('PUT', `/v1/dns/devices/${enc(args[0]!)}`, { blocking: args[1] === 'on' });
      return out(`Ad blocking for ${r.device} is ${r.blocking ? 'on' : 'off'}.`);
    }
    case 'recent': {
      if (flags.off || args.length === 1) {
        const r = await api.request<{ device: string | null }>('PUT', '/v1/dns/recent', { device: flags.off ? null : args[0] });
        return out(
          r.device
            ? `Keeping the recent queries of ${r.device} in memory (never on disk) until \`aerie-cloud dns recent --off\` or a restart.`
            : 'The recent-queries view is off and emptied.',
        );
      }
      const r = await api.request<{ device: string | null; queries: { at: number; name: string; type: string; result: string; rcode: string }[] }>('GET', '/v1/dns/recent');
      return show(r, () =>
        r.device === null
          ? 'The recent-queries view is off. Turn it on for one device with `aerie-cloud dns recent DEVICE`.'
          : r.queries.length === 0
            ? `No queries from ${r.device} yet.`
            : table([
                ['TIME', 'TYPE', 'NAME', 'RESULT', 'RCODE'],
                ...r.queries.map((q) => [new Date(q.at).toLocaleTimeString(), q.type, q.name, q.result, q.rcode]),
              ]),
      );
    }
    default:
      throw new DnsUsageError(`unknown dns command: ${sub}`);
  }
}
