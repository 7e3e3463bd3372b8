import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from './atomic-file.ts';
import type { VmCall } from './vm-api.ts';

/**
 * What the VM holds that this router shows: its VM-side switches for this
 * home and the list of devices. The VM's commands on the control channel say
 * which part changed, and the re-sync on every (re)connect fetches both, so
 * the copy here follows the VM within a second and never stays wrong.
 *
 * The copy is kept in a file next to the config, rewritten only when it
 * changes (an owner's action, rare enough for a router's flash), so that the
 * last known view survives a restart and `aerie-gateway status` can show it.
 */

/** Next to the config. */
export const VM_VIEW_FILE = 'vm-view.json';

export interface VmSettingsView {
  /** Blocklists on for this home (the VM's switch for this router). */
  blocking: boolean;
  blockMode: string;
  upstreams: string[];
  /** The temporary addresses websites see from this home, or null: the VM's own address. */
  egress: { v4: string | null; v6: string | null } | null;
}

export interface VmDeviceView {
  name: string;
  role: string;
  addresses: string[];
}

export interface VmView {
  settings: VmSettingsView | null;
  devices: VmDeviceView[] | null;
  /** When settings and devices were last fetched, Unix ms; null for never. */
  syncedAt: number | null;
}

export type VmViewPart = 'settings' | 'devices';

export interface VmViewDeps {
  /** Calls to the VM's API, and this router's device name (the VM keeps its blocking switch under it); null while not paired. */
  vm: () => Promise<{ call: VmCall; name: string } | null>;
  file: string;
  log: (message: string) => void;
  now?: () => number;
}

export interface VmViewStore {
  /** Fetches the parts from the VM; throws when the VM cannot be asked. */
  refresh(parts: readonly VmViewPart[]): Promise<void>;
  current(): VmView;
  /** Reads the file a previous run left (a missing or broken file is an empty view). */
  load(): Promise<void>;
}

const EMPTY: VmView = { settings: null, devices: null, syncedAt: null };

const table = (v: unknown): Record<string, unknown> => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {});
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []);

const textOrNull = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** The VM's egress settings (GET /v1/egress) as they apply to router `name`. */
function egressFor(egress: unknown, name: string): VmSettingsView['egress'] {
  const e = table(egress);
  const applies = e['mode'] === 'global' || (e['mode'] === 'devices' && strings(e['devices']).includes(name));
  if (!applies) return null;
  const current = table(e['current']);
  return { v4: textOrNull(current['v4']), v6: textOrNull(current['v6']) };
}

function settingsFrom(dns: unknown, mine: unknown, egress: VmSettingsView['egress']): VmSettingsView {
  const d = table(dns);
  return {
    blocking: table(mine)['blocking'] !== false,
    blockMode: typeof d['blockMode'] === 'string' ? d['blockMode'] : 'null',
    upstreams: strings(d['upstreams']),
    egress,
  };
}

function devicesFrom(reply: unknown): VmDeviceView[] {
  const list = table(reply)['devices'];
  return (Array.isArray(list) ? list : []).flatMap((d) => {
    const t = table(d);
    if (typeof t['name'] !== 'string') return [];
    return [{ name: t['name'], role: typeof t['role'] === 'string' ? t['role'] : 'unknown', addresses: strings(t['addresses']) }];
  });
}

/** The view a file holds; anything else in it, or a part of the wrong shape, is left out. */
export function parseVmView(text: string): VmView {
  const t = table(JSON.parse(text));
  const s = table(t['settings']);
  const settingsOk = typeof s['blocking'] === 'boolean' && typeof s['blockMode'] === 'string' && Array.isArray(s['upstreams']);
  return {
    settings: settingsOk ? settingsFrom(s, s, s['egress'] ? { v4: textOrNull(table(s['egress'])['v4']), v6: textOrNull(table(s['egress'])['v6']) } : null) : null,
    devices: Array.isArray(t['devices']) ? devicesFrom(t) : null,
    syncedAt: typeof t['syncedAt'] === 'number' ? t['syncedAt'] : null,
  };
}

/** The view a daemon left in `file`; null when there is none or it does not read. */
export async function readVmViewFile(file: string): Promise<VmView | null> {
  try {
    return parseVmView(await readFile(file, 'utf8'));
  } catch {
    return null;
  }
}

export function createVmView(deps: VmViewDeps): VmViewStore {
  const now = deps.now ?? Date.now;
  let view: VmView = EMPTY;
  let written = JSON.stringify({ settings: null, devices: null });

  async function save(): Promise<void> {
    // syncedAt alone does not make a write: the flash is spared a write per re-sync.
    const content = JSON.stringify({ settings: view.settings, devices: view.devices });
    if (content === written) return;
    await writeFileAtomic(deps.file, `${JSON.stringify(view, null, 2)}\n`, 0o644);
    written = content;
  }

  return {
    async refresh(parts) {
      const paired = await deps.vm();
      if (!paired) {
        view = EMPTY;
        return;
      }
      const vm = paired.call;
      const name = encodeURIComponent(paired.name);
      const next = { ...view };
      if (parts.includes('settings')) {
        next.settings = settingsFrom(await vm('GET', '/v1/dns'), await vm('GET', `/v1/dns/devices/${name}`), egressFor(await vm('GET', '/v1/egress'), paired.name));
      }
      if (parts.includes('devices')) next.devices = devicesFrom(await vm('GET', '/v1/devices'));
      if (next.settings && next.devices) next.syncedAt = now();
      view = next;
      await save().catch((e: Error) => deps.log(`could not keep the VM's settings in ${deps.file}: ${e.message}`));
    },
    current: () => view,
    async load() {
      view = (await readVmViewFile(deps.file)) ?? EMPTY;
      written = JSON.stringify({ settings: view.settings, devices: view.devices });
    },
  };
}
