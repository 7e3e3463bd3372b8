import type { Context, MiddlewareHandler } from 'hono';
import { formatAddress, parseAddress } from '../../shared/cidr.ts';
import { HttpError } from './errors.ts';

// Identity on the overlay API is the tunnel source address, so a browser on an
// owner's phone carries the owner's authority to any page it opens. These
// checks keep web pages out:
// - a body must be declared application/json: browsers send that cross-origin
//   only after a CORS preflight, which this API never grants (no CORS headers);
// - the Host must be one of the VM's own addresses, which defeats DNS
//   rebinding (the browser would send the attacker's name);
// - a request with an Origin must come from the API's own origin.

/** True when Content-Type is application/json (parameters such as charset allowed). */
export function isJsonContentType(value: string | undefined): boolean {
  return value !== undefined && value.split(';')[0]!.trim().toLowerCase() === 'application/json';
}

export const unsupportedMediaType = () =>
  new HttpError(415, 'unsupported_media_type', 'a request body must be sent with Content-Type: application/json');

/**
 * Refuses a request whose Content-Length announces a body that is not JSON,
 * whatever the endpoint. A chunked body is checked by readJson once its bytes
 * arrive (an empty one, as some clients send for a bare POST, is fine).
 */
export function requireJsonBody(): MiddlewareHandler {
  return async (c, next) => {
    const length = c.req.header('content-length');
    const declaresBody = length !== undefined && /^\s*0*[1-9]/.test(length);
    if (declaresBody && !isJsonContentType(c.req.header('content-type'))) throw unsupportedMediaType();
    await next();
  };
}

/** A host name or address, lowercased; addresses in canonical form, without brackets. */
function canonicalHost(host: string): string {
  const h = host.toLowerCase().replace(/\.$/, '');
  try {
    return formatAddress(parseAddress(h));
  } catch {
    return h; // a DNS name
  }
}

/**
 * Splits a Host header ("203.0.113.129", "[2001:db8::1]:8080", "vm.example")
 * into a canonical host and its port (null when absent); null when malformed
 * (e.g. an IPv6 address without brackets).
 */
export function parseHostHeader(value: string): { host: string; port: number | null } | null {
  const v = value.trim();
  let host: string;
  let rest: string;
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    if (end < 0) return null;
    host = v.slice(1, end);
    rest = v.slice(end + 1);
  } else {
    const colon = v.indexOf(':');
    if (colon !== v.lastIndexOf(':')) return null;
    host = colon < 0 ? v : v.slice(0, colon);
    rest = colon < 0 ? '' : v.slice(colon);
  }
  if (host === '') return null;
  if (rest === '') return { host: canonicalHost(host), port: null };
  const m = /^:(\d{1,5})$/.exec(rest);
  if (!m || Number(m[1]) > 65535) return null;
  return { host: canonicalHost(host), port: Number(m[1]) };
}

const hostError = (message: string) => new HttpError(421, 'unexpected_host', message);
const originError = (message: string) => new HttpError(403, 'forbidden_origin', message);

/**
 * With `allowedHosts` (plain or bracketed addresses, or names), the Host header
 * must name one of them. A request with an Origin header must come from
 * http://<its Host>; without `allowedHosts` no Origin is accepted at all.
 */
export function checkHostAndOrigin(allowedHosts: readonly string[] | undefined): MiddlewareHandler {
  const guard = hostOriginGuard(allowedHosts);
  return async (c: Context, next) => {
    const problem = guard(c.req.header('host'), c.req.header('origin'));
    if (problem) throw problem;
    await next();
  };
}

/** The same checks on raw header values (for requests Hono does not see: WebSocket upgrades); null when fine. */
export function hostOriginGuard(allowedHosts: readonly string[] | undefined): (hostHeader: string | undefined, origin: string | undefined) => HttpError | null {
  const allowed = allowedHosts && new Set(allowedHosts.map((h) => canonicalHost(h.replace(/^\[(.*)\]$/, '$1'))));
  return (hostHeader, origin) => {
    const host = hostHeader === undefined ? null : parseHostHeader(hostHeader);
    if (allowed) {
      if (!host || !allowed.has(host.host)) {
        return hostError(`unexpected Host ${JSON.stringify(hostHeader ?? '')}: this API answers only at ${[...allowed].join(', ')}`);
      }
    }
    if (origin !== undefined) {
      if (!allowed || !host) return originError(`requests from web pages (Origin ${origin}) are not accepted`);
      let url: URL | null = null;
      try {
        url = new URL(origin);
      } catch {
        url = null;
      }
      const same =
        url !== null &&
        url.protocol === 'http:' &&
        url.username === '' &&
        url.pathname === '/' &&
        canonicalHost(url.hostname.replace(/^\[(.*)\]$/, '$1')) === host.host &&
        Number(url.port || 80) === (host.port ?? 80);
      if (!same) return originError(`requests from other web origins (${origin}) are not accepted`);
    }
    return null;
  };
}
