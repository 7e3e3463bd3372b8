import { describeInput } from '../../shared/errors.ts';
import { DeviceName, parseWith } from '../../shared/schemas.ts';
import { UBUS_STATUS, UbusError } from '../ubus/error.ts';
import type { UbusArgType, UbusMethod, UbusTable, UbusValue } from '../ubus/types.ts';
import { toUbusError } from './errors.ts';
import { checkVmSetting } from './vm-settings.ts';

// The `aerie` ubus object that LuCI calls through rpcd's ACL: argument checks
// and dispatch only. The handlers (in main.ts) do the work; no transport here:
//   client.register(AERIE_OBJECT, createAerieObject(handlers, { log }))

export const AERIE_OBJECT = 'aerie';

export interface AerieMethodSpec {
  /** Argument names and types, registered as the object's signature. */
  args: Record<string, UbusArgType>;
  /** Which half of the rpcd ACL grants it: `read` may not change anything. */
  access: 'read' | 'write';
}

/** Method name → arguments and access; the LuCI app and its ACL are checked against this. */
export const AERIE_METHODS: Readonly<Record<string, AerieMethodSpec>> = Object.freeze({
  status: { args: {}, access: 'read' },
  settings: { args: {}, access: 'read' },
  devices: { args: {}, access: 'read' },
  pair: { args: { code: 'string' }, access: 'write' },
  unpair: { args: {}, access: 'write' },
  set: { args: { key: 'string', value: 'unspec' }, access: 'write' },
  device_add: { args: { name: 'string', role: 'string' }, access: 'write' },
  device_remove: { args: { name: 'string' }, access: 'write' },
});

/** Roles a device added from the router may have (the VM's AddDeviceRequest). */
export const DEVICE_ROLES = ['owner', 'member'] as const;

export interface AerieHandlers {
  /**
   * { state: 'up'|'connecting'|'down'|'disabled'|'unpaired', name, endpoint,
   * latest_handshake (unix s, 0 never), handshake_age (s or null), rx_bytes, tx_bytes,
   * kill_switch: {configured, active}, dns_intercept: {configured, active},
   * egress: string|null, isolated: string[], dns: {queries, blocked, cached}|null, warnings: string[] }
   */
  status(): Promise<UbusTable>;
  /** { name, vm: endpoint, addresses } */
  pair(code: string): Promise<UbusTable>;
  unpair(): Promise<UbusTable>;
  /** The VM-side switches, one key per VM_SETTINGS entry: { blocking, blockMode, upstreams } */
  settings(): Promise<UbusTable>;
  /** `key` is a VM_SETTINGS key and `value` has its shape (both checked before the call). */
  set(key: string, value: UbusValue): Promise<UbusTable>;
  /** { devices: [{ name, role, addresses: string[], publicKey, lastHandshake? }] } */
  devices(): Promise<UbusTable>;
  /** { name, config: string (wg-quick, holds the device's private key), qr_svg: string } */
  deviceAdd(name: string, role: string): Promise<UbusTable>;
  deviceRemove(name: string): Promise<UbusTable>;
}

export interface AerieObjectOptions {
  /** Where failures are reported (the daemon's log): ubus hands the caller only a status code. */
  log?: (message: string) => void;
  now?: () => number;
}

/** rpcd/LuCI add the caller's session id to every call's arguments; it is not ours to check. */
const SESSION_ARG = 'ubus_rpc_session';
const MAX_CODE = 1024;

function invalid(field: string, message: string): UbusError {
  return new UbusError(UBUS_STATUS.INVALID_ARGUMENT, `${field}: ${message}`);
}

const TYPE_NAMES: Record<UbusArgType, string> = {
  string: 'a string',
  bool: 'a boolean',
  int16: 'an integer',
  int32: 'an integer',
  int64: 'an integer',
  double: 'a number',
  array: 'an array',
  table: 'a table',
  unspec: 'a value',
};

function typeOk(type: UbusArgType, v: UbusValue): boolean {
  switch (type) {
    case 'string':
      return typeof v === 'string';
    case 'bool':
      return typeof v === 'boolean';
    case 'int16':
    case 'int32':
    case 'int64':
      return (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint';
    case 'double':
      return typeof v === 'number';
    case 'array':
      return Array.isArray(v);
    case 'table':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    case 'unspec':
      return true;
  }
}

/** Exactly the declared arguments, each of its type; the session id is dropped. */
export function checkArgs(method: string, args: UbusTable): UbusTable {
  const spec = AERIE_METHODS[method];
  if (!spec) throw new UbusError(UBUS_STATUS.METHOD_NOT_FOUND, `no method ${method}`);
  const out: UbusTable = {};
  for (const [name, value] of Object.entries(args ?? {})) {
    if (name === SESSION_ARG) continue;
    const type = Object.hasOwn(spec.args, name) ? spec.args[name] : undefined;
    if (!type) {
      const known = Object.keys(spec.args);
      throw invalid(name, `${method} takes ${known.length ? `only ${known.join(', ')}` : 'no arguments'}`);
    }
    if (!typeOk(type, value)) throw invalid(name, `expected ${TYPE_NAMES[type]}, got ${describeInput(value)}`);
    out[name] = value;
  }
  for (const name of Object.keys(spec.args)) {
    if (!Object.hasOwn(out, name)) throw invalid(name, `missing (${method} needs ${Object.keys(spec.args).join(', ')})`);
  }
  return out;
}

function str(args: UbusTable, name: string): string {
  return args[name] as string;
}

function code(args: UbusTable): string {
  const c = str(args, 'code').trim();
  // Never echoed: a pairing code holds a one-time secret.
  if (c === '' || c.length > MAX_CODE) throw invalid('code', `expected a pairing code of 1 to ${MAX_CODE} characters`);
  return c;
}

function deviceName(args: UbusTable): string {
  return parseWith(DeviceName, str(args, 'name'), 'name');
}

function role(args: UbusTable): string {
  const r = str(args, 'role');
  if (!(DEVICE_ROLES as readonly string[]).includes(r)) {
    throw invalid('role', `expected ${DEVICE_ROLES.map((x) => `"${x}"`).join(' or ')}, got ${describeInput(r)}`);
  }
  return r;
}

function setting(args: UbusTable): [string, UbusValue] {
  const key = str(args, 'key');
  const value = args['value'] as UbusValue;
  checkVmSetting(key, value);
  return [key, value];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/** A copy that the blobmsg encoder takes: undefined members dropped, anything else not a UbusValue refused. */
function toValue(v: unknown, path: string): UbusValue {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map((x, i) => toValue(x, `${path}[${i}]`));
  if (isPlainObject(v)) {
    const out: UbusTable = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toValue(x, `${path}.${k}`);
    return out;
  }
  throw new Error(`${path} is ${v === undefined ? 'undefined' : typeof v}, which ubus cannot carry`);
}

function toTable(method: string, result: unknown): UbusTable {
  if (result === undefined) return {};
  if (!isPlainObject(result)) throw new Error(`${method} returned ${Array.isArray(result) ? 'an array' : typeof result}, not a table`);
  return toValue(result, method) as UbusTable;
}

export interface LastError {
  method: string;
  message: string;
  /** Unix seconds. */
  at: number;
}

/** Validates arguments (UbusError INVALID_ARGUMENT naming the field), then calls the handler. */
export function createAerieObject(h: AerieHandlers, opts: AerieObjectOptions = {}): Record<string, UbusMethod> {
  const now = opts.now ?? Date.now;
  // The last failure's message, so that LuCI can say why (ubus carries only the status code).
  let lastError: LastError | null = null;

  const calls: Record<string, (a: UbusTable) => Promise<UbusTable>> = {
    status: async () => ({ ...(await h.status()), last_error: lastError ? { ...lastError } : null }),
    settings: () => h.settings(),
    devices: () => h.devices(),
    pair: (a) => h.pair(code(a)),
    unpair: () => h.unpair(),
    set: (a) => h.set(...setting(a)),
    device_add: (a) => h.deviceAdd(deviceName(a), role(a)),
    device_remove: (a) => h.deviceRemove(deviceName(a)),
  };

  const methods: Record<string, UbusMethod> = {};
  for (const [method, spec] of Object.entries(AERIE_METHODS)) {
    const call = calls[method];
    if (!call) throw new Error(`no dispatch for aerie.${method}`);
    methods[method] = {
      args: { ...spec.args },
      handler: async (args) => {
        try {
          const table = toTable(method, await call(checkArgs(method, args)));
          if (lastError?.method === method) lastError = null;
          return table;
        } catch (e) {
          const err = toUbusError(e);
          if (method !== 'status') lastError = { method, message: err.message, at: Math.floor(now() / 1000) };
          opts.log?.(`ubus ${AERIE_OBJECT}.${method}: ${err.statusName}: ${err.message}`);
          throw err;
        }
      },
    };
  }
  return methods;
}
