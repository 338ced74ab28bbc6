/**
 * `keel migrate status|up`: the schema version of a SQLite file or a PostgreSQL schema, and its
 * pending migrations. Talks to the database directly (no app needs to run), with the same
 * migration runner the stores use at start: one transaction, safe when apps start meanwhile.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { act } from '../command.js';
import type { Ctx } from '../context.js';
import { CliError, EXIT, usage } from '../errors.js';
import { fields, table, time } from '../output.js';
import { progress } from '../progress.js';

// The drivers and migrations load only when a migrate command runs: the other commands start faster.
const sqlite = async () => (await import('better-sqlite3')).default;
const postgres = async () => (await import('pg')).default;
const sqliteMigrations = () => import('../../store/sqlite/migrations.js');
const postgresMigrations = () => import('../../store/postgres/migrations.js');

interface MigrateOptions {
  db?: string;
  databaseUrl?: string;
  schema?: string;
}

type Where = { store: 'sqlite'; path: string } | { store: 'postgres'; url: string; schema: string };

/** What `status` reports (and `--json` prints). */
interface Status {
  store: 'sqlite' | 'postgres';
  /** The file, or the URL without its password. */
  database: string;
  schema?: string;
  /** Whether the file or schema exists yet (`up` creates it). */
  exists: boolean;
  version: number;
  latest: number;
  applied: Array<{ version: number; name: string; appliedAt?: string }>;
  pending: Array<{ version: number; name: string }>;
  /** Migrated by a newer Keel: this one cannot open it. */
  newer: boolean;
}

function whereOf(o: MigrateOptions, env = process.env): Where {
  const url = o.databaseUrl ?? (o.db === undefined ? env.KEEL_DATABASE_URL : undefined);
  if (o.db !== undefined && o.databaseUrl !== undefined)
    throw usage('give --db (SQLite) or --database-url (PostgreSQL), not both');
  if (url !== undefined && url !== '') {
    if (!/^postgres(ql)?:\/\//.test(url))
      throw usage(`--database-url must be a postgres:// URL, got "${redact(url)}"`);
    const schema = o.schema ?? env.KEEL_DATABASE_SCHEMA ?? 'keel';
    return { store: 'postgres', url, schema };
  }
  if (o.schema !== undefined) throw usage('--schema is for PostgreSQL: give --database-url too');
  return { store: 'sqlite', path: o.db ?? env.KEEL_DB ?? './.keel/keel.db' };
}

type Migration = { version: number; name: string };

async function list(where: Where): Promise<readonly Migration[]> {
  return where.store === 'sqlite'
    ? (await sqliteMigrations()).MIGRATIONS
    : (await postgresMigrations()).MIGRATIONS;
}

async function statusFrom(
  where: Where,
  exists: boolean,
  version: number,
  applied: Status['applied'],
): Promise<Status> {
  const all = await list(where);
  const latest = all[all.length - 1]!.version;
  return {
    store: where.store,
    database: where.store === 'sqlite' ? where.path : redact(where.url),
    ...(where.store === 'postgres' ? { schema: where.schema } : {}),
    exists,
    version,
    latest,
    applied,
    pending: all.filter((m) => m.version > version).map(({ version, name }) => ({ version, name })),
    newer: version > latest,
  };
}

async function readStatus(where: Where): Promise<Status> {
  if (where.store === 'sqlite') {
    // A missing file stays missing: status only looks.
    if (!existsSync(where.path)) return statusFrom(where, false, 0, []);
    const Database = await sqlite();
    const db = new Database(where.path, { readonly: true, fileMustExist: true, timeout: 5000 });
    try {
      const table = db
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'keel_meta'")
        .get();
      const row =
        table === undefined
          ? undefined
          : (db.prepare("SELECT value FROM keel_meta WHERE key = 'schema_version'").get() as
              { value: string } | undefined);
      const version = row === undefined ? 0 : Number(row.value);
      // SQLite records the version reached, not each step: every known one up to it is applied.
      const applied = (await list(where))
        .filter((m) => m.version <= version)
        .map(({ version, name }) => ({ version, name }));
      return statusFrom(where, true, version, applied);
    } finally {
      db.close();
    }
  }
  let s: string;
  try {
    s = (await postgresMigrations()).quoteSchema(where.schema);
  } catch (err) {
    throw usage((err as Error).message);
  }
  const pg = await postgres();
  const client = new pg.Client({ connectionString: where.url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ schema: boolean; table: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AS schema,
              to_regclass($2) IS NOT NULL AS table`,
      [where.schema, `${s}.migrations`],
    );
    if (!rows[0]!.table) return statusFrom(where, rows[0]!.schema, 0, []);
    const applied = await client.query<{ version: number; name: string; applied_at: Date }>(
      `SELECT version, name, applied_at FROM ${s}.migrations ORDER BY version`,
    );
    const version = Math.max(0, ...applied.rows.map((r) => r.version));
    return statusFrom(
      where,
      true,
      version,
      applied.rows.map((r) => ({
        version: r.version,
        name: r.name,
        appliedAt: new Date(r.applied_at).toISOString(),
      })),
    );
  } catch (err) {
    throw pgError(err, where);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function status(ctx: Ctx, _args: string[], o: MigrateOptions): Promise<void> {
  const s = await readStatus(whereOf(o));
  const { out } = ctx;
  if (out.json) return out.data(s);
  out.line(
    fields(out, [
      ['store', s.store],
      [
        'database',
        s.database + (s.exists || s.schema ? '' : out.style('dim', ' (does not exist yet)')),
      ],
      [
        'schema',
        s.schema && s.schema + (s.exists ? '' : out.style('dim', ' (does not exist yet)')),
      ],
      ['version', `${s.version} of ${s.latest}`],
      [
        'state',
        s.newer
          ? out.style(
              'red',
              `migrated by a newer Keel (version ${s.version}): upgrade Keel to use it`,
            )
          : s.pending.length === 0
            ? out.style('green', 'up to date')
            : out.style('yellow', `${s.pending.length} pending: keel migrate up applies them`),
      ],
    ]),
  );
  out.line();
  const appliedAt = new Map(s.applied.map((a) => [a.version, a.appliedAt]));
  out.line(
    table(
      out,
      ['VERSION', 'NAME', 'STATE'],
      (await list(whereOf(o))).map((m) => [
        String(m.version),
        m.name,
        m.version <= s.version
          ? `applied${appliedAt.get(m.version) ? ` ${time(appliedAt.get(m.version))}` : ''}`
          : out.style('yellow', 'pending'),
      ]),
    ),
  );
}

async function up(ctx: Ctx, _args: string[], o: MigrateOptions): Promise<void> {
  const where = whereOf(o);
  const before = await readStatus(where);
  const { out } = ctx;
  if (before.newer)
    throw new CliError(
      'schema_too_new',
      `${before.database} has schema version ${before.version}, newer than this Keel's ${before.latest}: upgrade Keel (downgrading is not supported)`,
      EXIT.failed,
    );
  const applied: Array<{ version: number; name: string }> = [];
  const bar = progress(out, 'migrating');
  bar.start(before.pending.length);
  const onApplied = (m: { version: number; name: string }) => {
    applied.push({ version: m.version, name: m.name });
    bar.update(applied.length);
  };
  let from: number;
  try {
    if (where.store === 'sqlite')
      from = upSqlite(await sqlite(), (await sqliteMigrations()).migrate, where.path, onApplied);
    else from = await upPostgres(where, onApplied);
  } finally {
    bar.stop();
  }
  const after = before.latest;
  const result = {
    store: where.store,
    database: before.database,
    ...(where.store === 'postgres' ? { schema: where.schema } : {}),
    from,
    to: after,
    applied,
  };
  if (out.json) return out.data(result);
  if (applied.length === 0)
    return out.line(`${before.database}: already at version ${after}, nothing to apply`);
  for (const m of applied) out.line(`applied ${m.version} ${m.name}`);
  out.line(`${before.database}: migrated from version ${from} to ${after}`);
}

function upSqlite(
  Database: Awaited<ReturnType<typeof sqlite>>,
  migrateSqlite: Awaited<ReturnType<typeof sqliteMigrations>>['migrate'],
  path: string,
  onApplied: (m: { version: number; name: string }) => void,
): number {
  mkdirSync(dirname(path), { recursive: true });
  const db = new Database(path, { timeout: 5000 });
  try {
    // As the store opens it: WAL (recorded in the file), and durable migrations.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    return migrateSqlite(db, path, onApplied);
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'schema_too_new')
      throw new CliError(code, (err as Error).message, EXIT.failed, { cause: err });
    throw err;
  } finally {
    db.close();
  }
}

async function upPostgres(
  where: Extract<Where, { store: 'postgres' }>,
  onApplied: (m: { version: number; name: string }) => void,
): Promise<number> {
  const pg = await postgres();
  const pool = new pg.Pool({
    connectionString: where.url,
    max: 1,
    connectionTimeoutMillis: 10_000,
  });
  pool.on('error', () => undefined);
  try {
    return await (await postgresMigrations()).migrate(pool, where.schema, onApplied);
  } catch (err) {
    throw pgError(err, where);
  } finally {
    await pool.end().catch(() => undefined);
  }
}

/** A PostgreSQL failure with the exit code it stands for. */
function pgError(err: unknown, where: Extract<Where, { store: 'postgres' }>): CliError {
  if (err instanceof CliError) return err;
  const e = err as { code?: string; message?: string };
  const message = `PostgreSQL at ${redact(where.url)}: ${e.message ?? String(err)}`;
  const code = e.code ?? '';
  if (
    ['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ETIMEDOUT', 'ECONNRESET'].includes(code) ||
    /timeout|terminated/i.test(e.message ?? '')
  )
    return new CliError(
      'unreachable',
      `${message}: is it running and reachable from here?`,
      EXIT.unreachable,
      { cause: err },
    );
  if (code === '28P01' || code === '28000')
    return new CliError('unauthorized', message, EXIT.unauthorized, { cause: err });
  if (code === '3D000') return new CliError('not_found', message, EXIT.notFound, { cause: err });
  if (code === 'schema_too_new')
    return new CliError(code, e.message ?? '', EXIT.failed, { cause: err });
  return new CliError(typeof e.code === 'string' ? e.code : 'failed', message, EXIT.failed, {
    cause: err,
  });
}

/** The URL without its password. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'the given URL';
  }
}

export function registerMigrate(program: Command): void {
  const migrate = program
    .command('migrate')
    .description(
      "the database's schema: version and pending migrations (talks to the database, not the app)",
    );
  for (const [name, description, fn] of [
    ['status', 'the schema version and the pending migrations', status],
    ['up', 'apply the pending migrations, in one transaction, with a progress bar', up],
  ] as const) {
    migrate
      .command(name)
      .description(description)
      .option('--db <file>', 'a SQLite file (KEEL_DB; default ./.keel/keel.db)')
      .option('--database-url <url>', 'a PostgreSQL URL (KEEL_DATABASE_URL)')
      .option('--schema <name>', 'the PostgreSQL schema (KEEL_DATABASE_SCHEMA; default keel)')
      .action(act<MigrateOptions>(fn));
  }
}
