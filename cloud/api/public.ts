import { Hono, type Context } from 'hono';
import type { Core } from '../core/core.ts';
import { rateLimitKey } from '../core/rate-limit.ts';
import { readJson } from './body.ts';
import { errorResponse, HttpError, toHttpError } from './errors.ts';
import { remoteAddress } from './identify.ts';

export interface PublicAppDeps {
  core: Core;
  /** The caller's address (default: the TCP peer, normalized); failures count per address (IPv4) or /64 (IPv6). */
  remoteAddress?: (c: Context) => string;
  /** Largest accepted request body in bytes (default 8 KiB). */
  bodyLimit?: number;
  /** One line per pairing attempt (never with secrets); default: none. */
  log?: (line: string) => void;
  logError?: (err: unknown) => void;
}

/**
 * The app behind the public TLS listener: pairing and a health check, nothing
 * else. Failed pairing attempts count against the caller's address (IPv6: its
 * /64); too many in a minute and it gets 429 until the window passes.
 */
export function createPublicApp(deps: PublicAppDeps): Hono {
  const { core } = deps;
  const addressOf = deps.remoteAddress ?? remoteAddress;
  const log = deps.log ?? (() => {});
  const logError = deps.logError ?? ((err) => console.error('aerie pairing:', err instanceof Error ? err.message : err));
  const app = new Hono();

  app.onError((err, c) => {
    const http = toHttpError(err);
    if (http.status >= 500) logError(err);
    return errorResponse(c, http);
  });
  app.notFound((c) => errorResponse(c, new HttpError(404, 'not_found', 'not found')));

  app.get('/v1/health', (c) => c.json({ ok: true }));

  app.post('/v1/pair', async (c) => {
    const from = addressOf(c);
    const key = rateLimitKey(from);
    const decision = core.pairLimiter.check(key);
    if (!decision.allowed) {
      log(`pair: refused ${from}: rate limited`);
      throw new HttpError(429, 'rate_limited', `too many failed pairing attempts; try again in ${decision.retryAfterSeconds} s`, {
        'Retry-After': String(decision.retryAfterSeconds),
      });
    }
    try {
      const response = core.pairing.redeem(await readJson(c, deps.bodyLimit));
      log(`pair: paired gateway "${response.name}" from ${from}`);
      return c.json(response);
    } catch (err) {
      const http = toHttpError(err);
      if (http.status < 500) {
        core.pairLimiter.fail(key);
        log(`pair: refused ${from}: ${http.message}`);
      }
      throw http.status < 500 ? http : err;
    }
  });

  return app;
}
