import * as v from 'valibot';
import { ValidationError } from './errors.ts';
import { checkInterfaceName } from './interface-name.ts';
import { isValidKey } from './keys.ts';
import {
  formatAddress,
  formatInterfaceAddress,
  formatPrefix,
  parseAddress,
  parseInterfaceAddress,
  parsePrefix,
  prefixesOverlap,
  type Prefix,
} from './cidr.ts';
import { decodePairingCode, formatEndpoint, isValidSecret, parseEndpoint } from './pairing-code.ts';

/**
 * The JSON that crosses the network, as valibot schemas. Parsing also makes
 * addresses and prefixes canonical, so that stored text compares equal.
 * Error messages never echo long strings (they may be keys or secrets).
 */

// ---- building blocks --------------------------------------------------------

function text(max: number) {
  return v.pipe(v.string(), v.maxLength(max, `expected at most ${max} characters`));
}

/** A string run through one of our parsers; the parser's message becomes the issue. */
function parsed(max: number, parse: (s: string) => string) {
  return v.pipe(
    text(max),
    v.rawTransform(({ dataset, addIssue, NEVER }) => {
      try {
        return parse(dataset.value);
      } catch (e) {
        addIssue({ message: e instanceof Error ? e.message : String(e) });
        return NEVER;
      }
    }),
  );
}

/** The length is checked before the items, so a huge list costs nothing. */
function list<T extends v.GenericSchema>(item: T, max: number) {
  return v.pipe(v.array(v.unknown()), v.maxLength(max, `expected at most ${max} items`), v.array(item));
}

function count(max = Number.MAX_SAFE_INTEGER) {
  return v.pipe(
    v.number(),
    v.safeInteger('expected a whole number'),
    v.minValue(0, 'expected a number not below 0'),
    v.maxValue(max, `expected a number not above ${max}`),
  );
}

const ISO_TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

const IsoTime = v.pipe(
  text(40),
  v.check((s) => ISO_TIME_RE.test(s) && !Number.isNaN(Date.parse(s)), 'expected an ISO 8601 time like 2024-05-01T12:00:00Z'),
);

// The checks are anchored regexes of fixed length, so long input fails fast.
export const Key = v.pipe(v.string(), v.check(isValidKey, 'expected a base64 WireGuard key (32 bytes)'));

const Secret = v.pipe(
  v.string(),
  v.check(isValidSecret, 'expected the 16-byte pairing secret as base64url (22 characters)'),
);

/** Any address, canonical ("2001:DB8::0:1" → "2001:db8::1"). */
export const IpAddress = parsed(64, (s) => formatAddress(parseAddress(s, '')));

/** A prefix with host bits clear, canonical. */
export const IpPrefix = parsed(70, (s) => formatPrefix(parsePrefix(s, '')));

/** An interface address with its subnet, "203.0.113.130/25", canonical. */
export const InterfaceAddress = parsed(70, (s) => {
  const { address, prefix } = parseInterfaceAddress(s, '');
  return formatInterfaceAddress(address, prefix.length);
});

/** An address, with or without a /length. */
const AddressMaybeWithLength = parsed(70, (s) => {
  if (!s.includes('/')) return formatAddress(parseAddress(s, ''));
  const { address, prefix } = parseInterfaceAddress(s, '');
  return formatInterfaceAddress(address, prefix.length);
});

/** host:port with a port, canonical ("[2001:db8::1]:51820"). */
export const Endpoint = parsed(300, (s) => {
  const { host, port } = parseEndpoint(s, undefined, '');
  return formatEndpoint(host, port);
});

/** Ranges a home LAN cannot be: routing them to a router would break the VM or mean nothing. */
const NOT_LAN: { prefix: Prefix; why: string }[] = [
  ['0.0.0.0/8', 'the "this network" range'],
  ['127.0.0.0/8', 'loopback'],
  ['169.254.0.0/16', 'link-local'],
  ['224.0.0.0/4', 'multicast'],
  ['240.0.0.0/4', 'reserved'],
  ['::/8', 'reserved (loopback, IPv4-mapped and -compatible addresses)'],
  ['fe80::/10', 'link-local'],
  ['ff00::/8', 'multicast'],
].map(([p, why]) => ({ prefix: parsePrefix(p!), why: why! }));

function checkLanPrefix(s: string): string {
  const p = parsePrefix(s, '');
  const text = formatPrefix(p);
  // Shorter than this would claim a large part of the internet for one home.
  const min = p.family === 4 ? 8 : 16;
  if (p.length < min) throw new Error(`expected a home LAN prefix of /${min} or longer, got ${text}`);
  const bad = NOT_LAN.find((n) => prefixesOverlap(n.prefix, p));
  if (bad) throw new Error(`expected a home LAN prefix, got ${text} (${bad.why})`);
  return text;
}

/** A home LAN prefix as a router reports it. */
export const LanPrefix = parsed(70, checkLanPrefix);

/** Prefixes of one list must not overlap each other. */
function disjoint(what: string) {
  return v.rawCheck<string[]>(({ dataset, addIssue }) => {
    if (!dataset.typed) return;
    const items = dataset.value;
    const prefixes = items.map((s) => parsePrefix(s, ''));
    for (let i = 0; i < prefixes.length; i++) {
      for (let j = 0; j < i; j++) {
        if (prefixesOverlap(prefixes[i]!, prefixes[j]!)) {
          addIssue({
            message: `${items[i]} overlaps ${what}[${j}] (${items[j]})`,
            path: [{ type: 'array', origin: 'value', input: items, key: i, value: items[i] }],
          });
          return;
        }
      }
    }
  });
}

/** A JSON object; valibot's object() alone would take an array for one. */
function obj<const T extends v.ObjectEntries>(entries: T) {
  return v.pipe(
    v.custom<Record<string, unknown>>(
      (x) => typeof x === 'object' && x !== null && !Array.isArray(x),
      (issue) => `expected an object, got ${describeValue(issue.input)}`,
    ),
    v.object(entries),
  );
}

// ---- names and roles --------------------------------------------------------

/** A device name; it becomes a DNS label later (RFC 1123), so the rules are a label's. */
export const DeviceName = v.pipe(
  v.string(),
  v.minLength(1, 'expected a device name, got an empty string'),
  v.maxLength(32, 'expected a device name of at most 32 characters'),
  v.regex(
    /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/,
    'expected a device name of lower-case letters, digits and inner dashes (like "living-room")',
  ),
);
export type DeviceName = v.InferOutput<typeof DeviceName>;

export const Role = v.picklist(['gateway', 'owner', 'member']);
export type Role = v.InferOutput<typeof Role>;

export const WhoamiRole = v.picklist(['gateway', 'owner', 'member', 'lan']);
export type WhoamiRole = v.InferOutput<typeof WhoamiRole>;

const InterfaceName = parsed(64, (s) => checkInterfaceName(s, ''));

// ---- messages ---------------------------------------------------------------

export const PairRequest = obj({
  secret: Secret,
  publicKey: Key,
  name: DeviceName,
  lanPrefixes: v.pipe(list(LanPrefix, 32), disjoint('lanPrefixes')),
});
export type PairRequest = v.InferOutput<typeof PairRequest>;

export const PairResponse = obj({
  name: DeviceName,
  vmPublicKey: Key,
  endpoint: Endpoint,
  addresses: list(InterfaceAddress, 16),
  overlay: list(IpPrefix, 16),
  services: obj({ api: list(IpAddress, 16) }),
  keepalive: count(65535),
  /** The IPv6 /64 the VM gives the home (routed through the tunnel); absent from an older VM. */
  homeV6: v.optional(IpPrefix),
});
export type PairResponse = v.InferOutput<typeof PairResponse>;

export const Whoami = obj({
  name: text(64),
  role: WhoamiRole,
  address: IpAddress,
  gateway: v.optional(text(64)),
});
export type Whoami = v.InferOutput<typeof Whoami>;

export const DeviceInfo = obj({
  name: DeviceName,
  role: Role,
  publicKey: Key,
  addresses: list(AddressMaybeWithLength, 16),
  lanPrefixes: list(IpPrefix, 32),
  createdAt: IsoTime,
  endpoint: v.nullable(Endpoint),
  latestHandshake: count(),
  rxBytes: count(),
  txBytes: count(),
});
export type DeviceInfo = v.InferOutput<typeof DeviceInfo>;

export const AddDeviceRequest = obj({
  name: DeviceName,
  role: v.optional(v.picklist(['owner', 'member'])),
  publicKey: v.optional(Key),
  split: v.optional(v.boolean()),
});
export type AddDeviceRequest = v.InferOutput<typeof AddDeviceRequest>;

export const AddDeviceResponse = obj({
  device: DeviceInfo,
  config: v.optional(text(8192)),
});
export type AddDeviceResponse = v.InferOutput<typeof AddDeviceResponse>;

export const CloudStatus = obj({
  interface: InterfaceName,
  publicKey: Key,
  listenPort: v.pipe(count(65535), v.minValue(1, 'expected a port number 1-65535')),
  endpoint: Endpoint,
  overlay: list(IpPrefix, 16),
  peers: list(DeviceInfo, 10_000),
});
export type CloudStatus = v.InferOutput<typeof CloudStatus>;

export const ApiError = obj({
  error: obj({ code: text(64), message: text(2000) }),
});
export type ApiError = v.InferOutput<typeof ApiError>;

export const CreatePairingCodeRequest = obj({
  ttlSeconds: v.optional(
    v.pipe(
      v.number(),
      v.safeInteger('expected a whole number of seconds'),
      v.minValue(60, 'expected at least 60 seconds'),
      v.maxValue(86400, 'expected at most 86400 seconds (one day)'),
    ),
  ),
});
export type CreatePairingCodeRequest = v.InferOutput<typeof CreatePairingCodeRequest>;

export const CreatePairingCodeResponse = obj({
  code: v.pipe(
    text(1000),
    v.check((s) => {
      try {
        decodePairingCode(s);
        return true;
      } catch {
        return false;
      }
    }, 'expected an Aerie pairing code'),
  ),
  expiresAt: IsoTime,
});
export type CreatePairingCodeResponse = v.InferOutput<typeof CreatePairingCodeResponse>;

// ---- parsing ----------------------------------------------------------------

function pathOf(issue: v.BaseIssue<unknown>): string {
  let out = '';
  for (const item of issue.path ?? []) {
    const key = item.key;
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

function describeValue(x: unknown): string {
  if (x === null) return 'null';
  if (Array.isArray(x)) return 'a list';
  if (typeof x === 'string') return x.length > 40 ? `a string of ${x.length} characters` : JSON.stringify(x);
  if (typeof x === 'number' || typeof x === 'boolean') return String(x);
  if (typeof x === 'object') return 'an object';
  return typeof x;
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
  array: 'a list',
  object: 'an object',
  null: 'null',
};

function messageOf(issue: v.BaseIssue<unknown>): string {
  const input = issue.input;
  // JSON has no undefined: it means the key is missing.
  if (issue.kind === 'schema' && input === undefined && issue.path?.length) return 'is required but missing';
  if (issue.kind !== 'schema' || issue.type === 'custom') return issue.message;
  if (issue.type === 'picklist') {
    const options = (issue.expected ?? '').replace(/^\(|\)$/g, '').split(' | ').join(', ');
    return `expected one of ${options}, got ${describeValue(input)}`;
  }
  const expected = TYPE_NAMES[issue.type] ?? issue.expected ?? issue.type;
  return `expected ${expected}, got ${describeValue(input)}`;
}

/**
 * Validates `data` against `schema` and returns the parsed (canonical) value,
 * or throws a ValidationError naming the first bad field by its path
 * ("lanPrefixes[1]"); `what` names the whole value when the top level is wrong.
 */
export function parseWith<const TSchema extends v.GenericSchema>(
  schema: TSchema,
  data: unknown,
  what = 'body',
): v.InferOutput<TSchema> {
  const result = v.safeParse(schema, data, { abortEarly: true });
  if (result.success) return result.output;
  const issue = result.issues[0];
  throw new ValidationError(pathOf(issue) || what, messageOf(issue));
}
