import type { DatabaseSync } from 'node:sqlite';

export interface EgressRow {
  v6Prefix: string | null;
  v4: string[];
  /** On for every device and LAN host. */
  global: boolean;
  currentV4: string | null;
  currentV6: string | null;
  rotatedAt: number | null; // unix ms
  scheduleSeconds: number | null;
}

export interface EgressExceptionRow {
  value: string;
  kind: 'domain' | 'prefix';
  addedAt: number; // unix ms
}

/** How many IPv6 picks are remembered. */
export const RECENT_V6 = 16;

/** The egress pool and its state; core checks, this only stores. */
export interface EgressTable {
  get(): EgressRow;
  setPool(v6Prefix: string | null, v4: readonly string[]): void;
  setGlobal(on: boolean): void;
  setCurrent(v4: string | null, v6: string | null, rotatedAt: number | null): void;
  setSchedule(seconds: number | null): void;
  /** Names, ordered. */
  subjects(): string[];
  /** False if it was there already. */
  addSubject(name: string, at: number): boolean;
  /** False if it was not there. */
  removeSubject(name: string): boolean;
  clearSubjects(): void;
  /** Newest first, at most RECENT_V6. */
  recentV6(): string[];
  /** Remembers a pick and forgets all but the newest RECENT_V6. */
  pushRecentV6(address: string, at: number): void;
  /** Ordered by kind, value. */
  exceptions(): EgressExceptionRow[];
  /** False if the value was there already. */
  addException(row: EgressExceptionRow): boolean;
  removeException(value: string): EgressExceptionRow | undefined;
}

export function createEgressTable(db: DatabaseSync): EgressTable {
  const get = db.prepare('SELECT v6_prefix, v4, global, current_v4, current_v6, rotated_at, schedule_seconds FROM egress WHERE id = 1');
  const setPool = db.prepare('UPDATE egress SET v6_prefix = ?, v4 = ? WHERE id = 1');
  const setGlobal = db.prepare('UPDATE egress SET global = ? WHERE id = 1');
  const setCurrent = db.prepare('UPDATE egress SET current_v4 = ?, current_v6 = ?, rotated_at = ? WHERE id = 1');
  const setSchedule = db.prepare('UPDATE egress SET schedule_seconds = ? WHERE id = 1');
  const subjects = db.prepare('SELECT name FROM egress_subjects ORDER BY name');
  const addSubject = db.prepare('INSERT INTO egress_subjects (name, added_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING');
  const removeSubject = db.prepare('DELETE FROM egress_subjects WHERE name = ?');
  const clearSubjects = db.prepare('DELETE FROM egress_subjects');
  const recent = db.prepare(`SELECT address FROM egress_recent_v6 ORDER BY id DESC LIMIT ${RECENT_V6}`);
  const pushRecent = db.prepare('INSERT INTO egress_recent_v6 (address, picked_at) VALUES (?, ?)');
  const trimRecent = db.prepare(`DELETE FROM egress_recent_v6 WHERE id NOT IN (SELECT id FROM egress_recent_v6 ORDER BY id DESC LIMIT ${RECENT_V6})`);
  const exceptions = db.prepare('SELECT value, kind, added_at FROM egress_exceptions ORDER BY kind, value');
  const exception = db.prepare('SELECT value, kind, added_at FROM egress_exceptions WHERE value = ?');
  const addException = db.prepare('INSERT INTO egress_exceptions (value, kind, added_at) VALUES (?, ?, ?) ON CONFLICT (value) DO NOTHING');
  const removeException = db.prepare('DELETE FROM egress_exceptions WHERE value = ?');

  const text = (v: unknown) => (v === null || v === undefined ? null : String(v));
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  const toException = (r: Record<string, unknown>): EgressExceptionRow => ({
    value: String(r.value),
    kind: String(r.kind) as EgressExceptionRow['kind'],
    addedAt: Number(r.added_at),
  });

  return {
    get() {
      const r = get.get();
      if (!r) throw new Error('the egress row is missing (migration 5 inserts it)');
      const v4 = JSON.parse(String(r.v4)) as unknown;
      return {
        v6Prefix: text(r.v6_prefix),
        v4: Array.isArray(v4) ? v4.map(String) : [],
        global: Number(r.global) === 1,
        currentV4: text(r.current_v4),
        currentV6: text(r.current_v6),
        rotatedAt: num(r.rotated_at),
        scheduleSeconds: num(r.schedule_seconds),
      };
    },
    setPool: (v6Prefix, v4) => void setPool.run(v6Prefix, JSON.stringify(v4)),
    setGlobal: (on) => void setGlobal.run(on ? 1 : 0),
    setCurrent: (v4, v6, at) => void setCurrent.run(v4, v6, at),
    setSchedule: (seconds) => void setSchedule.run(seconds),
    subjects: () => subjects.all().map((r) => String(r.name)),
    addSubject: (name, at) => Number(addSubject.run(name, at).changes) === 1,
    removeSubject: (name) => Number(removeSubject.run(name).changes) === 1,
    clearSubjects: () => void clearSubjects.run(),
    recentV6: () => recent.all().map((r) => String(r.address)),
    pushRecentV6(address, at) {
      pushRecent.run(address, at);
      trimRecent.run();
    },
    exceptions: () => exceptions.all().map(toException),
    addException: (row) => Number(addException.run(row.value, row.kind, row.addedAt).changes) === 1,
    removeException(value) {
      const r = exception.get(value);
      if (!r) return undefined;
      removeException.run(value);
      return toException(r);
    },
  };
}
