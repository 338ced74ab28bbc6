/**
 * Migration 1: the initial schema.
 *
 * Values (`input`, `output`, `error`, state values) are JSON text; SQL NULL means `undefined`,
 * so a stored JSON `null` stays distinguishable. A journal entry keeps `kind`, `name` and
 * `done` as columns and everything else in `data` (a JSON object, where an absent key is an
 * `undefined` field), so `value: null` and `value: undefined` round-trip exactly.
 */
export const sql = /* sql */ `
CREATE TABLE invocations (
  -- The rowid: arrival order. Without AUTOINCREMENT a new row gets max(seq)+1, above every
  -- stored row, which is all FIFO per key needs; AUTOINCREMENT would cost one more b-tree
  -- write per insert (sqlite_sequence) on the hottest path.
  seq          INTEGER PRIMARY KEY,
  id           TEXT    NOT NULL UNIQUE,
  service      TEXT    NOT NULL,
  handler      TEXT    NOT NULL,
  key          TEXT    NOT NULL,
  exclusive    INTEGER NOT NULL,
  status       TEXT    NOT NULL,
  input        TEXT,
  output       TEXT,
  error        TEXT,
  dedupe       TEXT,
  caller_id    TEXT,
  caller_entry INTEGER,
  attempt      INTEGER NOT NULL,
  retry_index  INTEGER NOT NULL,
  run_at       INTEGER,
  created_at   INTEGER NOT NULL,
  modified_at  INTEGER NOT NULL,
  completed_at INTEGER,
  expires_at   INTEGER
);

CREATE UNIQUE INDEX invocations_dedupe ON invocations (dedupe) WHERE dedupe IS NOT NULL;
-- Only unfinished invocations are indexed by status: finished ones dominate the table and are
-- only ever found through expires_at or paging.
CREATE INDEX invocations_active ON invocations (status, seq) WHERE status NOT IN ('completed', 'failed');
-- No (service, key) index: only admin listings filter on them, and they page newest-first
-- through the rowid; every index costs a b-tree write per insert.
CREATE INDEX invocations_expires ON invocations (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE journal (
  invocation_id TEXT    NOT NULL,
  idx           INTEGER NOT NULL,
  kind          TEXT    NOT NULL,
  name          TEXT    NOT NULL,
  done          INTEGER NOT NULL,
  data          TEXT,
  PRIMARY KEY (invocation_id, idx)
) WITHOUT ROWID;

CREATE TABLE state (
  service TEXT NOT NULL,
  key     TEXT NOT NULL,
  name    TEXT NOT NULL,
  value   TEXT,
  PRIMARY KEY (service, key, name)
) WITHOUT ROWID;

CREATE TABLE timers (
  invocation_id TEXT    NOT NULL,
  idx           INTEGER NOT NULL,
  fire_at       INTEGER NOT NULL,
  PRIMARY KEY (invocation_id, idx)
) WITHOUT ROWID;

CREATE INDEX timers_fire_at ON timers (fire_at);
`;
