import fs from 'node:fs';
import nodePath from 'node:path';
import Database from 'better-sqlite3';
import { UsageError } from '../../core/errors.js';
import type { JournalEntry } from '../../core/journal.js';
import { StoreError } from '../errors.js';
import type { InvocationFilter, InvocationRow, OpResult, Store, TimerRow, WriteOp } from '../types.js';
import { isBusy, retryWhileBusy } from './busy.js';
import { migrate } from './migrations.js';
import { type PreparedOp, WriteStatements, prepareOp } from './ops.js';
import { Queries } from './queries.js';

/** Options of {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** The database file. Its directory is created if missing. In-memory databases are refused. */
  path: string;
  /**
   * When a `write()` resolves (see docs/durability.md):
   * - `'fsync'` (default): after the WAL is fdatasync'ed. Survives kill -9 and power loss.
   * - `'os'`: right after the commit, when the OS holds the data. Survives kill -9 only;
   *   power loss can lose the writes since the last checkpoint (never corrupts the file).
   */
  durability?: 'fsync' | 'os';
  /**
   * Checkpoint the WAL into the database file once it holds this many bytes. Default 16 MiB.
   * Larger values mean fewer (but longer) checkpoints and a larger `-wal` file.
   */
  checkpointBytes?: number;
}

/** A pending `write()` call. */
interface Waiter {
  ops: PreparedOp[];
  results: OpResult[];
  resolve: (results: OpResult[]) => void;
  reject: (err: unknown) => void;
}

const DEFAULT_CHECKPOINT_BYTES = 16 * 1024 * 1024;
const BUSY_TIMEOUT_MS = 5000;

/**
 * The embedded Store: one SQLite file in WAL mode, written through group commit.
 *
 * `write()` never touches SQLite directly. Calls queue up; one flush runs every queued call in
 * a single transaction, each inside its own SAVEPOINT so a failing call is rolled back and
 * rejected alone. The connection runs with `synchronous=OFF`, so the commit is a few memory
 * copies; durability comes from our own asynchronous `fdatasync` of the WAL on the libuv
 * threadpool, which never blocks the event loop. While that fdatasync is in flight new calls
 * keep queueing, and the next flush commits all of them at once: the busier the store, the
 * larger the batches, and one fdatasync acknowledges thousands of operations.
 *
 * Reads run synchronously on the same connection and see committed data, including commits
 * whose fdatasync has not finished yet.
 *
 * @example
 * ```ts
 * const store = openSqliteStore({ path: '.keel/keel.db' });
 * await store.write([{ op: 'state.set', service: 'cart', key: 'ann', name: 'items', value: [] }]);
 * await store.close();
 * ```
 */
export class SqliteStore implements Store {
  private readonly db: Database.Database;
  private readonly stmts: WriteStatements;
  private readonly queries: Queries;
  private readonly durable: boolean;
  private readonly checkpointFrames: number;
  private readonly walPath: string;
  private walFd: number;

  private readonly begin: Database.Statement;
  private readonly commitTx: Database.Statement;
  private readonly rollbackTx: Database.Statement;
  private readonly savepoint: Database.Statement;
  private readonly release: Database.Statement;
  private readonly rollbackTo: Database.Statement;
  private readonly walFrames: Database.Statement;

  private queue: Waiter[] = [];
  private flushScheduled = false;
  private syncing = false;
  private closing?: Promise<void>;
  private failure?: StoreError;
  private idleWaiters: Array<() => void> = [];

  /** Counters for benchmarks and diagnostics. */
  readonly stats = { transactions: 0, writes: 0, ops: 0, syncs: 0, checkpoints: 0 };

  /** Use {@link openSqliteStore}. */
  constructor(
    readonly path: string,
    options: Omit<SqliteStoreOptions, 'path'> = {},
  ) {
    this.durable = (options.durability ?? 'fsync') === 'fsync';
    this.walPath = `${path}-wal`;
    fs.mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    this.db = db;
    try {
      // Migrations are rare: let SQLite make them durable itself.
      db.pragma('synchronous = FULL');
      retryWhileBusy(() => {
        // WAL mode is stored in the file; setting it again is a no-op.
        const mode = db.pragma('journal_mode = WAL', { simple: true });
        if (mode !== 'wal') throw new StoreError('store_failed', `cannot enable WAL mode on ${path} (got ${String(mode)})`);
        migrate(db, path);
      }, BUSY_TIMEOUT_MS);
      // See docs/durability.md: commits stay in the OS page cache (safe against kill -9) and we
      // fdatasync the WAL ourselves, off the event loop. Checkpoints switch back to FULL.
      db.pragma('synchronous = OFF');
      db.pragma('wal_autocheckpoint = 0');
      db.pragma('cache_size = -32768'); // 32 MiB
      db.pragma('temp_store = MEMORY');
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      this.checkpointFrames = Math.max(1, Math.floor((options.checkpointBytes ?? DEFAULT_CHECKPOINT_BYTES) / (pageSize + 24)));

      this.stmts = new WriteStatements(db);
      this.queries = new Queries(db);
      this.begin = db.prepare('BEGIN IMMEDIATE');
      this.commitTx = db.prepare('COMMIT');
      this.rollbackTx = db.prepare('ROLLBACK');
      this.savepoint = db.prepare('SAVEPOINT w');
      this.release = db.prepare('RELEASE w');
      this.rollbackTo = db.prepare('ROLLBACK TO w');
      // NOOP reports the WAL size without checkpointing (SQLite >= 3.51).
      this.walFrames = db.prepare('PRAGMA wal_checkpoint(NOOP)');

      // The migration transaction opened the WAL, so the file exists now. While this connection
      // is open no other connection deletes it (we hold a shared lock), so the fd stays valid.
      this.walFd = fs.openSync(this.walPath, 'r+');
      if (this.durable) syncDirectory(dirname(path));
    } catch (err) {
      db.close();
      throw err;
    }
  }

  write(ops: WriteOp[]): Promise<OpResult[]> {
    const refused = this.refusal();
    if (refused) return Promise.reject(refused);
    let prepared: PreparedOp[];
    try {
      prepared = ops.map(prepareOp);
    } catch (err) {
      return Promise.reject(asWriteError(err));
    }
    if (prepared.length === 0) return Promise.resolve([]);
    return new Promise<OpResult[]>((resolve, reject) => {
      this.queue.push({ ops: prepared, results: [], resolve, reject });
      this.schedule();
    });
  }

  async getInvocation(id: string): Promise<InvocationRow | undefined> {
    this.assertReadable();
    return this.queries.getInvocation(id);
  }

  async findByDedupe(dedupe: string): Promise<InvocationRow | undefined> {
    this.assertReadable();
    return this.queries.findByDedupe(dedupe);
  }

  async getJournal(id: string): Promise<Array<[number, JournalEntry]>> {
    this.assertReadable();
    return this.queries.getJournal(id);
  }

  async getState(service: string, key: string, name: string): Promise<unknown> {
    this.assertReadable();
    return this.queries.getState(service, key, name);
  }

  async getStateKeys(service: string, key: string): Promise<string[]> {
    this.assertReadable();
    return this.queries.getStateKeys(service, key);
  }

  async listRunnable(): Promise<InvocationRow[]> {
    this.assertReadable();
    return this.queries.listRunnable();
  }

  async listKeyHolders(): Promise<Array<Pick<InvocationRow, 'id' | 'service' | 'key' | 'status' | 'seq'>>> {
    this.assertReadable();
    return this.queries.listKeyHolders();
  }

  async dueTimers(before: number, limit: number): Promise<TimerRow[]> {
    this.assertReadable();
    return this.queries.dueTimers(before, limit);
  }

  async expired(now: number, limit: number): Promise<string[]> {
    this.assertReadable();
    return this.queries.expired(now, limit);
  }

  async listInvocations(filter: InvocationFilter): Promise<InvocationRow[]> {
    this.assertReadable();
    return this.queries.listInvocations(filter);
  }

  /**
   * Refuses new writes, waits until every accepted write is committed and durable, checkpoints
   * the WAL into the database file, and closes the file. Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      this.notifyIfIdle();
    });
    try {
      if (this.failure === undefined) this.checkpoint('TRUNCATE');
    } finally {
      fs.closeSync(this.walFd);
      this.db.close();
    }
  }

  private refusal(): StoreError | undefined {
    if (this.closing) return new StoreError('store_closed', `the store ${this.path} is closed; the write was not performed.`);
    return this.failure;
  }

  private assertReadable(): void {
    if (!this.db.open) throw new StoreError('store_closed', `the store ${this.path} is closed; open it again to read.`);
  }

  private schedule(): void {
    if (this.flushScheduled || this.syncing) return;
    this.flushScheduled = true;
    // setImmediate, not a microtask: every caller that runs in this turn of the event loop
    // (including continuations of the writes we just acknowledged) joins the batch.
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.syncing) return;
    const batch = this.queue;
    this.queue = [];
    const committed = batch.length > 0 ? this.commit(batch) : [];
    if (committed.length === 0 || !this.durable) {
      for (const w of committed) w.resolve(w.results);
      this.afterFlush();
      return;
    }
    this.syncing = true;
    this.stats.syncs++;
    // Resolves exactly the batch committed before this fdatasync started; calls queued
    // meanwhile wait for the next one.
    fs.fdatasync(this.walFd, (err) => {
      this.syncing = false;
      if (err) {
        this.fail(new StoreError('store_failed', `fdatasync of ${this.walPath} failed: ${err.message}`, err), committed);
      } else {
        for (const w of committed) w.resolve(w.results);
      }
      this.afterFlush();
    });
  };

  /**
   * Runs every call of the batch in one transaction. Each call gets a SAVEPOINT, so a failing
   * call is rolled back and rejected alone while the others commit. Returns the calls that
   * committed; the failed ones are already rejected.
   */
  private commit(batch: Waiter[]): Waiter[] {
    try {
      this.begin.run();
    } catch (err) {
      this.rejectAll(batch, new StoreError('store_failed', `cannot start a transaction on ${this.path}: ${msg(err)}`, err));
      return [];
    }
    const committed: Waiter[] = [];
    for (const w of batch) {
      this.savepoint.run();
      try {
        for (const op of w.ops) w.results.push(op(this.stmts));
        this.release.run();
        committed.push(w);
      } catch (err) {
        if (!this.db.inTransaction) {
          // Some errors (I/O, disk full) make SQLite roll back the whole transaction.
          this.rejectAll(batch, new StoreError('store_failed', `a write on ${this.path} failed: ${msg(err)}`, err));
          return [];
        }
        this.rollbackTo.run();
        this.release.run();
        w.reject(asWriteError(err));
      }
    }
    try {
      this.commitTx.run();
    } catch (err) {
      if (this.db.inTransaction) this.rollbackTx.run();
      this.rejectAll(committed, new StoreError('store_failed', `commit on ${this.path} failed: ${msg(err)}`, err));
      return [];
    }
    this.stats.transactions++;
    this.stats.writes += committed.length;
    for (const w of committed) this.stats.ops += w.ops.length;
    return committed;
  }

  private afterFlush(): void {
    try {
      this.maybeCheckpoint();
    } catch (err) {
      // Another process holding a lock only delays the checkpoint; anything else is an I/O failure.
      if (!isBusy(err)) this.fail(new StoreError('store_failed', `checkpoint of ${this.path} failed: ${msg(err)}`, err), []);
    }
    if (this.queue.length > 0) this.schedule();
    else this.notifyIfIdle();
  }

  private maybeCheckpoint(): void {
    const [status] = this.walFrames.all() as Array<{ log: number }>;
    if (status !== undefined && status.log >= this.checkpointFrames) this.checkpoint('RESTART');
  }

  /**
   * Copies the WAL into the database file, then lets the next commit reuse the WAL from its
   * start. Runs only between flushes, never inside a transaction.
   *
   * Why synchronous=FULL here: SQLite skips every fsync when synchronous=OFF, checkpoints
   * included. A checkpoint that writes pages into the database file without syncing it, then
   * lets the WAL be overwritten, can lose those pages on power loss and corrupt the file. With
   * FULL, SQLite syncs the WAL, copies, syncs the database file, and only then records the WAL
   * as checkpointed (the WAL is reused only after that record), so every committed page is
   * always on disk in the WAL or in the database file.
   *
   * RESTART (not TRUNCATE) keeps the WAL file's size: overwriting allocated blocks makes our
   * fdatasync cheaper than appending, which must also commit the file's new size.
   */
  private checkpoint(mode: 'RESTART' | 'TRUNCATE'): void {
    this.db.pragma('synchronous = FULL');
    // Never wait for readers of other processes here: it would block the event loop. A busy
    // checkpoint still copies what it can; the next one finishes the job.
    this.db.pragma('busy_timeout = 0');
    try {
      this.db.pragma(`wal_checkpoint(${mode})`);
      this.stats.checkpoints++;
    } finally {
      this.db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
      this.db.pragma('synchronous = OFF');
    }
  }

  private notifyIfIdle(): void {
    if (this.queue.length > 0 || this.syncing || this.flushScheduled) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /**
   * After a failed fdatasync the page cache may have dropped the dirty pages (Linux marks them
   * clean), so nothing written since can be trusted to reach disk: refuse all further writes.
   */
  private fail(err: StoreError, committed: Waiter[]): void {
    this.failure ??= err;
    this.rejectAll(committed, err);
    const queued = this.queue;
    this.queue = [];
    this.rejectAll(queued, err);
  }

  private rejectAll(waiters: Waiter[], err: StoreError): void {
    for (const w of waiters) w.reject(err);
  }
}

/**
 * Opens (creating if needed) a SQLite store and migrates its schema.
 *
 * @throws StoreError `schema_too_new` if the file was migrated by a newer Keel.
 * @example
 * ```ts
 * import { openSqliteStore } from 'keel/sqlite';
 * const store = openSqliteStore({ path: '.keel/keel.db', durability: 'fsync' });
 * ```
 */
export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const p = options.path;
  if (!p || p === ':memory:' || p.startsWith('file:')) {
    throw new UsageError(
      `openSqliteStore needs the path of a database file, got "${p}". In-memory databases are not durable; ` +
        'use a file (tests can use a file in os.tmpdir()).',
    );
  }
  return new SqliteStore(nodePath.resolve(p), options);
}

function dirname(p: string): string {
  return nodePath.dirname(nodePath.resolve(p));
}

/** Makes the names of the new database and WAL files durable (a new file's directory entry is not covered by fsync of the file). */
function syncDirectory(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some platforms (Windows) cannot open or fsync a directory; they persist names on their own.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function asWriteError(err: unknown): StoreError {
  if (err instanceof StoreError) return err;
  return new StoreError('write_failed', `the write failed and none of its operations were applied: ${msg(err)}`, err);
}

function msg(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
