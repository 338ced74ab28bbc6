/**
 * One open database: the adapter's client behind Keel's errors, with the health state that
 * status pages and active health checks read. Its methods are plain (not journaled): handlers
 * go through `use(ctx, db)`, which runs them inside journaled steps.
 */
import { KeelError } from '../core/errors.js';
import type { Logger } from '../core/context.js';
import { redactUrl } from './declare.js';
import type { Classified, DatabaseClient, OnceMarker, ResolvedDatabase } from './adapter.js';
import { DatabaseQueryError, DatabaseUnavailableError } from './errors.js';
import type {
  Database,
  DatabaseStatus,
  DatabaseType,
  QueryResult,
  RedisTransaction,
  SqlTransaction,
} from './types.js';

/** How long `ping()` waits for an answer before calling the database down. */
const PING_TIMEOUT_MS = 5_000;

export type LogFn = (
  level: keyof Logger,
  message: string,
  fields?: Record<string, unknown>,
) => void;

/**
 * A declared database, open. Outside handlers (tests, scripts, health checks) its methods can be
 * called directly; they are not journaled.
 *
 * @example
 * ```ts
 * for (const db of databasesOf(engine)) {
 *   await db.ping().then(() => console.log(db.name, 'up'), (err) => console.log(db.name, err.message));
 * }
 * ```
 */
export class DatabaseConnection {
  readonly name: string;
  readonly type: DatabaseType;
  /** How often active health checks should call {@link ping} (ms). */
  readonly healthCheckIntervalMs: number;
  private state: DatabaseStatus['state'] = 'unknown';
  private since = new Date();
  private lastError: string | undefined;
  private lastCheckAt: Date | undefined;
  private lossLogged = false;
  private readonly password: string;

  constructor(
    readonly database: Database,
    private readonly resolved: ResolvedDatabase,
    private readonly client: DatabaseClient,
    healthCheckIntervalMs: number,
    private readonly log: LogFn,
  ) {
    this.name = database.name;
    this.type = database.type;
    this.healthCheckIntervalMs = healthCheckIntervalMs;
    this.password = safePassword(resolved.url);
  }

  /**
   * Runs one SQL statement (PostgreSQL `$1` placeholders, MySQL `?`), not journaled.
   *
   * @example
   * ```ts
   * const { rows } = await databasesOf(engine).find((d) => d.name === 'orders')!.query('SELECT 1 AS one');
   * ```
   */
  async query(sql: string, params: readonly unknown[] = []): Promise<QueryResult> {
    const query = this.client.query?.bind(this.client);
    if (query === undefined) throw this.misuse('query()', "command('GET', key)");
    return this.track(() => query(sql, params));
  }

  /**
   * Runs `fn` in one transaction (SQL: commit or rollback; Redis: MULTI/EXEC), not journaled.
   * `once` makes it exactly-once by the marker's key (see `TransactionOptions.once`).
   *
   * @example
   * ```ts
   * await conn.transaction(async (tx) => { await (tx as SqlTransaction).query('DELETE FROM carts'); });
   * ```
   */
  async transaction(
    fn: (tx: SqlTransaction | RedisTransaction) => unknown,
    once?: OnceMarker,
  ): Promise<unknown> {
    const transaction = this.client.transaction?.bind(this.client);
    if (transaction === undefined) throw this.misuse('transaction()', 'query()');
    if (once !== undefined && this.type === 'redis')
      throw this.misuse('transaction(fn, { once: true })', 'transaction(fn) (MULTI/EXEC)');
    const wrapped = async (tx: unknown): Promise<unknown> => {
      if (this.type === 'redis') return fn(tx as RedisTransaction);
      // Inside the callback too, a failed statement is a Keel error the callback can catch.
      const sqlTx = tx as SqlTransaction;
      return fn({
        query: (sql, params) =>
          sqlTx.query(sql, params).catch((err: unknown) => {
            throw this.wrap(err);
          }) as never,
      });
    };
    return this.track(() => transaction(wrapped, once));
  }

  /**
   * Runs one Redis command, not journaled.
   *
   * @example
   * ```ts
   * await cache.command('SET', 'greeting', 'hello', 'EX', 60);
   * ```
   */
  async command(name: string, args: readonly unknown[] = []): Promise<unknown> {
    const command = this.client.command?.bind(this.client);
    if (command === undefined) throw this.misuse(`command('${name}')`, 'query(sql, params)');
    return this.track(() => command(name, args));
  }

  /**
   * Resolves when the database answers (`SELECT 1`, `PING`) within 5 s; otherwise throws a
   * `DatabaseUnavailableError` and the status turns `down`. Active health checks call it on
   * {@link healthCheckIntervalMs}.
   *
   * @example
   * ```ts
   * await conn.ping(); // throws when unhealthy
   * ```
   */
  async ping(): Promise<void> {
    this.lastCheckAt = new Date();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new DatabaseUnavailableError(
              this.name,
              'database_timeout',
              `no answer to a ping within ${PING_TIMEOUT_MS} ms`,
            ),
          ),
        PING_TIMEOUT_MS,
      );
      timer.unref();
    });
    try {
      await this.track(() => Promise.race([this.client.ping(), timeout]));
    } catch (err) {
      // A refusal of the ping itself (bad password, unknown database) is unhealthy too.
      if (this.state !== 'down' && this.state !== 'closed') this.markDown(err);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The database's health as last seen, and its pool.
   *
   * @example
   * ```ts
   * conn.status(); // { name: 'orders', type: 'postgres', state: 'up', url: 'postgres://app:***@db/orders', ... }
   * ```
   */
  status(): DatabaseStatus {
    return {
      name: this.name,
      type: this.type,
      url: redactUrl(this.resolved.url),
      state: this.state,
      since: this.since.toISOString(),
      ...(this.state === 'down' && this.lastError !== undefined
        ? { lastError: this.lastError }
        : {}),
      ...(this.lastCheckAt ? { lastCheckAt: this.lastCheckAt.toISOString() } : {}),
      healthCheckIntervalMs: this.healthCheckIntervalMs,
      pool: this.state === 'closed' ? { total: 0, idle: 0, waiting: 0 } : this.client.pool(),
    };
  }

  /** Closes the pool; later calls fail. */
  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.setState('closed');
    await this.client.close();
  }

  /** A pooled connection broke outside any request (the server killed an idle one). */
  connectionLost(err: unknown): void {
    // Logged once until the next success: a server that stays down makes the driver report
    // every reconnect attempt.
    if (this.lossLogged) return;
    this.lossLogged = true;
    this.log(
      'warn',
      `database ${this.name}: a pooled connection was lost; the pool opens a new one when needed`,
      {
        database: this.name,
        error: this.scrub(errorText(err)),
      },
    );
  }

  private async track<T>(op: () => Promise<T>): Promise<T> {
    if (this.state === 'closed')
      throw new DatabaseUnavailableError(
        this.name,
        'database_unavailable',
        'the connection pool is closed (the engine stopped)',
      );
    try {
      const value = await op();
      if (this.state !== 'up') this.setState('up');
      this.lossLogged = false;
      return value;
    } catch (err) {
      const wrapped = this.wrap(err);
      if (wrapped instanceof DatabaseUnavailableError && wrapped.code === 'database_unavailable')
        this.markDown(wrapped);
      else if (wrapped instanceof DatabaseQueryError && this.state !== 'up') this.setState('up'); // it answered
      throw wrapped;
    }
  }

  /** A driver error as Keel's: retryable connection trouble or a terminal refusal; others unchanged. */
  wrap(err: unknown): unknown {
    if (err instanceof KeelError) return err;
    const c: Classified | undefined = this.client.classify(err);
    if (c === undefined) return err;
    const message = this.scrub(c.message);
    return c.retryable
      ? new DatabaseUnavailableError(this.name, c.code, message, c.driverCode, err)
      : new DatabaseQueryError(this.name, c.code, message, c.driverCode, err);
  }

  private markDown(err: unknown): void {
    this.lastError = this.scrub(errorText(err));
    if (this.state === 'down') return;
    this.setState('down');
    this.log('warn', `database ${this.name}: unreachable (${this.lastError})`, {
      database: this.name,
      url: redactUrl(this.resolved.url),
    });
  }

  private setState(state: DatabaseStatus['state']): void {
    if (state === 'up' && this.state === 'down')
      this.log('info', `database ${this.name}: reachable again`, { database: this.name });
    this.state = state;
    this.since = new Date();
    if (state !== 'down') this.lastError = undefined;
  }

  private misuse(what: string, instead: string): DatabaseQueryError {
    return new DatabaseQueryError(
      this.name,
      'database_misuse',
      `${what} is not available on a ${this.type} database; use ${instead}`,
    );
  }

  /** Removes the password from a message, should a driver ever repeat it. */
  private scrub(text: string): string {
    return this.password === '' ? text : text.split(this.password).join('***');
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function safePassword(url: string): string {
  try {
    // Too short a password would blank out ordinary words of messages.
    const p = decodeURIComponent(new URL(url).password);
    return p.length >= 4 ? p : '';
  } catch {
    return '';
  }
}
