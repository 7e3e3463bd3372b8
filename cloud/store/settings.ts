import type { DatabaseSync } from 'node:sqlite';

/** Key/value settings of the VM (overlay prefixes, endpoint, ports, …); values are text. */
export interface SettingsTable {
  get(key: string): string | undefined;
  set(key: string, value: string): void;
  delete(key: string): void;
  all(): Record<string, string>;
}

export function createSettingsTable(db: DatabaseSync): SettingsTable {
  const getStmt = db.prepare('SELECT value FROM settings WHERE key = ?');
  const setStmt = db.prepare(
    'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
  );
  const delStmt = db.prepare('DELETE FROM settings WHERE key = ?');
  const allStmt = db.prepare('SELECT key, value FROM settings ORDER BY key');
  return {
    get: (key) => {
      const row = getStmt.get(key);
      return row ? String(row.value) : undefined;
    },
    set: (key, value) => void setStmt.run(key, value),
    delete: (key) => void delStmt.run(key),
    all: () => Object.fromEntries(allStmt.all().map((r) => [String(r.key), String(r.value)])),
  };
}
