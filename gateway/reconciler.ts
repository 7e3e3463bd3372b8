import type { LoadedConfig } from './config.ts';
import { buildDesired } from './desired.ts';
import { resolveEndpoint, type Resolve } from './endpoint.ts';
import type { PeerState, Platform } from './platform/platform.ts';

/**
 * Keeps the system at the desired state and the tunnel alive. One loop, one
 * pass at a time: load config (when it changed), apply the desired state
 * (when it changed, and every few seconds to repair drift), probe the VM
 * through the tunnel, and when the VM has stopped answering, bump the peer
 * generation and re-resolve the endpoint so that the next apply starts a
 * fresh handshake. Nothing here touches the OS except through platform.set().
 */

export interface Timing {
  /** Pause between passes while the VM answers. */
  tickMs: number;
  /** Pause between passes while it does not (or not yet). */
  fastTickMs: number;
  /** Re-apply the desired state at least this often (drift repair). */
  reconcileMs: number;
  probeTimeoutMs: number;
  /** Failed probes in a row before the peer is re-created. */
  failuresBeforeReset: number;
  /** At most one re-creation per this interval while the VM stays away. */
  resetIntervalMs: number;
}

// Recovery budget after the VM comes back: 10 s. A dead tunnel is seen within
// tickMs + probeTimeoutMs, confirmed one fastTickMs + probeTimeoutMs later (a
// single lost packet is not an outage); a re-created peer handshakes at once,
// and while the VM stays away that is retried every resetIntervalMs.
export const DEFAULT_TIMING: Timing = {
  tickMs: 2000,
  fastTickMs: 1000,
  reconcileMs: 5000,
  probeTimeoutMs: 1000,
  failuresBeforeReset: 2,
  resetIntervalMs: 3000,
};

/** A WireGuard session is refused 180 s after its handshake (the whitepaper's Reject-After-Time). */
export const SESSION_LIFETIME_S = 180;

const RESET_LOG_INTERVAL_MS = 5 * 60_000;

export interface ReconcilerDeps {
  platform: Platform;
  /** Returns the same object while nothing changed; null when there is no config (not paired). */
  load: () => Promise<LoadedConfig | null>;
  probe: (address: string, timeoutMs: number) => Promise<boolean>;
  resolve: Resolve;
  log: (message: string) => void;
  /** The home devices the VM's owner isolated, as last fetched from the VM; a change is applied at the next pass. */
  isolated?: () => readonly string[];
  now?: () => number;
  timing?: Partial<Timing>;
}

export type Health = 'unknown' | 'up' | 'down' | 'disabled' | 'unpaired';

export interface ReconcilerState {
  health: Health;
  generation: number;
  endpoint: string | null;
  lastError: string | null;
}

export interface Reconciler {
  /** Runs the first pass, then keeps passing on a timer until stop(). */
  start(): Promise<void>;
  /** Stops the timer and waits for a running pass; leaves the system as it is (kill switch included). */
  stop(): Promise<void>;
  /** One pass now (tests; and SIGHUP, to pick up config at once). */
  pass(): Promise<void>;
  state(): ReconcilerState;
}

export function createReconciler(deps: ReconcilerDeps): Reconciler {
  const timing = { ...DEFAULT_TIMING, ...deps.timing };
  const now = deps.now ?? Date.now;
  const { platform, log } = deps;

  let loaded: LoadedConfig | null | undefined;
  let endpoint: string | null = null;
  let generation = 0;
  let health: Health = 'unknown';
  let failures = 0;
  let lastReset = -Infinity;
  let resets = 0;
  let resolveError: string | null = null;
  let lastResetLog = -Infinity;
  let lastApply = -Infinity;
  let applied = false;
  let dirty = true;
  let appliedIsolated = '';
  const isolated = () => [...(deps.isolated?.() ?? [])];
  let lastError: string | null = null;
  let running: Promise<void> | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;

  const report = (message: string | null) => {
    if (message !== null && message !== lastError) log(message);
    if (message === null && lastError !== null) log('recovered: the last operation succeeded again');
    lastError = message;
  };

  const setHealth = (h: Health, why: string) => {
    if (h !== health) log(why);
    health = h;
  };

  async function resolve(cfg: LoadedConfig): Promise<void> {
    try {
      const next = await resolveEndpoint(cfg.config.vm.endpoint, deps.resolve);
      resolveError = null;
      if (next !== endpoint) {
        if (endpoint !== null) log(`VM endpoint ${cfg.config.vm.endpoint} now resolves to ${next}`);
        endpoint = next;
        dirty = true;
      }
    } catch (e) {
      // Keep the last good address: it may well still be right. Say it once per kind of failure.
      const message = `cannot resolve the VM endpoint ${cfg.config.vm.endpoint}: ${(e as Error).message}`;
      if (message !== resolveError) log(message);
      resolveError = message;
    }
  }

  async function load(): Promise<LoadedConfig | null | undefined> {
    let next: LoadedConfig | null;
    try {
      next = await deps.load();
    } catch (e) {
      // A broken edit keeps the last good config running.
      report((e as Error).message);
      return loaded;
    }
    if (next === loaded) return loaded;
    const endpointChanged = next?.config.vm.endpoint !== loaded?.config.vm.endpoint;
    loaded = next;
    dirty = true;
    if (next === null) {
      setHealth('unpaired', 'no config yet (not paired); waiting for it');
      return next;
    }
    if (endpointChanged) {
      endpoint = null;
      await resolve(next);
    }
    return next;
  }

  async function apply(cfg: LoadedConfig): Promise<void> {
    const fenced = isolated();
    const desired = buildDesired(cfg.config, { privateKey: cfg.privateKey, endpoint, generation, isolated: fenced });
    try {
      await platform.set(desired);
      appliedIsolated = JSON.stringify(fenced);
      // A new peer gets as long to handshake as a re-created one before it counts as dead.
      if (!applied && desired !== null) lastReset = now();
      applied = desired !== null;
      dirty = false;
      report(null);
    } catch (e) {
      report(`applying the desired state failed: ${(e as Error).message}`);
    }
    lastApply = now();
  }

  async function peerState(cfg: LoadedConfig): Promise<PeerState | undefined> {
    try {
      return (await platform.show(cfg.config.interface)).peers.find((p) => p.publicKey === cfg.config.vm.publicKey);
    } catch {
      return undefined;
    }
  }

  async function probe(cfg: LoadedConfig): Promise<void> {
    const { api } = cfg.config.vm;
    const before = await peerState(cfg);
    let alive: boolean;
    if (api.length) {
      alive = (await Promise.all(api.map((a) => deps.probe(a, timing.probeTimeoutMs)))).some(Boolean);
      // No answer, but something came back through the tunnel while we asked (a TCP reset, a
      // late reply): the tunnel works and only the API does not, so a new session would not help.
      if (!alive && before) {
        const after = await peerState(cfg);
        if (after && after.rxBytes > before.rxBytes) return;
      }
    } else {
      // Nothing to ask: a session the VM still accepts is the best sign there is.
      alive = before !== undefined && before.latestHandshake > 0 && now() / 1000 - before.latestHandshake < SESSION_LIFETIME_S;
    }
    if (alive) {
      failures = 0;
      resets = 0;
      setHealth('up', 'tunnel up: the VM answers through it');
      return;
    }
    failures++;
    if (failures < timing.failuresBeforeReset) return;
    setHealth('down', 'the VM does not answer through the tunnel');
    if (now() - lastReset < timing.resetIntervalMs) return;
    lastReset = now();
    generation++;
    resets++;
    // While the VM stays away this repeats every few seconds: say so once, then every few minutes.
    if (resets === 1 || now() - lastResetLog >= RESET_LOG_INTERVAL_MS) {
      log(
        resets === 1
          ? 're-creating the VM peer for a fresh handshake and re-resolving its endpoint'
          : `still no answer from the VM; re-created its peer ${resets} times so far`,
      );
      lastResetLog = now();
    }
    await resolve(cfg);
    dirty = true;
  }

  async function pass(): Promise<void> {
    const cfg = await load();
    if (!cfg) return;
    if (JSON.stringify(isolated()) !== appliedIsolated) dirty = true;
    if (!cfg.config.enabled) {
      if (dirty || now() - lastApply >= timing.reconcileMs) await apply(cfg);
      setHealth('disabled', 'disabled in config: our state is removed');
      return;
    }
    if (health === 'disabled' || health === 'unpaired') health = 'unknown';
    if (dirty || now() - lastApply >= timing.reconcileMs) await apply(cfg);
    if (!applied) return;
    await probe(cfg);
    if (dirty) await apply(cfg);
  }

  function runPass(): Promise<void> {
    running ??= pass()
      .catch((e) => report(`unexpected error: ${(e as Error).message}`))
      .finally(() => {
        running = null;
      });
    return running;
  }

  function schedule(): void {
    if (stopped) return;
    // After a failed probe the next comes soon, so that confirming an outage costs little time.
    timer = setTimeout(() => {
      timer = null;
      void runPass().then(schedule);
    }, health === 'up' && failures === 0 ? timing.tickMs : timing.fastTickMs);
  }

  return {
    async start() {
      stopped = false;
      await runPass();
      schedule();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
    },
    pass: runPass,
    state: () => ({ health, generation, endpoint, lastError }),
  };
}
