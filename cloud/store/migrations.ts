// Numbered schema migrations. Migration N (1-based) brings the database from
// PRAGMA user_version N-1 to N. Append only: never edit a migration that shipped.

export const migrations: readonly string[] = [
  // 1: settings, devices with their home prefixes, pairing codes.
  `
  CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) STRICT;

  CREATE TABLE devices (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    role       TEXT NOT NULL CHECK (role IN ('gateway', 'owner', 'member')),
    public_key TEXT NOT NULL UNIQUE,
    -- n-th address of both overlay prefixes; 1 is the VM itself
    host_index INTEGER NOT NULL UNIQUE CHECK (host_index >= 2),
    address_v4 TEXT NOT NULL UNIQUE,
    address_v6 TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    endpoint   TEXT
  ) STRICT;

  -- home LAN prefixes a gateway routes; no two rows may claim the same prefix
  CREATE TABLE device_prefixes (
    device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    prefix    TEXT NOT NULL UNIQUE,
    PRIMARY KEY (device_id, position)
  ) STRICT;

  -- only the SHA-256 of each one-time secret is kept
  CREATE TABLE pairing_codes (
    id          INTEGER PRIMARY KEY,
    secret_hash BLOB NOT NULL UNIQUE CHECK (length(secret_hash) = 32),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    used_at     INTEGER,
    used_by     TEXT
  ) STRICT;
  `,
  // 2: DNS: blocklist sources, the owner's allow/block names, a per-device blocking switch.
  `
  CREATE TABLE dns_lists (
    id       TEXT PRIMARY KEY,
    url      TEXT NOT NULL UNIQUE,
    enabled  INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    added_at INTEGER NOT NULL
  ) STRICT;

  -- a name (and its subdomains) is either always allowed or always blocked
  CREATE TABLE dns_names (
    name     TEXT PRIMARY KEY,
    action   TEXT NOT NULL CHECK (action IN ('allow', 'block')),
    added_at INTEGER NOT NULL
  ) STRICT;

  ALTER TABLE devices ADD COLUMN dns_blocking INTEGER NOT NULL DEFAULT 1 CHECK (dns_blocking IN (0, 1));
  `,
  // 3: MQTT: users behind the router (only a scrypt hash of each password) and the owner's grants.
  `
  CREATE TABLE mqtt_users (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    prefix     TEXT NOT NULL,
    hash       BLOB NOT NULL,
    salt       BLOB NOT NULL,
    -- scrypt parameters as JSON, so that they can be raised for new hashes
    params     TEXT NOT NULL,
    created_at INTEGER NOT NULL
  ) STRICT;

  -- subject is a user's or a device's name; names of both kinds never clash
  CREATE TABLE mqtt_grants (
    id           INTEGER PRIMARY KEY,
    subject      TEXT NOT NULL,
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('user', 'device')),
    action       TEXT NOT NULL CHECK (action IN ('read', 'write')),
    filter       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    UNIQUE (subject, subject_kind, action, filter)
  ) STRICT;
  `,
  // 4: firewall: LAN hosts behind a gateway, per-subject policies, published home services.
  `
  CREATE TABLE firewall_hosts (
    name       TEXT PRIMARY KEY,
    -- canonical address ("192.0.2.140") or prefix ("192.0.2.144/28") inside a gateway's home prefix
    address    TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  ) STRICT;

  -- only subjects whose policy was set have a row; the others have the defaults
  CREATE TABLE firewall_policies (
    subject      TEXT NOT NULL,
    subject_kind TEXT NOT NULL CHECK (subject_kind IN ('device', 'host')),
    internet     TEXT NOT NULL CHECK (internet IN ('allow', 'block')),
    isolated     INTEGER NOT NULL CHECK (isolated IN (0, 1)),
    lan_access   INTEGER NOT NULL CHECK (lan_access IN (0, 1)),
    PRIMARY KEY (subject, subject_kind)
  ) STRICT;

  -- DNAT from the VM's public address on proto/port to a home address
  CREATE TABLE firewall_publishes (
    name       TEXT PRIMARY KEY,
    proto      TEXT NOT NULL CHECK (proto IN ('tcp', 'udp')),
    port       INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),
    to_address TEXT NOT NULL,
    to_port    INTEGER NOT NULL CHECK (to_port BETWEEN 1 AND 65535),
    created_at INTEGER NOT NULL,
    UNIQUE (proto, port)
  ) STRICT;
  `,
  // 5: egress: the temporary-address pool, who uses it, the current addresses, exceptions.
  `
  -- one row: the pool and the state of rotation
  CREATE TABLE egress (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    v6_prefix        TEXT,
    -- JSON array of IPv4 addresses, in round-robin order
    v4               TEXT NOT NULL DEFAULT '[]',
    global           INTEGER NOT NULL DEFAULT 0 CHECK (global IN (0, 1)),
    current_v4       TEXT,
    current_v6       TEXT,
    rotated_at       INTEGER,
    schedule_seconds INTEGER CHECK (schedule_seconds IS NULL OR schedule_seconds >= 300)
  ) STRICT;
  INSERT INTO egress (id) VALUES (1);

  -- devices and LAN hosts that use the temporary address while it is not on for everyone
  CREATE TABLE egress_subjects (
    name     TEXT PRIMARY KEY,
    added_at INTEGER NOT NULL
  ) STRICT;

  -- the latest IPv6 picks, so that a rotation does not come back to one soon
  CREATE TABLE egress_recent_v6 (
    id        INTEGER PRIMARY KEY,
    address   TEXT NOT NULL,
    picked_at INTEGER NOT NULL
  ) STRICT;

  -- destinations that keep the VM's main address
  CREATE TABLE egress_exceptions (
    value    TEXT PRIMARY KEY,
    kind     TEXT NOT NULL CHECK (kind IN ('domain', 'prefix')),
    added_at INTEGER NOT NULL
  ) STRICT;
  `,
];
