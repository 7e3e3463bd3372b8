import type { LoadedConfig } from './config.ts';
import type { ControlState } from './control/channel.ts';
import type { Platform } from './platform/platform.ts';
import { readStatus } from './status.ts';
import type { VmView } from './vm-view.ts';
import type { WanState } from './wan-state.ts';

/** Where the router's published state comes from. */
export interface ControlStateDeps {
  configPath: string;
  load: () => Promise<LoadedConfig | null>;
  platform: Platform;
  view: () => VmView;
  wan: (tunnelInterface: string) => Promise<WanState>;
  /** The VM's count of blocked queries for this home; null when it cannot be asked. */
  blockedQueries: () => Promise<number | null>;
  now?: () => number;
  /** Ask the VM for the counter at most this often. */
  countersEveryMs?: number;
}

/** Reads the state the router publishes on aerie/gw/<name>/state: the kernel's view, the WAN, and what the VM says. */
export function createControlState(deps: ControlStateDeps): () => Promise<ControlState> {
  const now = deps.now ?? Date.now;
  const every = deps.countersEveryMs ?? 10_000;
  let blocked = 0;
  let askedAt = -Infinity;

  return async () => {
    const loaded = await deps.load();
    const config = loaded?.config ?? null;
    const s = await readStatus({ configPath: deps.configPath, config, platform: deps.platform, now });
    if (s.tunnel === 'up' && now() - askedAt >= every) {
      askedAt = now();
      blocked = (await deps.blockedQueries().catch(() => null)) ?? blocked;
    }
    return {
      tunnel: s.tunnel,
      killSwitch: s.killSwitchActive,
      blocking: deps.view().settings?.blocking ?? null,
      wan: await deps.wan(config?.interface ?? ''),
      counters: { blockedQueries: blocked, rxBytes: s.rxBytes, txBytes: s.txBytes },
    };
  };
}
