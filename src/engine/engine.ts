import type { CallOptions, Logger, SendOptions } from '../core/context.js';
import type { Definition, ExternalClient, HandlerSpec, SendClient } from '../core/definitions.js';
import { checkDelay, parseDuration, type Duration } from '../core/duration.js';
import {
  errorMessage,
  fromErrorInfo,
  isTerminal,
  KeelError,
  NotFoundError,
  RetriesExhaustedError,
  toErrorInfo,
  ValidationError,
  ConflictError,
  CancelledError,
  UsageError,
  type ErrorInfo,
} from '../core/errors.js';
import { parseAwakeableId, targetName, type JournalEntry, type Target } from '../core/journal.js';
import {
  backoffDelay,
  resolveRetry,
  type ResolvedRetryPolicy,
  type RetryPolicy,
} from '../core/retry.js';
import { normalize, type Outcome as EntryOutcome, type StepWrite } from '../core/replay.js';
import { validate } from '../core/schema.js';
import type {
  ClusterMessage,
  InvocationRow,
  InvocationStatus,
  OpResult,
  Store,
  TimerRow,
  WriteOp,
} from '../store/types.js';
import { systemClock, type Clock } from './clock.js';
import { dedupeKey, idempotencyKeyOf } from './dedupe.js';
import { abandoned, MAX_WAITERS, TooManyWaitersError, type WaitOptions } from './waiters.js';
import { awakeableIdFor, newInvocationId } from './ids.js';
import { loadAwakeableSecret } from './secrets.js';
import { KeyLocks } from './locks.js';
import { Registry } from './registry.js';
import { Runner, type RunnerOwner } from './runner.js';
import { TimerService } from './timers.js';
import { Cluster } from './cluster.js';
import { StoreError } from '../store/errors.js';

/** How many times an operator's cancel or kill reads an invocation again that changed meanwhile. */
const DECIDE_TRIES = 5;

/** Every status but the finished ones. */
const UNFINISHED: InvocationStatus[] = [
  'pending',
  'scheduled',
  'running',
  'suspended',
  'backing-off',
  'paused',
];

/** Invocations (and key-value records) deleted per write of the retention sweep. */
const CLEANUP_BATCH = 1000;
/** How long background work that failed (the store unreachable) waits before it runs again. */
const RETRY_LATER_MS = 1000;

/**
 * Options of {@link Engine}: `services` and `store` are required; every other field documents
 * its default.
 */
export interface EngineOptions {
  /** The services, objects and workflows this engine runs. */
  services: Definition[];
  /** Where everything durable lives (SQLite: `openSqliteStore`). */
  store: Store;
  /** Time source; a fake clock in tests. Default: the system clock. */
  clock?: Clock;
  /** Default retry policy of every handler (see `RetryPolicy` for its defaults). */
  retry?: RetryPolicy;
  /** How long finished invocations, their journals and idempotency keys are kept. Default `24h`. */
  retention?: Duration;
  /** How long a waiting invocation stays in memory before it suspends. Default `1s`. */
  suspendAfter?: Duration;
  /** Where engine and handler logs go. Default: console, `info` and above. */
  logger?: EngineLogger;
  /**
   * Shared stores (PostgreSQL): how long a process's invocations stay its own after its last
   * heartbeat; after that another process takes them over. Default `10s`.
   */
  lease?: Duration;
}

/** A sink for log lines; `fields` carry the invocation id and target. */
export type EngineLogger = (
  level: keyof Logger,
  message: string,
  fields: Record<string, unknown>,
) => void;

/** A request to run a handler, as the ingress and the programmatic client make it. */
export interface InvokeRequest {
  service: string;
  handler: string;
  /** Object or workflow key; omit for services. */
  key?: string;
  input?: unknown;
  idempotencyKey?: string;
  /** Sends only: start after this many milliseconds. */
  delayMs?: number;
}

/** What a send answers: the invocation's id and status when accepted. */
export interface SendResult {
  invocationId: string;
  status: InvocationRow['status'];
  /** True when an idempotency key or workflow key matched an existing invocation. */
  existing: boolean;
}

/** Public view of an invocation, as `GET /invocations/{id}` shows it. */
export interface InvocationInfo {
  id: string;
  target: string;
  service: string;
  handler: string;
  key?: string;
  status: InvocationRow['status'];
  attempt: number;
  createdAt: string;
  modifiedAt: string;
  completedAt?: string;
  nextAttemptAt?: string;
  idempotencyKey?: string;
  error?: ErrorInfo;
  /** Set once a cancellation was requested, then delivered to the handler. */
  cancel?: 'requested' | 'delivered';
  /** What the handler reported beyond its status, e.g. a saga's `compensated`. */
  outcome?: string;
}

interface Deferred<T> {
  resolve(v: T): void;
  reject(e: unknown): void;
}

type Outcome = { output: unknown } | { error: ErrorInfo };

const consoleLogger: EngineLogger = (level, message, fields) => {
  if (level === 'debug') return;
  const where =
    typeof fields.invocationId === 'string'
      ? ` [${String(fields.target)} ${fields.invocationId}]`
      : '';
  const line = `keel ${level}${where} ${message}`;
  if (level === 'error') console.error(line, ...((fields.args as unknown[]) ?? []));
  else if (level === 'warn') console.warn(line, ...((fields.args as unknown[]) ?? []));
  else console.log(line, ...((fields.args as unknown[]) ?? []));
};

/**
 * The durable execution engine: runs invocations, journals their effects through the Store,
 * suspends what waits, resumes what is due, and recovers everything in flight at start.
 *
 * @example
 * ```ts
 * const engine = new Engine({ services: [Greeter, Counter], store: openSqliteStore({ path: 'app.db' }) });
 * await engine.start();
 * const total = await engine.client(Counter, 'visits').add(1);
 * await engine.stop();
 * ```
 */
export class Engine implements RunnerOwner {
  readonly registry: Registry;
  readonly store: Store;
  readonly clock: Clock;
  private readonly defaultRetry: ResolvedRetryPolicy;
  private readonly retentionMs: number;
  private readonly suspendAfterMs: number;
  private readonly logger: EngineLogger;
  private readonly timers: TimerService;
  private readonly locks = new KeyLocks<InvocationRow>();
  /** Invocations executing in this process. */
  private readonly active = new Map<string, Runner>();
  /**
   * Deduplication keys whose insert is not durable yet, with the invocation that will hold
   * each (on a shared store, the winner is known only once the insert answers).
   */
  private readonly inflightDedupe = new Map<string, Promise<InvocationRow>>();
  /** Callers waiting for an invocation's result (ingress attach, or calls that attached). */
  private readonly resultWaiters = new Map<string, Array<Deferred<Outcome>>>();
  private readonly suspendTimers = new Map<string, () => void>();
  private cancelCleanup: (() => void) | undefined;
  /** Membership in a cluster of processes sharing the store (shared stores only). */
  private readonly cluster: Cluster | undefined;
  private started = false;
  private stopping = false;
  /** The store's awakeable secret (see `loadAwakeableSecret`), read by `start()`. */
  private awakeableSecret: Buffer | undefined;
  /** Services extensions registered with {@link Engine.provide}. */
  private readonly resources = new Map<symbol, unknown>();

  constructor(options: EngineOptions) {
    this.registry = new Registry(options.services);
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.defaultRetry = resolveRetry(options.retry);
    this.retentionMs = parseDuration(options.retention ?? '24h');
    this.suspendAfterMs = parseDuration(options.suspendAfter ?? '1s');
    this.logger = options.logger ?? consoleLogger;
    this.timers = new TimerService(
      this.clock,
      this.store,
      (t) => this.fireTimer(t),
      () => this.cluster?.processId,
    );
    if (this.store.shared) {
      this.cluster = new Cluster(
        this.store,
        this.clock,
        {
          log: (level, message) => this.log(level, message, {}),
          onMessage: (m) => this.onClusterMessage(m),
          onTakeover: (ids) => this.takeOver(ids),
          onFenced: () => this.fence(),
          onRejoined: () => this.rejoined(),
          onSweep: () => this.sweep(),
        },
        parseDuration(options.lease ?? '10s'),
      );
    }
  }

  // ---- extensions ------------------------------------------------------------------------

  /**
   * Registers an engine-scoped service for extension modules (integrations, webhooks) to
   * reach from handlers' contexts with `contextResource(ctx, key)`.
   *
   * @example
   * ```ts
   * const RUNTIME = Symbol('my-extension');
   * engine.provide(RUNTIME, new MyRuntime(engine.store));
   * ```
   */
  provide(key: symbol, value: unknown): void {
    this.resources.set(key, value);
  }

  /** The service registered under `key`, if any. */
  resource(key: symbol): unknown {
    return this.resources.get(key);
  }

  /** This process's id in a cluster sharing the store; undefined on an embedded store. */
  get processId(): string | undefined {
    return this.cluster?.processId;
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /** Recovers everything that was in flight, then starts timers and retention cleanup. */
  async start(): Promise<void> {
    if (this.started) return;
    // Before anything runs: recovered invocations may create awakeables. Read before `started`
    // is set, so a start that failed here (the store unreachable) can be retried.
    this.awakeableSecret ??= await loadAwakeableSecret(this.store);
    if (this.started) return;
    this.started = true;
    if (this.cluster) {
      // A new process owns nothing yet: it takes over what dead processes left behind.
      await this.cluster.start();
      await this.timers.start();
      this.scheduleCleanup(0);
      return;
    }
    for (const h of await this.store.listKeyHolders()) {
      if (h.status !== 'pending')
        this.locks.acquire(lockKey(h.service, h.key), h.id, h as InvocationRow);
    }
    for (const row of await this.store.listRunnable()) {
      if (!this.registry.get(row.service)) {
        this.log(
          'warn',
          `cannot recover ${row.id}: "${row.service}" is no longer registered; it stays ${row.status}`,
          {},
        );
        continue;
      }
      if (row.status === 'running') this.resume(row);
      else this.enqueue(row);
    }
    await this.timers.start();
    this.scheduleCleanup(0);
  }

  /** Stops timers and drops in-memory work; everything durable resumes at the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.cluster?.stop();
    this.timers.stop();
    this.cancelCleanup?.();
    for (const cancel of this.suspendTimers.values()) cancel();
    this.suspendTimers.clear();
    for (const r of this.active.values()) r.kill();
    this.active.clear();
    const stopped = new KeelError(
      'the engine stopped before the invocation finished; it resumes when the engine starts again',
      {
        code: 'engine_stopped',
        status: 503,
      },
    );
    for (const ws of this.resultWaiters.values()) for (const w of ws) w.reject(stopped);
    this.resultWaiters.clear();
    await this.store.close();
  }

  /**
   * @internal For `crash()` in `keel/testing`: stops as a crash would. Nothing in memory
   * survives, the cluster lease is not given up (other processes take over only when it
   * expires), and only what was already durable remains.
   */
  async crashForTests(): Promise<void> {
    this.stopping = true;
    this.cluster?.abandon();
    this.timers.stop();
    this.cancelCleanup?.();
    for (const cancel of this.suspendTimers.values()) cancel();
    this.suspendTimers.clear();
    for (const r of this.active.values()) r.kill();
    this.active.clear();
    this.resultWaiters.clear();
    await this.store.close();
  }

  now(): number {
    return this.clock.now();
  }

  /** How many invocations hold a handler closure in memory right now (suspended ones do not). */
  get inMemory(): number {
    return this.active.size;
  }

  // ---- the public surface: invoke, send, attach ----------------------------------------

  /**
   * Runs a handler and resolves with its result once the result is durable. Rejects with the
   * handler's terminal error, rebuilt from its stored code as its class (`ValidationError`,
   * `RetriesExhaustedError`, ...; a `TerminalError` for codes of users' own) with its status.
   */
  async invoke(req: InvokeRequest, wait: WaitOptions = {}): Promise<unknown> {
    if (req.delayMs !== undefined) checkDelay(req.delayMs);
    const { row, existing } = await this.create(req, undefined);
    // A new invocation cannot have finished yet: skip the store lookup on the hot path.
    const outcome = await (existing
      ? this.awaitOutcome(row.id, true, wait)
      : this.waitForOutcome(row.id, wait));
    if ('error' in outcome) throw fromErrorInfo(outcome.error);
    return outcome.output;
  }

  /** Starts a handler without waiting for it; resolves once the invocation is durably accepted. */
  async send(req: InvokeRequest): Promise<SendResult> {
    if (req.delayMs !== undefined) checkDelay(req.delayMs);
    const { row, existing, durable } = await this.create(req, undefined);
    await durable;
    return { invocationId: row.id, status: row.status, existing };
  }

  /**
   * Waits for an invocation to finish and returns its result (or throws its terminal error).
   * At most {@link MAX_WAITERS} callers wait on one invocation at a time; beyond that this
   * throws `TooManyWaitersError` (429 `too_many_waiters`): poll {@link Engine.output} instead.
   * An aborted `signal` stops the wait (and frees its memory); the invocation goes on.
   */
  async attach(id: string, wait: WaitOptions = {}): Promise<unknown> {
    const outcome = await this.awaitOutcome(id, false, wait);
    if ('error' in outcome) throw fromErrorInfo(outcome.error);
    return outcome.output;
  }

  /** The result if the invocation has finished, else its status. */
  async output(
    id: string,
  ): Promise<
    { ready: true; outcome: Outcome } | { ready: false; status: InvocationRow['status'] }
  > {
    const row = await this.store.getInvocation(id);
    if (!row) throw notFound(id);
    if (row.status === 'completed') return { ready: true, outcome: { output: row.output } };
    if (row.status === 'failed') return { ready: true, outcome: { error: row.error! } };
    return { ready: false, status: row.status };
  }

  async getInvocation(id: string): Promise<InvocationInfo | undefined> {
    const row = await this.store.getInvocation(id);
    return row && toInfo(row);
  }

  // ---- control: awakeables, cancel, kill, purge, resume, inspection ----------------------

  /**
   * Completes an awakeable with a value. Throws `NotFoundError` (404) for an unknown id and
   * `ConflictError` (409, code `already_completed`) when it was completed before.
   */
  async resolveAwakeable(id: string, value: unknown): Promise<void> {
    let normalized: unknown;
    try {
      normalized = normalize(value, `the value for awakeable ${id}`);
    } catch (err) {
      throw new ValidationError((err as Error).message);
    }
    await this.completeAwakeableById(id, { value: normalized });
  }

  /** Completes an awakeable with a failure; the waiting handler sees a `TerminalError`. */
  async rejectAwakeable(id: string, message: string): Promise<void> {
    await this.completeAwakeableById(id, { error: { code: 'rejected', message, status: 500 } });
  }

  /**
   * Cancels an invocation gracefully: its handler sees a `CancelledError` at its next await
   * (sleep, call, awakeable, promise or step), can run compensations, and the calls it waits on
   * are cancelled too. An invocation that has not started yet ends at once. Throws 404 for an
   * unknown id and 409 (code `already_finished`) for a finished one.
   */
  async cancel(id: string): Promise<InvocationInfo> {
    return this.cancelInvocation(id);
  }

  /**
   * Ends an invocation immediately with the error code `killed`: no compensation runs and steps
   * in flight are abandoned. Unsafe: use it only for invocations that cannot end otherwise.
   */
  async kill(id: string): Promise<InvocationInfo> {
    return this.killInvocation(id);
  }

  /** Deletes a finished invocation with its journal (freeing its idempotency key). 409 if not finished. */
  async purge(id: string): Promise<void> {
    return this.purgeInvocation(id);
  }

  /** Resumes a paused invocation (after a non-determinism error was fixed) by replaying it. 409 if not paused. */
  async resumePaused(id: string): Promise<InvocationInfo> {
    return this.resumePausedInvocation(id);
  }

  /** Invocations, newest first, optionally filtered; `cursor` pages through older ones. */
  async listInvocations(filter: {
    status?: InvocationRow['status'];
    service?: string;
    key?: string;
    limit?: number;
    cursor?: string;
  }): Promise<{ invocations: InvocationInfo[]; nextCursor?: string }> {
    const limit = Math.min(Math.max(filter.limit ?? 50, 1), 1000);
    const beforeSeq = filter.cursor === undefined ? undefined : Number(filter.cursor);
    if (beforeSeq !== undefined && !Number.isSafeInteger(beforeSeq)) {
      throw new ValidationError(
        `cursor "${filter.cursor}" is not valid: pass the nextCursor of a previous page`,
      );
    }
    const rows = await this.store.listInvocations({
      status: filter.status,
      service: filter.service,
      key: filter.key,
      limit: limit + 1,
      beforeSeq,
    });
    const page = rows.slice(0, limit);
    const last = page[page.length - 1];
    return {
      invocations: page.map(toInfo),
      ...(rows.length > limit && last?.seq !== undefined ? { nextCursor: String(last.seq) } : {}),
    };
  }

  /** The journal of an invocation, entry by entry. 404 for an unknown id. */
  async getJournal(id: string): Promise<Array<JournalEntry & { index: number }>> {
    const row = await this.store.getInvocation(id);
    if (!row) throw notFound(id);
    return (await this.store.getJournal(id)).map(([index, e]) => ({ index, ...e }));
  }

  /** A typed request-response client, for use outside handlers (tests, scripts, servers). */
  client<D extends Definition>(def: D, key?: string): ExternalClient<D> {
    const out: Record<string, unknown> = {};
    for (const handler of Object.keys(def.handlers)) {
      out[handler] = (input?: unknown, options?: CallOptions) =>
        this.invoke({
          service: def.name,
          handler,
          key,
          input,
          idempotencyKey: options?.idempotencyKey,
        });
    }
    return out as ExternalClient<D>;
  }

  /** A typed one-way client, for use outside handlers. */
  sendClient<D extends Definition>(def: D, key?: string, options?: SendOptions): SendClient<D> {
    const delayMs = options?.delay === undefined ? undefined : parseDuration(options.delay);
    const out: Record<string, unknown> = {};
    for (const handler of Object.keys(def.handlers)) {
      out[handler] = (input?: unknown, callOptions?: CallOptions) => ({
        invocationId: this.send({
          service: def.name,
          handler,
          key,
          input,
          delayMs,
          idempotencyKey: callOptions?.idempotencyKey ?? options?.idempotencyKey,
        }).then((r) => r.invocationId),
      });
    }
    return out as SendClient<D>;
  }

  // ---- creating invocations --------------------------------------------------------------

  /**
   * Validates and creates an invocation (or finds the one its idempotency key or workflow key
   * names), and starts it. Execution starts before the insert is durable: every write of the
   * invocation is ordered after the insert, so nothing it does can outlive a lost insert.
   */
  private async create(
    req: InvokeRequest,
    caller: { id: string; index: number } | undefined,
    extra?: (row: InvocationRow) => WriteOp[],
    /** The input is already in its JSON form (a handler's call or send normalized it). */
    normalized = false,
  ): Promise<{ row: InvocationRow; existing: boolean; durable: Promise<unknown> }> {
    if (this.stopping)
      throw new KeelError('the engine is stopping', { code: 'engine_stopped', status: 503 });
    const key = req.key ?? '';
    const { def, spec } = this.registry.resolve(req.service, req.handler, key);
    let input = req.input;
    // A schema may transform the input (defaults, coercions): its output is normalized again.
    if (spec.options.input || !normalized) {
      if (spec.options.input)
        input = await validate(spec.options.input, input, `input of ${def.name}.${spec.name}`);
      try {
        input = normalize(input, `the input of ${def.name}.${spec.name}`);
      } catch (err) {
        throw new ValidationError((err as Error).message);
      }
    }
    // A workflow's run is keyed by its workflow key alone (see dedupe.ts).
    const dedupe = dedupeKey(def.kind, def.name, spec.name, key, req.idempotencyKey);
    // Checked again right after each await, before anything else can run: a concurrent
    // request for the same key that got there first is found, not duplicated.
    while (dedupe) {
      let inflight = this.inflightDedupe.get(dedupe);
      // A shared store's insert answers a taken key with its holder (and nothing starts before
      // that answer): no read first, which would cost a round trip per invocation.
      let found = inflight || this.cluster ? undefined : await this.store.findByDedupe(dedupe);
      if (!found) inflight ??= this.inflightDedupe.get(dedupe);
      if (inflight) {
        // A duplicate is answered with the original's id only once the original's insert is
        // durable: a crash right after the answer must not lose the invocation it names.
        found = await inflight.catch(() => undefined);
        // Not stored: the key is free again, so look again (and insert, if still free).
        if (!found) continue;
      }
      if (found) return { row: found, existing: true, durable: Promise.resolve() };
      break;
    }
    const now = this.clock.now();
    const delay = req.delayMs ?? 0;
    const id = newInvocationId(now);
    const exclusive = def.kind !== 'service' && !spec.shared;
    const row: InvocationRow = {
      id,
      service: def.name,
      handler: spec.name,
      key,
      exclusive,
      status: 'pending',
      input,
      dedupe,
      callerId: caller?.id,
      callerEntry: caller?.index,
      attempt: 0,
      retryIndex: -1,
      runAt: delay > 0 ? now + delay : undefined,
      createdAt: now,
      modifiedAt: now,
    };
    const cluster = this.cluster;
    if (cluster) row.owner = cluster.processId;
    // Decide now whether it starts at once, so the insert already says 'running' (one write less).
    if (delay > 0) row.status = 'scheduled';
    else if (cluster) row.status = exclusive ? 'pending' : 'running';
    else if (!exclusive || this.locks.acquire(lockKey(def.name, key), id, row))
      row.status = 'running';
    // Shared store: the key is taken through the store by the insert itself, which stores the
    // row 'running' when it gets the key (no second write to start it).
    const takesKey = cluster !== undefined && exclusive && delay === 0;
    const ops: WriteOp[] = [
      takesKey
        ? { op: 'invocation.insert', row: { ...row }, acquireKey: true }
        : { op: 'invocation.insert', row: { ...row } },
    ];
    if (delay > 0)
      ops.push({
        op: 'timer.put',
        timer: { invocationId: row.id, index: -1, fireAt: now + delay },
      });
    // The caller's journal entry rides in the same write, so a call or send is recorded
    // atomically with the invocation it starts.
    if (extra) ops.push(...extra(row));
    const written = this.store.write(ops);
    if (dedupe) {
      // The invocation holding the key once the insert is durable: this one, unless another
      // process inserted first. Rejects when the insert failed (nobody holds the key then).
      const winner = written.then((r) => (r[0] as { existing?: InvocationRow }).existing ?? row);
      winner.catch(() => undefined);
      this.inflightDedupe.set(dedupe, winner);
    }
    const durable: Promise<unknown> = written.then(
      () => {
        if (dedupe) this.inflightDedupe.delete(dedupe);
        if (delay > 0) this.timers.add({ invocationId: row.id, index: -1, fireAt: now + delay });
      },
      (err: unknown) => {
        if (dedupe) this.inflightDedupe.delete(dedupe);
        this.log('error', `could not store invocation ${row.id}: ${errorMessage(err)}`, {});
        this.settleWaiters(row.id, { error: toErrorInfo(err) });
        // An embedded store starts the invocation before its insert is durable: stop that
        // attempt, which has no row, and give its object key to the next in line.
        const ghost = this.active.get(row.id);
        if (ghost) {
          this.abandon(ghost);
          this.settling.delete(row.id);
          if (!cluster) this.releaseKey(row);
        } else if (!cluster && row.status === 'pending') this.dequeue(row);
        // It may have run to its end already (its outcome's write failed with the insert): the
        // key it took must not stay held by an invocation that does not exist.
        else if (!cluster && row.status === 'running') this.releaseKey(row);
        // The caller's journal entry of this call or send was lost with it: the caller's
        // attempt must not go on as if it had been recorded (the send would never happen).
        for (const op of ops) {
          const runner = op.op === 'journal.put' ? this.active.get(op.invocationId) : undefined;
          if (runner) this.failAttempt(runner, err);
        }
        throw err;
      },
    );
    // Callers that do not wait for durability (invoke waits for the result instead) must not
    // leave its failure unhandled; those that await it still see the rejection.
    durable.catch(() => undefined);
    if (cluster && (takesKey || dedupe)) {
      // Another process may hold the dedupe key or the object key: wait for the store's answer.
      const results = await written;
      const inserted = results[0] as {
        inserted: boolean;
        acquired?: boolean;
        existing?: InvocationRow;
      };
      if (!inserted.inserted) return { row: inserted.existing!, existing: true, durable };
      if (delay > 0) return { row, existing: false, durable };
      if (takesKey) {
        if (!inserted.acquired) return { row, existing: false, durable };
        row.status = 'running';
      }
      this.launch(row, NO_ENTRIES, def, spec);
      return { row, existing: false, durable };
    }
    if (row.status === 'running') this.launch(row, NO_ENTRIES, def, spec);
    return { row, existing: false, durable };
  }

  /** Starts an invocation now, or queues it behind the current holder of its object key. */
  private enqueue(row: InvocationRow): void {
    const me = this.cluster?.processId;
    if (me && row.exclusive) {
      const acquire: WriteOp = {
        op: 'key.acquire',
        service: row.service,
        key: row.key,
        invocationId: row.id,
      };
      this.store
        .write([acquire])
        .then(async ([r]) => {
          if (!(r as { acquired: boolean }).acquired) return;
          // It may hold the key because another process handed it over (and owns it now):
          // run it only if it is still this process's and has not started.
          const fresh = await this.store.getInvocation(row.id);
          const waiting = fresh?.status === 'pending' || fresh?.status === 'scheduled';
          if (fresh?.owner === me && waiting) this.launch(fresh, NO_ENTRIES);
        })
        .catch((err: unknown) => {
          this.log('warn', `could not take the key of ${row.id}: ${errorMessage(err)}`, {});
          // Nothing else would start it: its timer (if it had one) is gone.
          this.retryLater(`starting ${row.id}`, async () => {
            const fresh = await this.store.getInvocation(row.id);
            const waiting = fresh?.status === 'pending' || fresh?.status === 'scheduled';
            if (fresh?.owner === me && waiting) this.enqueue(fresh);
          });
        });
      return;
    }
    if (row.exclusive && !this.locks.acquire(lockKey(row.service, row.key), row.id, row)) return;
    this.launch(row, NO_ENTRIES);
  }

  private launch(
    row: InvocationRow,
    recorded: ReadonlyMap<number, JournalEntry>,
    /** The handler, when the caller resolved it already (a new invocation). */
    resolvedDef?: Definition,
    resolvedSpec?: HandlerSpec,
  ): void {
    // One attempt per invocation at a time, whichever path (hand-off, sweep, resume) got here.
    if (this.active.has(row.id)) return;
    // Shared store: only its owner runs an invocation. A row read or handed over before this
    // process lost its lease names the old id: it is another process's now.
    if (this.cluster && row.owner !== this.cluster.processId) return;
    const def = resolvedDef ?? this.registry.get(row.service);
    const spec = resolvedSpec ?? (def && this.specOf(def, row.handler));
    if (!def || !spec) {
      void this.finishRow(row, {
        error: toErrorInfo(
          new NotFoundError(`${row.service}.${row.handler} is no longer registered`),
        ),
      });
      return;
    }
    const policy = this.retryPolicyOf(def, spec);
    if (this.cancelRequests.delete(row.id)) row.cancel ??= 'requested';
    const runner = new Runner(this, row, spec, recorded, policy, def.kind === 'workflow');
    this.active.set(row.id, runner);
    if (row.status !== 'running') {
      row.status = 'running';
      // Marks the invocation runnable for recovery; rides along with its first commit.
      void this.write(runner, [
        {
          op: 'invocation.update',
          id: row.id,
          set: { status: 'running', modifiedAt: this.clock.now() },
        },
      ]).catch(() => undefined);
    }
    void runner.start();
  }

  /** Resolved retry policies by handler: definitions do not change while the engine runs. */
  private readonly policies = new WeakMap<HandlerSpec, ResolvedRetryPolicy>();

  private retryPolicyOf(def: Definition, spec: HandlerSpec): ResolvedRetryPolicy {
    let policy = this.policies.get(spec);
    if (!policy) {
      policy = resolveRetry(spec.options.retry, resolveRetry(def.options.retry, this.defaultRetry));
      this.policies.set(spec, policy);
    }
    return policy;
  }

  private specOf(def: Definition, handler: string): HandlerSpec | undefined {
    try {
      return this.registry.resolve(def.name, handler, def.kind === 'service' ? '' : 'k').spec;
    } catch {
      return undefined;
    }
  }

  /** Replays an invocation from its journal (after a restart, a suspension or a retry). */
  private resume(row: InvocationRow): void {
    if (this.active.has(row.id) || this.stopping) return;
    // One load at a time: a second one could read before a first replay's finish commits and
    // launch it again after. The load in flight looks again when it is done.
    const inFlight = this.loading.get(row.id);
    if (inFlight) {
      inFlight.again = true;
      return;
    }
    // Reserve the slot so completions arriving while the journal loads are not lost.
    const pending: Array<[number, JournalEntry]> = [];
    const placeholder: Loading = { loading: true, pending, again: false, finished: false };
    this.loading.set(row.id, placeholder);
    // The row this resume was asked for may be stale (a sweep's read answered after the
    // invocation finished and handed its key on): its current status comes with the journal.
    void Promise.all([this.store.getInvocation(row.id), this.store.getJournal(row.id)]).then(
      ([current, entries]) => {
        this.loading.delete(row.id);
        if (this.stopping || this.active.has(row.id)) return;
        if (this.settling.has(row.id)) {
          // Its last attempt's status write is in flight: what it leaves decides what is next.
          this.retryLater(`resuming ${row.id}`, () => this.resumeById(row.id));
          return;
        }
        if (placeholder.finished || !this.resumable(current)) {
          if (placeholder.again && !placeholder.finished)
            this.resumeById(row.id).catch(() =>
              this.retryLater(`resuming ${row.id}`, () => this.resumeById(row.id)),
            );
          return;
        }
        const recorded = new Map(entries);
        for (const [i, e] of pending) recorded.set(i, e);
        try {
          this.launch({ ...row, status: 'running' }, recorded);
          if (!this.active.has(row.id)) return;
          this.reattach(row.id, recorded);
          this.rearmSleeps(row.id, recorded);
        } catch (err) {
          // A journal this engine cannot replay must not take the process down (and recovery
          // with it, again at every start): isolate the one invocation.
          const runner = this.active.get(row.id);
          if (runner) this.abandon(runner);
          this.pauseRow(row, unreplayable(row.id, err));
        }
      },
      (err: unknown) => {
        this.loading.delete(row.id);
        if (!(err instanceof StoreError)) {
          // Not the store failing but the journal's content (it cannot be decoded): retrying
          // would fail the same way forever.
          this.pauseRow(row, unreplayable(row.id, err));
          return;
        }
        this.log('warn', `could not load the journal of ${row.id}: ${errorMessage(err)}`, {});
        this.retryLater(`resuming ${row.id}`, () => this.resumeById(row.id));
      },
    );
  }
  /**
   * Calls that attached to an invocation started by someone else (idempotency key, workflow
   * key) are not completed by that invocation: wait for their results again after a replay.
   */
  private reattach(id: string, recorded: ReadonlyMap<number, JournalEntry>): void {
    for (const [index, entry] of recorded) {
      if (entry.kind !== 'call' || entry.done || !entry.calleeId) continue;
      this.background(
        `reattaching entry ${index} of ${id}`,
        this.store.getInvocation(entry.calleeId).then((callee) => {
          const runner = this.active.get(id);
          if (runner && callee?.callerId !== id) this.attachCall(runner, index, entry);
        }),
      );
    }
  }

  /**
   * Sleeps the journal holds unfinished have a durable timer (written with the entry), which
   * this process may not hold in memory: a write whose answer was lost (a dropped connection)
   * may have committed both. Held again here, or the replay would wait for the next reload.
   */
  private rearmSleeps(id: string, recorded: ReadonlyMap<number, JournalEntry>): void {
    for (const [index, entry] of recorded) {
      if (entry.kind === 'sleep' && !entry.done && entry.wakeAt !== undefined)
        this.timers.add({ invocationId: id, index, fireAt: entry.wakeAt });
    }
  }

  private readonly loading = new Map<string, Loading>();

  /**
   * Whether a row read for a resume may run here: not finished, not paused or waiting to
   * start (other paths run those), and, on a shared store, still this process's.
   */
  private resumable(row: InvocationRow | undefined): boolean {
    if (!row) return false;
    const me = this.cluster?.processId;
    if (me && row.owner !== me) return false;
    return row.status === 'running' || row.status === 'suspended' || row.status === 'backing-off';
  }

  private async resumeById(id: string): Promise<void> {
    if (this.active.has(id) || this.loading.has(id)) return;
    const row = await this.store.getInvocation(id);
    const me = this.cluster?.processId;
    if (me && row?.owner && row.owner !== me) return; // its owner was woken instead
    if (
      row &&
      (row.status === 'running' || row.status === 'suspended' || row.status === 'backing-off')
    )
      this.resume(row);
  }

  /** Cancellations requested while an invocation's journal was loading. */
  private readonly cancelRequests = new Set<string>();

  /**
   * Awakeable ids whose entry and lookup record are not durable yet, so a completion that
   * arrives at once (the id handed out from the same attempt) finds them.
   */
  private readonly newAwakeables = new Map<string, AwakeableRef>();

  /** Where an awakeable id leads: its lookup record (see {@link createAwakeable}). */
  private async findAwakeable(id: string): Promise<AwakeableRef | undefined> {
    const fresh = this.newAwakeables.get(id);
    if (fresh) return fresh;
    const value = (await this.store.getKv(AWAKEABLE_SCOPE, id))?.value as AwakeableRef | undefined;
    return value && typeof value.invocationId === 'string' && Number.isInteger(value.index)
      ? { invocationId: value.invocationId, index: value.index }
      : undefined;
  }

  /**
   * Checks that an awakeable can be completed: 404 for an unknown or malformed id, 409 when it
   * was completed already or its invocation has finished. Returns the entry's name (the id, or
   * empty for a legacy entry), which its completion must keep.
   */
  private async checkAwakeable(id: string): Promise<AwakeableRef & { name: string }> {
    const parsed = parseAwakeableId(id);
    if (!parsed)
      throw new NotFoundError(
        `"${id}" is not an awakeable id (they look like awk_<26 characters>)`,
      );
    const unknown = new NotFoundError(
      `no awakeable "${id}": it never existed or its invocation's retention ended`,
    );
    const ref = 'random' in parsed ? await this.findAwakeable(id) : parsed;
    if (!ref) throw unknown;
    // A random id is the entry's name; a legacy id is accepted only for a legacy entry (no
    // name), or an id made from an invocation id and an index would open random ones too.
    const name = 'random' in parsed ? id : '';
    const row = await this.store.getInvocation(ref.invocationId);
    if (!row) throw unknown;
    if (row.status === 'completed' || row.status === 'failed') {
      throw new ConflictError(
        `awakeable "${id}" cannot be completed: the invocation that created it has finished`,
        'already_finished',
      );
    }
    const entry = (await this.store.getJournal(ref.invocationId)).find(
      ([i]) => i === ref.index,
    )?.[1];
    if (!entry) {
      // Created by a runner whose journal write is not flushed yet.
      const fresh = this.newAwakeables.get(id);
      if (fresh && this.active.get(ref.invocationId)?.awakeables.has(ref.index))
        return { ...fresh, name };
      throw unknown;
    }
    if (entry.kind !== 'awakeable' || entry.name !== name) throw unknown;
    if (entry.done)
      throw new ConflictError(`awakeable "${id}" was already completed`, 'already_completed');
    return { ...ref, name };
  }

  private async completeAwakeableById(id: string, result: EntryOutcome): Promise<void> {
    const { invocationId, index, name } = await this.checkAwakeable(id);
    const entry: JournalEntry = { kind: 'awakeable', name, done: true, ...result };
    const completed = await this.completeEntry(invocationId, index, entry);
    if (!completed)
      throw new ConflictError(`awakeable "${id}" was already completed`, 'already_completed');
  }

  /**
   * Statuses an operator's cancel or kill may end an invocation from, checked in the same write
   * (`invocation.expect`): one that finished, started or woke meanwhile (another process, a
   * timer) is read again and decided anew rather than overwritten.
   */
  private async decide<T>(attempt: (retry: boolean) => Promise<T>): Promise<T> {
    for (let tries = 0; ; tries++) {
      try {
        return await attempt(tries > 0);
      } catch (err) {
        if (!isPreconditionFailed(err) || tries >= DECIDE_TRIES) throw err;
      }
    }
  }

  private cancelInvocation(id: string): Promise<InvocationInfo> {
    return this.decide(() => this.cancelOnce(id));
  }

  private async cancelOnce(id: string): Promise<InvocationInfo> {
    const runner = this.active.get(id);
    const row = runner?.row ?? (await this.store.getInvocation(id));
    if (!row) throw notFound(id);
    if (row.status === 'completed' || row.status === 'failed') {
      throw new ConflictError(
        `invocation ${id} has already finished (${row.status}); there is nothing to cancel`,
        'already_finished',
      );
    }
    if (row.status === 'paused') {
      throw new ConflictError(
        `invocation ${id} is paused: resume it (after fixing its code) or kill it`,
        'paused',
      );
    }
    if (row.cancel) return toInfo(row);
    const now = this.clock.now();
    if (row.status === 'pending' || row.status === 'scheduled') {
      // Not started: nothing to compensate, it ends here.
      this.dequeue(row);
      const unrecorded = await this.finishRow(
        row,
        { error: toErrorInfo(new CancelledError()) },
        false,
        ['pending', 'scheduled'],
      );
      if (unrecorded) throw unrecorded;
      return toInfo({ ...row, status: 'failed', error: toErrorInfo(new CancelledError()) });
    }
    const me = this.cluster?.processId;
    if (me && row.owner && row.owner !== me) {
      // Another process runs it: record the request and tell that process.
      await this.store.write([
        { op: 'invocation.update', id, set: { cancel: 'requested', modifiedAt: now } },
        { op: 'notify', to: row.owner, message: { type: 'cancel', invocationId: id } },
      ]);
      return toInfo({ ...row, cancel: 'requested' });
    }
    return this.applyCancel(row, runner);
  }

  /** A cancel request recorded by another process for an invocation this process owns. */
  private async cancelOwned(id: string): Promise<void> {
    const runner = this.active.get(id);
    if (runner) {
      runner.row.cancel = 'requested';
      runner.requestCancel();
      return;
    }
    await this.decide(async () => {
      const row = await this.store.getInvocation(id);
      if (!row || row.status === 'completed' || row.status === 'failed' || row.status === 'paused')
        return;
      await this.applyCancel({ ...row, cancel: undefined }, undefined);
    });
  }

  /** Delivers a cancellation to an invocation of this process, waking it if it waits. */
  private async applyCancel(
    row: InvocationRow,
    runner: Runner | undefined,
  ): Promise<InvocationInfo> {
    const id = row.id;
    const now = this.clock.now();
    row.cancel = 'requested';
    if (runner) {
      await this.store.write([
        { op: 'invocation.update', id, set: { cancel: 'requested', modifiedAt: now } },
      ]);
      runner.requestCancel();
      return toInfo(row);
    }
    // Suspended or backing off: wake it up so the handler sees the cancellation now. Only if it
    // still is: a finished invocation set running again would run again.
    await this.store.write([
      { op: 'invocation.expect', id, status: ['suspended', 'backing-off', 'running'] },
      {
        op: 'invocation.update',
        id,
        set: { cancel: 'requested', status: 'running', modifiedAt: now },
      },
    ]);
    if (this.loading.has(id)) this.cancelRequests.add(id);
    this.resume({ ...row, status: 'running', cancel: 'requested' });
    return toInfo({ ...row, status: 'running' });
  }

  /** Takes a not-yet-started invocation out of its object key's queue. */
  private dequeue(row: InvocationRow): void {
    if (row.exclusive) this.locks.remove(lockKey(row.service, row.key), row.id, (r) => r.id);
  }

  private killInvocation(id: string): Promise<InvocationInfo> {
    return this.decide(() => this.killOnce(id));
  }

  private async killOnce(id: string): Promise<InvocationInfo> {
    const runner = this.active.get(id);
    const row = runner?.row ?? (await this.store.getInvocation(id));
    if (!row) throw notFound(id);
    if (row.status === 'completed' || row.status === 'failed') {
      throw new ConflictError(
        `invocation ${id} has already finished (${row.status})`,
        'already_finished',
      );
    }
    if (runner) this.abandon(runner);
    this.dequeue(row);
    const error: ErrorInfo = {
      code: 'killed',
      message: `invocation ${id} was killed by an operator`,
      // A 4xx like `cancelled`: the invocation ended on purpose, nothing failed on the server.
      status: 409,
    };
    const unrecorded = await this.finishRow(row, { error }, false, UNFINISHED);
    if (unrecorded) throw unrecorded;
    const me = this.cluster?.processId;
    if (me && row.owner && row.owner !== me) {
      // Its process stops running it when it hears this.
      await this.store.write([
        { op: 'notify', to: row.owner, message: { type: 'kill', invocationId: id } },
      ]);
    }
    return toInfo({ ...row, status: 'failed', error });
  }

  private async purgeInvocation(id: string): Promise<void> {
    const row = await this.store.getInvocation(id);
    if (!row) throw notFound(id);
    if (row.status !== 'completed' && row.status !== 'failed') {
      throw new ConflictError(
        `invocation ${id} is ${row.status}: only finished invocations can be purged (cancel or kill it first)`,
        'not_finished',
      );
    }
    await this.store.write([{ op: 'invocation.delete', id }]);
  }

  private async resumePausedInvocation(id: string): Promise<InvocationInfo> {
    const row = await this.store.getInvocation(id);
    if (!row) throw notFound(id);
    if (row.status !== 'paused') {
      throw new ConflictError(
        `invocation ${id} is ${row.status}, not paused: only paused invocations can be resumed`,
        'not_paused',
      );
    }
    const resumed: InvocationRow = { ...row, status: 'running', error: undefined };
    await this.store.write([
      {
        op: 'invocation.update',
        id,
        set: { status: 'running', error: undefined, modifiedAt: this.clock.now() },
      },
    ]);
    this.resume(resumed);
    return toInfo(resumed);
  }

  // ---- RunnerOwner: what handlers do ---------------------------------------------------------

  /** Every write of a runner goes through here; a failed write stops the invocation. */
  private write(runner: Runner, ops: WriteOp[]): Promise<OpResult[]> {
    const p = this.store.write(ops);
    p.catch((err: unknown) => this.failAttempt(runner, err));
    return p;
  }

  /** A journal write of the attempt failed: the attempt stops and is retried from its journal. */
  private failAttempt(runner: Runner, err: unknown): void {
    if (runner.dead) return;
    this.log(
      'error',
      `a journal write failed: ${errorMessage(err)}; the attempt is retried`,
      this.fields(runner),
    );
    this.abandon(runner);
    this.scheduleRetry(runner.row, runner.row.attempt + 1, -1, 1000, err);
  }

  /**
   * `p` is a write (or a read-then-write) the attempt depends on, whose promise the handler
   * may drop (a send, a completion) or may catch: when the store is unavailable, the attempt
   * stops and is retried from its journal, rather than going on as if the write had been
   * recorded (or failing the step or the handler with an outage, which would spend its retries
   * or look like the step's own failure). Errors of the operation itself still reach the
   * handler through `p`.
   */
  private failsAttempt<T>(runner: Runner, p: Promise<T>): Promise<T> {
    p.catch((err: unknown) => {
      if (isUnavailable(err)) this.failAttempt(runner, err);
    });
    return p;
  }

  commit(
    runner: Runner,
    index: number,
    entry: JournalEntry,
    writes: readonly StepWrite[] | undefined,
  ): Promise<unknown> {
    // An outage fails the attempt (the step's result is not durable, so the step runs again
    // in the retry): the handler, which may catch what its step throws, must not take an
    // outage for the step's failure. Other write errors reach the handler.
    const ops: WriteOp[] = [{ op: 'journal.put', invocationId: runner.row.id, index, entry }];
    // A step's key-value writes (runWithWrites) ride in the same write: atomic with the entry.
    if (writes) {
      for (const w of writes) {
        const op = stepWriteOp(w);
        if (!op)
          return Promise.reject(
            new UsageError(
              `a step can only add kv.put and kv.delete writes to its commit, not ${String((w as { op?: unknown }).op)}`,
            ),
          );
        ops.push(op);
      }
    }
    return this.failsAttempt(runner, this.store.write(ops));
  }

  append(runner: Runner, index: number, entry: JournalEntry): void {
    const ops: WriteOp[] = [{ op: 'journal.put', invocationId: runner.row.id, index, entry }];
    const { service, key } = runner.row;
    if (entry.kind === 'set')
      ops.push({ op: 'state.set', service, key, name: entry.name, value: entry.value });
    else if (entry.kind === 'clear')
      ops.push({ op: 'state.delete', service, key, name: entry.name });
    else if (entry.kind === 'clearAll') ops.push({ op: 'state.clear', service, key });
    else if (entry.kind === 'outcome') {
      runner.row.outcome = entry.name;
      ops.push({ op: 'invocation.update', id: runner.row.id, set: { outcome: entry.name } });
    }
    void this.write(runner, ops).catch(() => undefined);
  }

  readState(runner: Runner, name: string): Promise<unknown> {
    return this.store.getState(runner.row.service, runner.row.key, name);
  }

  readStateKeys(runner: Runner): Promise<string[]> {
    return this.store.getStateKeys(runner.row.service, runner.row.key);
  }

  startSleep(runner: Runner, index: number, entry: JournalEntry): void {
    const timer: TimerRow = { invocationId: runner.row.id, index, fireAt: entry.wakeAt! };
    this.write(runner, [
      { op: 'journal.put', invocationId: runner.row.id, index, entry },
      { op: 'timer.put', timer },
    ]).then(
      () => this.timers.add(timer),
      () => undefined,
    );
  }

  startCall(
    runner: Runner,
    index: number,
    target: Target,
    input: unknown,
    options: CallOptions | undefined,
  ): void {
    const name = targetName(target);
    const me = runner.row.id;
    const pending: JournalEntry = { kind: 'call', name, done: false };
    runner.expecting++; // busy until the call is created (validation and dedupe lookups are async)
    this.create(
      { ...target, input, idempotencyKey: options?.idempotencyKey },
      { id: me, index },
      (row) => {
        runner.callees.set(index, row.id);
        return [
          { op: 'journal.put', invocationId: me, index, entry: { ...pending, calleeId: row.id } },
        ];
      },
      true, // ctx.call normalized the input
    ).then(
      ({ row, existing }) => {
        runner.doneExpecting();
        if (existing) runner.callees.set(index, row.id);
        if (!existing || runner.dead) return;
        // Attached to an existing invocation (idempotency key or workflow key). The attacher
        // stays in memory (busy) until the result arrives, since the callee does not know it.
        const entry: JournalEntry = { ...pending, calleeId: row.id };
        void this.write(runner, [{ op: 'journal.put', invocationId: me, index, entry }]).catch(
          () => undefined,
        );
        this.attachCall(runner, index, entry);
      },
      (err: unknown) => {
        runner.doneExpecting();
        // Its write failed: the attempt was stopped and is retried, the call with it.
        if (runner.dead) return;
        // The call could not start (unknown target, invalid input): the call fails terminally.
        // An outage on the way is no answer of the target's: the attempt is retried instead.
        if (isUnavailable(err)) return this.failAttempt(runner, err);
        this.failsAttempt(
          runner,
          this.completeEntry(me, index, { ...pending, done: true, error: toErrorInfo(err) }),
        ).catch(() => undefined);
      },
    );
  }

  /** Waits for a callee this runner is not the primary caller of, and completes the entry. */
  private attachCall(runner: Runner, index: number, entry: JournalEntry): void {
    runner.expecting++;
    const settle = (outcome: Outcome): void => {
      runner.doneExpecting();
      // Not recorded (an outage): the attempt is retried, and its replay waits again.
      this.failsAttempt(
        runner,
        this.completeEntry(runner.row.id, index, {
          ...entry,
          done: true,
          ...entryResult(outcome),
        }),
      ).catch(() => undefined);
    };
    this.awaitOutcome(entry.calleeId!, true).then(settle, (err: unknown) => {
      // The store could not be read (an outage): that is no outcome of the callee's. Wait
      // again later (staying busy meanwhile) rather than fail the call with it.
      this.log('warn', `could not wait for ${entry.calleeId}: ${errorMessage(err)}`, {});
      this.clock.setTimer(RETRY_LATER_MS, () => {
        runner.doneExpecting();
        if (!runner.dead && !this.stopping) this.attachCall(runner, index, entry);
      });
    });
  }

  /**
   * Durably completes a waiting journal entry of invocation `id`, then hands the completion to
   * its runner, or resumes the invocation if it was suspended.
   */
  private completeEntry(
    id: string,
    index: number,
    entry: JournalEntry,
    extraOps: WriteOp[] = [],
  ): Promise<boolean> {
    const before = this.active.get(id);
    if (before) before.expecting++;
    const me = this.cluster?.processId;
    const complete: WriteOp = {
      op: 'journal.complete',
      invocationId: id,
      index,
      entry,
      ...(me ? { notifyFrom: me } : {}),
    };
    return this.store.write([complete, ...extraOps]).then(
      (results) => {
        const r = results[0] as
          { completed: boolean; resumed: boolean; owner?: string } | undefined;
        // An invocation owned by another process was woken by the store.
        const mine = !me || !r?.owner || r.owner === me;
        if (r?.completed && mine) this.deliver(id, index, entry, r.resumed || before !== undefined);
        else if (r && !r.completed) this.redeliver(id, index);
        if (before) before.doneExpecting();
        return r?.completed === true;
      },
      (err: unknown) => {
        if (before) before.doneExpecting();
        this.log('error', `could not complete entry ${index} of ${id}: ${errorMessage(err)}`, {});
        throw err;
      },
    );
  }

  /**
   * The entry was complete already. If a runner here still waits for it, the completing write
   * was this process's own whose answer an outage lost (it committed, then the connection
   * dropped; the retry finds it done): hand the runner the stored completion, which nothing
   * else would. Rare, so reading the journal is fine.
   */
  private redeliver(id: string, index: number): void {
    const runner = this.active.get(id);
    if (!runner?.waitingIndexes().includes(index)) return;
    this.background(
      `redelivering entry ${index} of ${id}`,
      this.store.getJournal(id).then((journal) => {
        const stored = journal.find(([i]) => i === index)?.[1];
        if (stored?.done && this.active.get(id) === runner) runner.deliver(index, stored);
      }),
    );
  }

  private deliver(id: string, index: number, entry: JournalEntry, mayNeedResume: boolean): void {
    const runner = this.active.get(id);
    const loading = this.loading.get(id);
    if (runner) runner.deliver(index, entry);
    else if (loading) loading.pending.push([index, entry]);
    else if (mayNeedResume) this.background(`resuming ${id}`, this.resumeById(id));
  }

  startSend(
    runner: Runner,
    index: number,
    target: Target,
    input: unknown,
    options: SendOptions | undefined,
    delayMs: number,
  ): Promise<string> {
    // Most handlers never look at the send's id: an outage while sending must stop the
    // attempt, or it would go on as if the send had been recorded (and it would never happen).
    return this.failsAttempt(runner, this.sendNow(runner, index, target, input, options, delayMs));
  }

  private async sendNow(
    runner: Runner,
    index: number,
    target: Target,
    input: unknown,
    options: SendOptions | undefined,
    delayMs: number,
  ): Promise<string> {
    const me = runner.row.id;
    const entryFor = (calleeId: string): JournalEntry => ({
      kind: 'send',
      name: targetName(target),
      done: true,
      calleeId,
    });
    runner.expecting++;
    try {
      checkDelay(delayMs);
      const { row, existing, durable } = await this.create(
        { ...target, input, idempotencyKey: options?.idempotencyKey, delayMs },
        undefined,
        (r) => [{ op: 'journal.put', invocationId: me, index, entry: entryFor(r.id) }],
        true, // ctx.send normalized the input
      );
      if (existing && !runner.dead) {
        void this.write(runner, [
          { op: 'journal.put', invocationId: me, index, entry: entryFor(row.id) },
        ]).catch(() => undefined);
      }
      // The id leaves the engine through the handler: only once the invocation it names is
      // durable (if its write fails, the attempt is retried and sends again).
      await durable;
      return row.id;
    } finally {
      runner.doneExpecting();
    }
  }

  /** @internal The id of an invocation's awakeable at `index`: the same in every attempt. */
  awakeableIdFor(invocationId: string, index: number): string {
    if (!this.awakeableSecret)
      throw new KeelError(
        'cannot create an awakeable before the engine has started: await engine.start() first',
        { code: 'engine_not_started', status: 503 },
      );
    return awakeableIdFor(this.awakeableSecret, invocationId, index);
  }

  /**
   * Records an awakeable with the lookup record that leads its id to the entry, in one write;
   * until that is durable the id is found in memory (by this process only). A retried attempt
   * records the same id again (ids are derived from the entry), so a lookup lost with a crash
   * is written anew. Resolves (never rejects) once the write has settled.
   */
  createAwakeable(runner: Runner, index: number, entry: JournalEntry): Promise<void> {
    const ops: WriteOp[] = [{ op: 'journal.put', invocationId: runner.row.id, index, entry }];
    const id = entry.name;
    // Its own object: a retry re-creating the same id while an earlier write is still pending
    // replaces it, and only the last write to finish lets the id go.
    const ref: AwakeableRef | undefined =
      id !== '' ? { invocationId: runner.row.id, index } : undefined;
    if (ref) {
      this.newAwakeables.set(id, ref);
      ops.push({ op: 'kv.put', scope: AWAKEABLE_SCOPE, key: id, value: ref });
    }
    // Settles once the write did (a failure stops the attempt first, see `write`): step bodies
    // wait for it (see `Runner.awakeablesDurable`).
    return this.write(runner, ops)
      .then(
        () => undefined,
        () => undefined,
      )
      .finally(() => {
        if (ref && this.newAwakeables.get(id) === ref) this.newAwakeables.delete(id);
      });
  }

  completeAwakeable(
    runner: Runner,
    index: number,
    id: string,
    result: EntryOutcome,
  ): Promise<JournalEntry> {
    return this.failsAttempt(runner, this.completeAwakeableNow(runner, index, id, result));
  }

  private async completeAwakeableNow(
    runner: Runner,
    index: number,
    id: string,
    result: EntryOutcome,
  ): Promise<JournalEntry> {
    const own: JournalEntry = { kind: 'completeAwakeable', name: id, done: true };
    let target: AwakeableRef & { name: string };
    try {
      target = await this.checkAwakeable(id);
    } catch (err) {
      // An outage says nothing about the awakeable: not journaled as the completion's failure.
      if (isUnavailable(err)) throw err;
      const failed = { ...own, error: toErrorInfo(err) };
      await this.store.write([
        { op: 'journal.put', invocationId: runner.row.id, index, entry: failed },
      ]);
      return failed;
    }
    // The attempt and the completion are one write: exactly once, even across a crash.
    const entry: JournalEntry = { kind: 'awakeable', name: target.name, done: true, ...result };
    const completed = await this.completeEntry(target.invocationId, target.index, entry, [
      { op: 'journal.put', invocationId: runner.row.id, index, entry: own },
    ]);
    if (completed) return own;
    const failed = {
      ...own,
      error: toErrorInfo(
        new ConflictError(`awakeable "${id}" was already completed`, 'already_completed'),
      ),
    };
    await this.store.write([
      { op: 'journal.put', invocationId: runner.row.id, index, entry: failed },
    ]);
    return failed;
  }

  awaitPromise(runner: Runner, index: number, entry: JournalEntry): void {
    const { service, key, id } = runner.row;
    runner.expecting++;
    // A failed registration fails the attempt: nothing would ever wake it.
    this.write(runner, [
      { op: 'promise.await', service, key, name: entry.name, invocationId: id, index, entry },
    ]).then(
      (results) => {
        runner.doneExpecting();
        const r = results[0] as { done: boolean; value?: unknown; error?: ErrorInfo };
        if (r.done)
          runner.deliver(index, {
            ...entry,
            done: true,
            ...(r.error ? { error: r.error } : { value: r.value }),
          });
        else if (runner.isIdle && !runner.dead) this.idle(runner);
      },
      (err: unknown) => {
        runner.doneExpecting();
        this.log(
          'error',
          `could not wait for promise "${entry.name}": ${errorMessage(err)}`,
          this.fields(runner),
        );
      },
    );
  }

  peekPromise(
    runner: Runner,
    name: string,
  ): Promise<{ done: boolean; value?: unknown; error?: ErrorInfo } | undefined> {
    return this.store.getPromise(runner.row.service, runner.row.key, name);
  }

  /** Promise completions in flight, so two completions of one promise cannot both succeed. */
  private readonly completingPromises = new Set<string>();

  completePromise(
    runner: Runner,
    index: number,
    name: string,
    result: EntryOutcome,
  ): Promise<JournalEntry> {
    return this.failsAttempt(runner, this.completePromiseNow(runner, index, name, result));
  }

  private async completePromiseNow(
    runner: Runner,
    index: number,
    name: string,
    result: EntryOutcome,
  ): Promise<JournalEntry> {
    const { service, key, id } = runner.row;
    const own: JournalEntry = { kind: 'completePromise', name, done: true };
    const lock = `${service}\u0000${key}\u0000${name}`;
    const conflict = (): JournalEntry => ({
      ...own,
      error: toErrorInfo(
        new ConflictError(
          `promise "${name}" of ${service}/${key} was already completed`,
          'promise_already_completed',
        ),
      ),
    });
    const existing = this.completingPromises.has(lock)
      ? { done: true }
      : await this.store.getPromise(service, key, name);
    if (existing?.done || this.completingPromises.has(lock)) {
      const failed = conflict();
      await this.store.write([{ op: 'journal.put', invocationId: id, index, entry: failed }]);
      return failed;
    }
    this.completingPromises.add(lock);
    try {
      const results = await this.store.write([
        {
          op: 'promise.complete',
          service,
          key,
          name,
          ...result,
          ...(this.cluster ? { notifyFrom: this.cluster.processId } : {}),
        },
        { op: 'journal.put', invocationId: id, index, entry: own },
      ]);
      const r = results[0] as {
        completed: boolean;
        waiters: Array<{ invocationId: string; index: number; resumed: boolean; owner?: string }>;
      };
      const completion: JournalEntry = { kind: 'promise', name, done: true, ...result };
      const me = this.cluster?.processId;
      for (const w of r.waiters) {
        // Waiters owned by other processes were woken by the store.
        if (!me || !w.owner || w.owner === me)
          this.deliver(w.invocationId, w.index, completion, w.resumed);
      }
      return own;
    } finally {
      this.completingPromises.delete(lock);
    }
  }

  cancelEntry(runner: Runner, index: number, entry: JournalEntry): void {
    const cancelled: JournalEntry = {
      ...entry,
      done: true,
      value: undefined,
      error: toErrorInfo(new CancelledError()),
    };
    const extra: WriteOp[] =
      entry.kind === 'sleep' ? [{ op: 'timer.delete', invocationId: runner.row.id, index }] : [];
    // Not recorded (an outage): the attempt is retried. The cancellation's 'delivered' mark
    // rides in the same batch, so it failed too and the replay is cancelled again.
    this.failsAttempt(runner, this.completeEntry(runner.row.id, index, cancelled, extra)).catch(
      () => undefined,
    );
    // Cancellation propagates to the invocation this one waits on.
    const callee = entry.calleeId ?? runner.callees.get(index);
    if (entry.kind === 'call' && callee) void this.cancelInvocation(callee).catch(() => undefined);
  }

  cancelDelivered(runner: Runner): void {
    runner.row.cancel = 'delivered';
    void this.write(runner, [
      { op: 'invocation.update', id: runner.row.id, set: { cancel: 'delivered' } },
    ]).catch(() => undefined);
  }

  /**
   * Shared store: a step body starts only while this process's lease is certain and the
   * invocation is still this process's (see `Cluster.checkLease`); otherwise another process
   * may be running the same invocation, and the attempt is dropped (the owner runs it again).
   */
  mayStartStep(runner: Runner): boolean {
    const cluster = this.cluster;
    if (!cluster) return true;
    if (cluster.checkLease() && runner.row.owner === cluster.processId) return true;
    this.abandon(runner);
    // No status write follows (none may land): nothing is settling. Left marked, the
    // invocation would never be resumed here once taken over under the new id: every resume
    // would wait for a write that never comes (the fence, which clears the marks of the
    // runners it drops, no longer finds this one among them).
    this.settling.delete(runner.row.id);
    return false;
  }

  idle(runner: Runner): void {
    if (this.suspendTimers.has(runner.row.id)) return;
    const cancel = this.clock.setTimer(this.suspendAfterMs, () => {
      this.suspendTimers.delete(runner.row.id);
      if (runner.dead || !runner.isIdle || this.active.get(runner.row.id) !== runner) return;
      this.suspend(runner);
    });
    this.suspendTimers.set(runner.row.id, cancel);
  }

  /** Drops a waiting invocation from memory; a completion or timer resumes it by replay. */
  private suspend(runner: Runner): void {
    const waitingFor = runner.waitingIndexes();
    this.abandon(runner);
    const id = runner.row.id;
    // Not if a completion of what it waits for is durable already: one that committed while
    // it was going to sleep found it running, so did not resume it, and its wake-up may have
    // reached the runner just dropped. Then it runs again instead.
    this.write(runner, [{ op: 'invocation.suspend', id, waitingFor, modifiedAt: this.clock.now() }])
      .then(([r]) => {
        this.settling.delete(id);
        if (!(r as { suspended: boolean }).suspended) return this.resumeById(id);
      })
      .catch(() => undefined)
      .finally(() => this.settling.delete(id));
  }

  /**
   * Invocations dropped from memory whose status write (finished, suspended, backing off,
   * paused) is still in flight: the sweep must not take their 'running' row for a lost wake-up.
   */
  private readonly settling = new Set<string>();

  /** Kills a runner and forgets it, keeping its object key held. */
  private abandon(runner: Runner): void {
    this.settling.add(runner.row.id);
    runner.kill();
    if (this.active.get(runner.row.id) === runner) this.active.delete(runner.row.id);
    const cancel = this.suspendTimers.get(runner.row.id);
    if (cancel) {
      cancel();
      this.suspendTimers.delete(runner.row.id);
    }
  }

  retry(
    runner: Runner,
    failure: { error: unknown; index: number; attempt: number; policy: ResolvedRetryPolicy },
  ): void {
    this.abandon(runner);
    const delay = backoffDelay(failure.policy, failure.attempt, Math.random());
    this.scheduleRetry(runner.row, failure.attempt, failure.index, delay, failure.error);
  }

  private scheduleRetry(
    row: InvocationRow,
    attempt: number,
    index: number,
    delay: number,
    error: unknown,
  ): void {
    const runAt = this.clock.now() + delay;
    const what = index >= 0 ? `step ${index}` : 'the handler';
    this.log(
      'warn',
      `attempt ${attempt} failed in ${what}: ${errorMessage(error)}; retrying in ${delay} ms`,
      { invocationId: row.id, target: targetOf(row) },
    );
    const timer: TimerRow = { invocationId: row.id, index: -1, fireAt: runAt };
    this.store
      .write([
        {
          op: 'invocation.update',
          id: row.id,
          set: {
            status: 'backing-off',
            attempt,
            retryIndex: index,
            runAt,
            modifiedAt: this.clock.now(),
            error: toErrorInfo(error),
          },
        },
        { op: 'timer.put', timer },
      ])
      .then(
        () => this.timers.add(timer),
        (err: unknown) =>
          this.log('error', `could not schedule a retry of ${row.id}: ${errorMessage(err)}`, {}),
      )
      .finally(() => this.settling.delete(row.id));
  }

  fatal(runner: Runner, error: KeelError): void {
    this.abandon(runner);
    this.pauseRow(runner.row, error);
  }

  /**
   * Pauses an invocation that cannot go on (non-determinism, a journal that cannot be read or
   * replayed): it holds its object key and waits, with the error recorded, for an operator to
   * fix the cause and resume it, or to kill it. Nothing else stops.
   */
  private pauseRow(row: InvocationRow, error: KeelError): void {
    this.settling.add(row.id);
    this.log('error', `${error.message} The invocation is paused.`, {
      invocationId: row.id,
      target: targetOf(row),
    });
    this.store
      .write([
        {
          op: 'invocation.update',
          id: row.id,
          set: { status: 'paused', error: toErrorInfo(error), modifiedAt: this.clock.now() },
        },
      ])
      .catch((err: unknown) =>
        this.log('error', `could not pause ${row.id}: ${errorMessage(err)}`, {}),
      )
      .finally(() => this.settling.delete(row.id));
  }

  finish(runner: Runner, outcome: { output: unknown } | { error: unknown }): void {
    if ('error' in outcome && !isTerminal(outcome.error)) {
      const attempt = (runner.row.retryIndex === -1 ? runner.row.attempt : 0) + 1;
      if (attempt < runner.retryPolicy.maxAttempts) {
        this.retry(runner, {
          error: outcome.error,
          index: -1,
          attempt,
          policy: runner.retryPolicy,
        });
        return;
      }
      outcome = {
        error: new RetriesExhaustedError(`${targetOf(runner.row)}`, attempt, outcome.error),
      };
    }
    this.abandon(runner);
    this.expireAwakeableLookups(runner);
    // A workflow run that failed before its first journaled call did nothing durable (typically
    // it refused its input): it gives its run-once key back, so a bad request cannot poison a
    // predictable key such as an order id. The failed invocation stays readable by its id.
    const freeKey = runner.isWorkflow && runner.spec.name === 'run' && !runner.ctx.touchedJournal;
    if ('output' in outcome && runner.spec.options.output) {
      const schema = runner.spec.options.output;
      void validate(schema, outcome.output, `output of ${targetOf(runner.row)}`).then(
        (output) => this.finishRow(runner.row, { output }),
        (err: unknown) => this.finishRow(runner.row, { error: toErrorInfo(err) }, freeKey),
      );
      return;
    }
    if ('output' in outcome) {
      try {
        outcome = { output: normalize(outcome.output, `the result of ${targetOf(runner.row)}`) };
      } catch (err) {
        outcome = { error: err };
      }
    }
    void this.finishRow(
      runner.row,
      'output' in outcome ? { output: outcome.output } : { error: toErrorInfo(outcome.error) },
      freeKey,
    );
  }

  /**
   * The invocation is finishing: its awakeables' lookup records expire with it, so a late
   * completion still answers 409 (finished) until retention, then 404, and nothing outlives it.
   */
  private expireAwakeableLookups(runner: Runner): void {
    const { id: invocationId, service } = runner.row;
    const expiresAt = this.clock.now() + this.retentionOf(service);
    const ops: WriteOp[] = [];
    const expire = (id: string, index: number): void => {
      const value: AwakeableRef = { invocationId, index };
      ops.push({ op: 'kv.put', scope: AWAKEABLE_SCOPE, key: id, value, expiresAt });
    };
    for (const [index, e] of runner.recorded)
      if (e.kind === 'awakeable' && e.name) expire(e.name, index);
    for (const [id, index] of runner.awakeableIds ?? []) expire(id, index);
    if (ops.length === 0) return;
    this.store.write(ops).catch((err: unknown) => {
      this.log('warn', `could not set the expiry of awakeable lookups: ${errorMessage(err)}`, {});
    });
  }

  /** Retention by service name, parsed once. */
  private readonly retentions = new Map<string, number>();

  private retentionOf(service: string): number {
    let ms = this.retentions.get(service);
    if (ms === undefined) {
      const def = this.registry.get(service);
      ms =
        def?.options.retention !== undefined
          ? parseDuration(def.options.retention)
          : this.retentionMs;
      // Only registered services: names from stored rows of removed services are not kept.
      if (def) this.retentions.set(service, ms);
    }
    return ms;
  }

  /**
   * Records the outcome, completes the caller's entry, then releases the key and wakes waiters.
   * `freeDedupe`: a failure also clears the row's dedupe key in the same write (see `finish`).
   * Resolves with the store's error when the outcome could not be recorded, else undefined.
   */
  private finishRow(
    row: InvocationRow,
    outcome: Outcome,
    freeDedupe = false,
    /** Only while its status is one of these (an operator's cancel or kill: see `decide`). */
    expect?: InvocationStatus[],
  ): Promise<Error | undefined> {
    const now = this.clock.now();
    const retention = this.retentionOf(row.service);
    const failed = 'error' in outcome;
    const clearDedupe = failed && freeDedupe && row.dedupe !== undefined;
    const ops: WriteOp[] = expect ? [{ op: 'invocation.expect', id: row.id, status: expect }] : [];
    const first = ops.length; // results[first] answers the update, results[first + 1] the caller's entry
    ops.push({
      op: 'invocation.update',
      id: row.id,
      set: {
        status: failed ? 'failed' : 'completed',
        output: failed ? undefined : outcome.output,
        error: failed ? outcome.error : undefined,
        completedAt: now,
        modifiedAt: now,
        expiresAt: now + retention,
        ...(clearDedupe ? { dedupe: undefined } : {}),
      },
    });
    const callerEntry: JournalEntry | undefined =
      row.callerId !== undefined && row.callerEntry !== undefined
        ? {
            kind: 'call',
            name: targetOf(row),
            done: true,
            calleeId: row.id,
            ...entryResult(outcome),
          }
        : undefined;
    const caller = row.callerId === undefined ? undefined : this.active.get(row.callerId);
    const me = this.cluster?.processId;
    if (callerEntry)
      ops.push({
        op: 'journal.complete',
        invocationId: row.callerId!,
        index: row.callerEntry!,
        entry: callerEntry,
        ...(me ? { notifyFrom: me } : {}),
      });
    if (me) {
      // Whoever waits for this result in another process hears it on commit.
      ops.push({ op: 'notify', message: { type: 'done', invocationId: row.id, from: me } });
      if (row.exclusive)
        ops.push({
          op: 'key.release',
          service: row.service,
          key: row.key,
          invocationId: row.id,
          owner: me,
        });
    }
    if (caller) caller.expecting++;
    return this.store
      .write(ops)
      .then(
        (results): undefined => {
          const loading = this.loading.get(row.id);
          if (loading) loading.finished = true;
          if (clearDedupe) row.dedupe = undefined;
          if (failed)
            this.log('warn', `failed: ${outcome.error.message}`, {
              invocationId: row.id,
              target: targetOf(row),
            });
          if (me) {
            const next = row.exclusive
              ? (results[results.length - 1] as { next?: InvocationRow }).next
              : undefined;
            if (next) this.launch(next, NO_ENTRIES);
          } else {
            this.releaseKey(row);
          }
          this.settleWaiters(row.id, outcome);
          if (caller) caller.doneExpecting();
          if (callerEntry) {
            const r = results[first + 1] as { resumed: boolean; owner?: string } | undefined;
            // A caller owned by another process was woken by the store.
            if (!me || !r?.owner || r.owner === me) {
              this.deliver(
                row.callerId!,
                row.callerEntry!,
                callerEntry,
                r?.resumed === true || caller !== undefined,
              );
            }
          }
        },
        (err: unknown) => {
          if (caller) caller.doneExpecting();
          // The operator's cancel or kill found the invocation changed: the caller decides anew.
          if (isPreconditionFailed(err)) return err as Error;
          this.log(
            'error',
            `could not record the outcome of ${row.id}: ${errorMessage(err)}; it runs again at the next start`,
            {},
          );
          // Resolved, not rejected: most callers fire and forget. An operator's kill or cancel
          // checks it, so that it never answers for an outcome that was not recorded.
          return err instanceof Error
            ? err
            : new KeelError(errorMessage(err), { code: 'internal', cause: err });
        },
      )
      .finally(() => this.settling.delete(row.id));
  }

  private releaseKey(row: InvocationRow): void {
    if (!row.exclusive) return;
    const next = this.locks.release(lockKey(row.service, row.key), row.id, (r) => r.id);
    if (next) this.launch(next, NO_ENTRIES);
  }

  // ---- cluster (shared stores) -------------------------------------------------------------

  private onClusterMessage(m: ClusterMessage): void {
    if (this.stopping) return;
    switch (m.type) {
      // A failure to act on a message (the store unreachable) is left to the sweep, or retried.
      case 'wake':
        this.background(`waking ${m.invocationId}`, this.wake(m.invocationId));
        break;
      case 'done':
        // Its own 'done' can arrive before the write's answer that settles the waiters here:
        // reading the row then would be a wasted round trip per invocation.
        if (m.from !== this.cluster?.processId && this.resultWaiters.has(m.invocationId))
          this.background(`reading ${m.invocationId}`, this.settleFromStore(m.invocationId));
        break;
      case 'cancel': {
        const id = m.invocationId;
        const cancel = (): Promise<void> => this.cancelOwned(id);
        cancel().catch((err: unknown) => {
          this.log('warn', `could not cancel ${id}: ${errorMessage(err)}; trying again`, {});
          this.retryLater(`cancelling ${id}`, cancel);
        });
        break;
      }
      case 'kill': {
        const runner = this.active.get(m.invocationId);
        if (runner) this.abandon(runner);
        // The killer wrote its outcome: no write of this process's is in flight for it.
        this.settling.delete(m.invocationId);
        break;
      }
    }
  }

  /** Another process completed an entry of an invocation this process owns. */
  private async wake(id: string): Promise<void> {
    const runner = this.active.get(id);
    if (!runner) return this.resumeById(id);
    const waiting = runner.waitingIndexes();
    if (waiting.length === 0) return;
    const journal = await this.store.getJournal(id);
    // It suspended while the journal loaded: the completion must not go to the dropped runner.
    if (this.active.get(id) !== runner) return this.resumeById(id);
    for (const [index, entry] of journal) {
      if (entry.done && waiting.includes(index)) runner.deliver(index, entry);
    }
  }

  private async settleFromStore(id: string): Promise<void> {
    const row = await this.store.getInvocation(id);
    if (row?.status === 'completed') this.settleWaiters(id, { output: row.output });
    else if (row?.status === 'failed') this.settleWaiters(id, { error: row.error! });
  }

  /**
   * Invocations of a process whose lease ended (or of an owner that is not registered) are now
   * this process's: run what was running. They are this process's in the store already, so
   * when a read fails (an outage) the sweep starts what is left.
   */
  private async takeOver(ids: string[]): Promise<void> {
    try {
      for (const id of ids) {
        const row = await this.store.getInvocation(id);
        if (!row || this.active.has(id)) continue;
        if (row.status === 'running') this.resume(row);
        else if (row.status === 'pending') this.enqueue(row);
      }
    } finally {
      // Their timers (sleeps, retries, delayed starts) fire here from now on.
      this.timers.reload();
    }
  }

  /**
   * This process lost its lease: its invocations run elsewhere now. Its runners stop without
   * another write (the store refuses the old id's writes anyway), and its timers, which are
   * other processes' now, are dropped; the ones of its new id load when it has joined again.
   */
  private fence(): void {
    for (const runner of [...this.active.values()]) {
      this.abandon(runner);
      // No status write of theirs follows (none would land): nothing is settling. Left marked,
      // they would never be resumed here once taken over under the new id.
      this.settling.delete(runner.row.id);
    }
    this.timers.stop();
  }

  private rejoined(): void {
    if (this.stopping) return;
    this.timers.start().catch(() => this.timers.reload());
  }

  /** Runs a task in the background: a failure (the store unreachable) is logged, never thrown. */
  private background(what: string, task: Promise<unknown>): void {
    task.catch((err: unknown) =>
      this.log('warn', `${what} failed: ${errorMessage(err)}; it is retried later`, {}),
    );
  }

  /** Runs `task` after a pause, again and again while it fails, until the engine stops. */
  private retryLater(what: string, task: () => Promise<unknown>): void {
    this.clock.setTimer(RETRY_LATER_MS, () => {
      if (this.stopping) return;
      task().catch((err: unknown) => {
        this.log('warn', `${what} failed: ${errorMessage(err)}; trying again`, {});
        this.retryLater(what, task);
      });
    });
  }

  /**
   * The fallback for a lost message: results waited for here, and invocations of this process
   * made runnable while nobody told it.
   */
  private async sweep(): Promise<void> {
    if (this.stopping) return;
    try {
      await this.sweepOnce();
    } catch (err) {
      this.sweepFailed = true;
      throw err;
    }
    if (this.sweepFailed) {
      // The store is back after an outage: timers whose writes' answers were lost may be
      // durable without being held here.
      this.sweepFailed = false;
      this.timers.reload();
    }
  }

  private sweepFailed = false;

  private async sweepOnce(): Promise<void> {
    for (const id of [...this.resultWaiters.keys()]) {
      // Results of invocations running here arrive without the store's help.
      if (!this.active.has(id) && !this.loading.has(id)) await this.settleFromStore(id);
    }
    const me = this.cluster?.processId;
    if (!me) return;
    for (const row of await this.store.listRunnable(me)) {
      if (this.active.has(row.id) || this.loading.has(row.id) || this.settling.has(row.id))
        continue;
      if (row.status === 'running') this.resume(row);
      // Pending for a while: its start may have failed to reach the store (a dropped
      // connection). Try again; one queued behind its key's holder just stays queued.
      else if (row.status === 'pending' && row.modifiedAt < this.clock.now() - 2000)
        this.enqueue(row);
    }
    // A timer write (a retry, a delayed start) whose answer an outage lost may be durable but
    // not held here, leaving its row 'backing-off' or 'scheduled' forever: overdue timers the
    // timer service does not know make it reload.
    await this.timers.reloadIfStranded(2000);
  }

  // ---- timers ----------------------------------------------------------------------------

  private fireTimer(t: TimerRow): void {
    // A timer whose firing could not be recorded (the store is unreachable) fires again soon.
    const again = (err: unknown): void => {
      this.log(
        'warn',
        `could not fire a timer of ${t.invocationId}: ${errorMessage(err)}; trying again`,
        {},
      );
      this.timers.done(t.invocationId, t.index);
      this.clock.setTimer(1000, () => this.timers.add(t));
    };
    if (t.index === -1) {
      // A start (scheduled) or retry (backing-off) timer makes its invocation runnable in the
      // write that deletes it: the timer is never gone while its row still waits for it, so
      // recovery and the key hand-off (which take running and pending rows) find it after a
      // crash or while its key is busy. The status checks keep a cancellation made meanwhile.
      const id = t.invocationId;
      const now = this.clock.now();
      this.store
        .write([
          { op: 'timer.delete', invocationId: id, index: -1 },
          {
            op: 'invocation.update',
            id,
            set: { status: 'pending', modifiedAt: now },
            ifStatus: 'scheduled',
          },
          {
            op: 'invocation.update',
            id,
            set: { status: 'running', modifiedAt: now },
            ifStatus: 'backing-off',
          },
        ])
        .then(([, started, retried]) => {
          this.timers.done(id, -1);
          const starts = (started as { updated: boolean }).updated;
          if (!starts && !(retried as { updated: boolean }).updated) return;
          // Durably runnable now: if this read fails, recovery (or a cluster's sweep) starts it.
          this.store.getInvocation(id).then(
            (row) => {
              const me = this.cluster?.processId;
              if (!row || (me && row.owner && row.owner !== me)) return;
              if (starts && row.status === 'pending') this.enqueue(row);
              else if (!starts && row.status === 'running') this.resume(row);
            },
            (err: unknown) =>
              this.log('error', `could not start ${id} after its timer: ${errorMessage(err)}`, {}),
          );
        }, again);
      return;
    }
    const entry: JournalEntry = { kind: 'sleep', name: '', done: true, wakeAt: t.fireAt };
    // The deletion rides with the completion; forget the timer once both are durable.
    this.completeEntry(t.invocationId, t.index, entry, [
      { op: 'timer.delete', invocationId: t.invocationId, index: t.index },
    ]).then(() => this.timers.done(t.invocationId, t.index), again);
  }

  // ---- results ---------------------------------------------------------------------------

  /**
   * How many callers (attaches, calls that joined an invocation) wait here for its result.
   * @internal For tests and diagnostics: a released wait must leave nothing behind.
   */
  waitersFor(id: string): number {
    return this.resultWaiters.get(id)?.length ?? 0;
  }

  /**
   * Waits for an invocation's outcome: registers a waiter first, then checks the store, so a
   * result that lands in between is not missed. `wait` is given for callers outside the engine
   * (attach, a call that joined an existing invocation): they are bounded per invocation and
   * released when their signal aborts. The engine's own waits (a caller's call) are neither.
   */
  private awaitOutcome(id: string, known = false, wait?: WaitOptions): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      const waiter = this.addWaiter(id, resolve, reject, wait);
      if (!waiter) return;
      this.store.getInvocation(id).then(
        (row) => {
          if (!row) {
            // A just-created invocation may not be flushed yet; its result will come.
            if (known || this.active.has(id)) return;
            this.dropWaiter(id, waiter);
            waiter.reject(notFound(id));
          } else if (row.status === 'completed' || row.status === 'failed') {
            this.dropWaiter(id, waiter);
            waiter.resolve(
              row.status === 'completed' ? { output: row.output } : { error: row.error! },
            );
          }
        },
        (err: unknown) => {
          this.dropWaiter(id, waiter);
          waiter.reject(
            err instanceof Error
              ? err
              : new KeelError(errorMessage(err), { code: 'internal', cause: err }),
          );
        },
      );
    });
  }

  /** Registers a waiter without looking at the store (a new invocation has no result yet). */
  private waitForOutcome(id: string, wait?: WaitOptions): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      this.addWaiter(id, resolve, reject, wait);
    });
  }

  /**
   * Adds a waiter, or rejects at once (and answers undefined) when an outside caller's signal
   * has already aborted or the invocation already has `MAX_WAITERS` waiters. The engine's own
   * waits count towards the bound but are never refused: refusing one would fail a call.
   */
  private addWaiter(
    id: string,
    resolve: (v: Outcome) => void,
    reject: (e: unknown) => void,
    wait: WaitOptions | undefined,
  ): Deferred<Outcome> | undefined {
    let list = this.resultWaiters.get(id);
    if (wait) {
      const signal = wait.signal;
      if (signal?.aborted) {
        reject(abandoned(id));
        return undefined;
      }
      if (list && list.length >= MAX_WAITERS) {
        reject(new TooManyWaitersError(id));
        return undefined;
      }
      if (signal) {
        // The client went away: forget its waiter now, not when the invocation ends (which
        // may be in 30 days). The invocation itself goes on.
        const onAbort = (): void => {
          this.dropWaiter(id, waiter);
          reject(abandoned(id));
        };
        const waiter: Deferred<Outcome> = {
          resolve: (v) => {
            signal.removeEventListener('abort', onAbort);
            resolve(v);
          },
          reject: (e) => {
            signal.removeEventListener('abort', onAbort);
            reject(e);
          },
        };
        signal.addEventListener('abort', onAbort, { once: true });
        if (!list) this.resultWaiters.set(id, (list = []));
        list.push(waiter);
        return waiter;
      }
    }
    const waiter: Deferred<Outcome> = { resolve, reject };
    if (!list) this.resultWaiters.set(id, (list = []));
    list.push(waiter);
    return waiter;
  }

  private dropWaiter(id: string, w: Deferred<Outcome>): void {
    const list = this.resultWaiters.get(id);
    if (!list) return;
    const i = list.indexOf(w);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.resultWaiters.delete(id);
  }

  private settleWaiters(id: string, outcome: Outcome): void {
    const list = this.resultWaiters.get(id);
    if (!list) return;
    this.resultWaiters.delete(id);
    for (const w of list) w.resolve(outcome);
  }

  // ---- retention -------------------------------------------------------------------------

  private scheduleCleanup(delay: number): void {
    this.cancelCleanup = this.clock.setTimer(delay, () => {
      void this.cleanup()
        .catch((err: unknown) =>
          this.log('warn', `retention cleanup failed: ${errorMessage(err)}; retried later`, {}),
        )
        .finally(() => {
          // Retention is coarse (hours): sweeping a few times per retention period is enough.
          if (!this.stopping)
            this.scheduleCleanup(Math.min(6 * 3_600_000, Math.max(60_000, this.retentionMs / 4)));
        });
    });
  }

  /**
   * Deletes what outlived its retention, 1,000 invocations and 1,000 key-value records per
   * write (small transactions that never hold the store for long), batch after batch until
   * none is full: at thousands of invocations a second, one batch per sweep would fall behind.
   */
  private async cleanup(): Promise<void> {
    const now = this.clock.now();
    for (;;) {
      if (this.stopping) return;
      const ids = await this.store.expired(now, CLEANUP_BATCH);
      // Extensions' expired key-value records (delivery logs, caches) go with the same sweep.
      const ops: WriteOp[] = [{ op: 'kv.purge', before: now, limit: CLEANUP_BATCH }];
      for (const id of ids) ops.push({ op: 'invocation.delete', id });
      const [purged] = (await this.store.write(ops)) as [{ deleted: number }];
      if (ids.length < CLEANUP_BATCH && purged.deleted < CLEANUP_BATCH) return;
    }
  }

  // ---- logging ---------------------------------------------------------------------------

  log(runnerOrLevel: Runner | keyof Logger, ...rest: unknown[]): void {
    if (runnerOrLevel instanceof Runner) {
      const [level, message, args] = rest as [keyof Logger, string, unknown[]];
      this.logger(level, message, { ...this.fields(runnerOrLevel), args });
      return;
    }
    const [message, fields] = rest as [string, Record<string, unknown>];
    this.logger(runnerOrLevel, message, fields);
  }

  private fields(runner: Runner): Record<string, unknown> {
    return { invocationId: runner.row.id, target: targetOf(runner.row) };
  }
}

/** The store could not be reached (an outage, a lost connection): worth retrying, says nothing else. */
function isUnavailable(err: unknown): boolean {
  return err instanceof StoreError && err.code === 'store_unavailable';
}

/** An `invocation.expect` did not hold: the invocation changed meanwhile. */
function isPreconditionFailed(err: unknown): boolean {
  return err instanceof StoreError && err.code === 'precondition_failed';
}

/**
 * The store op of a step's key-value write, rebuilt field by field so that nothing else (a
 * compare-and-set version, an engine op) can ride along; undefined for any other op.
 */
function stepWriteOp(w: StepWrite): WriteOp | undefined {
  if (w.op === 'kv.put') {
    const op: WriteOp = { op: 'kv.put', scope: w.scope, key: w.key, value: w.value };
    if (w.expiresAt !== undefined) op.expiresAt = w.expiresAt;
    return op;
  }
  if (w.op === 'kv.delete') return { op: 'kv.delete', scope: w.scope, key: w.key };
  return undefined;
}

/**
 * The key-value scope of awakeable lookup records: an awakeable id (the key) leads to the
 * invocation and journal entry that wait for it. Expires with the invocation's retention.
 */
const AWAKEABLE_SCOPE = 'keel.awakeable';

/** An invocation whose journal (and current row) is loading for a resume. */
interface Loading {
  loading: true;
  /** Completions that arrived while it loaded. */
  pending: Array<[number, JournalEntry]>;
  /** Another resume was asked for meanwhile: look at the row again if this one does not run. */
  again: boolean;
  /** It finished here meanwhile: the row read may predate that and must not start a replay. */
  finished: boolean;
}

/** Where an awakeable's completion goes. */
interface AwakeableRef {
  invocationId: string;
  index: number;
}

/** The recorded entries of an invocation that has none yet (shared: runners only read it). */
const NO_ENTRIES: ReadonlyMap<number, JournalEntry> = new Map();

/** The error a paused invocation records when its journal cannot be read or replayed. */
function unreplayable(id: string, cause: unknown): KeelError {
  return new KeelError(
    `the journal of invocation ${id} cannot be replayed: ${errorMessage(cause)}. ` +
      'Repair the journal (or the code) and resume the invocation, or kill it.',
    { code: 'journal_unreadable', status: 500, cause },
  );
}

/** An outcome in the shape of a journal entry's result fields. */
function entryResult(outcome: Outcome): Pick<JournalEntry, 'value' | 'error'> {
  return 'error' in outcome ? { error: outcome.error } : { value: outcome.output };
}

function lockKey(service: string, key: string): string {
  return `${service}\u0000${key}`;
}

function targetOf(row: Pick<InvocationRow, 'service' | 'handler' | 'key'>): string {
  return targetName({ service: row.service, handler: row.handler, key: row.key });
}

function notFound(id: string): NotFoundError {
  return new NotFoundError(`no invocation "${id}": it never existed or its retention ended`);
}

/** Date's range: ±8.64e15 ms (±100,000,000 days) around 1970. */
const MAX_DATE_MS = 8.64e15;

/**
 * A stored time as ISO-8601. A time beyond Date's range (a run-at an older version stored for
 * an unbounded delay) would make `toISOString` throw and fail every listing page containing
 * it: it shows as the farthest representable time instead.
 */
function isoTime(t: number): string {
  if (Number.isNaN(t)) return new Date(0).toISOString();
  return new Date(Math.min(Math.max(t, -MAX_DATE_MS), MAX_DATE_MS)).toISOString();
}

function toInfo(row: InvocationRow): InvocationInfo {
  const iso = (t: number | undefined): string | undefined =>
    t === undefined ? undefined : isoTime(t);
  const info: InvocationInfo = {
    id: row.id,
    target: targetOf(row),
    service: row.service,
    handler: row.handler,
    status: row.status,
    attempt: row.attempt,
    createdAt: iso(row.createdAt)!,
    modifiedAt: iso(row.modifiedAt)!,
  };
  if (row.key) info.key = row.key;
  if (row.completedAt !== undefined) info.completedAt = iso(row.completedAt);
  if (row.status === 'backing-off' || row.status === 'scheduled')
    info.nextAttemptAt = iso(row.runAt);
  const idempotencyKey = idempotencyKeyOf(row.dedupe);
  if (idempotencyKey !== undefined) info.idempotencyKey = idempotencyKey;
  if (row.error) info.error = row.error;
  if (row.cancel) info.cancel = row.cancel;
  if (row.outcome) info.outcome = row.outcome;
  return info;
}
