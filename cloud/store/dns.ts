import type { DatabaseSync } from 'node:sqlite';

export interface DnsListRow {
  id: string;
  url: string;
  enabled: boolean;
  addedAt: number; // unix ms
}

export type NameAction = 'allow' | 'block';

export interface DnsNameRow {
  name: string;
  action: NameAction;
  addedAt: number; // unix ms
}

/** Blocklist sources and the owner's own allowed and blocked names. */
export interface DnsTable {
  lists(): DnsListRow[];
  addList(row: DnsListRow): void;
  /** False if there was no list by that id. */
  removeList(id: string): boolean;
  setListEnabled(id: string, enabled: boolean): boolean;
  names(): DnsNameRow[];
  /** Adds the name or changes its action. */
  setName(row: DnsNameRow): void;
  removeName(name: string): boolean;
}

export function createDnsTable(db: DatabaseSync): DnsTable {
  const lists = db.prepare('SELECT id, url, enabled, added_at FROM dns_lists ORDER BY added_at, id');
  const addList = db.prepare('INSERT INTO dns_lists (id, url, enabled, added_at) VALUES (?, ?, ?, ?)');
  const removeList = db.prepare('DELETE FROM dns_lists WHERE id = ?');
  const enableList = db.prepare('UPDATE dns_lists SET enabled = ? WHERE id = ?');
  const names = db.prepare('SELECT name, action, added_at FROM dns_names ORDER BY name');
  const setName = db.prepare(
    'INSERT INTO dns_names (name, action, added_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET action = excluded.action',
  );
  const removeName = db.prepare('DELETE FROM dns_names WHERE name = ?');
  return {
    lists: () =>
      lists.all().map((r) => ({ id: String(r.id), url: String(r.url), enabled: r.enabled === 1, addedAt: Number(r.added_at) })),
    addList: (r) => void addList.run(r.id, r.url, r.enabled ? 1 : 0, r.addedAt),
    removeList: (id) => Number(removeList.run(id).changes) === 1,
    setListEnabled: (id, enabled) => Number(enableList.run(enabled ? 1 : 0, id).changes) === 1,
    names: () =>
      names.all().map((r) => ({ name: String(r.name), action: String(r.action) as NameAction, addedAt: Number(r.added_at) })),
    setName: (r) => void setName.run(r.name, r.action, r.addedAt),
    removeName: (name) => Number(removeName.run(name).changes) === 1,
  };
}
