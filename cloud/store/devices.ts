import type { DatabaseSync } from 'node:sqlite';

export type DeviceRole = 'gateway' | 'owner' | 'member';

export interface DeviceRecord {
  name: string;
  role: DeviceRole;
  publicKey: string;
  /** Index n of the device's address in both overlay prefixes (the VM is 1). */
  hostIndex: number;
  /** Overlay addresses without a prefix length, e.g. "100.64.0.2", "fd12:3456:789a::2". */
  addressV4: string;
  addressV6: string;
  /** Home LAN prefixes routed to this device (gateways only), in the order given. */
  lanPrefixes: string[];
  createdAt: number; // unix ms
  /** Last WireGuard endpoint seen for the peer ("host:port"), if any. */
  endpoint: string | null;
  /** The VM's resolver blocks ads for this device (and, for a gateway, its home). */
  dnsBlocking: boolean;
}

export type NewDevice = Omit<DeviceRecord, 'endpoint' | 'dnsBlocking'>;

export interface DeviceTable {
  list(): DeviceRecord[];
  get(name: string): DeviceRecord | undefined;
  getByPublicKey(publicKey: string): DeviceRecord | undefined;
  insert(device: NewDevice): void;
  /** Removes the device and its prefixes; false if there was none by that name. */
  remove(name: string): boolean;
  setEndpoint(name: string, endpoint: string | null): void;
  /** False if there was no device by that name. */
  setDnsBlocking(name: string, on: boolean): boolean;
}

const COLUMNS = 'id, name, role, public_key, host_index, address_v4, address_v6, created_at, endpoint, dns_blocking';

export function createDeviceTable(db: DatabaseSync, transaction: <T>(fn: () => T) => T): DeviceTable {
  const listStmt = db.prepare(`SELECT ${COLUMNS} FROM devices ORDER BY host_index`);
  const byName = db.prepare(`SELECT ${COLUMNS} FROM devices WHERE name = ?`);
  const byKey = db.prepare(`SELECT ${COLUMNS} FROM devices WHERE public_key = ?`);
  const prefixesAll = db.prepare('SELECT device_id, prefix FROM device_prefixes ORDER BY device_id, position');
  const prefixesOf = db.prepare('SELECT prefix FROM device_prefixes WHERE device_id = ? ORDER BY position');
  const insertStmt = db.prepare(
    `INSERT INTO devices (name, role, public_key, host_index, address_v4, address_v6, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertPrefix = db.prepare('INSERT INTO device_prefixes (device_id, position, prefix) VALUES (?, ?, ?)');
  const removeStmt = db.prepare('DELETE FROM devices WHERE name = ?');
  const endpointStmt = db.prepare('UPDATE devices SET endpoint = ? WHERE name = ?');
  const dnsBlockingStmt = db.prepare('UPDATE devices SET dns_blocking = ? WHERE name = ?');

  const toRecord = (r: Record<string, unknown>, lanPrefixes: string[]): DeviceRecord => ({
    name: String(r.name),
    role: String(r.role) as DeviceRole,
    publicKey: String(r.public_key),
    hostIndex: Number(r.host_index),
    addressV4: String(r.address_v4),
    addressV6: String(r.address_v6),
    lanPrefixes,
    createdAt: Number(r.created_at),
    endpoint: r.endpoint === null ? null : String(r.endpoint),
    dnsBlocking: Number(r.dns_blocking) === 1,
  });
  const one = (r: Record<string, unknown> | undefined) =>
    r ? toRecord(r, prefixesOf.all(r.id as number).map((p) => String(p.prefix))) : undefined;

  return {
    list() {
      const prefixes = new Map<number, string[]>();
      for (const p of prefixesAll.all()) {
        const id = Number(p.device_id);
        prefixes.set(id, [...(prefixes.get(id) ?? []), String(p.prefix)]);
      }
      return listStmt.all().map((r) => toRecord(r, prefixes.get(Number(r.id)) ?? []));
    },
    get: (name) => one(byName.get(name)),
    getByPublicKey: (key) => one(byKey.get(key)),
    insert(d) {
      transaction(() => {
        const { lastInsertRowid } = insertStmt.run(
          d.name, d.role, d.publicKey, d.hostIndex, d.addressV4, d.addressV6, d.createdAt,
        );
        d.lanPrefixes.forEach((p, i) => insertPrefix.run(lastInsertRowid, i, p));
      });
    },
    remove: (name) => Number(removeStmt.run(name).changes) === 1,
    setEndpoint: (name, endpoint) => void endpointStmt.run(endpoint, name),
    setDnsBlocking: (name, on) => Number(dnsBlockingStmt.run(on ? 1 : 0, name).changes) === 1,
  };
}
