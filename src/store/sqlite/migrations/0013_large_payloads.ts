/**
 * Migration 13: blob tables for values stored out of line (see store/payloads.ts and
 * docs/payloads.md). A column whose JSON is longer than the store's `largePayloadThreshold`
 * holds a marker (`@blob:<bytes>`; a journal entry's `data` holds `"$blob":<bytes>`) and the
 * JSON text lives here, written in the same transaction as its row.
 *
 * - `invocation_blobs`: an invocation's input (part -1), output (part -2) and journal entries
 *   (part = index). Deleted with the invocation (`invocation.delete`).
 * - `state_blobs`: a state value; deleted when the value is deleted, cleared or overwritten by
 *   one stored in line.
 *
 * Tables in the same file rather than files in a directory: a file written beside the database
 * would need its own crash consistency (write, fsync, rename, then the row; and a sweep for
 * files whose row never committed), while a row in the same transaction is atomic with its
 * owner for free, and SQLite stores a large value in overflow pages that a read of the owner row
 * never touches. Rowid tables (not WITHOUT ROWID), which suit rows this large.
 *
 * Depends on migration 12 being present (the numbers of both adapters match).
 */
export const sql = /* sql */ `
CREATE TABLE invocation_blobs (
  invocation_id TEXT NOT NULL,
  part          INTEGER NOT NULL,
  data          TEXT NOT NULL,
  PRIMARY KEY (invocation_id, part)
);

CREATE TABLE state_blobs (
  service TEXT NOT NULL,
  key     TEXT NOT NULL,
  name    TEXT NOT NULL,
  data    TEXT NOT NULL,
  PRIMARY KEY (service, key, name)
);
`;
