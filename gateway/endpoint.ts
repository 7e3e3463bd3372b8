import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { formatEndpoint, parseEndpoint } from '../shared/pairing-code.ts';

export type Resolve = (host: string) => Promise<string>;

/** The system resolver, bounded in time (getaddrinfo itself has no timeout). */
export function systemResolver(timeoutMs = 3000): Resolve {
  return (host) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`resolving ${host} took longer than ${timeoutMs} ms`)), timeoutMs);
    });
    return Promise.race([lookup(host, { verbatim: true }).then((r) => r.address), timeout]).finally(() =>
      clearTimeout(timer),
    );
  };
}

/** "name:port" → "address:port"; an address literal is returned as is. */
export async function resolveEndpoint(endpoint: string, resolve: Resolve): Promise<string> {
  const { host, port } = parseEndpoint(endpoint, undefined, 'vm.endpoint');
  if (isIP(host)) return formatEndpoint(host, port);
  return formatEndpoint(await resolve(host), port);
}
