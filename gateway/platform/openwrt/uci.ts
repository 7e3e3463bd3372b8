import type { UbusCaller, UbusTable, UbusValue } from '../../ubus/types.ts';
import { UBUS_STATUS, UbusError } from '../../ubus/error.ts';

/**
 * UCI as rpcd's `uci` object shows it. UCI has no types: an option is a
 * string, or a list of strings (`list` lines). rpcd adds the metadata keys
 * `.anonymous`, `.type`, `.name` and, for a whole config, `.index`.
 */

export type UciOption = string | string[];

export interface UciSection {
  name: string;
  type: string;
  anonymous: boolean;
  options: Record<string, UciOption>;
}

/** The configs this adapter writes; each gets one commit per change. */
export type UciConfigName = 'network' | 'firewall' | 'dhcp';

/** A config's sections in file order. */
export type UciConfig = UciSection[];

/** Reads one config whole; null when rpcd says it does not exist (NOT_FOUND). */
export async function readConfig(ubus: UbusCaller, config: string): Promise<UciConfig | null> {
  let reply: UbusTable;
  try {
    reply = await ubus.call('uci', 'get', { config });
  } catch (e) {
    if (e instanceof UbusError && e.status === UBUS_STATUS.NOT_FOUND) return null;
    throw e;
  }
  return parseConfigReply(reply);
}

/** `uci get {config}` → sections ordered by `.index`. */
export function parseConfigReply(reply: UbusTable): UciConfig {
  const values = reply.values;
  if (!isTable(values)) return [];
  const list: (UciSection & { index: number })[] = [];
  for (const [key, raw] of Object.entries(values)) {
    if (!isTable(raw)) continue;
    const options: Record<string, UciOption> = {};
    for (const [k, v] of Object.entries(raw)) {
      if (k.startsWith('.')) continue;
      if (typeof v === 'string') options[k] = v;
      else if (Array.isArray(v)) options[k] = v.filter((x): x is string => typeof x === 'string');
    }
    list.push({
      name: typeof raw['.name'] === 'string' ? raw['.name'] : key,
      type: typeof raw['.type'] === 'string' ? raw['.type'] : '',
      anonymous: raw['.anonymous'] === true,
      index: typeof raw['.index'] === 'number' ? raw['.index'] : list.length,
      options,
    });
  }
  list.sort((a, b) => a.index - b.index);
  return list.map(({ index: _index, ...s }) => s);
}

function isTable(v: UbusValue | undefined): v is UbusTable {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** An option as a list: UCI options that netifd and fw4 read as lists may also be space-separated strings. */
export function optionList(v: UciOption | undefined): string[] {
  if (v === undefined) return [];
  return Array.isArray(v) ? v : v.split(/\s+/).filter(Boolean);
}

export function sameOption(a: UciOption | undefined, b: UciOption | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (typeof a === 'string') return a === b;
  const bl = b as string[];
  return a.length === bl.length && a.every((x, i) => x === bl[i]);
}

/** UCI section and option names: letters, digits and '_' (libuci's uci_validate_name). */
export const UCI_NAME = /^[A-Za-z0-9_]+$/;
