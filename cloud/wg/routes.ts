import { CommandError, type Runner } from '../../shared/run.ts';
import { formatPrefix, hostPrefix, parseAddress, parsePrefix, type Family, type Prefix } from '../../shared/cidr.ts';

/**
 * The routing protocol number our routes carry (rtnetlink's rtm_protocol), so
 * that ours can be listed and removed without touching anyone else's. 174 is
 * 0xae, for "aerie"; it is not in iproute2's rt_protos list.
 */
export const AERIE_ROUTE_PROTO = '174';

interface Route {
  family: Family;
  dst: string;
  dev: string | null;
}

function canonicalDst(family: Family, dst: string): string {
  if (dst === 'default') return family === 4 ? '0.0.0.0/0' : '::/0';
  if (dst.includes('/')) return formatPrefix(parsePrefix(dst));
  return formatPrefix(hostPrefix(parseAddress(dst))); // ip prints a /32 or /128 without its length
}

/** Routes in the main table that carry our protocol number. */
export async function readOurRoutes(run: Runner): Promise<Route[]> {
  const out: Route[] = [];
  for (const family of [4, 6] as const) {
    const argv = ['ip', '-j', `-${family}`, 'route', 'show', 'table', 'main', 'proto', AERIE_ROUTE_PROTO];
    const r = await run(argv);
    let list: { dst?: string; dev?: string }[];
    try {
      list = JSON.parse(r.stdout || '[]') as typeof list;
    } catch {
      throw new CommandError(argv, 0, 'unexpected output (not JSON)');
    }
    for (const route of list) {
      if (route.dst === undefined) continue;
      out.push({ family, dst: canonicalDst(family, route.dst), dev: route.dev ?? null });
    }
  }
  return out;
}

/**
 * Makes our routes exactly `wanted`, each to `dev`; with dev null, removes all
 * of ours. Only missing routes are added and only stale ones deleted.
 */
export async function syncRoutes(run: Runner, dev: string | null, wanted: Prefix[]): Promise<void> {
  const current = await readOurRoutes(run);
  const want = dev === null ? [] : wanted.map(formatPrefix);
  for (const r of current) {
    if (r.dev === dev && want.includes(r.dst)) continue;
    const argv = ['ip', `-${r.family}`, 'route', 'del', r.dst, 'proto', AERIE_ROUTE_PROTO, 'table', 'main'];
    await run(r.dev === null ? argv : [...argv, 'dev', r.dev]);
  }
  if (dev === null) return;
  for (const p of wanted) {
    const dst = formatPrefix(p);
    if (current.some((r) => r.dev === dev && r.dst === dst)) continue;
    // replace, not add: a leftover route to the same prefix would otherwise block ours.
    await run(['ip', `-${p.family}`, 'route', 'replace', dst, 'dev', dev, 'proto', AERIE_ROUTE_PROTO, 'table', 'main']);
  }
}
