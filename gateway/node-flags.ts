/**
 * The V8 flags the router's daemon is meant to run with:
 * `node --lite-mode --max-semi-space-size=1 aerie-gateway.mjs run`.
 * The daemon mostly waits; without the optimizing compiler and with a small
 * young generation it stays close to an idle node's memory (bench/gateway-rss.ts
 * measured 1.51× an idle node without them, 1.22× with them). Node 20 says once
 * at start that lite mode turns WebAssembly off; `--no-expose-wasm` would
 * silence it there but is refused by newer Node, so it is left out.
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--lite-mode', '--max-semi-space-size=1'];

/** The flags the running process lacks, for a hint at start. */
export function missingDaemonFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return DAEMON_NODE_FLAGS.filter((f) => !execArgv.includes(f));
}
