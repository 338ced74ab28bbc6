/**
 * Migration 3: several processes on one store (used by shared stores; the SQLite store keeps
 * the same schema so both adapters report the same version for the same features).
 *
 * - `invocations.owner`: the process executing an invocation. NULL for invocations of a store
 *   without processes. Indexed only where it is set and the invocation unfinished, so a store
 *   that never sets it (the embedded engine) pays nothing on inserts and updates.
 * - `processes`: registered processes and the end of their lease (epoch ms).
 * - `key_locks`: which exclusive invocation holds an object key. Found by key when acquired or
 *   released, and by invocation when the invocation is deleted.
 *
 * The next pending invocation of a released key is found through `invocations_active`, by
 * status and seq: `key.release` is only used by shared stores, and an index by key would cost
 * every insert of an exclusive invocation a b-tree write.
 */
export const sql = /* sql */ `
ALTER TABLE invocations ADD COLUMN owner TEXT;

CREATE INDEX invocations_owner ON invocations (owner, seq)
  WHERE owner IS NOT NULL AND status NOT IN ('completed', 'failed');

CREATE TABLE processes (
  id          TEXT    NOT NULL PRIMARY KEY,
  lease_until INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE key_locks (
  service       TEXT NOT NULL,
  key           TEXT NOT NULL,
  invocation_id TEXT NOT NULL,
  PRIMARY KEY (service, key)
) WITHOUT ROWID;

CREATE INDEX key_locks_invocation ON key_locks (invocation_id);
`;
