import { formatAddress, formatPrefix, parseAddress } from '../../shared/cidr.ts';

// Counts failures per key (an address, or an IPv6 /64: see rateLimitKey) in a
// sliding window. Used by the public pairing listener: after `limit` failures
// within `windowMs`, the key is refused until the oldest of those failures
// leaves the window.

export interface RateLimiterOptions {
  limit?: number; // default 5
  windowMs?: number; // default 60 s
  /** Keys tracked at most; beyond it the stalest key is forgotten (memory bound). */
  maxKeys?: number; // default 10 000
  now?: () => number;
}

export type RateDecision = { allowed: true } | { allowed: false; retryAfterSeconds: number };

export interface RateLimiter {
  check(key: string): RateDecision;
  fail(key: string): void;
  /** How many keys are tracked (for tests and diagnostics). */
  readonly size: number;
}

export function createRateLimiter(opts: RateLimiterOptions = {}): RateLimiter {
  const limit = opts.limit ?? 5;
  const windowMs = opts.windowMs ?? 60_000;
  const maxKeys = opts.maxKeys ?? 10_000;
  const now = opts.now ?? Date.now;
  // Map iteration order is insertion order; a key is re-inserted on each failure,
  // so the first key is the one that failed longest ago.
  const failures = new Map<string, number[]>();

  const recent = (key: string, t: number): number[] => {
    const times = (failures.get(key) ?? []).filter((f) => f > t - windowMs);
    if (times.length === 0) failures.delete(key);
    return times;
  };

  return {
    check(key) {
      const t = now();
      const times = recent(key, t);
      if (times.length < limit) return { allowed: true };
      const oldest = times[times.length - limit]!;
      return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((oldest + windowMs - t) / 1000)) };
    },
    fail(key) {
      const t = now();
      const times = recent(key, t);
      times.push(t);
      if (times.length > limit) times.splice(0, times.length - limit);
      failures.delete(key);
      failures.set(key, times);
      // Forget keys whose last failure left the window, then enforce the bound.
      for (const [k, ts] of failures) {
        if (failures.size <= maxKeys && ts[ts.length - 1]! > t - windowMs) break;
        failures.delete(k);
      }
    },
    get size() {
      return failures.size;
    },
  };
}

/**
 * The key a caller's failures count against: an IPv4 address itself, but the
 * /64 of an IPv6 address, since one host usually has a whole /64 to pick
 * fresh source addresses from. Anything unparseable is its own key.
 */
export function rateLimitKey(address: string): string {
  try {
    const a = parseAddress(address);
    if (a.family === 4) return formatAddress(a);
    return formatPrefix({ family: 6, network: (a.value >> 64n) << 64n, length: 64 });
  } catch {
    return address;
  }
}
