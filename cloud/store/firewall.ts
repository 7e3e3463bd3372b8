import type { DatabaseSync } from 'node:sqlite';

export interface FirewallHostRow {
  name: string;
  /** Canonical addresses or prefixes, at least one (kept space-separated in the one column). */
  addresses: string[];
  createdAt: number; // unix ms
}

export type PolicySubjectKind = 'device' | 'host';

export interface FirewallPolicyRow {
  subject: string;
  subjectKind: PolicySubjectKind;
  internet: 'allow' | 'block';
  isolated: boolean;
  lanAccess: boolean;
}

export interface FirewallPublishRow {
  name: string;
  proto: 'tcp' | 'udp';
  port: number;
  toAddress: string;
  toPort: number;
  createdAt: number; // unix ms
}

/** LAN hosts, per-subject policies and published services; core checks, this only stores. */
export interface FirewallTable {
  /** Ordered by name. */
  hosts(): FirewallHostRow[];
  host(name: string): FirewallHostRow | undefined;
  insertHost(row: FirewallHostRow): void;
  /** False if there was no host by that name. */
  removeHost(name: string): boolean;
  /** Ordered by subject, kind. */
  policies(): FirewallPolicyRow[];
  policy(subject: string, kind: PolicySubjectKind): FirewallPolicyRow | undefined;
  /** Inserts or replaces a subject's policy. */
  setPolicy(row: FirewallPolicyRow): void;
  /** False if the subject had no stored policy. */
  removePolicy(subject: string, kind: PolicySubjectKind): boolean;
  /** Ordered by name. */
  publishes(): FirewallPublishRow[];
  publish(name: string): FirewallPublishRow | undefined;
  insertPublish(row: FirewallPublishRow): void;
  /** False if there was no publish by that name. */
  removePublish(name: string): boolean;
}

export function createFirewallTable(db: DatabaseSync): FirewallTable {
  const hostCols = 'name, address, created_at';
  const hosts = db.prepare(`SELECT ${hostCols} FROM firewall_hosts ORDER BY name`);
  const host = db.prepare(`SELECT ${hostCols} FROM firewall_hosts WHERE name = ?`);
  const insertHost = db.prepare(`INSERT INTO firewall_hosts (${hostCols}) VALUES (?, ?, ?)`);
  const removeHost = db.prepare('DELETE FROM firewall_hosts WHERE name = ?');
  const policyCols = 'subject, subject_kind, internet, isolated, lan_access';
  const policies = db.prepare(`SELECT ${policyCols} FROM firewall_policies ORDER BY subject, subject_kind`);
  const policy = db.prepare(`SELECT ${policyCols} FROM firewall_policies WHERE subject = ? AND subject_kind = ?`);
  const setPolicy = db.prepare(
    `INSERT INTO firewall_policies (${policyCols}) VALUES (?, ?, ?, ?, ?)
     ON CONFLICT (subject, subject_kind) DO UPDATE SET
       internet = excluded.internet, isolated = excluded.isolated, lan_access = excluded.lan_access`,
  );
  const removePolicy = db.prepare('DELETE FROM firewall_policies WHERE subject = ? AND subject_kind = ?');
  const publishCols = 'name, proto, port, to_address, to_port, created_at';
  const publishes = db.prepare(`SELECT ${publishCols} FROM firewall_publishes ORDER BY name`);
  const publish = db.prepare(`SELECT ${publishCols} FROM firewall_publishes WHERE name = ?`);
  const insertPublish = db.prepare(`INSERT INTO firewall_publishes (${publishCols}) VALUES (?, ?, ?, ?, ?, ?)`);
  const removePublish = db.prepare('DELETE FROM firewall_publishes WHERE name = ?');

  const toHost = (r: Record<string, unknown>): FirewallHostRow => ({
    name: String(r.name),
    addresses: String(r.address).split(' ').filter(Boolean),
    createdAt: Number(r.created_at),
  });
  const toPolicy = (r: Record<string, unknown>): FirewallPolicyRow => ({
    subject: String(r.subject),
    subjectKind: String(r.subject_kind) as PolicySubjectKind,
    internet: String(r.internet) as FirewallPolicyRow['internet'],
    isolated: Number(r.isolated) === 1,
    lanAccess: Number(r.lan_access) === 1,
  });
  const toPublish = (r: Record<string, unknown>): FirewallPublishRow => ({
    name: String(r.name),
    proto: String(r.proto) as FirewallPublishRow['proto'],
    port: Number(r.port),
    toAddress: String(r.to_address),
    toPort: Number(r.to_port),
    createdAt: Number(r.created_at),
  });

  return {
    hosts: () => hosts.all().map(toHost),
    host: (name) => {
      const r = host.get(name);
      return r ? toHost(r) : undefined;
    },
    insertHost: (h) => void insertHost.run(h.name, h.addresses.join(' '), h.createdAt),
    removeHost: (name) => Number(removeHost.run(name).changes) === 1,
    policies: () => policies.all().map(toPolicy),
    policy: (subject, kind) => {
      const r = policy.get(subject, kind);
      return r ? toPolicy(r) : undefined;
    },
    setPolicy: (p) => void setPolicy.run(p.subject, p.subjectKind, p.internet, p.isolated ? 1 : 0, p.lanAccess ? 1 : 0),
    removePolicy: (subject, kind) => Number(removePolicy.run(subject, kind).changes) === 1,
    publishes: () => publishes.all().map(toPublish),
    publish: (name) => {
      const r = publish.get(name);
      return r ? toPublish(r) : undefined;
    },
    insertPublish: (p) => void insertPublish.run(p.name, p.proto, p.port, p.toAddress, p.toPort, p.createdAt),
    removePublish: (name) => Number(removePublish.run(name).changes) === 1,
  };
}
