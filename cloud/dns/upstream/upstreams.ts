import { ValidationError } from '../../../shared/errors.ts';
import { createDohTransport } from './doh.ts';
import { UpstreamError } from './error.ts';
import { questionEnd, rcode, withId } from './message.ts';
import { formatUpstream, type UpstreamSpec } from './spec.ts';
import { createDotTransport, createTcpTransport } from './stream.ts';
import type { Upstream } from '../resolver.ts';
import type { Transport } from './transport.ts';
import { createUdpTransport } from './udp.ts';

export { UpstreamError } from './error.ts';
export { formatUpstream, parseUpstream, type UpstreamSpec } from './spec.ts';

export interface UpstreamOptions {
  /** Per attempt (one upstream), default 2000. */
  timeoutMs?: number;
  /** Extra PEM trust anchors for DoT/DoH, on top of the default CAs (tests). */
  ca?: string;
  log?: (line: string) => void;
  /** Clock for the fail-over bookkeeping (tests). */
  now?: () => number;
}

export interface UpstreamHealth {
  upstream: string;
  /** False while its last attempt failed. */
  ok: boolean;
  lastError: string | null;
  /** Smoothed round-trip time of its answers. */
  rttMs: number | null;
}

export interface Upstreams extends Upstream {
  close(): Promise<void>;
  health(): UpstreamHealth[];
}

/** A failed upstream is skipped for this long, doubling with each further failure up to the maximum. */
const BACKOFF_MS = 5_000;
const MAX_BACKOFF_MS = 120_000;
const RCODE_SERVFAIL = 2;
const RCODE_REFUSED = 5;

interface Entry {
  label: string;
  transport: Transport;
  failures: number;
  /** Skipped (tried only after the others) until then. */
  downUntil: number;
  lastError: string | null;
  rttMs: number | null;
}

/**
 * Upstreams in order of preference with fail-over. `exchange` tries them in
 * order, those that failed recently last; the first good answer wins. It
 * rejects with UpstreamError when none answered within its time: the
 * per-call `timeoutMs` bounds the whole exchange (default: one attempt's
 * timeout per upstream).
 */
export function createUpstreams(specs: UpstreamSpec[], opts: UpstreamOptions = {}): Upstreams {
  if (specs.length === 0) throw new ValidationError('upstreams', 'expected at least one upstream');
  const attemptMs = opts.timeoutMs ?? 2000;
  const now = opts.now ?? Date.now;
  const log = opts.log ?? (() => {});
  const trust = opts.ca ? { ca: opts.ca } : {};
  let closed = false;
  const entries: Entry[] = specs.map((spec) => ({
    label: formatUpstream(spec),
    transport: transportFor(spec, trust),
    failures: 0,
    downUntil: 0,
    lastError: null,
    rttMs: null,
  }));

  const failed = (e: Entry, reason: string, backoff: boolean) => {
    e.lastError = reason;
    if (!backoff) return;
    const t = now();
    // Queries that failed together count once: no doubling while already down.
    if (e.downUntil > t) return;
    e.failures++;
    const skipMs = Math.min(MAX_BACKOFF_MS, BACKOFF_MS * 2 ** Math.min(e.failures - 1, 10));
    e.downUntil = t + skipMs;
    log(`DNS upstream ${e.label} failed (${reason}); it goes last for ${Math.round(skipMs / 1000)} s`);
  };

  const succeeded = (e: Entry, rtt: number) => {
    if (e.failures > 0) log(`DNS upstream ${e.label} answers again`);
    e.failures = 0;
    e.downUntil = 0;
    e.rttMs = e.rttMs === null ? rtt : Math.round((e.rttMs * 7 + rtt) / 8);
  };

  /** Healthy ones in the configured order, then the skipped ones, the one back soonest first. */
  const order = (): Entry[] => {
    const t = now();
    const up = entries.filter((e) => e.downUntil <= t);
    const down = entries.filter((e) => e.downUntil > t).sort((a, b) => a.downUntil - b.downUntil);
    return up.concat(down);
  };

  return {
    async exchange(query, callOpts) {
      if (closed) throw new UpstreamError('upstreams closed');
      const qEnd = questionEnd(query);
      if (qEnd < 0) throw new UpstreamError('query has no single readable question');
      const callerId = (query[0]! << 8) | query[1]!;
      const deadline = Date.now() + (callOpts?.timeoutMs ?? attemptMs * entries.length);
      const candidates = order();
      const errors: string[] = [];
      // A SERVFAIL or REFUSED answer, kept in case no other upstream does better.
      let fallback: Uint8Array | null = null;
      for (let i = 0; i < candidates.length; i++) {
        const e = candidates[i]!;
        const remaining = deadline - Date.now();
        if (remaining <= 0) break;
        const start = Date.now();
        let answer: Uint8Array;
        try {
          answer = await e.transport.exchange(query, qEnd, Math.min(attemptMs, remaining));
        } catch (err) {
          if (closed) throw new UpstreamError('upstreams closed');
          const reason = err instanceof Error ? err.message : String(err);
          failed(e, reason, true);
          errors.push(`${e.label}: ${reason}`);
          continue;
        }
        const code = rcode(answer);
        if ((code === RCODE_SERVFAIL || code === RCODE_REFUSED) && i < candidates.length - 1) {
          // REFUSED says the server will not serve us at all; SERVFAIL is more
          // often about the name (broken DNSSEC, dead authoritatives), so the
          // upstream is not skipped for it.
          const reason = code === RCODE_REFUSED ? 'answered REFUSED' : 'answered SERVFAIL';
          failed(e, reason, code === RCODE_REFUSED);
          errors.push(`${e.label}: ${reason}`);
          fallback ??= answer;
          continue;
        }
        succeeded(e, Date.now() - start);
        return withId(answer, callerId);
      }
      if (fallback) return withId(fallback, callerId);
      throw new UpstreamError(errors.length > 0 ? `no upstream answered: ${errors.join('; ')}` : 'no upstream answered in time');
    },
    health() {
      return entries.map((e) => ({ upstream: e.label, ok: e.failures === 0, lastError: e.lastError, rttMs: e.rttMs }));
    },
    async close() {
      closed = true;
      await Promise.all(entries.map((e) => e.transport.close()));
    },
  };
}

function transportFor(spec: UpstreamSpec, trust: { ca?: string }): Transport {
  switch (spec.kind) {
    case 'udp':
      return createUdpTransport(spec.address, spec.port, createTcpTransport(spec.address, spec.port));
    case 'tcp':
      return createTcpTransport(spec.address, spec.port);
    case 'dot':
      return createDotTransport(spec.host, spec.address, spec.port, trust);
    case 'doh':
      return createDohTransport(spec.url, trust);
  }
}
