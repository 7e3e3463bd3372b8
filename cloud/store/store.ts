import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { createDeviceTable, type DeviceTable } from './devices.ts';
import { createDnsTable, type DnsTable } from './dns.ts';
import { createEgressTable, type EgressTable } from './egress.ts';
import { createFirewallTable, type FirewallTable } from './firewall.ts';
import { migrate, userVersion } from '../sqlite-migrate.ts';
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
  readonly firewall: FirewallTable;
  readonly egress: EgressTable;
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
    migrate(db, migrations, path, (m) => new StoreError(m));
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
    firewall: createFirewallTable(db),
    egress: createEgressTable(db),
    transaction,
    get version() {
      return userVersion(db);
    },
    close() {
      if (db.isOpen) db.close();
    },
  };
}
