import { parseWith, Whoami } from '../shared/schemas.ts';
import type { GatewayConfig } from './config.ts';
import { isolatedSharingNetworks } from './platform/isolation.ts';
import type { Platform } from './platform/platform.ts';
import { SESSION_LIFETIME_S } from './reconciler.ts';
import type { ApiReply } from './vm-api.ts';
import type { VmView } from './vm-view.ts';

export type TunnelHealth = 'up' | 'connecting' | 'down' | 'disabled' | 'unpaired';

export interface GatewayStatus {
  configPath: string;
  name: string | null;
  enabled: boolean;
  /** As configured. */
  killSwitch: boolean;
  /** As found in the kernel: the kill switch holds, daemon running or not. */
  killSwitchActive: boolean;
  /** As configured: the LAN's DNS is redirected to this router, DNS over TLS/QUIC refused. */
  dnsIntercept: boolean;
  /** As found in the kernel. */
  dnsInterceptActive: boolean;
  /** The VM's resolver (its overlay addresses, port 53), where this router's resolver should forward. */
  dnsServers: string[];
  /** The resolv file written with them, or null. */
  dnsResolvFile: string | null;
  interface: string | null;
  /** up: a handshake within the session lifetime; connecting: interface there, no live session; down: no interface. */
  tunnel: TunnelHealth;
  endpoint: string | null;
  /** Unix seconds, 0 for never. */
  latestHandshake: number;
  handshakeAgeSeconds: number | null;
  rxBytes: number;
  txBytes: number;
  /** The VM's view of who we are, asked through the tunnel. */
  whoami: Whoami | null;
  whoamiError: string | null;
  /** The daemon's last copy of the VM-side settings and devices (vm-view.ts); null when there is none. */
  vm: VmView | null;
  /** Isolated devices on a LAN network with others, who reach them there past any firewall. */
  isolatedSharing: { address: string; interface: string; network: string }[];
}

export interface StatusDeps {
  configPath: string;
  config: GatewayConfig | null;
  platform: Platform;
  /** The daemon's copy of the VM's settings, when the caller read it. */
  view?: VmView | null;
  /** Asks the VM who we are; without it, whoami stays null (the kernel's view only). */
  get?: (address: string, path: string, timeoutMs: number) => Promise<ApiReply>;
  now?: () => number;
  timeoutMs?: number;
}

async function askWhoami(config: GatewayConfig, deps: StatusDeps): Promise<{ whoami: Whoami | null; error: string | null }> {
  let error = 'the VM has no API address in the config';
  for (const address of config.vm.api) {
    try {
      const r = await deps.get!(address, '/v1/whoami', deps.timeoutMs ?? 3000);
      if (r.status !== 200) {
        error = `the VM answered HTTP ${r.status}`;
        continue;
      }
      return { whoami: parseWith(Whoami, r.body, 'whoami'), error: null };
    } catch (e) {
      error = (e as Error).message;
    }
  }
  return { whoami: null, error };
}

export async function readStatus(deps: StatusDeps): Promise<GatewayStatus> {
  const { config } = deps;
  const now = deps.now ?? Date.now;
  const base: GatewayStatus = {
    configPath: deps.configPath,
    name: config?.name ?? null,
    enabled: config?.enabled ?? false,
    killSwitch: config?.killSwitch ?? false,
    killSwitchActive: false,
    dnsIntercept: config?.dnsIntercept ?? false,
    dnsInterceptActive: false,
    dnsServers: config ? [...config.vm.api] : [],
    dnsResolvFile: config?.dnsResolvFile ?? null,
    interface: config?.interface ?? null,
    tunnel: 'unpaired',
    endpoint: null,
    latestHandshake: 0,
    handshakeAgeSeconds: null,
    rxBytes: 0,
    txBytes: 0,
    whoami: null,
    whoamiError: null,
    vm: config ? (deps.view ?? null) : null,
    isolatedSharing: config ? isolatedSharingNetworks(deps.view?.firewall?.isolated ?? [], config.lanPrefixes) : [],
  };
  if (!config) return base;
  const state = await deps.platform.show(config.interface);
  const kernel = { killSwitchActive: state.killSwitch, dnsInterceptActive: state.dnsIntercept };
  if (!config.enabled) return { ...base, ...kernel, tunnel: 'disabled' };
  const peer = state.peers.find((p) => p.publicKey === config.vm.publicKey);
  const age = peer && peer.latestHandshake > 0 ? Math.max(0, Math.round(now() / 1000 - peer.latestHandshake)) : null;
  const tunnel: TunnelHealth = !state.present ? 'down' : age !== null && age < SESSION_LIFETIME_S ? 'up' : 'connecting';
  const who = !state.present
    ? { whoami: null, error: 'the tunnel interface does not exist' }
    : deps.get
      ? await askWhoami(config, deps)
      : { whoami: null, error: null };
  return {
    ...base,
    ...kernel,
    tunnel,
    endpoint: peer?.endpoint ?? null,
    latestHandshake: peer?.latestHandshake ?? 0,
    handshakeAgeSeconds: age,
    rxBytes: peer?.rxBytes ?? 0,
    txBytes: peer?.txBytes ?? 0,
    whoami: who.whoami,
    whoamiError: who.error,
  };
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = n / 1024;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${value.toFixed(1)} ${units[i]}`;
}

function ago(seconds: number | null): string {
  if (seconds === null) return 'never';
  if (seconds < 120) return `${seconds} s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min ago`;
  return `${Math.round(seconds / 3600)} h ago`;
}

function killSwitchText(s: GatewayStatus): string {
  if (s.killSwitchActive) return s.killSwitch && s.enabled ? 'on' : 'on (still in the kernel, though the config turns it off)';
  if (!s.enabled) return 'off (Aerie is disabled)';
  return s.killSwitch ? "configured on, but not in the kernel: is 'aerie-gateway run' running?" : 'off';
}

function dnsText(s: GatewayStatus): string {
  if (s.dnsInterceptActive) {
    const what = "intercepted: the LAN's DNS goes to this router's resolver, DNS over TLS/QUIC refused";
    return s.dnsIntercept && s.enabled ? what : `${what} (still in the kernel, though the config turns it off)`;
  }
  if (!s.enabled) return 'not intercepted (Aerie is disabled)';
  return s.dnsIntercept ? "configured on, but not in the kernel: is 'aerie-gateway run' running?" : 'not intercepted (dnsIntercept is off)';
}

function resolverText(s: GatewayStatus): string {
  const servers = s.dnsServers.length ? `${s.dnsServers.join(', ')} port 53, through the tunnel` : 'none known';
  return s.dnsResolvFile ? `${servers}; written to ${s.dnsResolvFile}` : servers;
}

/** What websites see as this home's address: the VM's temporary ones, or its own (its endpoint's host). */
export function egressAddresses(s: Pick<GatewayStatus, 'vm' | 'endpoint'>): string[] {
  const e = s.vm?.settings?.egress;
  if (e) return [e.v4, e.v6].filter((a): a is string => a !== null);
  return s.endpoint ? [s.endpoint.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')] : [];
}

function egressText(s: GatewayStatus): string {
  const addresses = egressAddresses(s);
  if (s.vm?.settings?.egress) return `${addresses.join(', ')} (temporary addresses of the VM)`;
  return addresses.length ? `the VM's own address ${addresses.join(', ')}` : 'unknown';
}

function vmSettingsText(s: GatewayStatus): string {
  const settings = s.vm?.settings;
  if (!settings || !s.vm?.syncedAt) return "not known yet (the daemon fetches them once the tunnel is up)";
  const blocking = settings.blocking ? `ad blocking on (blocked names answered ${settings.blockMode === 'nxdomain' ? 'NXDOMAIN' : 'with 0.0.0.0 and ::'})` : 'ad blocking off';
  const devices = s.vm.devices ? `; ${s.vm.devices.length} device${s.vm.devices.length === 1 ? '' : 's'}` : '';
  return `${blocking}${devices}; fetched at ${new Date(s.vm.syncedAt).toISOString().replace(/\.\d+Z$/, 'Z')}`;
}

function isolatedText(list: readonly string[], sharing: GatewayStatus['isolatedSharing']): string {
  if (list.length === 0) return 'no home device is isolated';
  const text = `${list.join(', ')}: reach DNS and MQTT on the VM, and on this router only DNS, DHCP and time`;
  return [text, ...sharing.map(sharingWarning)].join('; ');
}

/** Said in the status and as a ubus warning. */
export const sharingWarning = (s: GatewayStatus['isolatedSharing'][number]) =>
  `isolated ${s.address} is on ${s.interface} (${s.network}), where other devices reach it without passing a firewall: isolate that whole network or give it one of its own`;

export function formatStatus(s: GatewayStatus): string {
  const rows: [string, string][] = [];
  if (s.tunnel === 'unpaired') {
    rows.push(['tunnel', `not paired (no ${s.configPath}); run 'aerie-gateway pair CODE'`]);
  } else {
    rows.push(['name', s.name ?? '']);
    rows.push(['tunnel', `${s.tunnel} (interface ${s.interface})`]);
    rows.push(['kill switch', killSwitchText(s)]);
    rows.push(['dns', dnsText(s)]);
    if (s.enabled) {
      rows.push(['vm endpoint', s.endpoint ?? 'none']);
      rows.push(['handshake', ago(s.handshakeAgeSeconds)]);
      rows.push(['transfer', `${bytes(s.rxBytes)} received, ${bytes(s.txBytes)} sent`]);
      rows.push([
        'vm sees us as',
        s.whoami
          ? `${s.whoami.name} (${s.whoami.role}) at ${s.whoami.address}`
          : `unknown (${s.whoamiError ?? 'no answer'})`,
      ]);
      rows.push(['vm resolver', resolverText(s)]);
      rows.push(['vm settings', vmSettingsText(s)]);
      rows.push(['websites see', egressText(s)]);
      if (s.vm?.firewall) rows.push(['isolated', isolatedText(s.vm.firewall.isolated, s.isolatedSharing)]);
    }
  }
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width + 1)}${v}`).join('\n') + '\n';
}
