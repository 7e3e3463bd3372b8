import { formatPrefix, parseInterfaceAddress, parsePrefix, type Family } from '../../shared/cidr.ts';
import { ValidationError } from '../../shared/errors.ts';
import { checkInterfaceName } from '../../shared/interface-name.ts';
import type { GatewayDesired } from './platform.ts';

/**
 * Full tunnel by policy routing: traffic that arrives from a LAN interface is
 * looked up in our own table, whose default route is the tunnel. The router's
 * own traffic (the encrypted WireGuard packets included) keeps the main
 * table, so there is no routing loop and nothing to redo when the WAN changes.
 */

export interface RouteSpec {
  family: Family;
  type: 'unicast' | 'unreachable';
  /** "default" or a prefix in canonical form. */
  dst: string;
  /** Only for unicast routes. */
  dev?: string;
  metric: number;
  table: number;
}

export interface RuleSpec {
  family: Family;
  priority: number;
  iif: string;
  table: number;
}

export const ROUTE_METRIC = 100;
/** Behind every real route: when the tunnel route is gone, LAN traffic meets this instead of the main table. */
export const FALLBACK_METRIC = 65535;
const MAIN_TABLE = 254;
const FAMILIES: Family[] = [4, 6];

export type RoutingInput = Pick<GatewayDesired, 'interface' | 'addresses' | 'overlay' | 'lan' | 'table' | 'rulePriority' | 'killSwitch'>;

export interface RoutingPlan {
  rules: RuleSpec[];
  /** Routes in our table. */
  routes: RouteSpec[];
  /** Overlay prefixes not already on-link through a tunnel address, routed to the tunnel in the main table. */
  overlayRoutes: RouteSpec[];
}

export function planRouting(d: RoutingInput): RoutingPlan {
  const tunnel = checkInterfaceName(d.interface, 'interface');
  const lan = d.lan.map((l, i) => ({
    interface: checkInterfaceName(l.interface, `lan[${i}].interface`),
    prefixes: l.prefixes.map((p, j) => parsePrefix(p, `lan[${i}].prefixes[${j}]`)),
  }));
  if (lan.length === 0) throw new ValidationError('lan', 'expected at least one LAN interface');
  const rules: RuleSpec[] = [];
  const routes: RouteSpec[] = [];
  for (const family of FAMILIES) {
    for (const l of lan) rules.push({ family, priority: d.rulePriority, iif: l.interface, table: d.table });
    // Home prefixes stay at home: LAN to LAN is not sent into the tunnel.
    for (const l of lan) {
      for (const p of l.prefixes) {
        if (p.family === family) {
          routes.push({ family, type: 'unicast', dst: formatPrefix(p), dev: l.interface, metric: ROUTE_METRIC, table: d.table });
        }
      }
    }
    routes.push({ family, type: 'unicast', dst: 'default', dev: tunnel, metric: ROUTE_METRIC, table: d.table });
    if (d.killSwitch) routes.push({ family, type: 'unreachable', dst: 'default', metric: FALLBACK_METRIC, table: d.table });
  }
  const onLink = d.addresses.map((a, i) => formatPrefix(parseInterfaceAddress(a, `addresses[${i}]`).prefix));
  const overlayRoutes = d.overlay
    .map((text, i) => parsePrefix(text, `overlay[${i}]`))
    .filter((p) => !onLink.includes(formatPrefix(p)))
    .map((p): RouteSpec => ({ family: p.family, type: 'unicast', dst: formatPrefix(p), dev: tunnel, metric: ROUTE_METRIC, table: MAIN_TABLE }));
  return { rules: dedupe(rules, ruleKey), routes: dedupe(routes, routeKey), overlayRoutes };
}

function dedupe<T>(items: T[], key: (t: T) => string): T[] {
  const seen = new Set<string>();
  return items.filter((t) => !seen.has(key(t)) && (seen.add(key(t)), true));
}

export const routeKey = (r: RouteSpec) => `${r.family} ${r.table} ${r.type} ${r.dst} ${r.dev ?? ''} ${r.metric}`;
export const ruleKey = (r: RuleSpec) => `${r.family} ${r.priority} ${r.iif} ${r.table}`;

export function routeArgv(op: 'replace' | 'del', r: RouteSpec): string[] {
  return [
    'ip', `-${r.family}`, 'route', op,
    ...(r.type === 'unicast' ? [] : [r.type]),
    r.dst,
    ...(r.type === 'unicast' && r.dev ? ['dev', r.dev] : []),
    'table', String(r.table),
    'metric', String(r.metric),
  ];
}

export function ruleArgv(op: 'add' | 'del', r: RuleSpec): string[] {
  const iif = r.iif ? ['iif', r.iif] : [];
  return ['ip', `-${r.family}`, 'rule', op, ...iif, 'lookup', String(r.table), 'priority', String(r.priority)];
}

/** The plan as the ip commands that create it, one per line (for reading and golden files). */
export function renderRouting(d: RoutingInput): string {
  const plan = planRouting(d);
  return [
    ...plan.routes.map((r) => routeArgv('replace', r)),
    ...plan.rules.map((r) => ruleArgv('add', r)),
    ...plan.overlayRoutes.map((r) => routeArgv('replace', r)),
  ]
    .map((argv) => argv.join(' '))
    .join('\n')
    .concat('\n');
}

// ---- reading what the kernel has (ip -j) -------------------------------------

interface IpRoute {
  type?: string;
  dst?: string;
  dev?: string;
  metric?: number;
}

function canonicalDst(dst: string, family: Family): string {
  if (dst === 'default') return 'default';
  const text = dst.includes('/') ? dst : `${dst}/${family === 4 ? 32 : 128}`;
  try {
    return formatPrefix(parsePrefix(text));
  } catch {
    return dst;
  }
}

/** Routes of one table from `ip -j -4|-6 route show table T`, in RouteSpec form. */
export function parseRoutes(json: string, family: Family, table: number): RouteSpec[] {
  const list = JSON.parse(json || '[]') as IpRoute[];
  return list.map((r) => {
    const type = (r.type ?? 'unicast') as RouteSpec['type'];
    return {
      family,
      type,
      dst: canonicalDst(r.dst ?? 'default', family),
      ...(type === 'unicast' && r.dev ? { dev: r.dev } : {}),
      metric: r.metric ?? 0,
      table,
    };
  });
}

interface IpRule {
  priority?: number;
  iif?: string;
  table?: string;
  src?: string;
  srclen?: number;
  dst?: string;
  fwmark?: string;
}

/** Our table's rules from `ip -j -4|-6 rule show`; rules with other selectors come back with an empty iif (not ours to keep). */
export function parseRules(json: string, family: Family, table: number): RuleSpec[] {
  const list = JSON.parse(json || '[]') as IpRule[];
  return list
    .filter((r) => r.table === String(table))
    .map((r) => {
      const plain = (r.src === undefined || r.src === 'all') && r.dst === undefined && r.fwmark === undefined;
      return { family, priority: r.priority ?? 0, iif: plain ? (r.iif ?? '') : '', table };
    });
}
