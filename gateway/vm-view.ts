import { readFile } from 'node:fs/promises';
import { isValidAddress, isValidPrefix } from '../shared/cidr.ts';
import { writeFileAtomic } from './atomic-file.ts';
import type { VmCall } from './vm-api.ts';

/**
 * What the VM holds that this router shows or enforces: its VM-side
 * switches for this home, the list of devices and the home's isolated
 * devices. The VM's commands on the control channel say
 * which part changed, and the re-sync on every (re)connect fetches all, so
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

/** The VM's firewall as it concerns this home. */
export interface VmFirewallView {
  /** Addresses or prefixes of this home's devices the owner isolated: the router fences them in too. */
  isolated: string[];
}

export interface VmView {
  settings: VmSettingsView | null;
  devices: VmDeviceView[] | null;
  firewall: VmFirewallView | null;
  /** When settings and devices were last fetched, Unix ms; null for never. */
  syncedAt: number | null;
}

export type VmViewPart = 'settings' | 'devices' | 'firewall';

export const ALL_VM_VIEW_PARTS: readonly VmViewPart[] = ['settings', 'devices', 'firewall'];

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

/** The setting key the VM sends when its firewall policy changed (cloud/daemon.ts). */
export const FIREWALL_KEY = 'firewall';

/**
 * The parts a command from the VM makes stale: `settings-changed` names its
 * keys ("firewall" for the firewall policy; no keys: it does not know which),
 * `devices-changed` the device list.
 */
export function viewPartsFor(command: string, payload: object): VmViewPart[] {
  if (command !== 'settings-changed') return ['devices'];
  const keys = strings((payload as { keys?: unknown }).keys);
  if (keys.length === 0) return ['settings', 'firewall'];
  return [...(keys.some((k) => k !== FIREWALL_KEY) ? (['settings'] as const) : []), ...(keys.includes(FIREWALL_KEY) ? (['firewall'] as const) : [])];
}

const EMPTY: VmView = { settings: null, devices: null, firewall: null, syncedAt: null };

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

/** The VM's firewall (GET /v1/firewall) as it concerns router `name`: the addresses of its isolated hosts. */
function firewallFor(reply: unknown, name: string): VmFirewallView {
  const t = table(reply);
  const fenced = new Set(
    (Array.isArray(t['policies']) ? t['policies'] : []).flatMap((p) => {
      const row = table(p);
      return row['kind'] === 'host' && table(row['policy'])['isolated'] === true && typeof row['name'] === 'string' ? [row['name']] : [];
    }),
  );
  const hosts = Array.isArray(t['hosts']) ? t['hosts'] : [];
  const isolated = hosts.flatMap((h) => {
    const host = table(h);
    const mine = host['gateway'] === name && typeof host['name'] === 'string' && fenced.has(host['name']);
    return mine ? strings(host['addresses']) : [];
  });
  return { isolated: addressesOnly(isolated) };
}

/**
 * Only what reads as an address or a prefix goes into the router's rules: one
 * bad entry would make every apply fail, and the kill switch with it.
 */
function addressesOnly(list: readonly string[]): string[] {
  return [...new Set(list.filter((a) => (a.includes('/') ? isValidPrefix(a) : isValidAddress(a))))].sort();
}

/** The view a file holds; anything else in it, or a part of the wrong shape, is left out. */
export function parseVmView(text: string): VmView {
  const t = table(JSON.parse(text));
  const s = table(t['settings']);
  const settingsOk = typeof s['blocking'] === 'boolean' && typeof s['blockMode'] === 'string' && Array.isArray(s['upstreams']);
  return {
    settings: settingsOk ? settingsFrom(s, s, s['egress'] ? { v4: textOrNull(table(s['egress'])['v4']), v6: textOrNull(table(s['egress'])['v6']) } : null) : null,
    devices: Array.isArray(t['devices']) ? devicesFrom(t) : null,
    firewall: Array.isArray(table(t['firewall'])['isolated']) ? { isolated: addressesOnly(strings(table(t['firewall'])['isolated'])) } : null,
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
  const kept = (v: VmView) => JSON.stringify({ settings: v.settings, devices: v.devices, firewall: v.firewall });
  let written = kept(EMPTY);

  async function save(): Promise<void> {
    // syncedAt alone does not make a write: the flash is spared a write per re-sync.
    const content = kept(view);
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
      if (parts.includes('firewall')) next.firewall = firewallFor(await vm('GET', '/v1/firewall'), paired.name);
      if (next.settings && next.devices && next.firewall) next.syncedAt = now();
      view = next;
      await save().catch((e: Error) => deps.log(`could not keep the VM's settings in ${deps.file}: ${e.message}`));
    },
    current: () => view,
    async load() {
      view = (await readVmViewFile(deps.file)) ?? EMPTY;
      written = kept(view);
    },
  };
}
