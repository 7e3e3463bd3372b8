import type { DatabaseSync } from 'node:sqlite';

export interface MqttUserRow {
  name: string;
  /** Topic filter the user owns, e.g. "home/plug/#". */
  prefix: string;
  hash: Uint8Array;
  salt: Uint8Array;
  /** scrypt parameters as JSON (see core/mqtt-users.ts). */
  params: string;
  createdAt: number; // unix ms
}

export type GrantSubjectKind = 'user' | 'device';

export interface MqttGrantRow {
  subject: string;
  subjectKind: GrantSubjectKind;
  action: 'read' | 'write';
  filter: string;
  createdAt: number; // unix ms
}

/** MQTT users (behind the router, by password) and the owner's topic grants. */
export interface MqttTable {
  /** Ordered by name. */
  users(): MqttUserRow[];
  user(name: string): MqttUserRow | undefined;
  insertUser(row: MqttUserRow): void;
  /** False if there was no user by that name. */
  removeUser(name: string): boolean;
  /** Replaces a user's hash, salt and parameters (a rehash with raised parameters). */
  setHash(name: string, hash: Uint8Array, salt: Uint8Array, params: string): boolean;
  /** All grants, or those of one subject; ordered by subject, action, filter. */
  grants(subject?: { name: string; kind: GrantSubjectKind }): MqttGrantRow[];
  /** False if the same grant existed already (it is kept as it was). */
  insertGrant(row: MqttGrantRow): boolean;
  /** False if there was no such grant. */
  removeGrant(row: Omit<MqttGrantRow, 'createdAt'>): boolean;
  /** Removes every grant of a subject; returns how many. */
  removeGrantsOf(name: string, kind: GrantSubjectKind): number;
}

export function createMqttTable(db: DatabaseSync): MqttTable {
  const userCols = 'name, prefix, hash, salt, params, created_at';
  const users = db.prepare(`SELECT ${userCols} FROM mqtt_users ORDER BY name`);
  const user = db.prepare(`SELECT ${userCols} FROM mqtt_users WHERE name = ?`);
  const insertUser = db.prepare(`INSERT INTO mqtt_users (${userCols}) VALUES (?, ?, ?, ?, ?, ?)`);
  const removeUser = db.prepare('DELETE FROM mqtt_users WHERE name = ?');
  const setHash = db.prepare('UPDATE mqtt_users SET hash = ?, salt = ?, params = ? WHERE name = ?');
  const grantCols = 'subject, subject_kind, action, filter, created_at';
  const order = 'ORDER BY subject, subject_kind, action, filter';
  const grants = db.prepare(`SELECT ${grantCols} FROM mqtt_grants ${order}`);
  const grantsOf = db.prepare(`SELECT ${grantCols} FROM mqtt_grants WHERE subject = ? AND subject_kind = ? ${order}`);
  const insertGrant = db.prepare(`INSERT INTO mqtt_grants (${grantCols}) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`);
  const removeGrant = db.prepare('DELETE FROM mqtt_grants WHERE subject = ? AND subject_kind = ? AND action = ? AND filter = ?');
  const removeGrantsOf = db.prepare('DELETE FROM mqtt_grants WHERE subject = ? AND subject_kind = ?');

  const toUser = (r: Record<string, unknown>): MqttUserRow => ({
    name: String(r.name),
    prefix: String(r.prefix),
    hash: r.hash as Uint8Array,
    salt: r.salt as Uint8Array,
    params: String(r.params),
    createdAt: Number(r.created_at),
  });
  const toGrant = (r: Record<string, unknown>): MqttGrantRow => ({
    subject: String(r.subject),
    subjectKind: String(r.subject_kind) as GrantSubjectKind,
    action: String(r.action) as MqttGrantRow['action'],
    filter: String(r.filter),
    createdAt: Number(r.created_at),
  });

  return {
    users: () => users.all().map(toUser),
    user: (name) => {
      const r = user.get(name);
      return r ? toUser(r) : undefined;
    },
    insertUser: (u) => void insertUser.run(u.name, u.prefix, u.hash, u.salt, u.params, u.createdAt),
    removeUser: (name) => Number(removeUser.run(name).changes) === 1,
    setHash: (name, hash, salt, params) => Number(setHash.run(hash, salt, params, name).changes) === 1,
    grants: (subject) => (subject ? grantsOf.all(subject.name, subject.kind) : grants.all()).map(toGrant),
    insertGrant: (g) => Number(insertGrant.run(g.subject, g.subjectKind, g.action, g.filter, g.createdAt).changes) === 1,
    removeGrant: (g) => Number(removeGrant.run(g.subject, g.subjectKind, g.action, g.filter).changes) === 1,
    removeGrantsOf: (name, kind) => Number(removeGrantsOf.run(name, kind).changes),
  };
}
