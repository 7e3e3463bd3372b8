import { sleep } from './pids.ts';

export interface WaitOptions {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Pause between attempts (default 100 ms). */
  intervalMs?: number;
}

/**
 * Calls `probe` until it returns a truthy value and returns that value.
 * Bounded in time and in attempts; a probe that throws counts as "not yet", and
 * its last error is quoted when giving up.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | false | null | undefined> | T | false | null | undefined,
  opts: WaitOptions = {},
): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  const maxAttempts = Math.ceil(timeoutMs / Math.max(1, intervalMs)) + 1;
  let last = '';
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    try {
      const value = await probe();
      if (value) return value;
      last = '';
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    if (Date.now() >= deadline) break;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ''}`);
}
