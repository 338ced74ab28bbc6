import type pg from 'pg';
import { UsageError } from '../../core/errors.js';
import { StoreError } from '../errors.js';
import { msg } from './errors.js';
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
 * edited, a change is a new number. The numbers follow the SQLite store's, so both adapters
 * report the same schema version for the same features. Each takes the quoted schema name.
 */
export const MIGRATIONS: ReadonlyArray<{
  version: number;
  name: string;
  sql: (schema: string) => string;
}> = [
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
 * Schema names this adapter accepts: unquoted PostgreSQL identifiers in lower case, so the name
 * means the same quoted or not, and no `pg_` prefix (reserved for system schemas).
 */
const SCHEMA_NAME = /^(?!pg_)[a-z_][a-z0-9_]{0,62}$/;

/** Validates a schema name and returns it quoted for SQL. */
export function quoteSchema(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) {
    throw new UsageError(
      `invalid PostgreSQL schema name ${JSON.stringify(schema)}: use 1 to 63 lower-case letters, ` +
        'digits and underscores, starting with a letter or underscore and not with "pg_" (e.g. "keel").',
    );
  }
  return `"${schema}"`;
}

/**
 * The key of the transaction-level advisory lock that serializes migrations of one schema:
 * FNV-1a (64 bits) of `keel.migrate:<schema>`, as a signed bigint. Derived from the schema name,
 * so migrations of different schemas in one database do not wait for each other.
 */
export function migrationLockKey(schema: string): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(`keel.migrate:${schema}`, 'utf8')) {
    h ^= BigInt(byte);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return BigInt.asIntN(64, h).toString();
}

/**
 * Brings the schema to {@link SCHEMA_VERSION}, or refuses a newer one.
 *
 * Everything runs in one transaction holding `pg_advisory_xact_lock(<key of the schema>)`: when
 * several processes start at once, the first creates the schema and migrates, the others wait
 * for the lock, then see the version it committed and apply nothing. DDL is transactional in
 * PostgreSQL, so a failed migration rolls back completely, leaving the previous version intact.
 *
 * `onApplied` is told of each migration once it ran (inside the transaction: it is durable at
 * the commit after the last one), so `keel migrate up` can show progress.
 *
 * @returns the version the schema was at before (0 for a new schema).
 */
export async function migrate(
  pool: pg.Pool,
  schema: string,
  onApplied?: (m: { version: number; name: string }) => void,
): Promise<number> {
  const s = quoteSchema(schema);
  const client = await pool.connect();
  let broken: unknown;
  try {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [migrationLockKey(schema)]);
      // Checked first rather than CREATE ... IF NOT EXISTS, which needs the privilege to create
      // even when there is nothing to create: a schema set up by an administrator works with a
      // role that may only use it.
      const existing = await client.query<{ schema: boolean; table: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema,
                to_regclass($2) IS NOT NULL AS table`,
        [schema, `${s}.migrations`],
      );
      if (!existing.rows[0]!.schema) await client.query(`CREATE SCHEMA ${s}`);
      if (!existing.rows[0]!.table) {
        await client.query(
          `CREATE TABLE ${s}.migrations (
             version    integer PRIMARY KEY,
             name       text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
           )`,
        );
      }
      const { rows } = await client.query<{ v: number | null }>(
        `SELECT max(version) AS v FROM ${s}.migrations`,
      );
      const from = rows[0]?.v ?? 0;
      if (from > SCHEMA_VERSION) {
        throw new StoreError(
          'schema_too_new',
          `the PostgreSQL schema "${schema}" has schema version ${from}, but this Keel only knows versions up to ` +
            `${SCHEMA_VERSION}. It was migrated by a newer Keel; upgrade Keel to use it (downgrading is not supported).`,
        );
      }
      for (const m of MIGRATIONS) {
        if (m.version <= from) continue;
        try {
          await client.query(m.sql(s));
          await client.query(`INSERT INTO ${s}.migrations (version, name) VALUES ($1, $2)`, [
            m.version,
            m.name,
          ]);
        } catch (err) {
          throw new StoreError(
            'store_failed',
            `migration ${m.version} (${m.name}) of the PostgreSQL schema "${schema}" failed and was rolled back: ${msg(err)}`,
            err,
          );
        }
        onApplied?.(m);
      }
      await client.query('COMMIT');
      return from;
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: unknown) => (broken = rollbackErr));
      throw err;
    }
  } finally {
    client.release(broken instanceof Error ? broken : undefined);
  }
}
