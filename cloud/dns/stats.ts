import { ValidationError } from '../../shared/errors.ts';

// Per-device counters and the opt-in "recent queries" ring. Memory only: no
// query ever reaches a disk or a log. The ring records one device at a time
// and is off until enabled.

export interface DeviceCounters {
  queries: number;
  blocked: number;
  cached: number;
  local: number;
  forwarded: number;
  failed: number;
}

export type QueryResult = 'blocked' | 'cached' | 'local' | 'forwarded' | 'failed' | 'refused';

export interface RecentQuery {
  /** Unix ms. */
  at: number;
  name: string;
  /** 'A', 'AAAA', … or 'TYPE65534'. */
  type: string;
  result: QueryResult;
  rcode: string;
}

export interface DeviceStats {
  /** The live counters of a device (made on first use). */
  counters(key: string): DeviceCounters;
  snapshot(): Record<string, DeviceCounters>;
}

export function createDeviceStats(): DeviceStats {
  const all = new Map<string, DeviceCounters>();
  return {
    counters(key) {
      let c = all.get(key);
      if (!c) {
        c = { queries: 0, blocked: 0, cached: 0, local: 0, forwarded: 0, failed: 0 };
        all.set(key, c);
      }
      return c;
    },
    snapshot() {
      const out: Record<string, DeviceCounters> = {};
      for (const [key, c] of all) out[key] = { ...c };
      return out;
    },
  };
}

export const RECENT_DEFAULT = 200;
export const RECENT_MAX = 10_000;

export interface RecentRing {
  enable(device: string, size?: number): void;
  disable(): void;
  /** Oldest first. */
  list(): RecentQuery[];
  device(): string | null;
  /** Records q when it is the enabled device's (callers check `watching` first to skip building q). */
  push(device: string, q: RecentQuery): void;
  /** The device being recorded, or null: a field, so the hot path reads it without a call. */
  readonly watching: string | null;
}

export function createRecentRing(): RecentRing {
  let watching: string | null = null;
  let ring: RecentQuery[] = [];
  let size = 0;
  let next = 0;
  return {
    enable(device, n = RECENT_DEFAULT) {
      if (typeof device !== 'string' || device === '') throw new ValidationError('device', 'expected a device name');
      if (!Number.isInteger(n) || n < 1 || n > RECENT_MAX) {
        throw new ValidationError('size', `expected a whole number from 1 to ${RECENT_MAX}, got ${String(n)}`);
      }
      watching = device;
      ring = [];
      size = n;
      next = 0;
    },
    disable() {
      watching = null;
      ring = [];
      next = 0;
    },
    list() {
      return ring.length < size ? ring.slice() : [...ring.slice(next), ...ring.slice(0, next)];
    },
    device: () => watching,
    push(device, q) {
      if (device !== watching) return;
      if (ring.length < size) ring.push(q);
      else ring[next] = q;
      next = (next + 1) % size;
    },
    get watching() {
      return watching;
    },
  };
}
