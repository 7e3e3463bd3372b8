import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { describeInput, ValidationError } from '../../shared/errors.ts';
import { DeviceName, parseWith } from '../../shared/schemas.ts';
import type { GrantSubjectKind, MqttGrantRow, MqttUserRow } from '../store/mqtt.ts';
import type { Store } from '../store/store.ts';
import { CoreError } from './errors.ts';
import { refuseTakenName } from './names.ts';
import { checkGrantAction, checkGrantFilter, checkUserPrefix, defaultPrefix, type GrantAction, type MqttGrant } from './mqtt-access.ts';

// MQTT users are devices behind the router (plugs, sensors) that cannot be
// tunnel peers: they log in with a name and a password issued here. Only a
// scrypt hash of the password is kept; the password is shown once.

export interface ScryptParams {
  N: number;
  r: number;
  p: number;
  keylen: number;
}

/**
 * Parameters for new hashes. The passwords are 130 random bits, so no
 * dictionary helps an attacker with a stolen database and a moderate cost is
 * enough (16 MiB, tens of milliseconds); stored with each hash so that they
 * can be raised later: a login with older parameters is rehashed.
 */
export const SCRYPT_PARAMS: Readonly<ScryptParams> = Object.freeze({ N: 2 ** 14, r: 8, p: 1, keylen: 32 });

const SALT_BYTES = 16;
// Crockford's base32 alphabet, lower case: no i, l, o or u to misread.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const PASSWORD_SYMBOLS = 26; // 26 × 5 = 130 bits

export interface MqttUserInfo {
  name: string;
  prefix: string;
  createdAt: string; // ISO 8601
}

export interface AddMqttUserResult {
  user: MqttUserInfo;
  /** Shown once; only its hash is stored. */
  password: string;
}

export interface MqttUsers {
  list(): MqttUserInfo[];
  get(name: string): MqttUserInfo | undefined;
  /** `input`: { name, prefix? }; the prefix defaults to home/<name>/#. */
  add(input: unknown): Promise<AddMqttUserResult>;
  /** Removes the user and its grants; CoreError 'not_found' if there is none. */
  remove(name: unknown): MqttUserInfo;
  /**
   * The user if `password` is theirs, else null. Takes as long for a name
   * that does not exist as for a wrong password, so timing does not reveal
   * which names exist. Never throws for bad input.
   */
  verify(name: unknown, password: unknown): Promise<MqttUserInfo | null>;
}

export interface MqttGrantInfo {
  /** A user's or a device's name. */
  name: string;
  kind: GrantSubjectKind;
  action: GrantAction;
  filter: string;
  createdAt: string; // ISO 8601
}

export interface MqttGrants {
  /** All grants, or those of one user or device. */
  list(name?: unknown): MqttGrantInfo[];
  /** `input`: { name, action, filter }. Granting what exists already changes nothing. */
  grant(input: unknown): MqttGrantInfo;
  /** `input` as for grant; CoreError 'not_found' if there is no such grant. */
  revoke(input: unknown): MqttGrantInfo;
  /** What the access rules need for one subject. */
  of(name: string, kind: GrantSubjectKind): MqttGrant[];
}

export interface MqttUsersDeps {
  store: Store;
  now: () => number;
  /** For tests only: cheaper parameters for new hashes. */
  scryptParams?: ScryptParams;
  /** The key derivation (scrypt); tests count its calls. */
  derive?: Derive;
}

export type Derive = (password: Uint8Array, salt: Uint8Array, params: ScryptParams) => Promise<Buffer>;

export function generatePassword(): string {
  // 256 is a multiple of 32, so masking keeps every symbol equally likely.
  return Array.from(randomBytes(PASSWORD_SYMBOLS), (b) => ALPHABET.charAt(b & 31)).join('');
}

export function scryptDerive(password: Uint8Array, salt: Uint8Array, params: ScryptParams): Promise<Buffer> {
  // Node refuses scrypt above maxmem (32 MiB by default); 128·N·r bytes is what it needs.
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + (1 << 20) };
  return new Promise((resolve, reject) =>
    scrypt(password, salt, params.keylen, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** Stored parameters, or null if the row is damaged (that login then fails). */
function parseParams(text: string): ScryptParams | null {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    const { N, r, p, keylen } = v;
    const int = (x: unknown, min: number, max: number): x is number => Number.isInteger(x) && (x as number) >= min && (x as number) <= max;
    if (!int(N, 2, 2 ** 22) || (N & (N - 1)) !== 0 || !int(r, 1, 64) || !int(p, 1, 16) || !int(keylen, 16, 64)) return null;
    return { N, r, p, keylen };
  } catch {
    return null;
  }
}

const sameParams = (a: ScryptParams, b: ScryptParams) => a.N === b.N && a.r === b.r && a.p === b.p && a.keylen === b.keylen;

const toInfo = (u: MqttUserRow): MqttUserInfo => ({ name: u.name, prefix: u.prefix, createdAt: new Date(u.createdAt).toISOString() });

const passwordBytes = (password: unknown): Uint8Array | null =>
  typeof password === 'string' ? Buffer.from(password, 'utf8') : password instanceof Uint8Array ? password : null;

function fields(input: unknown): Record<string, unknown> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ValidationError('body', `expected an object, got ${describeInput(input)}`);
  }
  return input as Record<string, unknown>;
}

export function createMqttUsers(deps: MqttUsersDeps): MqttUsers {
  const { store, now } = deps;
  const current = deps.scryptParams ?? SCRYPT_PARAMS;
  const derive = deps.derive ?? scryptDerive;
  // Unknown names are checked against this salt, so they cost a full scrypt too.
  const dummySalt = randomBytes(SALT_BYTES);

  const refuseTaken = (name: string) => refuseTakenName(store, name, 'MQTT user');

  return {
    list: () => store.mqtt.users().map(toInfo),
    get(name) {
      const u = store.mqtt.user(name);
      return u && toInfo(u);
    },
    async add(input) {
      const body = fields(input);
      const name = parseWith(DeviceName, body.name, 'name');
      const prefix = checkUserPrefix(body.prefix ?? defaultPrefix(name), 'prefix');
      refuseTaken(name); // before the costly hash; checked again below, under the lock
      const password = generatePassword();
      const salt = randomBytes(SALT_BYTES);
      const hash = await derive(Buffer.from(password, 'utf8'), salt, current);
      const row: MqttUserRow = { name, prefix, hash, salt, params: JSON.stringify(current), createdAt: now() };
      store.transaction(() => {
        refuseTaken(name);
        store.mqtt.insertUser(row);
      });
      return { user: toInfo(row), password };
    },
    remove(nameInput) {
      const name = parseWith(DeviceName, nameInput, 'name');
      return store.transaction(() => {
        const u = store.mqtt.user(name);
        if (!u || !store.mqtt.removeUser(name)) throw new CoreError('not_found', `there is no MQTT user named "${name}"`);
        store.mqtt.removeGrantsOf(name, 'user');
        return toInfo(u);
      });
    },
    async verify(name, password) {
      const row = typeof name === 'string' && name.length <= 64 ? store.mqtt.user(name) : undefined;
      const params = row ? parseParams(row.params) : current;
      const given = passwordBytes(password);
      const derived = await derive(given ?? new Uint8Array(0), row?.salt ?? dummySalt, params ?? current);
      const usable = row !== undefined && params !== null && given !== null && row.hash.length === derived.length;
      // Otherwise compare against zeros, which no scrypt output equals in practice: the same work either way.
      const equal = timingSafeEqual(derived, usable ? row.hash : new Uint8Array(derived.length));
      if (!usable || !equal) return null;
      if (!sameParams(params, current)) {
        // Raise an old hash to today's parameters while the password is at hand.
        const salt = randomBytes(SALT_BYTES);
        store.mqtt.setHash(row.name, await derive(given, salt, current), salt, JSON.stringify(current));
      }
      return toInfo(row);
    },
  };
}

export function createMqttGrants(deps: Pick<MqttUsersDeps, 'store' | 'now'>): MqttGrants {
  const { store, now } = deps;

  const subjectOf = (name: string): GrantSubjectKind => {
    if (store.mqtt.user(name)) return 'user';
    if (store.devices.get(name)) return 'device';
    throw new CoreError('not_found', `there is no MQTT user or device named "${name}"`);
  };
  const toInfo = (g: MqttGrantRow): MqttGrantInfo => ({
    name: g.subject,
    kind: g.subjectKind,
    action: g.action,
    filter: g.filter,
    createdAt: new Date(g.createdAt).toISOString(),
  });
  const parse = (input: unknown) => {
    const body = fields(input);
    const name = parseWith(DeviceName, body.name, 'name');
    const action = checkGrantAction(body.action);
    return { name, action, filter: checkGrantFilter(action, body.filter) };
  };

  return {
    list(nameInput) {
      if (nameInput === undefined) return store.mqtt.grants().map(toInfo);
      const name = parseWith(DeviceName, nameInput, 'name');
      return store.mqtt.grants({ name, kind: subjectOf(name) }).map(toInfo);
    },
    grant(input) {
      const { name, action, filter } = parse(input);
      return store.transaction(() => {
        const row: MqttGrantRow = { subject: name, subjectKind: subjectOf(name), action, filter, createdAt: now() };
        store.mqtt.insertGrant(row);
        const stored = store.mqtt.grants({ name, kind: row.subjectKind }).find((g) => g.action === action && g.filter === filter);
        return toInfo(stored ?? row);
      });
    },
    revoke(input) {
      const { name, action, filter } = parse(input);
      return store.transaction(() => {
        const kind = subjectOf(name);
        const stored = store.mqtt.grants({ name, kind }).find((g) => g.action === action && g.filter === filter);
        if (!stored || !store.mqtt.removeGrant(stored)) {
          throw new CoreError('not_found', `"${name}" has no ${action} grant for ${describeInput(filter)}`);
        }
        return toInfo(stored);
      });
    },
    of: (name, kind) => store.mqtt.grants({ name, kind }).map((g) => ({ action: g.action, filter: g.filter })),
  };
}
