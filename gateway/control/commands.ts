import * as v from 'valibot';
import { describeInput, ValidationError } from '../../shared/errors.ts';
import { DeviceName, parseWith } from '../../shared/schemas.ts';

/**
 * The commands the VM sends the router on aerie/gw/<name>/cmd/<command>
 * (../shared/DESIGN.md §5). Only the VM publishes there (the broker's access
 * rules), so a command is trusted as the VM's; it is still checked, because a
 * bad one must be logged and dropped, never crash the daemon.
 *
 * A command is a hint, not the data: the router fetches what changed over HTTP
 * (the API is the one source of truth), so a lost command costs nothing once
 * the re-sync on (re)connect has run. The payload is a JSON object; fields the
 * router does not know are dropped, so a newer VM may add some.
 *
 *   settings-changed {id?, keys?}     a VM-side setting changed (ad blocking and
 *                                     its lists, firewall policies, temporary IP);
 *                                     keys names which, when the VM knows
 *   devices-changed  {id?, devices?}  a device was added, renamed or removed;
 *                                     devices names which, when the VM knows
 *   resync           {id?}            fetch everything again now
 *
 * `id` (optional) names one sending: QoS 1 delivers at least once, and a
 * repeated id is applied once (see channel.ts).
 *
 * There is no "re-pair" command: a pairing code carries a secret, and MQTT
 * messages are stored by the broker; and when the VM's key changes the tunnel,
 * and MQTT with it, is down anyway.
 */

export const COMMAND_NAMES = ['settings-changed', 'devices-changed', 'resync'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

/** Larger payloads are refused before parsing. */
export const MAX_COMMAND_BYTES = 4096;
const MAX_NAMES = 64;

const Id = v.optional(
  v.pipe(
    v.string(),
    v.minLength(1, 'expected a non-empty id'),
    v.maxLength(64, 'expected an id of at most 64 characters'),
    v.regex(/^[\x21-\x7e]+$/, 'expected an id of printable ASCII without spaces'),
  ),
);

const SettingKey = v.pipe(
  v.string(),
  v.regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'expected a setting name of letters, digits, ".", "_" and "-"'),
);

/** The length is checked before the items, so a huge list costs nothing. */
const names = <T extends v.GenericSchema<unknown, string>>(item: T) =>
  v.optional(v.pipe(v.array(v.unknown()), v.maxLength(MAX_NAMES, `expected at most ${MAX_NAMES} names`), v.array(item)), []);

const SCHEMAS = {
  'settings-changed': v.object({ id: Id, keys: names(SettingKey) }),
  'devices-changed': v.object({ id: Id, devices: names(DeviceName) }),
  resync: v.object({ id: Id }),
} as const satisfies Record<CommandName, v.GenericSchema>;

export type CommandPayloads = { [N in CommandName]: v.InferOutput<(typeof SCHEMAS)[N]> };

/** One checked command, as the arguments of onCommand(name, payload): a switch on name narrows payload. */
export type CommandArgs = { [N in CommandName]: [name: N, payload: CommandPayloads[N]] }[CommandName];

export const isCommandName = (name: string): name is CommandName => (COMMAND_NAMES as readonly string[]).includes(name);

/**
 * Checks one command: `name` is the topic's last level, `payload` the raw
 * message. Throws ValidationError naming "command", "payload" or the field.
 */
export function parseCommand(name: string, payload: Uint8Array): CommandArgs {
  if (!isCommandName(name)) {
    throw new ValidationError('command', `expected one of ${COMMAND_NAMES.join(', ')}, got ${describeInput(name)}`);
  }
  if (payload.byteLength > MAX_COMMAND_BYTES) {
    throw new ValidationError('payload', `expected at most ${MAX_COMMAND_BYTES} bytes, got ${payload.byteLength}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload));
  } catch {
    throw new ValidationError('payload', 'expected a JSON object in UTF-8');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ValidationError('payload', `expected a JSON object, got ${Array.isArray(json) ? 'an array' : describeInput(json)}`);
  }
  return [name, parseWith(SCHEMAS[name], json, 'payload')] as CommandArgs;
}
