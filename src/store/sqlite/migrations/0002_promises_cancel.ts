/**
 * Migration 2: cancellation and outcomes of invocations, durable promises of workflow keys.
 *
 * `ADD COLUMN` of a nullable column without a default only changes the schema text: existing
 * rows are not rewritten, so this migration is instant on a large database.
 *
 * A promise's `value` and `error` are JSON text like every other value: SQL NULL is `undefined`,
 * so a promise resolved with `undefined` (done, both NULL) stays apart from one resolved with
 * `null`. A promise row with `done = 0` exists once something awaited it.
 *
 * A waiter is the journal entry `idx` of `invocation_id` that waits for a promise. It is keyed
 * by the entry, like the journal: an entry waits for at most one promise, and awaiting again at
 * the same index replaces the waiter. `kind` and `entry_name` record the awaited entry, so a
 * completion can still write it should the journal row be missing (as `journal.complete` does).
 * Waiters are found by promise on completion, and by invocation (the key prefix) on delete.
 */
export const sql = /* sql */ `
ALTER TABLE invocations ADD COLUMN cancel TEXT;
ALTER TABLE invocations ADD COLUMN outcome TEXT;

CREATE TABLE promises (
  service TEXT    NOT NULL,
  key     TEXT    NOT NULL,
  name    TEXT    NOT NULL,
  done    INTEGER NOT NULL,
  value   TEXT,
  error   TEXT,
  PRIMARY KEY (service, key, name)
) WITHOUT ROWID;

CREATE TABLE promise_waiters (
  invocation_id TEXT    NOT NULL,
  idx           INTEGER NOT NULL,
  service       TEXT    NOT NULL,
  key           TEXT    NOT NULL,
  name          TEXT    NOT NULL,
  kind          TEXT    NOT NULL,
  entry_name    TEXT    NOT NULL,
  PRIMARY KEY (invocation_id, idx)
) WITHOUT ROWID;

CREATE INDEX promise_waiters_promise ON promise_waiters (service, key, name);
`;
