import type pg from 'pg';
import { StoreError } from '../errors.js';
import type { CommitObserver } from '../observe.js';
import type { OpResult, WriteOp } from '../types.js';
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

/**
 * Batches in flight at once unless the store is told otherwise (see
 * `PostgresStoreOptions.pipeline`). One: on the 2-core machine where it was measured (issue 18),
 * two batches in flight were no faster and cost more CPU per invocation in Keel and in
 * PostgreSQL (batches half as large: `apply`'s CPU per write dominates), and two processes
 * lost a third of their throughput. Worth raising where PostgreSQL has cores to spare.
 */
export const DEFAULT_PIPELINE = 1;
/** The most batches in flight at once a store accepts: each holds a pooled connection. */
export const MAX_PIPELINE = 32;

/**
 * What a `write()` call must stay ordered with: the domains it touches (see
 * {@link orderingDomains}), or `null` for a call that stays ordered with every other call.
 */
export type Domains = readonly string[] | null;

/** A pending `write()` call, already encoded. */
interface Waiter {
  call: PreparedCall;
  /** The process whose registration the call depends on (see `PostgresStore.fenceWrites`). */
  process: string | null;
  /** What it must stay ordered with (see {@link orderingDomains}). */
  domains: Domains;
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
  /** Batches sent while at least one other batch was in flight (pipelining). */
  pipelined: number;
  /**
   * Times a queued call was left for a later batch because it touches a domain (see
   * {@link orderingDomains}) of a batch in flight, or of a call left before it.
   */
  held: number;
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

const inv = (id: string) => `i\0${id}`;
const objectKey = (service: string, key: string) => `k\0${service}\0${key}`;

/**
 * The ordering domains of a `write()` call: names for the rows, and groups of rows, its ops
 * touch, or `null` when it must stay ordered with every call (a barrier). Two calls that share
 * a domain are never in flight at once: the later one waits until the batch of the earlier one
 * has answered, so they commit in the order they were made, exactly as with one batch in flight
 * (see {@link GroupCommit}). Calls with no domain in common may commit in either order.
 *
 * Deliberately coarse, because the engine does issue writes without waiting for the ones
 * before (see `RunnerHost.append`: a `ctx.set` is written while the handler goes on, and the
 * outcome of the same invocation may be written before it has committed):
 * - every op about an invocation (its row, journal, timers; the caller's entry of a callee's
 *   insert; a key acquire or release by it; a message about it) is in the invocation's domain,
 *   so all the writes of one invocation stay in order, and a write queued behind one that
 *   fails is rejected with it (the cascade of {@link GroupCommit});
 * - an object key's state is one domain, its key lock and FIFO (inserts of keyed invocations,
 *   acquire, release) another; a key-value entry, a durable promise, a dedupe key and a flow
 *   control queue one each;
 * - ops that read or change rows the client cannot name (registering, heartbeats and reaping
 *   processes, which move invocations between owners; purging expired key-value entries) and
 *   any op this function does not know are barriers: they wait for every batch in flight, and
 *   nothing later starts until they have committed. They are rare (seconds apart).
 */
export function orderingDomains(ops: readonly WriteOp[]): Domains {
  const out: string[] = [];
  for (const op of ops) {
    switch (op.op) {
      case 'invocation.insert': {
        const row = op.row;
        out.push(inv(row.id));
        if (typeof row.dedupe === 'string') out.push(`d\0${row.dedupe}`);
        if (row.callerId !== undefined) out.push(inv(row.callerId));
        // Keyed invocations queue per key in `seq` order: inserts for one key stay in order.
        if (row.key !== '') out.push(objectKey(row.service, row.key));
        break;
      }
      case 'invocation.update':
      case 'invocation.suspend':
      case 'invocation.expect':
      case 'invocation.delete':
        out.push(inv(op.id));
        break;
      case 'journal.put':
      case 'journal.complete':
      case 'timer.delete':
        out.push(inv(op.invocationId));
        break;
      case 'timer.put':
        out.push(inv(op.timer.invocationId));
        break;
      case 'state.set':
      case 'state.delete':
      case 'state.clear':
        out.push(`s\0${op.service}\0${op.key}`);
        break;
      case 'promise.complete':
        out.push(`p\0${op.service}\0${op.key}\0${op.name}`);
        break;
      case 'promise.await':
        out.push(`p\0${op.service}\0${op.key}\0${op.name}`, inv(op.invocationId));
        break;
      case 'key.acquire':
      case 'key.release':
        out.push(objectKey(op.service, op.key), inv(op.invocationId));
        break;
      case 'kv.put':
      case 'kv.delete':
        out.push(`v\0${op.scope}\0${op.key}`);
        break;
      case 'queue.put':
        out.push(`q\0${op.queue}`, inv(op.invocationId));
        break;
      case 'notify': {
        const about = (op.message as { invocationId?: unknown }).invocationId;
        if (typeof about !== 'string') return null;
        out.push(inv(about));
        break;
      }
      default:
        // process.register / heartbeat / reap, kv.purge, and any op added later.
        return null;
    }
  }
  return out;
}

/**
 * Group commit for PostgreSQL: every queued `write()` call goes into a batch, and a batch is ONE
 * statement, `SELECT <schema>.apply(ops, calls, plan)` (see migration 2), so one round trip, one
 * transaction and one WAL flush commit all of its calls.
 *
 * Pipelining: up to `pipeline` batches are in flight at once, each on its own pooled
 * connection, so that the round trip and WAL flush of one batch overlap the next (PostgreSQL
 * flushes the commits of concurrent transactions together). With `pipeline` 1, calls arriving
 * while a batch is in flight queue up and form the next batch, as before.
 *
 * Ordering. The engine relies on `write()` calls committing in the order they were made, and a
 * call queued behind one that fails being rejected with it, wherever the later call depends on
 * the earlier one. It does not always wait for a write before issuing the next (a `ctx.set`
 * is written while its handler goes on; the invocation may finish before that write has
 * committed), so two batches on two connections, which can commit in either order, are not
 * enough by themselves. Every call therefore carries its ordering domains
 * ({@link orderingDomains}: its invocations, object keys, key-value entries, ...), and a queued
 * call joins a new batch only when no batch in flight and no call left queued before it shares
 * a domain with it. Calls that share a domain thus commit in call order, one batch after the
 * other, exactly as with one batch in flight; only calls with nothing in common (other
 * invocations, other keys) overlap, and for those the order never mattered: two processes on
 * one schema interleave the same way. Within a batch, calls are applied in queue order.
 *
 * When a batch fails as a whole, typically because PostgreSQL is unavailable (a lost connection,
 * a restart: `store_unavailable`), its calls and every call still queued are rejected: none of
 * them may commit after an earlier call that failed, and a call that depends on one of the
 * failed calls is among them (it shares a domain, so it was held back). Batches already in
 * flight share no domain with it and settle on their own. Later calls go to new connections.
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
    pipelined: 0,
    held: 0,
  };

  /** Told of every batch (metrics); set through `Store.observeCommits`. */
  observer: CommitObserver | undefined;

  private queue: Waiter[] = [];
  /**
   * The server processes (backends) of batches whose connection broke before they answered:
   * each may still be running its batch (waiting for a lock) and commit it later, after batches
   * sent since through other connections. Every batch sent from then on first makes sure they
   * have ended. (Batches already in flight when a connection broke share no ordering domain
   * with its batch, so they need not wait.)
   */
  private readonly unsettled = new Set<number>();
  /** The settling of {@link unsettled} under way, shared by the batches that wait for it. */
  private settling: Promise<void> | undefined;
  private flushScheduled = false;
  /** Batches sent and not yet answered (conflict retries included). */
  private inFlight = 0;
  /** Ordering domains of the batches in flight, with the number of those batches holding each. */
  private readonly busy = new Map<string, number>();
  /** A batch with a barrier call (domains `null`) is in flight: nothing else may start. */
  private barrierInFlight = false;
  private idleWaiters: Array<() => void> = [];
  private readonly statement: string;

  constructor(
    private readonly pool: pg.Pool,
    quotedSchema: string,
    private readonly statementName: string,
    /** Told when a batch was refused because its process is no longer registered. */
    private readonly onFenced: (processId: string) => void = () => {},
    /** The most batches in flight at once (1: one batch at a time). */
    private readonly pipeline = DEFAULT_PIPELINE,
  ) {
    this.statement = `SELECT ${quotedSchema}.apply($1::jsonb, $2::int[], $3::int[], $4::text) AS r`;
  }

  /**
   * Queues a call. `process`: it commits only while that process is registered (null: always).
   * `domains`: what it stays ordered with (see {@link orderingDomains}; null: everything).
   */
  add(
    call: PreparedCall,
    process: string | null = null,
    domains: Domains = null,
  ): Promise<OpResult[]> {
    return new Promise<OpResult[]>((resolve, reject) => {
      this.queue.push({ call, process, domains, resolve, reject });
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
    if (this.flushScheduled || this.inFlight >= this.pipeline || this.barrierInFlight) return;
    this.flushScheduled = true;
    // setImmediate, not a microtask: every caller that runs in this turn of the event loop
    // (including continuations of the writes just acknowledged) joins the batch.
    setImmediate(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    // Fill every free slot: with several calls queued that a batch in flight holds back,
    // another batch may still be possible for the rest.
    while (this.inFlight < this.pipeline && !this.barrierInFlight) {
      const taken = this.takeBatch();
      if (taken === undefined) break;
      this.start(taken.batch, taken.domains, taken.barrier);
    }
    this.notifyIfIdle();
  };

  /** Sends a batch; when it is answered, frees its domains and its slot, and looks for more. */
  private start(batch: Waiter[], domains: Set<string>, barrier: boolean): void {
    if (this.inFlight > 0) this.stats.pipelined++;
    this.inFlight++;
    if (barrier) this.barrierInFlight = true;
    for (const d of domains) this.busy.set(d, (this.busy.get(d) ?? 0) + 1);
    void this.run(batch).finally(() => {
      this.inFlight--;
      if (barrier) this.barrierInFlight = false;
      for (const d of domains) {
        const n = this.busy.get(d)! - 1;
        if (n === 0) this.busy.delete(d);
        else this.busy.set(d, n);
      }
      if (this.queue.length > 0) this.schedule();
      else this.notifyIfIdle();
    });
  }

  /**
   * The next batch: queued calls, in queue order, up to the limits, all depending on the same
   * process (a batch is checked against one registration), skipping every call that must wait
   * (it shares a domain with a batch in flight or with a call skipped before it, or it is a
   * barrier and something is in flight or skipped, or it follows a skipped barrier). Skipped
   * calls stay queued in order. Undefined when no call can go now.
   */
  private takeBatch(): { batch: Waiter[]; domains: Set<string>; barrier: boolean } | undefined {
    if (this.queue.length === 0) return undefined;
    const batch: Waiter[] = [];
    const kept: Waiter[] = [];
    const domains = new Set<string>();
    /** Domains of the calls left queued: later calls that share one wait behind them. */
    const skipped = new Set<string>();
    let skippedBarrier = false;
    let barrier = false;
    let stamp: string | null | undefined;
    let ops = 0;
    let bytes = 0;
    for (let i = 0; i < this.queue.length; i++) {
      const w = this.queue[i]!;
      let go = !skippedBarrier && (stamp === undefined || w.process === stamp);
      if (go) {
        if (w.domains === null) go = this.inFlight === 0 && kept.length === 0;
        else
          for (const d of w.domains)
            if (this.busy.has(d) || skipped.has(d)) {
              go = false;
              break;
            }
      }
      if (!go) {
        this.stats.held++;
        kept.push(w);
        if (w.domains === null) skippedBarrier = true;
        else for (const d of w.domains) skipped.add(d);
        continue;
      }
      batch.push(w);
      stamp = w.process;
      if (w.domains === null) barrier = true;
      else for (const d of w.domains) domains.add(d);
      ops += w.call.json.length;
      for (const op of w.call.json) bytes += op.length;
      if (ops >= MAX_BATCH_OPS || bytes >= MAX_BATCH_BYTES) {
        // The rest waits for a later batch, in order: nothing after this point joins.
        for (let j = i + 1; j < this.queue.length; j++) kept.push(this.queue[j]!);
        break;
      }
    }
    if (batch.length === 0) return undefined;
    this.queue = kept;
    return { batch, domains, barrier };
  }

  /** Never rejects: every waiter of the batch is settled. */
  private async run(batch: Waiter[]): Promise<void> {
    const b = planBatch(batch.map((w) => w.call));
    const owner = batch[0]!.process;
    const t0 = process.hrtime.bigint();
    let raw: ApplyResult;
    try {
      while (this.unsettled.size > 0) await this.settleAll();
      raw = await this.apply(b, owner);
    } catch (err) {
      const fenced = sqlState(err) === FENCED_STATE && owner !== null;
      const error = fenced ? fencedError(owner) : asStoreError(err, 'the write');
      this.stats.failed += batch.length;
      for (const w of batch) w.reject(error);
      // Nothing queued behind a failed call may commit before its caller hears of the failure;
      // after a fenced batch, that holds for the calls of the same (former) process only: the
      // calls of the process that replaces it (which registers first) go on. Calls that
      // depend on a failed one were held back (they share a domain), so they are queued here.
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
   * transaction (apply re-raises those, see migration 6): of another process, or another batch
   * of this one in flight at the same time (they share no ordering domain, but may still meet
   * on a row the client cannot name, such as a promise's waiters or an index entry). Its
   * domains stay held meanwhile, so no later call that depends on it overtakes it, and no
   * caller sees the conflict.
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
      const pid = (client as { processID?: number }).processID;
      if (broken && pid !== undefined) this.unsettled.add(pid);
      throw err;
    }
  }

  /** Settles every backend in {@link unsettled}, once for all the batches waiting for it. */
  private settleAll(): Promise<void> {
    this.settling ??= (async () => {
      try {
        for (const pid of [...this.unsettled]) {
          await this.settle(pid);
          this.unsettled.delete(pid);
        }
      } finally {
        this.settling = undefined;
      }
    })();
    return this.settling;
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
  }

  private notifyIfIdle(): void {
    if (this.queue.length > 0 || this.inFlight > 0 || this.flushScheduled) return;
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
