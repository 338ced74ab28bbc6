import type Database from 'better-sqlite3';
import { StoreError } from '../errors.js';
import { sql as m0001 } from './migrations/0001_init.js';
import { sql as m0002 } from './migrations/0002_promises_cancel.js';
import { sql as m0003 } from './migrations/0003_cluster.js';
import { sql as m0004 } from './migrations/0004_kv.js';
import { sql as m0005 } from './migrations/0005_conditional_update.js';
import { sql as m0006 } from './migrations/0006_fencing.js';
import { sql as m0007 } from './migrations/0007_expect.js';
import { sql as m0008 } from './migrations/0008_trace.js';
import { sql as m0009 } from './migrations/0009_list_indexes.js';
import { sql as m0010 } from './migrations/0010_entry_timing.js';
import { sql as m0011 } from './migrations/0011_handoff_starts.js';
import { sql as m0012 } from './migrations/0012_queues.js';
import { sql as m0013 } from './migrations/0013_large_payloads.js';
import { sql as m0014 } from './migrations/0014_expect_run_at.js';
import { sql as m0015 } from './migrations/0015_queue_key_rows.js';
import { sql as m0016 } from './migrations/0016_queue_start_slots.js';
import { sql as m0017 } from './migrations/0017_batched_notify.js';
import { sql as m0018 } from './migrations/0018_bounded_reap.js';
import { sql as m0019 } from './migrations/0019_process_leave.js';

/**
 * Numbered schema migrations, applied in order. Append only: a released migration is never
 * edited, a change is a new number. The version reached is recorded in `keel_meta`.
 */
export const MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  { version: 1, name: 'init', sql: m0001 },
  { version: 2, name: 'promises_cancel', sql: m0002 },
  { version: 3, name: 'cluster', sql: m0003 },
  { version: 4, name: 'kv', sql: m0004 },
  { version: 5, name: 'conditional_update', sql: m0005 },
  { version: 6, name: 'fencing', sql: m0006 },
  { version: 7, name: 'expect', sql: m0007 },
  { version: 8, name: 'trace', sql: m0008 },
  { version: 9, name: 'list_indexes', sql: m0009 },
  { version: 10, name: 'entry_timing', sql: m0010 },
  { version: 11, name: 'handoff_starts', sql: m0011 },
  { version: 12, name: 'queues', sql: m0012 },
  { version: 13, name: 'large_payloads', sql: m0013 },
  { version: 14, name: 'expect_run_at', sql: m0014 },
  { version: 15, name: 'queue_key_rows', sql: m0015 },
  { version: 16, name: 'queue_start_slots', sql: m0016 },
  { version: 17, name: 'batched_notify', sql: m0017 },
  { version: 18, name: 'bounded_reap', sql: m0018 },
  { version: 19, name: 'process_leave', sql: m0019 },
];

/** The schema version this code writes and understands. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * Brings the database to {@link SCHEMA_VERSION}, or refuses a newer one.
 *
 * Everything runs in one `BEGIN IMMEDIATE` transaction: it takes the write lock before reading
 * the version, so when two processes open a new file at once the second waits (busy_timeout),
 * then sees the version the first committed and applies nothing. A failed migration rolls back
 * completely, leaving the previous version intact.
 *
 * `onApplied` is told of each migration once it ran (inside the transaction: it is durable at
 * the commit after the last one), so `keel migrate up` can show progress.
 *
 * @returns the version the database was at before (0 for a new database).
 */
export function migrate(
  db: Database.Database,
  path: string,
  onApplied?: (m: { version: number; name: string }) => void,
): number {
  db.prepare('BEGIN IMMEDIATE').run();
  try {
    db.exec(
      'CREATE TABLE IF NOT EXISTS keel_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID',
    );
    const row = db.prepare("SELECT value FROM keel_meta WHERE key = 'schema_version'").get() as
      { value: string } | undefined;
    const from = row === undefined ? 0 : Number(row.value);
    if (!Number.isInteger(from) || from > SCHEMA_VERSION) {
      throw new StoreError(
        'schema_too_new',
        `the database ${path} has schema version ${row?.value ?? '?'}, but this Keel only knows versions up to ` +
          `${SCHEMA_VERSION}. It was migrated by a newer Keel; upgrade Keel to open it (downgrading is not supported).`,
      );
    }
    for (const m of MIGRATIONS) {
      if (m.version <= from) continue;
      try {
        db.exec(m.sql);
      } catch (err) {
        throw new StoreError(
          'store_failed',
          `migration ${m.version} (${m.name}) of ${path} failed and was rolled back: ${(err as Error).message}`,
          err,
        );
      }
      onApplied?.(m);
    }
    if (from !== SCHEMA_VERSION) {
      db.prepare("INSERT OR REPLACE INTO keel_meta (key, value) VALUES ('schema_version', ?)").run(
        String(SCHEMA_VERSION),
      );
    }
    db.prepare('COMMIT').run();
    return from;
  } catch (err) {
    if (db.inTransaction) db.prepare('ROLLBACK').run();
    throw err;
  }
}
