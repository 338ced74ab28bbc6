/**
 * Migration 1: the initial schema, as SQLite's migration 1 (same tables, columns and meaning).
 *
 * Values (`input`, `output`, `error`, state values) are JSON text: SQL NULL means `undefined`, so
 * a stored JSON `null` stays distinguishable. They are `text`, not `jsonb`: jsonb would reorder
 * object keys, refuse `\u0000` in strings, and cost a parse on every write for nothing, since
 * the database never looks inside them. A journal entry keeps `kind`, `name` and `done` as
 * columns and everything else in `data` (a JSON object; an absent key is an `undefined` field).
 *
 * Times are epoch milliseconds in `bigint`. Key columns use the "C" collation: byte order, as
 * SQLite sorts, and cheaper comparisons than a linguistic collation.
 *
 * @param s the quoted schema name.
 */
export const sql = (s: string): string => /* sql */ `
CREATE TABLE ${s}.invocations (
  -- Arrival order, for FIFO per object key. An identity never hands out a value twice, so a
  -- new row sorts after every stored one.
  seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  id           text COLLATE "C" NOT NULL UNIQUE,
  service      text COLLATE "C" NOT NULL,
  handler      text COLLATE "C" NOT NULL,
  key          text COLLATE "C" NOT NULL,
  exclusive    boolean NOT NULL,
  status       text COLLATE "C" NOT NULL,
  input        text,
  output       text,
  error        text,
  dedupe       text COLLATE "C",
  caller_id    text COLLATE "C",
  caller_entry integer,
  attempt      integer NOT NULL,
  retry_index  integer NOT NULL,
  run_at       bigint,
  created_at   bigint NOT NULL,
  modified_at  bigint NOT NULL,
  completed_at bigint,
  expires_at   bigint
);

CREATE UNIQUE INDEX invocations_dedupe ON ${s}.invocations (dedupe) WHERE dedupe IS NOT NULL;
-- Only unfinished invocations are indexed by status: finished ones dominate the table and are
-- only ever found through expires_at or paging.
CREATE INDEX invocations_active ON ${s}.invocations (status, seq)
  WHERE status NOT IN ('completed', 'failed');
CREATE INDEX invocations_expires ON ${s}.invocations (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE ${s}.journal (
  invocation_id text COLLATE "C" NOT NULL,
  idx           integer NOT NULL,
  kind          text COLLATE "C" NOT NULL,
  name          text COLLATE "C" NOT NULL,
  done          boolean NOT NULL,
  data          text,
  PRIMARY KEY (invocation_id, idx)
);

CREATE TABLE ${s}.state (
  service text COLLATE "C" NOT NULL,
  key     text COLLATE "C" NOT NULL,
  name    text COLLATE "C" NOT NULL,
  value   text,
  PRIMARY KEY (service, key, name)
);

CREATE TABLE ${s}.timers (
  invocation_id text COLLATE "C" NOT NULL,
  idx           integer NOT NULL,
  fire_at       bigint NOT NULL,
  PRIMARY KEY (invocation_id, idx)
);

CREATE INDEX timers_fire_at ON ${s}.timers (fire_at);
`;
