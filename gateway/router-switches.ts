import { ValidationError } from '../shared/errors.ts';
import type { GatewayConfig } from './config.ts';
import type { UbusCaller, UbusTable, UbusValue } from './ubus/types.ts';

/**
 * On OpenWrt the router's switches live in UCI (`/etc/config/aerie`, section
 * `main`), where LuCI's form and `uci set` edit them; the JSON config keeps
 * what pairing wrote. The switches read here override the JSON's.
 */

export interface RouterSwitches {
  enabled: boolean;
  killSwitch: boolean;
  dnsIntercept: boolean;
  homeAssistant: boolean;
  /** UCI network names whose devices are the LAN ("lan"). */
  lanNetworks: string[];
}

export const UCI_CONFIG = 'aerie';
export const UCI_SECTION = 'main';

// The spellings uci's own boolean parser accepts (libuci, uci_parse_bool).
const TRUE = new Set(['1', 'on', 'true', 'yes', 'enabled']);
const FALSE = new Set(['0', 'off', 'false', 'no', 'disabled']);

function bool(values: UbusTable, option: string, fallback: boolean): boolean {
  const v = values[option];
  if (v === undefined) return fallback;
  if (typeof v === 'string') {
    if (TRUE.has(v.toLowerCase())) return true;
    if (FALSE.has(v.toLowerCase())) return false;
  }
  throw new ValidationError(`${UCI_CONFIG}.${UCI_SECTION}.${option}`, `expected a boolean (1/0, on/off, true/false, yes/no), got ${JSON.stringify(v)}`);
}

function networks(value: UbusValue | undefined): string[] {
  if (value === undefined) return ['lan'];
  const list = typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : value;
  if (!Array.isArray(list) || list.length === 0 || !list.every((n) => typeof n === 'string' && /^[A-Za-z0-9_]{1,15}$/.test(n))) {
    throw new ValidationError(`${UCI_CONFIG}.${UCI_SECTION}.lan_network`, `expected one or more UCI network names, got ${JSON.stringify(value)}`);
  }
  return list as string[];
}

/** The switches in a section's values as rpcd's `uci get` returns them (every value a string or a list). */
export function parseRouterSwitches(values: UbusTable, base: Pick<GatewayConfig, 'enabled' | 'killSwitch' | 'dnsIntercept' | 'homeAssistant'>): RouterSwitches {
  return {
    enabled: bool(values, 'enabled', base.enabled),
    killSwitch: bool(values, 'kill_switch', base.killSwitch),
    dnsIntercept: bool(values, 'dns_intercept', base.dnsIntercept),
    homeAssistant: bool(values, 'home_assistant', base.homeAssistant),
    lanNetworks: networks(values['lan_network']),
  };
}

/** The Linux device of a UCI network, as netifd reports it ("br-lan"); null when netifd does not know it. */
async function deviceOf(ubus: UbusCaller, network: string): Promise<string | null> {
  try {
    const s = await ubus.call(`network.interface.${network}`, 'status', {});
    const dev = s['l3_device'] ?? s['device'];
    return typeof dev === 'string' && dev !== '' ? dev : null;
  } catch {
    return null;
  }
}

/**
 * A config loader that lays the UCI switches over the JSON config. It returns
 * the same object while neither changed, as the plain loader does, so the
 * reconciler still sees "no change" by identity. A section that does not
 * read or parse keeps the last good switches (and says why, once).
 */
export function withRouterSwitches<T extends { config: GatewayConfig }>(
  load: () => Promise<T | null>,
  ubus: UbusCaller,
  log: (message: string) => void,
): () => Promise<T | null> {
  let last: { base: T; key: string; value: T } | null = null;
  let lastProblem: string | null = null;
  let good: { switches: RouterSwitches; devices: string[] } | null = null;

  const read = async (base: T) => {
    try {
      const r = await ubus.call('uci', 'get', { config: UCI_CONFIG, section: UCI_SECTION });
      const values = (r['values'] ?? {}) as UbusTable;
      const switches = parseRouterSwitches(values, base.config);
      const devices: string[] = [];
      for (const n of switches.lanNetworks) {
        const dev = await deviceOf(ubus, n);
        if (dev && !devices.includes(dev)) devices.push(dev);
      }
      good = { switches, devices };
      lastProblem = null;
    } catch (e) {
      const problem = `${UCI_CONFIG}.${UCI_SECTION}: ${(e as Error).message}; keeping ${good ? 'the last good switches' : 'the switches of the config file'}`;
      if (problem !== lastProblem) log(problem);
      lastProblem = problem;
    }
    return good;
  };

  return async () => {
    const base = await load();
    if (!base) {
      last = null;
      return null;
    }
    const s = await read(base);
    const key = JSON.stringify(s);
    if (last && last.base === base && last.key === key) return last.value;
    let config: GatewayConfig = base.config;
    if (s) {
      // Devices netifd does not know (yet) are left out; with none, the paired ones stay.
      const lanInterfaces = s.devices.length > 0 ? s.devices : config.lanInterfaces;
      config = {
        ...config,
        enabled: s.switches.enabled,
        killSwitch: s.switches.killSwitch,
        dnsIntercept: s.switches.dnsIntercept,
        homeAssistant: s.switches.homeAssistant,
        lanInterfaces,
        lanPrefixes: config.lanPrefixes.filter((p) => lanInterfaces.includes(p.interface)),
      };
    }
    const value = { ...base, config };
    last = { base, key, value };
    return value;
  };
}
