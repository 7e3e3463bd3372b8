import { readFile } from 'node:fs/promises';
import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Resolve } from './endpoint.ts';

/**
 * The VM's endpoint may be a DNS name, and the router's own resolver
 * (dnsmasq) forwards only to the VM's resolver, through the tunnel: with the
 * tunnel down it cannot find the VM, and the tunnel cannot come up. So the
 * endpoint's name is asked of the servers the WAN gave (on OpenWrt netifd
 * writes them to /tmp/resolv.conf.d/resolv.conf.auto), which works without
 * the tunnel. This one name is all the ISP's resolver ever sees.
 */
export const OPENWRT_WAN_RESOLV = '/tmp/resolv.conf.d/resolv.conf.auto';

/** The `nameserver` addresses of a resolv.conf text (resolv.conf(5)); scoped and malformed entries skipped. */
export function parseNameservers(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    // A scoped (link-local) server needs its interface, which a resolver's server list cannot carry.
    if (m && isIP(m[1]!) && !m[1]!.includes('%') && !out.includes(m[1]!)) out.push(m[1]!);
  }
  return out;
}

export interface WanResolverOptions {
  timeoutMs?: number;
  /** Port of the servers (53; another only for tests). */
  port?: number;
}

/** Resolves with the servers listed in `path` when asked (the file changes with the WAN lease): A first, then AAAA. */
export function wanResolver(path: string, opts: WanResolverOptions = {}): Resolve {
  const timeoutMs = opts.timeoutMs ?? 3000;
  const port = opts.port ?? 53;
  return async (host) => {
    const servers = parseNameservers(await readFile(path, 'utf8').catch(() => ''));
    if (servers.length === 0) throw new Error(`no DNS servers from the WAN in ${path}`);
    const r = new Resolver({ timeout: timeoutMs, tries: 2 });
    r.setServers(servers.map((s) => (isIP(s) === 6 ? `[${s}]:${port}` : `${s}:${port}`)));
    const v4 = await r.resolve4(host).catch(() => [] as string[]);
    if (v4[0]) return v4[0];
    const v6 = await r.resolve6(host).catch((e: Error) => {
      throw new Error(`the WAN's DNS servers (${servers.join(', ')}) do not resolve ${host}: ${e.message}`);
    });
    if (!v6[0]) throw new Error(`the WAN's DNS servers (${servers.join(', ')}) have no address for ${host}`);
    return v6[0];
  };
}

/** Tries each resolver in turn; fails with every reason when none resolves. */
export function firstResolving(...resolvers: Resolve[]): Resolve {
  return async (host) => {
    const reasons: string[] = [];
    for (const resolve of resolvers) {
      try {
        return await resolve(host);
      } catch (e) {
        reasons.push((e as Error).message);
      }
    }
    throw new Error(reasons.join('; '));
  };
}
