import type { Runner } from '../shared/run.ts';

/** The WAN as the control channel reports it: a default route that is not the tunnel's. */
export interface WanState {
  up: boolean;
  /** The interfaces of those default routes, IPv4's first. */
  interfaces: string[];
}

/**
 * Reads the main table's default routes (IPv4 and IPv6). The tunnel's own
 * default routes live in Aerie's table, not here; the tunnel interface is
 * still left out, in case someone routes the router itself through it.
 */
export async function readWan(run: Runner, tunnelInterface: string): Promise<WanState> {
  const interfaces: string[] = [];
  for (const family of ['4', '6']) {
    const r = await run(['ip', '-j', `-${family}`, 'route', 'show', 'default'], { allowFail: true });
    if (r.code !== 0) continue;
    let routes: unknown;
    try {
      routes = JSON.parse(r.stdout || '[]');
    } catch {
      continue;
    }
    for (const route of Array.isArray(routes) ? routes : []) {
      const dev = (route as { dev?: unknown }).dev;
      const type = (route as { type?: unknown }).type;
      // "unreachable default" and the like have no device and carry nothing.
      if (typeof dev !== 'string' || dev === tunnelInterface || (type !== undefined && type !== 'unicast')) continue;
      if (!interfaces.includes(dev)) interfaces.push(dev);
    }
  }
  return { up: interfaces.length > 0, interfaces };
}
