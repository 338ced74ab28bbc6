import pg from 'pg';
import type { JournalEntry } from '../../core/journal.js';
import { UsageError } from '../../core/errors.js';
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
import { type PreparedCall, encodeCall } from './codec.js';
import { asStoreError, isBrokenConnection, msg } from './errors.js';
import {
  type GroupCommitStats,
  DEFAULT_PIPELINE,
  GroupCommit,
  MAX_PIPELINE,
  orderingDomains,
} from './group-commit.js';
import { Listener } from './listener.js';
import { migrate, quoteSchema } from './migrations.js';
import { Queries } from './queries.js';
import {
  type PayloadLimits,
  type PayloadOptions,
  LargePayload,
  payloadLimits,
} from '../payloads.js';
import { admitQueued, queueStats } from './queues.js';
import { MetricsQueries } from './metrics-queries.js';
import type { ActiveCounts, CommitObserver, KeyQueueDepth } from '../observe.js';

/**
 * Options of {@link openPostgresStore}. `largePayloadThreshold` and `maxPayloadBytes`: see
 * docs/payloads.md.
 */
export interface PostgresStoreOptions extends PayloadOptions {
  /** A connection string, e.g. `postgres://user:password@host:5432/db`. */
  url: string;
  /**
   * The schema holding Keel's tables, created if missing. Default `keel`. Lower-case letters,
   * digits and underscores. Several Keel applications can share a database with one schema each.
   */
  schema?: string;
  /**
   * Connections in the pool. Default 10. Writes use up to `pipeline` of them at a time (see
   * {@link GroupCommit}); the others serve reads.
   */
  poolSize?: number;
  /**
   * Write batches in flight at once, each one transaction on its own pooled connection
   * (`KEEL_PG_PIPELINE` in an app). Default 1: one batch at a time, writes queued
   * meanwhile form the next batch. More overlaps the round trip and WAL flush of one batch with
   * the next; writes that touch the same invocation, object key or key-value entry still commit
   * in the order they were made (see {@link GroupCommit}). A whole number from 1 to 32, at most
   * `poolSize`.
   */
  pipeline?: number;
  /** How long to wait for a new connection before failing with `store_unavailable`. Default 10 s. */
  connectTimeoutMs?: number;
  /** Shown in `pg_stat_activity.application_name`. Default `keel`. */
  applicationName?: string;
}

const DEFAULT_POOL_SIZE = 10;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const INT8_OID = 20;

/**
 * bigint columns (times, seq) as JS numbers. Epoch milliseconds and sequence numbers stay far
 * below 2^53. Set on this store's pool only, not globally in node-postgres.
 */
const types: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === INT8_OID && format !== 'binary'
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format as 'text')) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * The scale-out Store: tables in one schema of a PostgreSQL database, written through group
 * commit (see {@link GroupCommit}): queued `write()` calls go together into a batch, one
 * statement, one transaction and one WAL flush, with up to `pipeline` batches in flight at once
 * (writes that touch the same invocation, key or entry stay in the order they were made).
 *
 * A `write()` resolves once PostgreSQL has committed it, which, with the server's default
 * `synchronous_commit = on`, means flushed to its WAL on disk (see docs/postgres.md).
 *
 * Reads are prepared queries on a connection pool and see every committed write.
 *
 * Several processes can share a schema (`shared` is true). They send each other messages with
 * `notify` ops, delivered through PostgreSQL's LISTEN/NOTIFY when the write commits (see
 * {@link PostgresStore.listen}).
 *
 * @example
 * ```ts
 * const store = await openPostgresStore({ url: 'postgres://postgres@127.0.0.1:5432/app' });
 * await store.write([{ op: 'state.set', service: 'cart', key: 'ann', name: 'items', value: [] }]);
 * await store.close();
 * ```
 */
export class PostgresStore implements Store {
  readonly shared = true;
  private readonly queries: Queries;
  private readonly commits: GroupCommit;
  private readonly listeners = new Set<Listener>();
  private readonly quoted: string;
  private closing?: Promise<void>;
  /** The process whose registration writes depend on (see {@link PostgresStore.fenceWrites}). */
  private fencedTo: string | null = null;
  private onFenced: (processId: string) => void = () => {};

  /** Use {@link openPostgresStore}, which also migrates the schema. */
  constructor(
    private readonly pool: pg.Pool,
    /** The schema holding the tables. */
    readonly schema: string,
    private readonly limits: PayloadLimits = payloadLimits(),
    /** Write batches in flight at once (see {@link PostgresStoreOptions.pipeline}). */
    pipeline = DEFAULT_PIPELINE,
  ) {
    const s = quoteSchema(schema);
    this.quoted = s;
    this.queries = new Queries(pool, s, 'keel_');
    this.commits = new GroupCommit(pool, s, 'keel_apply4', (id) => this.onFenced(id), pipeline);
  }

  /** Counters for benchmarks and diagnostics. */
  get stats(): Readonly<GroupCommitStats> {
    return this.commits.stats;
  }

  write(ops: WriteOp[]): Promise<OpResult[]> {
    if (this.closing) return Promise.reject(this.closedError('write'));
    const first = ops[0];
    if (first?.op === 'queue.admit') {
      if (ops.length > 1)
        return Promise.reject(
          new StoreError(
            'write_failed',
            'queue.admit must be the only op of its write() call; none of the write was applied.',
          ),
        );
      const { op: _op, ...req } = first;
      return admitQueued(this.pool, this.quoted, req, (id) => this.onFenced(id)).then((r) => [r]);
    }
    let call: PreparedCall;
    try {
      call = encodeCall(ops, this.limits);
    } catch (err) {
      return Promise.reject(
        err instanceof StoreError
          ? err
          : new StoreError(
              'write_failed',
              `the write failed and none of its operations were applied: ${msg(err)}`,
              err,
            ),
      );
    }
    if (ops.length === 0) return Promise.resolve([]);
    // A registration is what later writes are checked against: it is not checked itself.
    const registers = ops.some((op) => op.op === 'process.register');
    return this.commits
      .add(call, registers ? null : this.fencedTo, orderingDomains(ops))
      .then((results) => this.withPayloads(results));
  }

  /**
   * The results of a write with the out-of-line input and output of the rows they hold (a
   * dedupe conflict's `existing`, a key hand-off's `next`) read: `apply` answers with the rows'
   * markers (see migration 13). Rare; every other result passes through as it is.
   */
  private async withPayloads(results: OpResult[]): Promise<OpResult[]> {
    for (const r of results) {
      const row =
        r !== undefined && 'existing' in r
          ? r.existing
          : r !== undefined && 'next' in r
            ? r.next
            : undefined;
      if (row === undefined) continue;
      if (!(row.input instanceof LargePayload) && !(row.output instanceof LargePayload)) continue;
      const read = await this.read('a written row', () => this.queries.payloads(row.id));
      if (row.input instanceof LargePayload && read.input !== undefined) row.input = read.input;
      if (row.output instanceof LargePayload && read.output !== undefined) row.output = read.output;
    }
    return results;
  }

  async queueStats(queue: string): Promise<QueueStats> {
    return this.read('queue stats', () => queueStats(this.pool, this.quoted, queue));
  }

  /**
   * Ties every later write to process `processId`'s registration: `apply` checks, in the same
   * statement, that the process is still registered and refuses the whole batch if not
   * (`process_fenced`, and `onFenced` is called), so a process that was presumed dead and
   * reaped cannot commit anything under its old id (see migration 6). Writes queued before the
   * call keep the process they were queued for.
   */
  fenceWrites(processId: string, onFenced: (processId: string) => void): void {
    this.fencedTo = processId;
    this.onFenced = onFenced;
  }

  /**
   * Subscribes to the messages for process `processId` and to broadcasts, on a connection of its
   * own (not from the pool) that LISTENs on the schema's two channels. Resolves once listening
   * (rejects with `store_unavailable` if PostgreSQL cannot be reached); a message sent by a
   * write that commits after that is delivered.
   *
   * If the connection drops, it reconnects with backoff and listens again; messages sent
   * meanwhile are lost (NOTIFY only reaches sessions listening when it commits), so a receiver
   * must also find its work by reading the store. Identical messages sent in one transaction
   * (one batch of the group commit) arrive once. The returned function ends the subscription.
   */
  async listen(
    processId: string,
    onMessage: (message: ClusterMessage) => void,
  ): Promise<() => Promise<void>> {
    if (this.closing) throw this.closedError('listen');
    const config = {
      ...this.pool.options,
      // Tells the LISTEN connections apart in pg_stat_activity.
      application_name: `${this.pool.options.application_name ?? 'keel'}/listen`,
    };
    const listener = new Listener(config, this.quoted, processId, onMessage);
    try {
      await listener.start();
    } catch (err) {
      throw asStoreError(err, `listening on PostgreSQL schema "${this.schema}"`);
    }
    if (this.closing) {
      await listener.stop();
      throw this.closedError('listen');
    }
    this.listeners.add(listener);
    return async () => {
      this.listeners.delete(listener);
      await listener.stop();
    };
  }

  getInvocation(id: string): Promise<InvocationRow | undefined> {
    return this.read('getInvocation', () => this.queries.getInvocation(id));
  }

  findByDedupe(dedupe: string): Promise<InvocationRow | undefined> {
    return this.read('findByDedupe', () => this.queries.findByDedupe(dedupe));
  }

  getJournal(id: string): Promise<Array<[number, JournalEntry]>> {
    return this.read('getJournal', () => this.queries.getJournal(id));
  }

  getState(service: string, key: string, name: string): Promise<unknown> {
    return this.read('getState', () => this.queries.getState(service, key, name));
  }

  getStateKeys(service: string, key: string): Promise<string[]> {
    return this.read('getStateKeys', () => this.queries.getStateKeys(service, key));
  }

  listStateKeys(service: string, options?: { after?: string; limit?: number }): Promise<string[]> {
    return this.read('listStateKeys', () => this.queries.listStateKeys(service, options));
  }

  listRunnable(owner?: string): Promise<InvocationRow[]> {
    return this.read('listRunnable', () => this.queries.listRunnable(owner));
  }

  listKeyHolders(): Promise<
    Array<Pick<InvocationRow, 'id' | 'service' | 'key' | 'status' | 'seq'>>
  > {
    return this.read('listKeyHolders', () => this.queries.listKeyHolders());
  }

  dueTimers(before: number, limit: number, owner?: string): Promise<TimerRow[]> {
    return this.read('dueTimers', () => this.queries.dueTimers(before, limit, owner));
  }

  expired(now: number, limit: number): Promise<string[]> {
    return this.read('expired', () => this.queries.expired(now, limit));
  }

  listInvocations(filter: InvocationFilter): Promise<InvocationRow[]> {
    return this.read('listInvocations', () => this.queries.listInvocations(filter));
  }

  observeCommits(observer: CommitObserver | undefined): void {
    this.commits.observer = observer;
  }

  countActive(): Promise<ActiveCounts> {
    return this.read('countActive', () => this.metricsQueries().countActive());
  }

  keyQueueDepths(limit: number): Promise<KeyQueueDepth[]> {
    return this.read('keyQueueDepths', () => this.metricsQueries().keyQueueDepths(limit));
  }

  private metricsQueriesOnce: MetricsQueries | undefined;
  private metricsQueries(): MetricsQueries {
    return (this.metricsQueriesOnce ??= new MetricsQueries(this.pool, this.quoted, 'keel_'));
  }

  getPromise(service: string, key: string, name: string): Promise<PromiseRow | undefined> {
    return this.read('getPromise', () => this.queries.getPromise(service, key, name));
  }

  getKv(scope: string, key: string): Promise<KvRow | undefined> {
    return this.read('getKv', () => this.queries.getKv(scope, key));
  }

  listKv(
    scope: string,
    options?: { prefix?: string; after?: string; limit?: number },
  ): Promise<Array<KvRow & { key: string }>> {
    return this.read('listKv', () => this.queries.listKv(scope, options));
  }

  /**
   * Refuses new writes and reads, waits until every accepted write is committed (or rejected),
   * and closes the pool. Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const listeners = [...this.listeners];
    this.listeners.clear();
    try {
      await Promise.all(listeners.map((l) => l.stop()));
      await this.commits.drain();
    } finally {
      await this.pool.end();
    }
  }

  /**
   * Runs a read, again on another connection when its connection turned out to be broken: a
   * pooled connection whose backend was terminated (a server restart, a failover) only notices
   * when it is next used, and a read is safe to repeat.
   */
  private async read<T>(what: string, run: () => Promise<T>): Promise<T> {
    if (this.closing) throw this.closedError(what);
    // Each failed attempt discards its connection, so after a restart of the server every
    // pooled connection may fail once: one more attempt than the pool has connections.
    for (let attempt = 0; ; attempt++) {
      try {
        return await run();
      } catch (err) {
        if (!isBrokenConnection(err) || attempt >= this.pool.options.max || this.closing)
          throw asStoreError(err, `${what} on PostgreSQL schema "${this.schema}"`);
      }
    }
  }

  private closedError(what: string): StoreError {
    return new StoreError(
      'store_closed',
      `the PostgreSQL store (schema "${this.schema}") is closed; the ${what} was not performed.`,
    );
  }
}

/**
 * Connects to PostgreSQL, creates the schema if missing and brings it to the current version
 * (safe when several processes start at once), and returns the store.
 *
 * Rejects with a StoreError: `schema_too_new` when a newer Keel migrated the schema,
 * `store_unavailable` when the server cannot be reached; and with a UsageError for an invalid
 * schema name.
 *
 * @example
 * ```ts
 * const store = await openPostgresStore({
 *   url: process.env.KEEL_DATABASE_URL!,
 *   schema: 'orders',
 *   poolSize: 20,
 * });
 * ```
 */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<PostgresStore> {
  const schema = options.schema ?? 'keel';
  quoteSchema(schema);
  const limits = payloadLimits(options);
  const poolSize = options.poolSize ?? DEFAULT_POOL_SIZE;
  const pipeline = options.pipeline ?? Math.min(DEFAULT_PIPELINE, poolSize);
  if (!Number.isInteger(pipeline) || pipeline < 1 || pipeline > Math.min(MAX_PIPELINE, poolSize))
    throw new UsageError(
      `invalid PostgreSQL store option pipeline=${String(pipeline)}: use a whole number from 1 to ` +
        `${Math.min(MAX_PIPELINE, poolSize)} (at most 32 and at most poolSize, ${poolSize}).`,
    );
  const pool = new pg.Pool({
    connectionString: options.url,
    max: poolSize,
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    application_name: options.applicationName ?? 'keel',
    keepAlive: true,
    types,
  });
  // A connection that breaks while idle in the pool (a server restart, pg_terminate_backend)
  // emits 'error' on the pool; the pool drops it and connects anew when needed. Without a
  // listener the error would crash the process.
  pool.on('error', () => {});
  // The same for a connection that breaks while checked out: the query in flight rejects.
  pool.on('connect', (client) => client.on('error', () => {}));
  try {
    await migrate(pool, schema);
  } catch (err) {
    await pool.end().catch(() => {});
    throw asStoreError(err, `opening the PostgreSQL schema "${schema}"`);
  }
  return new PostgresStore(pool, schema, limits, pipeline);
}
