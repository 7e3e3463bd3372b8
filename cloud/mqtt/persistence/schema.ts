import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { migrate } from '../../sqlite-migrate.ts';

// The broker's own database (mqtt.db), apart from aerie.db: message traffic
// must not contend with the control plane's writes, and either file can be
// deleted without losing the other's state.
//
// Numbered migrations, append only: migration N brings PRAGMA user_version
// from N-1 to N. Packets are kept as `meta` (JSON of every field but the
// payload, see packet-codec.ts) plus the payload as a BLOB; `bytes` is what a
// row counts against the store's size cap.
const migrations: readonly string[] = [
  `
  CREATE TABLE retained (
    topic   TEXT PRIMARY KEY,
    meta    TEXT NOT NULL,
    payload BLOB,
    bytes   INTEGER NOT NULL
  ) STRICT;

  -- id keeps the order a client subscribed in; a re-subscribe updates in place
  CREATE TABLE subscriptions (
    id        INTEGER PRIMARY KEY,
    client_id TEXT NOT NULL,
    topic     TEXT NOT NULL,
    qos       INTEGER NOT NULL CHECK (qos IN (0, 1, 2)),
    rh        INTEGER,
    rap       INTEGER,
    nl        INTEGER,
    sub_id    INTEGER,
    UNIQUE (client_id, topic)
  ) STRICT;
  CREATE INDEX subscriptions_by_topic ON subscriptions (topic);

  -- per-client delivery queue; message_id is set when the packet is sent
  CREATE TABLE outgoing (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id      TEXT NOT NULL,
    broker_id      TEXT,
    broker_counter INTEGER,
    message_id     INTEGER,
    meta           TEXT NOT NULL,
    payload        BLOB,
    bytes          INTEGER NOT NULL
  ) STRICT;
  CREATE INDEX outgoing_by_client ON outgoing (client_id, seq);
  CREATE INDEX outgoing_by_message_id ON outgoing (client_id, message_id);

  -- QoS 2 publishes received and not yet released (MQTT-4.3.3-2)
  CREATE TABLE incoming (
    client_id  TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    meta       TEXT NOT NULL,
    payload    BLOB,
    bytes      INTEGER NOT NULL,
    PRIMARY KEY (client_id, message_id)
  ) STRICT;

  CREATE TABLE wills (
    client_id TEXT PRIMARY KEY,
    broker_id TEXT,
    meta      TEXT NOT NULL,
    payload   BLOB,
    bytes     INTEGER NOT NULL
  ) STRICT;
  `,
];

export class MqttStoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MqttStoreError';
  }
}

/**
 * Opens (creating and migrating as needed) the broker's database at `path`.
 *
 * synchronous=FULL: with WAL, NORMAL already survives a `kill -9` (committed
 * pages sit in the OS page cache), but not a power cut or a VM host crash.
 * A PUBACK/PUBREC, or an accepted retained message, is the broker taking over
 * responsibility for a message; one fsync per commit keeps that promise on
 * the message rates of a personal cloud.
 */
export function openMqttDatabase(path: string): DatabaseSync {
  if (typeof path !== 'string' || path === '') throw new MqttStoreError('the MQTT store needs a database path');
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const db = new DatabaseSync(path, { timeout: 5000 });
  try {
    db.exec('PRAGMA journal_mode = WAL');
    db.exec('PRAGMA synchronous = FULL');
    migrate(db, migrations, `${path} (MQTT)`, (m) => new MqttStoreError(m));
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
