import type { DatabaseSync } from 'node:sqlite';

// Numbered schema migrations for a node:sqlite database (the store, the MQTT
// store): migration N (1-based) brings PRAGMA user_version from N-1 to N.

export function userVersion(db: DatabaseSync): number {
  return Number(db.prepare('PRAGMA user_version').get()?.['user_version'] ?? 0);
}

/**
 * Runs the migrations the database lacks, each in its own transaction; a
 * database newer than this program is refused. `fail` makes the caller's
 * error type from a message.
 */
export function migrate(db: DatabaseSync, migrations: readonly string[], what: string, fail: (message: string) => Error): void {
  const known = migrations.length;
  if (userVersion(db) > known) {
    throw fail(`${what} has schema version ${userVersion(db)}, newer than this aerie-cloud knows (${known}); upgrade aerie-cloud`);
  }
  while (userVersion(db) < known) {
    db.exec('BEGIN IMMEDIATE');
    try {
      // Re-read under the lock: another process may have migrated meanwhile.
      const current = userVersion(db);
      if (current < known) {
        db.exec(migrations[current]!);
        db.exec(`PRAGMA user_version = ${current + 1}`);
      }
      db.exec('COMMIT');
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw fail(`migration ${userVersion(db) + 1} of ${what} failed: ${(err as Error).message}`);
    }
  }
}
