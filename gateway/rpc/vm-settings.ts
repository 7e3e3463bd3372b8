import { describeInput, ValidationError } from '../../shared/errors.ts';
import type { UbusValue } from '../ubus/types.ts';

/**
 * The VM-side switches that `aerie set {key, value}` changes, and where the
 * handler sends each one in the VM API. The VM checks them again; checking
 * here too gives LuCI the field at once, without a round trip.
 */
export type VmSetting =
  | { type: 'bool'; api: string }
  | { type: 'choice'; choices: readonly string[]; api: string }
  | { type: 'string-list'; min: number; max: number; api: string };

export const VM_SETTINGS: Readonly<Record<string, VmSetting>> = Object.freeze({
  /** Blocklists on or off for this router's whole LAN (the VM keeps the switch per device: ours). */
  blocking: { type: 'bool', api: 'PUT /v1/dns/devices/<this router> {blocking}' },
  /** "null" answers 0.0.0.0 and ::, "nxdomain" says the name does not exist (cloud/core/dns-settings.ts). */
  blockMode: { type: 'choice', choices: ['null', 'nxdomain'], api: 'PATCH /v1/dns {blockMode}' },
  /** Upstream specs in order of preference ("udp:127.0.0.1", "dot:dns.example@192.0.2.1"). */
  upstreams: { type: 'string-list', min: 1, max: 8, api: 'PATCH /v1/dns {upstreams}' },
});

const MAX_TEXT = 256;

/** Checks a key and its value's shape; throws ValidationError naming `key` or `value`. */
export function checkVmSetting(key: string, value: UbusValue): void {
  const spec = Object.hasOwn(VM_SETTINGS, key) ? VM_SETTINGS[key] : undefined;
  if (!spec) {
    throw new ValidationError('key', `expected one of ${Object.keys(VM_SETTINGS).join(', ')}, got ${describeInput(key)}`);
  }
  if (spec.type === 'bool') {
    if (typeof value !== 'boolean') throw new ValidationError('value', `${key} expects true or false, got ${describeInput(value)}`);
    return;
  }
  if (spec.type === 'choice') {
    if (typeof value !== 'string' || !spec.choices.includes(value)) {
      throw new ValidationError('value', `${key} expects one of ${spec.choices.map((c) => `"${c}"`).join(', ')}, got ${describeInput(value)}`);
    }
    return;
  }
  const ok =
    Array.isArray(value) &&
    value.length >= spec.min &&
    value.length <= spec.max &&
    value.every((s) => typeof s === 'string' && s.trim() !== '' && s.length <= MAX_TEXT);
  if (!ok) {
    throw new ValidationError('value', `${key} expects a list of ${spec.min} to ${spec.max} non-empty strings (at most ${MAX_TEXT} characters each)`);
  }
}
