import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { createDeviceTable, type DeviceTable } from './devices.ts';
import { createDnsTable, type DnsTable } from './dns.ts';
import { migrations } from './migrations.ts';
import { createMqttTable, type MqttTable } from './mqtt.ts';
import { createPairingCodeTable, type PairingCodeTable } from './pairing-codes.ts';
import { createSettingsTable, type SettingsTable } from './settings.ts';

export const DATABASE_FILE = 'aerie.db';

export interface Store {
  readonly settings: SettingsTable;
  readonly devices: DeviceTable;
  readonly pairingCodes: PairingCodeTable;
  readonly dns: DnsTable;
  readonly mqtt: MqttTable;
  /**
   * Runs `fn` in one write transaction (BEGIN IMMEDIATE, so a second process
   * waits instead of failing half-way); rolls back if it throws. Nested calls
   * join the outer transaction. `fn` must be synchronous.
   */
  transaction<T>(fn: () => T): T;
  /** The schema version (PRAGMA user_version). */
  readonly version: number;
  close(): void;
}

export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreError';
  }
}

/** Opens (creating and migrating as needed) `<stateDir>/aerie.db`. */
export function openStore(stateDir: string): Store {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  return openDatabase(join(stateDir, DATABASE_FILE));
}

/** Opens a database file (or ':memory:' for tests). */
export function openDatabase(path: string): Store {
  // timeout: wait for another process's write lock (CLI and daemon share the file).
  const db = new DatabaseSync(path, { enableForeignKeyConstraints: true, timeout: 5000 });
  try {
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = NORMAL'); // durable enough with WAL; a crash loses at most the last commit
    migrate(db, path);
  } catch (err) {
    db.close();
    throw err;
  }

  const transaction = <T>(fn: () => T): T => {
    if (db.isTransaction) return fn();
    db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      if (result instanceof Promise) throw new StoreError('store transactions must be synchronous');
      db.exec('COMMIT');
      return result;
    } catch (err) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw err;
    }
  };

  return {
    settings: createSettingsTable(db),
    devices: createDeviceTable(db, transaction),
    pairingCodes: createPairingCodeTable(db),
    dns: createDnsTable(db),
    mqtt: createMqttTable(db),
    transaction,
    get version() {
      return userVersion(db);
    },
    close() {
      if (db.isOpen) db.close();
    },
  };
}

function userVersion(db: DatabaseSync): number {
  return Number(db.prepare('PRAGMA user_version').get()?.user_version ?? 0);
}

function migrate(db: DatabaseSync, path: string): void {
  const known = migrations.length;
  if (userVersion(db) > known) {
    throw new StoreError(
      `${path} has schema version ${userVersion(db)}, newer than this aerie-cloud knows (${known}); upgrade aerie-cloud`,
    );
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
      throw new StoreError(`migration ${userVersion(db) + 1} of ${path} failed: ${(err as Error).message}`);
    }
  }
}
