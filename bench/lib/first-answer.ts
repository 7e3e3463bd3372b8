import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Host, Lab } from '../../test/lab/lib/lab.ts';

export interface FirstAnswerOptions {
  host: Host;
  url: string;
  /** The body that counts as success (the website answers with the address it sees). */
  expect: string;
  /** A new probe starts this often (default 50 ms). */
  intervalMs?: number;
  /** Each probe's own limit (default 1000 ms). */
  probeTimeoutMs?: number;
  /** Give up this long after the call (default 30 s). */
  timeoutMs?: number;
}

export interface FirstAnswer {
  /** performance.now() when the first expected answer arrived; null if none within timeoutMs. */
  at: number | null;
  probes: number;
}

/**
 * Starts a fetch every intervalMs, without waiting for the ones in flight:
 * the kill switch drops packets, so a probe started before the tunnel is up
 * hangs until its own timeout, and waiting for it would blur the figure by
 * up to that long. Returns when the first expected answer arrives (after the
 * probes still in flight have ended, so nothing is left running).
 */
export async function firstAnswer(lab: Lab, opts: FirstAnswerOptions): Promise<FirstAnswer> {
  const intervalMs = opts.intervalMs ?? 50;
  const probeTimeoutMs = opts.probeTimeoutMs ?? 1_000;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = performance.now() + timeoutMs;
  const maxProbes = Math.ceil(timeoutMs / intervalMs) + 1;
  // An object, not a local: it is written from the probes' callbacks.
  const state = { at: null as number | null, probes: 0 };
  const inFlight = new Set<Promise<void>>();

  while (state.at === null && state.probes < maxProbes && performance.now() < deadline) {
    state.probes++;
    const probe: Promise<void> = lab
      .fetch(opts.host, opts.url, { timeoutMs: probeTimeoutMs })
      .then((r) => {
        if (r.body === opts.expect && state.at === null) state.at = performance.now();
      })
      .catch(() => {})
      .finally(() => inFlight.delete(probe));
    inFlight.add(probe);
    await sleep(intervalMs);
  }
  await Promise.allSettled([...inFlight]);
  return { at: state.at, probes: state.probes };
}
