import type pg from 'pg';
import { StoreError } from '../errors.js';
import type { CommitObserver } from '../observe.js';
import type { OpResult } from '../types.js';
import type { PreparedCall } from './codec.js';
import { asStoreError, isTransientSqlState } from './errors.js';

/**
 * The most ops, and bytes of encoded ops, one batch carries. Far above what concurrent writers
 * queue between two flushes; only a sudden backlog (thousands of calls, or huge values) is
 * split, so that no single statement holds row locks, or memory for its parameter, for long.
 */
const MAX_BATCH_OPS = 8192;
const MAX_BATCH_BYTES = 16 * 1024 * 1024;

/**
 * How often a batch that PostgreSQL rolled back for a deadlock or a serialization failure is
 * run again before its calls fail with `store_unavailable`, and the first pause between runs
 * (doubling, with jitter): the transaction it conflicted with holds its locks until it ends.
 */
const CONFLICT_RETRIES = 8;
const CONFLICT_PAUSE_MS = 5;

/** SQLSTATEs of a transaction rolled back for a conflict with another: deadlock, serialization. */
const CONFLICT_STATES = new Set(['40P01', '40001']);

/** SQLSTATE `apply` raises when the process that sent a batch is not registered (migration 6). */
const FENCED_STATE = 'KL002';
/** SQLSTATE of an `invocation.expect` op that did not hold (migration 7). */
const EXPECT_STATE = 'KL003';

/**
 * How long, at most, the next batch waits for the backend of a batch whose connection broke to
 * end, polling every `SETTLE_POLL_MS`; past it, the next batch fails `store_unavailable`.
 */
const SETTLE_MS = 5000;
const SETTLE_POLL_MS = 25;

/** A pending `write()` call, already encoded. */
interface Waiter {
  call: PreparedCall;
  /** The process whose registration the call depends on (see `PostgresStore.fenceWrites`). */
  process: string | null;
  resolve: (results: OpResult[]) => void;
  reject: (err: unknown) => void;
}

/** Counters for benchmarks and diagnostics. */
export interface GroupCommitStats {
  /** Batches sent, each one statement and one transaction. */
  batches: number;
  /** `write()` calls committed. */
  writes: number;
  /** `write()` calls rejected: by the database (`write_failed`) or with their batch. */
  failed: number;
  ops: number;
  /** Batches that had a failing call, so ran again call by call, a subtransaction each. */
  isolated: number;
  /** Time from sending a batch to its answer, in nanoseconds. */
  roundTripNs: number;
  /** Batches run again after a deadlock or serialization failure. */
  conflicts: number;
}

/**
 * What `apply` answers: `[op index, result]` for each op with a result, and
 * `[call index, message, detail, sqlstate]` for each call that failed and was rolled back alone.
 */
type ApplyResult = [
  results: Array<[number, unknown]>,
  failures: Array<[number, string, string | null, string]>,
];

/** The arguments of `apply` for a batch: see migration 2. */
interface Batch {
  ops: string;
  calls: number[];
  plan: number[];
  total: number;
}

/**
 * Flattens the calls' ops into one array and cuts it into the runs `apply` executes: an op
 * that reads before it writes is a run of its own; blind writes join the current run unless
 * they touch a row (or read a dedupe key) the run already touches, which starts the next run.
 */
export function planBatch(calls: readonly PreparedCall[]): Batch {
  let ops = '[';
  const counts: number[] = [];
  const plan: number[] = [];
  const seen = new Set<string>();
  let runStart = -1;
  let runKinds = 0;
  let i = 0;
  const closeRun = () => {
    if (runStart < 0) return;
    plan.push(runStart, i, runKinds);
    runStart = -1;
    runKinds = 0;
    seen.clear();
  };
  for (const call of calls) {
    counts.push(call.json.length);
    for (let j = 0; j < call.json.length; j++, i++) {
      ops += (i === 0 ? '' : ',') + call.json[j]!;
      const kind = call.kinds[j]!;
      if (kind === 0) {
        closeRun();
        plan.push(i, i + 1, 0);
        continue;
      }
      const keys = call.keys[j]!;
      if (runStart >= 0 && keys.some((k) => seen.has(k))) closeRun();
      if (runStart < 0) runStart = i;
      for (const k of keys) seen.add(k);
      runKinds |= kind;
    }
  }
  closeRun();
  return { ops: ops + ']', calls: counts, plan, total: i };
}

/**
 * Group commit for PostgreSQL: every queued `write()` call goes into the next batch, and a
 * batch is ONE statement, `SELECT <schema>.apply(ops, calls, plan)` (see migration 2), so one
 * round trip, one transaction and one WAL flush commit all of them. One batch is in flight at a time: calls arriving meanwhile queue
 * up and form the next batch, so the busier the store the larger the batches.
 *
 * Why only one: the engine relies on `write()` calls committing in the order they were made,
 * and on later calls seeing what earlier ones wrote (a completion that checks its entry exists,
 * a dedupe check). Two batches on two connections could commit out of order, and the second
 * would not see the first's uncommitted rows. One backend applying batches in queue order keeps
 * exactly the SQLite store's semantics.
 *
 * When a batch fails as a whole, typically because PostgreSQL is unavailable (a lost connection,
 * a restart: `store_unavailable`), its calls and every call queued behind it are rejected: none
 * of them may commit after an earlier call that failed. Later calls go to a new connection.
 */
export class GroupCommit {
  readonly stats: GroupCommitStats = {
    batches: 0,
    writes: 0,
    failed: 0,
    ops: 0,
    isolated: 0,
    roundTripNs: 0,
    conflicts: 0,
  };

  /** Told of every batch (metrics); set through `Store.observeCommits`. */
  observer: CommitObserver | undefined;

  private queue: Waiter[] = [];
  /**
   * The server process (backend) of the last batch whose connection broke before it answered:
   * it may still be running that batch (waiting for a lock) and commit it later, after batches
   * sent since through other connections. The next batch first makes sure it has ended.
   */
  private unsettled: number | undefined;
  private flushScheduled = false;
  private inFlight = false;
  private idleWaiters: Array<() => void> = [];
  private readonly statement: string;

  constructor(
    private readonly pool: pg.Pool,
    quotedSchema: string,
    private readonly statementName: string,
    /** Told when a batch was refused because its process is no longer registered. */
    private readonly onFenced: (processId: string) => void = () => {},
  ) {
    this.statement = `SELECT ${quotedSchema}.apply($1::jsonb, $2::int[], $3::int[], $4::text) AS r`;
  }

  /**
   * Queues a call. `process`: it commits only while that process is registered (null: always).
   */
  add(call: PreparedCall, process: string | null = null): Promise<OpResult[]> {
    return new Promise<OpResult[]>((resolve, reject) => {
      this.queue.push({ call, process, resolve, reject });
      this.schedule();
    });
  }

  /** Resolves once every queued call is committed (or rejected) and nothing is in flight. */
  drain(): Promise<void> {
    return new Promise<void>((resolve) => {
      this.idleWaiters.push(resolve);
      this.notifyIfIdle();
    });
  }

  private schedule(): void {
    if (this.flushScheduled || this.inFlight) return;
    this.flushScheduled = true;
    // setImmediate, not a microtask: every caller that runs in this turn of the event loop
    // (including continuations of the writes just acknowledged) joins the batch.
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.inFlight) return;
    const batch = this.takeBatch();
    if (batch.length === 0) {
      this.notifyIfIdle();
      return;
    }
    this.inFlight = true;
    void this.run(batch).finally(() => {
      this.inFlight = false;
      if (this.queue.length > 0) this.schedule();
      else this.notifyIfIdle();
    });
  };

  /**
   * Queued calls up to the limits (at least one call), in order, all depending on the same
   * process: a batch is checked against one registration.
   */
  private takeBatch(): Waiter[] {
    let ops = 0;
    let bytes = 0;
    let n = 0;
    const stamp = this.queue[0]?.process;
    while (
      n < this.queue.length &&
      ops < MAX_BATCH_OPS &&
      bytes < MAX_BATCH_BYTES &&
      this.queue[n]!.process === stamp
    ) {
      const json = this.queue[n++]!.call.json;
      ops += json.length;
      for (const op of json) bytes += op.length;
    }
    if (n === this.queue.length) {
      const all = this.queue;
      this.queue = [];
      return all;
    }
    return this.queue.splice(0, n);
  }

  /** Never rejects: every waiter of the batch is settled. */
  private async run(batch: Waiter[]): Promise<void> {
    const b = planBatch(batch.map((w) => w.call));
    const owner = batch[0]!.process;
    const t0 = process.hrtime.bigint();
    let raw: ApplyResult;
    try {
      if (this.unsettled !== undefined) await this.settle(this.unsettled);
      raw = await this.apply(b, owner);
    } catch (err) {
      const fenced = sqlState(err) === FENCED_STATE && owner !== null;
      const error = fenced ? fencedError(owner) : asStoreError(err, 'the write');
      this.stats.failed += batch.length;
      for (const w of batch) w.reject(error);
      // Nothing queued behind a failed call may commit before its caller hears of the failure;
      // after a fenced batch, that holds for the calls of the same (former) process only: the
      // calls of the process that replaces it (which registers first) go on.
      const keep = fenced ? this.queue.filter((w) => w.process !== owner) : [];
      const queued = fenced ? this.queue.filter((w) => w.process === owner) : this.queue;
      this.queue = keep;
      this.stats.failed += queued.length;
      for (const w of queued) w.reject(error);
      if (fenced) this.onFenced(owner);
      return;
    }
    const roundTripNs = Number(process.hrtime.bigint() - t0);
    this.stats.roundTripNs += roundTripNs;
    this.stats.batches++;
    this.observer?.committed(batch.length, roundTripNs / 1e9);
    const [pairs, failures] = raw;
    const byOp: unknown[] = new Array(b.total);
    for (const [index, result] of pairs) byOp[index] = result;
    const failed = new Map<number, StoreError>();
    for (const f of failures) failed.set(f[0], callError(f[1], f[2], f[3]));
    if (failures.length > 0) this.stats.isolated++;
    let offset = 0;
    for (let c = 0; c < batch.length; c++) {
      const w = batch[c]!;
      const n = w.call.json.length;
      const error = failed.get(c);
      if (error !== undefined) {
        this.stats.failed++;
        w.reject(error);
      } else {
        let results: OpResult[];
        try {
          results = w.call.decoders.map((decode, j) => decode(byOp[offset + j]));
        } catch (err) {
          // Committed, but the answer is unreadable: a bug, not something to retry.
          w.reject(
            new StoreError('store_failed', `cannot decode the result of a write: ${String(err)}`),
          );
          offset += n;
          continue;
        }
        this.stats.writes++;
        this.stats.ops += n;
        w.resolve(results);
      }
      offset += n;
    }
  }

  /**
   * Sends one batch; runs it again when PostgreSQL rolled it back for a conflict with another
   * transaction (apply re-raises those, see migration 6), before any later batch, so the
   * order of writes holds and no caller sees the conflict.
   */
  private async apply(b: Batch, owner: string | null): Promise<ApplyResult> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.send(b, owner);
      } catch (err) {
        if (!CONFLICT_STATES.has(sqlState(err) ?? '') || attempt >= CONFLICT_RETRIES) throw err;
        this.stats.conflicts++;
        const pause = CONFLICT_PAUSE_MS * 2 ** attempt;
        await new Promise((r) => setTimeout(r, pause / 2 + (Math.random() * pause) / 2));
      }
    }
  }

  /** One round trip of `apply`; notes the backend of a batch whose connection broke. */
  private async send(b: Batch, owner: string | null): Promise<ApplyResult> {
    const client = await this.pool.connect();
    try {
      const res = await client.query<{ r: ApplyResult }>({
        name: this.statementName,
        text: this.statement,
        values: [b.ops, b.calls, b.plan, owner],
      });
      client.release();
      return res.rows[0]!.r;
    } catch (err) {
      const broken = connectionBroke(err);
      // A broken connection is not reused; a statement that failed on a sound one is decided.
      client.release(broken ? (err as Error) : undefined);
      if (broken) this.unsettled = (client as { processID?: number }).processID;
      throw err;
    }
  }

  /**
   * Ends backend `pid` (or waits for its end) before any later batch is sent, so the batch it
   * may still be running commits, if at all, before them: the order of writes holds across a
   * broken connection. After a server restart it is gone already. Throws (the next batch then
   * fails `store_unavailable`) while the server cannot be reached or the backend lingers.
   */
  private async settle(pid: number): Promise<void> {
    const deadline = Date.now() + SETTLE_MS;
    for (let first = true; ; first = false) {
      let rows: unknown[];
      try {
        ({ rows } = await this.pool.query(
          first
            ? 'SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1'
            : 'SELECT pid FROM pg_stat_activity WHERE pid = $1',
          [pid],
        ));
      } catch (err) {
        // Not allowed to end it (a role without the right): wait for nothing, as before.
        if (sqlState(err) !== '42501') throw err;
        break;
      }
      if (rows.length === 0) break;
      if (Date.now() > deadline)
        throw new StoreError(
          'store_unavailable',
          `PostgreSQL server process ${pid}, which ran a write whose connection broke, has not ended yet; later writes wait for it (the write may still commit). Retry later.`,
        );
      await new Promise((r) => setTimeout(r, SETTLE_POLL_MS));
    }
    this.unsettled = undefined;
  }

  private notifyIfIdle(): void {
    if (this.queue.length > 0 || this.inFlight || this.flushScheduled) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function fencedError(processId: string): StoreError {
  return new StoreError(
    'process_fenced',
    `the write was refused: process ${processId} lost its registration (its lease ended and ` +
      'another process took over its invocations); none of its operations were applied. ' +
      'The process joins the cluster again under a new id; retry the request.',
  );
}

function callError(message: string, detail: string | null, state: string): StoreError {
  // An `invocation.expect` that did not hold (migration 7): its message says what it found.
  if (state === EXPECT_STATE) return new StoreError('precondition_failed', message);
  if (isTransientSqlState(state)) {
    return new StoreError(
      'store_unavailable',
      `the write was rolled back by PostgreSQL (${message}, SQLSTATE ${state}); none of its operations were applied. Retry it.`,
    );
  }
  const more = detail ? ` (${detail})` : '';
  return new StoreError(
    'write_failed',
    `the write failed and none of its operations were applied: ${message}${more} (SQLSTATE ${state})`,
  );
}

/**
 * The connection broke (a socket error, a terminated backend, a shutdown), so the server may
 * still be running, or have committed, what was sent: not a statement that failed on its own.
 */
function connectionBroke(err: unknown): boolean {
  const state = sqlState(err);
  if (state === undefined || !/^[0-9A-Z]{5}$/.test(state)) return true;
  return state.startsWith('08') || state.startsWith('57');
}
