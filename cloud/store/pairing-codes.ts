import type { DatabaseSync } from 'node:sqlite';

export interface PairingCodeRecord {
  id: number;
  /** SHA-256 of the one-time secret (the secret itself is never stored). */
  secretHash: Uint8Array;
  createdAt: number; // unix ms
  expiresAt: number; // unix ms
  usedAt: number | null;
  usedBy: string | null;
}

export interface PairingCodeTable {
  insert(code: { secretHash: Uint8Array; createdAt: number; expiresAt: number }): number;
  all(): PairingCodeRecord[];
  /** Marks an unused code used; false if it was already used (or is gone). */
  markUsed(id: number, at: number, by: string): boolean;
  /** Deletes codes that expired before `before` (unix ms); returns how many. */
  pruneExpired(before: number): number;
}

export function createPairingCodeTable(db: DatabaseSync): PairingCodeTable {
  const insertStmt = db.prepare('INSERT INTO pairing_codes (secret_hash, created_at, expires_at) VALUES (?, ?, ?)');
  const allStmt = db.prepare(
    'SELECT id, secret_hash, created_at, expires_at, used_at, used_by FROM pairing_codes ORDER BY id',
  );
  const useStmt = db.prepare('UPDATE pairing_codes SET used_at = ?, used_by = ? WHERE id = ? AND used_at IS NULL');
  const pruneStmt = db.prepare('DELETE FROM pairing_codes WHERE expires_at < ?');
  return {
    insert: (c) => Number(insertStmt.run(c.secretHash, c.createdAt, c.expiresAt).lastInsertRowid),
    all: () =>
      allStmt.all().map((r) => ({
        id: Number(r.id),
        secretHash: r.secret_hash as Uint8Array,
        createdAt: Number(r.created_at),
        expiresAt: Number(r.expires_at),
        usedAt: r.used_at === null ? null : Number(r.used_at),
        usedBy: r.used_by === null ? null : String(r.used_by),
      })),
    markUsed: (id, at, by) => Number(useStmt.run(at, by, id).changes) === 1,
    pruneExpired: (before) => Number(pruneStmt.run(before).changes),
  };
}
