import fs from 'node:fs';
import nodePath from 'node:path';
import Database from 'better-sqlite3';
import { UsageError } from '../../core/errors.js';
import type { JournalEntry } from '../../core/journal.js';
import { StoreError } from '../errors.js';
import type {
  ClusterMessage,
  InvocationFilter,
  InvocationRow,
  KvRow,
  OpResult,
  PromiseRow,
  QueueStats,
  Store,
  TimerRow,
  WriteOp,
} from '../types.js';
import { retryWhileBusy } from './busy.js';
import { type GroupCommitStats, GroupCommit, asWriteError } from './group-commit.js';
import { migrate } from './migrations.js';
import { type Notice, type PreparedOp, WriteStatements, prepareOp } from './ops.js';
import { Queries } from './queries.js';
import { type PayloadLimits, type PayloadOptions, payloadLimits } from '../payloads.js';
import { QueueStatements } from './queue-ops.js';
import { MetricsQueries } from './metrics-queries.js';
import type { ActiveCounts, CommitObserver, KeyQueueDepth } from '../observe.js';

/**
 * Options of {@link openSqliteStore}. `largePayloadThreshold` and `maxPayloadBytes`: see
 * docs/payloads.md.
 */
export interface SqliteStoreOptions extends PayloadOptions {
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

const DEFAULT_CHECKPOINT_BYTES = 16 * 1024 * 1024;
const BUSY_TIMEOUT_MS = 5000;

/**
 * The embedded Store: one SQLite file in WAL mode, written through group commit.
 *
 * `write()` never touches SQLite directly. Calls queue up, and one flush runs every queued call
 * in a single transaction (a failing call is rolled back and rejected alone). The connection runs
 * with `synchronous=OFF`, so a commit costs a few system calls into the page cache; durability
 * comes from our own asynchronous `fdatasync` of the WAL on the libuv threadpool, and
 * checkpoints run on a worker thread, so the event loop never waits for the disk. While an
 * fdatasync is in flight new calls keep queueing and the next flush commits all of them at
 * once: the busier the store, the larger the batches. See {@link GroupCommit} and
 * docs/durability.md for what survives which crash.
 *
 * Reads run synchronously on the same connection and see committed data, including commits
 * whose fdatasync has not finished yet.
 *
 * The store is not shared (`shared` is false): one process owns it. Messages sent with `notify`
 * ops (and the wakes of `journal.complete` / `promise.complete` with `notifyFrom`) are delivered
 * only to the listeners of this instance ({@link SqliteStore.listen}), in a microtask after the
 * write resolves; never to other instances or processes on the same file.
 *
 * @example
 * ```ts
 * const store = openSqliteStore({ path: '.keel/keel.db' });
 * await store.write([{ op: 'state.set', service: 'cart', key: 'ann', name: 'items', value: [] }]);
 * await store.close();
 * ```
 */
export class SqliteStore implements Store {
  readonly shared = false;
  private readonly db: Database.Database;
  private readonly listeners = new Set<{
    processId: string;
    onMessage: (message: ClusterMessage) => void;
  }>();
  private readonly queries: Queries;
  private metricsQueries: MetricsQueries | undefined;
  private readonly commits: GroupCommit;
  private closing?: Promise<void>;
  private readonly limits: PayloadLimits;
  private queueReads?: QueueStatements;

  /** Use {@link openSqliteStore}. */
  constructor(
    readonly path: string,
    options: Omit<SqliteStoreOptions, 'path'> = {},
  ) {
    if (!path || path === ':memory:' || path.startsWith('file:')) {
      throw new UsageError(
        `a SQLite store needs the path of a database file, got "${path}". In-memory databases are not durable; ` +
          'use a file (tests can use a file in os.tmpdir()).',
      );
    }
    this.limits = payloadLimits(options);
    fs.mkdirSync(nodePath.dirname(path), { recursive: true });
    const db = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    this.db = db;
    try {
      // Migrations are rare: let SQLite make them durable itself.
      db.pragma('synchronous = FULL');
      retryWhileBusy(() => {
        // WAL mode is stored in the file; setting it again is a no-op.
        const mode = db.pragma('journal_mode = WAL', { simple: true });
        if (mode !== 'wal')
          throw new StoreError(
            'store_failed',
            `cannot enable WAL mode on ${path} (got ${String(mode)})`,
          );
        // Also opens (creates) the WAL file, which GroupCommit needs.
        migrate(db, path);
      }, BUSY_TIMEOUT_MS);
      // See docs/durability.md: commits stay in the OS page cache (safe against kill -9) and
      // GroupCommit fdatasyncs the WAL itself, off the event loop, and runs the checkpoints.
      db.pragma('synchronous = OFF');
      db.pragma('wal_autocheckpoint = 0');
      db.pragma('cache_size = -32768'); // 32 MiB
      db.pragma('temp_store = MEMORY');
      const pageSize = db.pragma('page_size', { simple: true }) as number;
      const durable = (options.durability ?? 'fsync') === 'fsync';
      this.queries = new Queries(db);
      this.commits = new GroupCommit({
        db,
        stmts: new WriteStatements(db),
        path,
        durable,
        pageSize,
        checkpointFrames: Math.max(
          1,
          Math.floor((options.checkpointBytes ?? DEFAULT_CHECKPOINT_BYTES) / (pageSize + 24)),
        ),
        busyTimeoutMs: BUSY_TIMEOUT_MS,
        deliver: (notices) => this.deliver(notices),
      });
      if (durable) syncDirectory(nodePath.dirname(path));
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /** Counters for benchmarks and diagnostics. */
  get stats(): Readonly<GroupCommitStats> {
    return this.commits.stats;
  }

  write(ops: WriteOp[]): Promise<OpResult[]> {
    if (this.closing) {
      return Promise.reject(
        new StoreError(
          'store_closed',
          `the store ${this.path} is closed; the write was not performed.`,
        ),
      );
    }
    if (ops.length > 1 && ops.some((op) => op.op === 'queue.admit'))
      return Promise.reject(
        new StoreError(
          'write_failed',
          'queue.admit must be the only op of its write() call; none of the write was applied.',
        ),
      );
    let prepared: PreparedOp[];
    try {
      prepared = ops.map((op) => prepareOp(op, this.limits));
    } catch (err) {
      return Promise.reject(asWriteError(err));
    }
    if (prepared.length === 0)
      return this.commits.failed ? Promise.reject(this.commits.failed) : Promise.resolve([]);
    return this.commits.add(prepared);
  }

  /**
   * Delivers the messages of this instance's writes addressed to `processId` (or to every
   * process) to `onMessage`, until the returned function is called. In-process only: a SQLite
   * store is owned by one process, so this is what lets the engine's messaging run (and be
   * tested) on SQLite too.
   */
  async listen(
    processId: string,
    onMessage: (message: ClusterMessage) => void,
  ): Promise<() => Promise<void>> {
    this.assertReadable();
    const listener = { processId, onMessage };
    this.listeners.add(listener);
    return async () => {
      this.listeners.delete(listener);
    };
  }

  /** Delivers the messages of one resolved call, each identical message once. */
  private deliver(notices: Notice[]): void {
    if (this.listeners.size === 0) return;
    const seen = new Set<string>();
    const unique = notices.filter((n) => {
      const k = `${n.to ?? ''}\0${JSON.stringify(n.message)}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
    // After the writer's continuation, as a message from another process arrives later too;
    // the listeners then are the ones subscribed at delivery time.
    queueMicrotask(() => {
      for (const n of unique) {
        for (const l of [...this.listeners]) {
          if (n.to !== undefined && n.to !== l.processId) continue;
          try {
            l.onMessage(n.message);
          } catch {
            // A listener's failure is its own; the others still get the message.
          }
        }
      }
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

  async listStateKeys(
    service: string,
    options?: { after?: string; limit?: number },
  ): Promise<string[]> {
    this.assertReadable();
    return this.queries.listStateKeys(service, options);
  }

  async listRunnable(owner?: string): Promise<InvocationRow[]> {
    this.assertReadable();
    return this.queries.listRunnable(owner);
  }

  async listKeyHolders(): Promise<
    Array<Pick<InvocationRow, 'id' | 'service' | 'key' | 'status' | 'seq'>>
  > {
    this.assertReadable();
    return this.queries.listKeyHolders();
  }

  async dueTimers(before: number, limit: number, owner?: string): Promise<TimerRow[]> {
    this.assertReadable();
    return this.queries.dueTimers(before, limit, owner);
  }

  async expired(now: number, limit: number): Promise<string[]> {
    this.assertReadable();
    return this.queries.expired(now, limit);
  }

  async listInvocations(filter: InvocationFilter): Promise<InvocationRow[]> {
    this.assertReadable();
    return this.queries.listInvocations(filter);
  }

  observeCommits(observer: CommitObserver | undefined): void {
    this.commits.observer = observer;
  }

  async countActive(): Promise<ActiveCounts> {
    this.assertReadable();
    return (this.metricsQueries ??= new MetricsQueries(this.db)).countActive();
  }

  async keyQueueDepths(limit: number): Promise<KeyQueueDepth[]> {
    this.assertReadable();
    return (this.metricsQueries ??= new MetricsQueries(this.db)).keyQueueDepths(limit);
  }

  async getPromise(service: string, key: string, name: string): Promise<PromiseRow | undefined> {
    this.assertReadable();
    return this.queries.getPromise(service, key, name);
  }

  async getKv(scope: string, key: string): Promise<KvRow | undefined> {
    this.assertReadable();
    return this.queries.getKv(scope, key);
  }

  async listKv(
    scope: string,
    options?: { prefix?: string; after?: string; limit?: number },
  ): Promise<Array<KvRow & { key: string }>> {
    this.assertReadable();
    return this.queries.listKv(scope, options);
  }

  async queueStats(queue: string): Promise<QueueStats> {
    this.assertReadable();
    return (this.queueReads ??= new QueueStatements(this.db)).statsOf(queue);
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
    this.listeners.clear();
    try {
      await this.commits.drain();
    } finally {
      this.db.close();
    }
  }

  private assertReadable(): void {
    if (!this.db.open)
      throw new StoreError(
        'store_closed',
        `the store ${this.path} is closed; open it again to read.`,
      );
  }
}

/**
 * Opens (creating if needed) a SQLite store and migrates its schema.
 *
 * @throws StoreError `schema_too_new` if the file was migrated by a newer Keel; UsageError for
 *   `:memory:` or an empty path.
 * @example
 * ```ts
 * import { openSqliteStore } from 'keel/sqlite';
 * const store = openSqliteStore({ path: '.keel/keel.db', durability: 'fsync' });
 * ```
 */
export function openSqliteStore(options: SqliteStoreOptions): SqliteStore {
  const { path, ...rest } = options;
  return new SqliteStore(
    path && path !== ':memory:' && !path.startsWith('file:') ? nodePath.resolve(path) : path,
    rest,
  );
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
