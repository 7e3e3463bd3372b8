import type { LoadedConfig } from '../config.ts';
import type { PairResult } from '../pair.ts';
import type { Platform } from '../platform/platform.ts';
import type { ReconcilerState } from '../reconciler.ts';
import { egressAddresses, readStatus, sharingWarning, type GatewayStatus } from '../status.ts';
import type { VmView } from '../vm-view.ts';
import { UBUS_STATUS, UbusError } from '../ubus/error.ts';
import type { UbusTable, UbusValue } from '../ubus/types.ts';
import { VmApiError, vmCaller, type ApiMethod, type ApiReply, type VmCall } from '../vm-api.ts';
import type { AerieHandlers } from './aerie-object.ts';
import { ubusStatusForHttp } from './errors.ts';

/**
 * What the router's `aerie` ubus object does (LuCI and `ubus call aerie …`
 * reach it; aerie-object.ts has checked the arguments). VM-side switches and
 * devices are asked of the VM's API through the tunnel, as the router (role
 * gateway). A failure is a UbusError whose message says what a person can
 * do; the object keeps it for `status.last_error`.
 */

export interface AerieHandlerDeps {
  configPath: string;
  /** The config in force (switches included); null when not paired. */
  load: () => Promise<LoadedConfig | null>;
  platform: Platform;
  reconciler: { pass(): Promise<void>; state(): ReconcilerState };
  request: (address: string, method: ApiMethod, path: string, body: unknown, timeoutMs: number) => Promise<ApiReply>;
  pair: (code: string) => Promise<PairResult>;
  /** Removes our state from the system and forgets the pairing. */
  unpair: () => Promise<void>;
  qrSvg: (text: string) => string;
  /** The control channel to the VM's broker: connected, connecting or off. */
  control?: () => string;
  /** The daemon's copy of the VM's settings (the temporary egress addresses among them). */
  view?: () => VmView;
  timeoutMs?: number;
}

/** A VM-side switch: how `set {key, value}` reaches the API. */
interface VmSwitch {
  read(vm: VmApi, name: string): Promise<UbusValue>;
  write(vm: VmApi, name: string, value: UbusValue): Promise<void>;
}

type VmApi = VmCall;

const asTable = (v: unknown): UbusTable => (v && typeof v === 'object' && !Array.isArray(v) ? (v as UbusTable) : {});

// One entry per VM_SETTINGS key (vm-settings.ts checks the values first).
const SWITCHES: Record<string, VmSwitch> = {
  // Ad and tracker blocking for this home: the VM's per-device switch, ours.
  blocking: {
    read: async (vm, name) => asTable(await vm('GET', `/v1/dns/devices/${encodeURIComponent(name)}`))['blocking'] ?? null,
    write: async (vm, name, value) => {
      await vm('PUT', `/v1/dns/devices/${encodeURIComponent(name)}`, { blocking: value });
    },
  },
  blockMode: {
    read: async (vm) => asTable(await vm('GET', '/v1/dns'))['blockMode'] ?? null,
    write: async (vm, _name, value) => {
      await vm('PATCH', '/v1/dns', { blockMode: value });
    },
  },
  upstreams: {
    read: async (vm) => asTable(await vm('GET', '/v1/dns'))['upstreams'] ?? null,
    write: async (vm, _name, value) => {
      await vm('PATCH', '/v1/dns', { upstreams: value });
    },
  },
};

export function createAerieHandlers(deps: AerieHandlerDeps): AerieHandlers {
  const timeoutMs = deps.timeoutMs ?? 5000;

  const paired = async (): Promise<LoadedConfig> => {
    const loaded = await deps.load();
    if (!loaded) throw new UbusError(UBUS_STATUS.NO_DATA, 'this router is not paired with a VM yet');
    return loaded;
  };

  /** One API call, to the first of the VM's addresses that answers. */
  const vmApi = (loaded: LoadedConfig): VmApi => {
    const call = vmCaller(loaded.config.vm.api, timeoutMs, deps.request);
    return async (method, path, body) => {
      try {
        return await call(method, path, body);
      } catch (e) {
        if (!(e instanceof VmApiError)) throw e;
        throw new UbusError(e.status === 0 ? UBUS_STATUS.CONNECTION_FAILED : ubusStatusForHttp(e.status), e.message);
      }
    };
  };

  async function dnsCounters(loaded: LoadedConfig, warnings: string[]): Promise<UbusValue> {
    try {
      const stats = asTable(await vmApi(loaded)('GET', '/v1/dns/stats'));
      const mine = asTable(asTable(stats['devices'])[loaded.config.name]);
      return { queries: mine['queries'] ?? 0, blocked: mine['blocked'] ?? 0, cached: mine['cached'] ?? 0 };
    } catch (e) {
      warnings.push(`DNS counters: ${(e as Error).message}`);
      return null;
    }
  }

  function warningsOf(s: GatewayStatus): string[] {
    const w: string[] = [];
    if (s.enabled && s.killSwitch && !s.killSwitchActive) w.push('the kill switch is configured but not in force');
    if (s.enabled && s.dnsIntercept && !s.dnsInterceptActive) w.push('DNS interception is configured but not in force');
    if (s.tunnel === 'connecting') w.push('no recent handshake with the VM');
    if (s.tunnel === 'down') w.push('the tunnel interface does not exist');
    if (s.whoamiError && s.tunnel === 'up') w.push(`the VM's API: ${s.whoamiError}`);
    w.push(...s.isolatedSharing.map(sharingWarning));
    return w;
  }

  return {
    async status(): Promise<UbusTable> {
      const loaded = await deps.load();
      const s = await readStatus({
        configPath: deps.configPath,
        config: loaded?.config ?? null,
        platform: deps.platform,
        get: (address, path, ms) => deps.request(address, 'GET', path, undefined, ms),
        timeoutMs,
        view: deps.view?.() ?? null,
      });
      const warnings = warningsOf(s);
      const lastError = deps.reconciler.state().lastError;
      if (lastError) warnings.push(lastError);
      const endpoint = deps.reconciler.state().endpoint;
      return {
        state: s.tunnel,
        name: s.name,
        endpoint: s.endpoint ?? endpoint,
        latest_handshake: s.latestHandshake,
        handshake_age: s.handshakeAgeSeconds,
        rx_bytes: s.rxBytes,
        tx_bytes: s.txBytes,
        kill_switch: { configured: s.enabled && s.killSwitch, active: s.killSwitchActive },
        dns_intercept: { configured: s.enabled && s.dnsIntercept, active: s.dnsInterceptActive },
        // The VM's temporary addresses when on for this home, else its own: its endpoint's.
        egress: egressAddresses({ vm: deps.view?.() ?? null, endpoint: s.endpoint ?? endpoint }).join(', ') || null,
        // Home devices the VM's owner isolated, fenced in on this router too.
        isolated: [...(deps.view?.().firewall?.isolated ?? [])],
        dns: loaded && s.tunnel === 'up' ? await dnsCounters(loaded, warnings) : null,
        control: deps.control?.() ?? 'off',
        warnings,
      };
    },

    async pair(code: string) {
      const r = await deps.pair(code);
      await deps.reconciler.pass();
      return { name: r.config.name, vm: r.config.vm.endpoint, addresses: r.config.vm.addresses };
    },

    async unpair() {
      await paired();
      await deps.unpair();
      return { unpaired: true };
    },

    async settings() {
      const loaded = await paired();
      const vm = vmApi(loaded);
      const out: UbusTable = {};
      for (const [key, s] of Object.entries(SWITCHES)) out[key] = await s.read(vm, loaded.config.name);
      return out;
    },

    async set(key: string, value: UbusValue) {
      const s = SWITCHES[key];
      if (!s) throw new UbusError(UBUS_STATUS.INVALID_ARGUMENT, `key: expected one of ${Object.keys(SWITCHES).join(', ')}, got ${JSON.stringify(key)}`);
      const loaded = await paired();
      await s.write(vmApi(loaded), loaded.config.name, value);
      return { key, value: await s.read(vmApi(loaded), loaded.config.name) };
    },

    async devices() {
      const loaded = await paired();
      const list = asTable(await vmApi(loaded)('GET', '/v1/devices'))['devices'];
      const devices = (Array.isArray(list) ? list : []).map((d) => {
        const t = asTable(d);
        return {
          name: t['name'] ?? null,
          role: t['role'] ?? null,
          addresses: t['addresses'] ?? [],
          publicKey: t['publicKey'] ?? null,
          lastHandshake: t['latestHandshake'] ?? 0,
          rxBytes: t['rxBytes'] ?? 0,
          txBytes: t['txBytes'] ?? 0,
        };
      });
      return { devices };
    },

    async deviceAdd(name: string, role: string) {
      const loaded = await paired();
      const r = asTable(await vmApi(loaded)('POST', '/v1/devices', { name, role }));
      const config = r['config'];
      if (typeof config !== 'string') throw new UbusError(UBUS_STATUS.NO_DATA, 'the VM made the device but sent no configuration');
      const d = asTable(r['device']);
      return { name: d['name'] ?? name, role: d['role'] ?? role, addresses: d['addresses'] ?? [], config, qr_svg: deps.qrSvg(config) };
    },

    async deviceRemove(name: string) {
      const loaded = await paired();
      if (name === loaded.config.name) throw new UbusError(UBUS_STATUS.INVALID_ARGUMENT, 'name: this is the router itself; use unpair');
      await vmApi(loaded)('DELETE', `/v1/devices/${encodeURIComponent(name)}`);
      return { removed: name };
    },
  };
}
