/**
 * How `aerie-cloud serve` is started (the systemd unit in the README, the lab
 * and the benchmark do it this way). A small young generation and V8's
 * size-over-speed heuristics keep memory near what the data needs under a
 * steady stream of DNS queries, at no cost in throughput; --expose-gc lets
 * the daemon hand back the memory of a blocklist compile at once (figures:
 * bench/dns.ts).
 */
export const CLOUD_NODE_FLAGS = ['--max-semi-space-size=1', '--optimize-for-size', '--expose-gc'] as const;

/**
 * glibc malloc settings for the daemon: fewer arenas, and large blocks (a
 * compile's temporary arrays) returned to the system when freed instead of
 * staying in the heap.
 */
export const CLOUD_MALLOC_ENV: Readonly<Record<string, string>> = Object.freeze({
  MALLOC_ARENA_MAX: '2',
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
});

/** A full collection, when the process was started with --expose-gc; else nothing. */
export function collectGarbage(): void {
  (globalThis as { gc?: () => void }).gc?.();
}
