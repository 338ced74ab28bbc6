import type {
  CallOptions,
  InvocationHandle,
  Logger,
  ObjectContext,
  RunOptions,
  SendOptions,
} from './context.js';
import type { Client, Definition, SendClient } from './definitions.js';
import { parseDuration, type Duration } from './duration.js';
import { checkDebounce, checkThrottle } from './flow.js';
import {
  CancelledError,
  errorMessage,
  fromErrorInfo,
  isTerminal,
  type KeelError,
  NonDeterminismError,
  RetriesExhaustedError,
  TerminalError,
  TimeoutError,
  toErrorInfo,
  UsageError,
  type ErrorInfo,
} from './errors.js';
import { DurablePromise, type Settled, type Values } from './futures.js';
import {
  describeEntry,
  isVersionMarkerName,
  pinnedVersion,
  legacyAwakeableId,
  targetName,
  type EntryKind,
  type JournalEntry,
  type Target,
} from './journal.js';
import { Prng } from './prng.js';
import { resolveRetry, type ResolvedRetryPolicy } from './retry.js';

/**
 * What a context needs from the engine. The context itself is pure: it decides, from the
 * journal and the handler's calls, what to replay and what to perform, and asks the host to
 * perform it. All I/O, time and scheduling live behind this interface.
 */
export interface InvocationHost {
  readonly invocationId: string;
  readonly service: string;
  readonly key: string;
  /** Entries recorded by earlier attempts, by index. */
  readonly recorded: ReadonlyMap<number, JournalEntry>;
  /** Failed attempts so far and the index of the step that failed (-1: the handler). */
  readonly attempt: number;
  readonly retryIndex: number;
  /** The retry policy of the handler, which steps inherit. */
  readonly retryPolicy: ResolvedRetryPolicy;

  now(): number;
  /**
   * A reading for timing step bodies: fractional milliseconds from a clock that never goes
   * back (two readings' difference is a duration).
   */
  monotonic(): number;
  /** The epoch milliseconds (see {@link now}) a {@link monotonic} reading taken just now stands for. */
  epochOf(monotonic: number): number;
  /**
   * Records an entry; resolves once it is durable. `writes` (from {@link runWithWrites}) are
   * committed in the same store write, atomically with the entry.
   */
  commit(index: number, entry: JournalEntry, writes?: readonly StepWrite[]): Promise<unknown>;
  /** Records an entry that nothing waits on: it becomes durable with the next commit. */
  append(index: number, entry: JournalEntry): void;
  readState(name: string): Promise<unknown>;
  readStateKeys(): Promise<string[]>;
  /** Starts a durable timer for a recorded sleep entry. */
  startSleep(index: number, entry: JournalEntry): void;
  /**
   * Starts a call: creates (or attaches to) the target invocation and records the entry. The
   * input of calls and sends is already in its JSON form (normalized).
   */
  startCall(index: number, target: Target, input: unknown, options: CallOptions | undefined): void;
  /** Starts a one-way send; resolves with the started (or deduplicated) invocation's id. */
  startSend(
    index: number,
    target: Target,
    input: unknown,
    options: SendOptions | undefined,
    delayMs: number,
  ): Promise<string>;
  /** Resolves with the entry once its completion (timer fired, call returned) is known. */
  awaitCompletion(index: number, entry: JournalEntry): Promise<JournalEntry>;
  /** Tracks a running step body, so the engine knows the invocation is busy, not waiting. */
  trackBody(p: Promise<unknown>): void;
  /** The body `runStepBody` ran for `index` settled and its step goes on here. */
  bodySettled?(index: number): void;
  /**
   * Runs a live step body (never a replayed one), so the host can wrap it (a tracing span).
   * Without it the body is called directly.
   */
  runStepBody?(index: number, name: string, fn: () => unknown): Promise<unknown>;
  /**
   * Asked right before a step body starts: false when this attempt may no longer run code
   * outside the journal (its process's lease is in doubt, so another process may run the same
   * invocation); the attempt is then abandoned and the body never starts.
   */
  mayStartStep(): boolean;
  /**
   * Settles (never rejects) once the awakeables this attempt created so far are durable, so
   * every process, and this one after a crash, can resolve their ids; undefined when none is
   * pending. A step body waits for it before it starts (see `execute`).
   */
  awakeablesDurable(): Promise<void> | undefined;
  /** The attempt failed with a retryable error: abandon it and retry after a backoff. */
  retry(failure: {
    error: unknown;
    index: number;
    attempt: number;
    policy: ResolvedRetryPolicy;
  }): void;
  /** Replay found a mismatch (or the journal cannot be replayed): stop and pause the invocation. */
  fatal(error: KeelError): void;
  /** Whether this invocation belongs to a workflow (durable promises are workflow-only). */
  readonly isWorkflow: boolean;
  /**
   * The id of the awakeable at journal entry `index` (see `AWAKEABLE_ID`): unguessable (at
   * least 128 bits only the host's secret determines) and the same in every attempt, so an
   * attempt that crashed before its awakeable was durable hands out again the id it may already
   * have sent to someone. The context records it in the entry, and a replay hands out the
   * recorded id: the core draws no randomness and holds no secret of its own.
   */
  newAwakeableId(index: number): string;
  /** Records an awakeable entry this invocation created (its name is its id). */
  createAwakeable(index: number, entry: JournalEntry): void;
  /**
   * Completes someone's awakeable and records the attempt at `index` (with a 404/409 error if
   * it failed); resolves with the recorded entry.
   */
  completeAwakeable(index: number, id: string, result: Outcome): Promise<JournalEntry>;
  /** Starts waiting for a durable promise of this workflow key (completes at once if done). */
  awaitPromise(index: number, entry: JournalEntry): void;
  /** The current state of a durable promise of this workflow key. */
  peekPromise(
    name: string,
  ): Promise<{ done: boolean; value?: unknown; error?: ErrorInfo } | undefined>;
  /** Completes a durable promise and records the attempt at `index` (409 if it was already completed). */
  completePromise(index: number, name: string, result: Outcome): Promise<JournalEntry>;
  /** True once, if a cancellation is waiting to be delivered to the handler. */
  takeCancel(): boolean;
  log(level: keyof Logger, message: string, args: unknown[]): void;
  /**
   * A service an extension (integrations, webhooks) registered with the engine under `key`,
   * or undefined. Keeps the core ignorant of what extensions exist.
   */
  resource(key: symbol): unknown;
  /**
   * Optional, for test kits (`keel/testing`'s replay checking): asked at every replayed entry
   * whose kind and name match what the code attempts, with what the code attempts there; an
   * error returned stops the replay as a mismatch would (the context calls {@link fatal} with
   * it). Absent in the engine, so replay costs nothing more in production.
   */
  checkReplay?(
    index: number,
    recorded: JournalEntry,
    attempted: AttemptedEntry,
  ): KeelError | undefined;
}

/** What the code attempts at a replayed journal entry (see {@link InvocationHost.checkReplay}). */
export interface AttemptedEntry {
  kind: EntryKind;
  /** The name the code passes; undefined where the journal decides it (an awakeable's id). */
  name: string | undefined;
  /**
   * What the code passes, as passed (not normalized): a call's or send's input, a state value,
   * a sleep's duration, a completion's outcome (`{ value }` or `{ error }`).
   */
  input?: unknown;
  /** A send's options (its `delay`). */
  options?: SendOptions;
}

/**
 * The engine-scoped service registered under `key` (see `Engine.provide`), seen from a
 * handler's context; undefined outside an invocation or when nothing was registered.
 * For extension modules, not handlers.
 */
export function contextResource<T>(ctx: unknown, key: symbol): T | undefined {
  return ctx instanceof ContextImpl ? (ctx.hostOf().resource(key) as T | undefined) : undefined;
}

/**
 * A key-value write (see `Store`'s `kv.put` and `kv.delete`) that rides in the commit of a step's
 * journal entry, through {@link runWithWrites}. Unconditional: no compare-and-set, since the
 * step's result is decided before the write is applied.
 */
export type StepWrite =
  | { op: 'kv.put'; scope: string; key: string; value: unknown; expiresAt?: number }
  | { op: 'kv.delete'; scope: string; key: string };

/** What the body of a {@link runWithWrites} step returns. */
export interface StepWithWrites<T> {
  /** The step's result, journaled and returned as `ctx.run` does. */
  value: T;
  /** Key-value writes applied in the same commit as the step's journal entry. */
  writes: readonly StepWrite[];
}

/**
 * `ctx.run` for extension modules whose step records something in the key-value space (a
 * delivery log, a status record): the body returns its result and the key-value writes, and
 * both are committed in **one** store write with the step's journal entry. So the writes are
 * applied exactly when the step's result is durable: never without it (a crash before the
 * commit runs the step again, writes and all), never twice (a replay takes the journaled result
 * and does not run the body). A body that throws writes nothing. For extension modules, not
 * handlers.
 *
 * @example
 * ```ts
 * const r = await runWithWrites(ctx, 'attempt 1', async () => {
 *   const outcome = await post();
 *   return { value: outcome, writes: [{ op: 'kv.put', scope: 'my.log', key: id, value: outcome }] };
 * });
 * ```
 */
export function runWithWrites<T>(
  ctx: unknown,
  name: string,
  fn: () => StepWithWrites<T> | Promise<StepWithWrites<T>>,
  options?: RunOptions,
): DurablePromise<T> {
  if (!(ctx instanceof ContextImpl))
    throw new UsageError('runWithWrites needs the context of a running handler');
  return ctx.runStep(name, fn, options, true) as DurablePromise<T>;
}

/** A value or a failure, as journal entries carry them. */
export type Outcome =
  { value: unknown; error?: undefined } | { error: ErrorInfo; value?: undefined };

/** A durable promise of a workflow, from `ctx.promise(name)`. */
export interface DurablePromiseHandle<T> {
  /** Waits until the promise is resolved (its value) or rejected (a `TerminalError`). */
  get(): DurablePromise<T>;
  /** The value if resolved, `undefined` if not completed yet; throws if rejected. */
  peek(): Promise<T | undefined>;
  /** Resolves it; a `ConflictError` (409, `promise_already_completed`) if already completed. */
  resolve(value: T): Promise<void>;
  /** Rejects it with a message; the waiters see a `TerminalError`. */
  reject(message: string): Promise<void>;
}

/** An awakeable: an id to hand to the outside world, and the future it completes. */
export interface Awakeable<T> {
  id: string;
  promise: DurablePromise<T>;
}

/** A promise that never settles: what an abandoned attempt's handler awaits forever. */
const NEVER = new Promise<never>(() => undefined);

/** For {@link ContextImpl.replay}: the recorded entry's name is not the code's to decide. */
const ANY_NAME: unique symbol = Symbol('any name');

/**
 * The id of an awakeable that was never created (a cancellation took its place, or the attempt
 * was abandoned): well-formed, and no awakeable ever has it, so completing it answers 404.
 */
const NO_AWAKEABLE = 'awk_00000000000000000000000000';

/** Deletion marker in the state overlay. */
const DELETED = Symbol('deleted');

/**
 * The context handed to handlers. It implements every context interface (service, object,
 * workflow); what a handler may call is narrowed by the type it receives, and checked at run
 * time for shared handlers (`readOnly`).
 */
export class ContextImpl implements ObjectContext {
  readonly log: Logger;
  private nextIndex = 0;
  /** The first index the handler's own entries take (1 after a version marker). */
  private base = 0;
  private readonly replayEnd: number;
  /** Created on first use: most handlers never draw a random number. */
  private prngInstance: Prng | undefined;
  /** This invocation's own state writes, which later reads must see. */
  private readonly overlay = new Map<string, unknown>();
  private clearedAll = false;
  private dead = false;

  constructor(
    private readonly host: InvocationHost,
    private readonly readOnly: boolean,
  ) {
    let max = -1;
    for (const i of host.recorded.keys()) if (i > max) max = i;
    this.replayEnd = max + 1;
    // A versioned definition's journal starts with its version marker: not the handler's.
    if (pinnedVersion(host.recorded.get(0)) !== undefined) this.nextIndex = this.base = 1;
    const log =
      (level: keyof Logger) =>
      (message: string, ...args: unknown[]) => {
        if (!this.isReplaying) host.log(level, message, args);
      };
    this.log = { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
  }

  get invocationId(): string {
    return this.host.invocationId;
  }

  /** @internal For {@link contextResource}. */
  hostOf(): InvocationHost {
    return this.host;
  }

  get key(): string {
    return this.host.key;
  }

  /** True while the handler is re-executing entries recorded by an earlier attempt. */
  get isReplaying(): boolean {
    return this.nextIndex < this.replayEnd;
  }

  /**
   * @internal True once the handler made a journaled context call (a step, even one whose body
   * is still running, a timer, a call, ...) in this attempt or an earlier one.
   */
  get touchedJournal(): boolean {
    return this.nextIndex > this.base || this.replayEnd > this.base;
  }

  /** Called by the engine when the attempt is abandoned: later context calls do nothing. */
  kill(): void {
    this.dead = true;
  }

  /** Whether the handler may go on: its attempt is alive and its process may run code. */
  private mayProceed(): boolean {
    return !this.dead && this.host.mayStartStep();
  }

  // ---- steps, timers, time, randomness ------------------------------------------------

  run<T>(name: string, fn: () => T | Promise<T>, options?: RunOptions): DurablePromise<T> {
    return this.runStep(name, fn, options, false) as DurablePromise<T>;
  }

  /**
   * @internal `run`, and {@link runWithWrites} when `withWrites` (the body then returns
   * `{ value, writes }`).
   */
  runStep(
    name: string,
    fn: () => unknown,
    options: RunOptions | undefined,
    withWrites: boolean,
  ): DurablePromise<unknown> {
    const index = this.claim();
    const rec = this.replay(index, 'run', name);
    if (rec === 'dead') return this.future(NEVER);
    if (rec?.done) return this.future(settle(rec));
    const cancelled = this.deliverCancel(index);
    if (cancelled) return this.future(cancelled);
    // Resolve the step's policy before running it, so a bad policy fails loudly and early.
    const policy = resolveRetry(options?.retry, this.host.retryPolicy);
    const p = this.execute(index, name, fn, policy, withWrites);
    this.host.trackBody(p);
    return this.future(p);
  }

  private async execute(
    index: number,
    name: string,
    fn: () => unknown,
    policy: ResolvedRetryPolicy,
    withWrites: boolean,
  ): Promise<unknown> {
    // A step body acts outside the journal, and the usual way to hand an awakeable's id to the
    // world is a step: the id must resolve in every process (and after a crash) before the
    // body can give it away. Later journal writes need no such wait: the store commits writes
    // in order, so they are durable only after the awakeable is.
    const pending = this.host.awakeablesDurable();
    if (pending) {
      await pending;
      if (this.dead) return NEVER; // the awakeable's write failed: the attempt is retried
    }
    if (this.dead || !this.host.mayStartStep()) return NEVER;
    // The entry's timing: two readings of the host's monotonic clock per step, no more.
    const t0 = this.host.monotonic();
    const startedAt = Math.round(this.host.epochOf(t0));
    // Attempts of the invocation this step took: it is retried by retrying the attempt.
    const attempt = (this.host.retryIndex === index ? this.host.attempt : 0) + 1;
    let value: unknown;
    let writes: readonly StepWrite[] | undefined;
    let durationMs: number;
    try {
      value = await (this.host.runStepBody ? this.host.runStepBody(index, name, fn) : fn());
      this.host.bodySettled?.(index);
      durationMs = elapsed(this.host, t0);
      if (withWrites) {
        const r = value as StepWithWrites<unknown>;
        value = r.value;
        writes = r.writes.length > 0 ? r.writes : undefined;
      }
    } catch (err) {
      // Before a retry ends the attempt: this body is not one to hand over (see Runner.kill).
      this.host.bodySettled?.(index);
      if (this.dead) return NEVER;
      let error: ErrorInfo | undefined;
      if (isTerminal(err)) error = toErrorInfo(err);
      else if (attempt >= policy.maxAttempts)
        error = toErrorInfo(new RetriesExhaustedError(`step "${name}"`, attempt, err));
      if (error !== undefined) {
        const failed: JournalEntry = { kind: 'run', name, done: true, error };
        return this.fail(index, withTiming(failed, startedAt, elapsed(this.host, t0), attempt));
      }
      this.host.retry({ error: err, index, attempt, policy });
      return NEVER;
    }
    if (this.dead) return NEVER;
    let stored: unknown;
    try {
      stored = normalize(value, `the result of step "${name}"`);
    } catch (err) {
      const failed: JournalEntry = { kind: 'run', name, done: true, error: toErrorInfo(err) };
      return this.fail(index, withTiming(failed, startedAt, durationMs, attempt));
    }
    const entry: JournalEntry = { kind: 'run', name, done: true, value: stored };
    try {
      await this.host.commit(index, withTiming(entry, startedAt, durationMs, attempt), writes);
    } catch (err) {
      // A result above the store's hard limit would be too large on every retry too, and each
      // retry would repeat the body's side effects: the step fails for good, its failure
      // recorded (a small entry), which the handler may catch (e.g. to keep the data elsewhere).
      if (this.dead || (err as { code?: unknown } | null)?.code !== 'payload_too_large') throw err;
      const error = toErrorInfo(
        new TerminalError(
          `the result of step "${name}" is too large to store: ${errorMessage(err)}`,
          { code: 'payload_too_large', cause: err },
        ),
      );
      const failed: JournalEntry = { kind: 'run', name, done: true, error };
      return this.fail(index, withTiming(failed, startedAt, durationMs, attempt));
    }
    return stored;
  }

  private async fail(index: number, entry: JournalEntry): Promise<never> {
    await this.host.commit(index, entry);
    throw fromErrorInfo(entry.error!);
  }

  sleep(duration: Duration): DurablePromise<void> {
    const index = this.claim();
    const rec = this.replay(index, 'sleep', '', duration);
    if (rec === 'dead') return this.future(NEVER);
    if (rec?.done) return this.future(settle<void>(rec).then(() => undefined));
    let entry = rec;
    if (!entry) {
      const cancelled = this.deliverCancel(index);
      if (cancelled) return this.future(cancelled);
      const now = this.host.now();
      entry = {
        kind: 'sleep',
        name: '',
        done: false,
        wakeAt: now + parseDuration(duration),
        startedAt: now,
      };
      this.host.startSleep(index, entry);
    }
    return this.future(this.host.awaitCompletion(index, entry).then((e) => settle<void>(e)));
  }

  now(): Promise<number> {
    const index = this.claim();
    const rec = this.replay(index, 'now', '');
    if (rec === 'dead') return NEVER;
    if (rec) return Promise.resolve(rec.value as number);
    const value = this.host.now();
    this.host.append(index, { kind: 'now', name: '', done: true, value });
    return Promise.resolve(value);
  }

  random(): number {
    return this.prng.next();
  }

  uuid(): string {
    return this.prng.uuid();
  }

  private get prng(): Prng {
    return (this.prngInstance ??= new Prng(this.host.invocationId));
  }

  // ---- state ----------------------------------------------------------------------------

  async get<T = unknown>(name: string): Promise<T | undefined> {
    const index = this.claim();
    const rec = this.replay(index, 'get', name);
    if (rec === 'dead') return NEVER;
    if (rec) return rec.value as T | undefined;
    let value: unknown;
    if (this.overlay.has(name)) value = this.overlay.get(name);
    else if (this.clearedAll) value = undefined;
    else value = await this.host.readState(name);
    if (value === DELETED) value = undefined;
    // As for a future (see `future`): a read that answers after a stall past the lease must
    // not let the handler run on next to the process that adopted the invocation.
    if (!this.mayProceed()) return NEVER;
    this.host.append(index, { kind: 'get', name, done: true, value });
    return value as T | undefined;
  }

  async stateKeys(): Promise<string[]> {
    const index = this.claim();
    const rec = this.replay(index, 'keys', '');
    if (rec === 'dead') return NEVER;
    if (rec) return rec.value as string[];
    const keys = new Set(this.clearedAll ? [] : await this.host.readStateKeys());
    for (const [k, v] of this.overlay) {
      if (v === DELETED) keys.delete(k);
      else keys.add(k);
    }
    const value = [...keys].sort();
    if (!this.mayProceed()) return NEVER;
    this.host.append(index, { kind: 'keys', name: '', done: true, value });
    return value;
  }

  set<T>(name: string, value: T): void {
    this.write('set', name, normalize(value, `state "${name}"`));
  }

  clear(name: string): void {
    this.write('clear', name, DELETED);
  }

  clearAll(): void {
    this.write('clearAll', '', undefined);
  }

  private write(kind: EntryKind, name: string, value: unknown): void {
    if (this.readOnly) {
      throw new UsageError(
        `ctx.${kind}() is not allowed in a shared handler: shared handlers only read state. Make the handler exclusive to write.`,
      );
    }
    if (kind === 'set' && value === undefined) {
      throw new UsageError(
        `ctx.set("${name}", undefined): use ctx.clear("${name}") to delete a value`,
      );
    }
    const index = this.claim();
    const rec = this.replay(index, kind, name, kind === 'set' ? value : undefined);
    if (rec === 'dead') return;
    if (kind === 'clearAll') {
      this.overlay.clear();
      this.clearedAll = true;
    } else {
      this.overlay.set(name, value);
    }
    // Recorded writes were applied to the state when first journaled.
    if (!rec)
      this.host.append(index, {
        kind,
        name,
        done: true,
        value: value === DELETED ? undefined : value,
      });
  }

  // ---- calls and sends -------------------------------------------------------------------

  serviceClient<D extends Definition>(def: D): Client<D> {
    return this.client(def, '');
  }

  objectClient<D extends Definition>(def: D, key: string): Client<D> {
    return this.client(def, key);
  }

  workflowClient<D extends Definition>(def: D, key: string): Client<D> {
    return this.client(def, key);
  }

  serviceSendClient<D extends Definition>(def: D, options?: SendOptions): SendClient<D> {
    return this.sendClient(def, '', options);
  }

  objectSendClient<D extends Definition>(
    def: D,
    key: string,
    options?: SendOptions,
  ): SendClient<D> {
    return this.sendClient(def, key, options);
  }

  workflowSendClient<D extends Definition>(
    def: D,
    key: string,
    options?: SendOptions,
  ): SendClient<D> {
    return this.sendClient(def, key, options);
  }

  private client<D extends Definition>(def: D, key: string): Client<D> {
    const out: Record<string, unknown> = {};
    for (const handler of Object.keys(def.handlers)) {
      out[handler] = (input?: unknown, options?: CallOptions) =>
        this.call({ service: def.name, handler, key }, input, options);
    }
    return out as Client<D>;
  }

  private sendClient<D extends Definition>(
    def: D,
    key: string,
    options?: SendOptions,
  ): SendClient<D> {
    const out: Record<string, unknown> = {};
    for (const handler of Object.keys(def.handlers)) {
      out[handler] = (input?: unknown, callOptions?: CallOptions) =>
        this.send({ service: def.name, handler, key }, input, { ...options, ...callOptions });
    }
    return out as SendClient<D>;
  }

  private call(
    target: Target,
    input: unknown,
    options: CallOptions | undefined,
  ): DurablePromise<unknown> {
    const index = this.claim();
    const rec = this.replay(index, 'call', targetName(target), input);
    if (rec === 'dead') return this.future(NEVER);
    if (rec?.done) return this.future(settle(rec));
    let entry = rec;
    if (!entry) {
      const cancelled = this.deliverCancel(index);
      if (cancelled) return this.future(cancelled);
      entry = { kind: 'call', name: targetName(target), done: false };
      this.host.startCall(
        index,
        target,
        normalize(input, `the input of ${targetName(target)}`),
        options,
      );
    }
    return this.future(this.host.awaitCompletion(index, entry).then(settle));
  }

  // ---- awakeables and durable promises -------------------------------------------------

  /**
   * Creates an awakeable: hand its `id` to the outside world, which completes it through the
   * ingress (`POST /awakeables/{id}/resolve`) or another handler (`ctx.resolveAwakeable`).
   * Completions that arrive before the handler awaits the promise are kept.
   */
  awakeable<T = unknown>(): Awakeable<T> {
    const index = this.claim();
    // The id is random, so it is whatever the journal recorded; the code cannot mismatch it.
    const rec = this.replay(index, 'awakeable', ANY_NAME);
    if (rec === 'dead') return { id: NO_AWAKEABLE, promise: this.future(NEVER) };
    if (rec?.kind === 'cancel') return { id: NO_AWAKEABLE, promise: this.future(settle<T>(rec)) };
    if (rec) {
      const id = rec.name || legacyAwakeableId(this.host.invocationId, index);
      if (rec.done) return { id, promise: this.future(settle<T>(rec)) };
      return {
        id,
        promise: this.future(this.host.awaitCompletion(index, rec).then((e) => settle<T>(e))),
      };
    }
    // A cancellation delivered here takes the awakeable's place: it is never created.
    const cancelled = this.deliverCancel(index);
    if (cancelled) return { id: NO_AWAKEABLE, promise: this.future(cancelled) };
    const entry: JournalEntry = {
      kind: 'awakeable',
      name: this.host.newAwakeableId(index),
      done: false,
      startedAt: this.host.now(),
    };
    this.host.createAwakeable(index, entry);
    return {
      id: entry.name,
      promise: this.future(this.host.awaitCompletion(index, entry).then((e) => settle<T>(e))),
    };
  }

  /** Resolves another invocation's awakeable; 404/409 errors are terminal. */
  resolveAwakeable<T>(id: string, value: T): Promise<void> {
    return this.completeAwakeable(id, { value: normalize(value, `the value for awakeable ${id}`) });
  }

  /** Rejects another invocation's awakeable with a message. */
  rejectAwakeable(id: string, reason: string): Promise<void> {
    return this.completeAwakeable(id, {
      error: { code: 'rejected', message: reason, status: 500 },
    });
  }

  private completeAwakeable(id: string, result: Outcome): Promise<void> {
    const index = this.claim();
    const rec = this.replay(index, 'completeAwakeable', id, result);
    if (rec === 'dead') return NEVER;
    if (rec) return droppable(settle<void>(rec).then(() => undefined));
    return droppable(
      this.observed(
        this.host
          .completeAwakeable(index, id, result)
          .then((e) => settle<void>(e))
          .then(() => undefined),
      ),
    );
  }

  /**
   * A durable promise of this workflow key, shared by `run` and the workflow's other handlers.
   * A value resolved before `run` asks for it is kept.
   */
  promise<T = unknown>(name: string): DurablePromiseHandle<T> {
    if (!this.host.isWorkflow) {
      throw new UsageError(
        `ctx.promise("${name}") is only available in workflows: use ctx.awakeable() elsewhere`,
      );
    }
    return {
      get: () => this.getPromise<T>(name),
      peek: () => this.peekPromise<T>(name),
      resolve: (value: T) =>
        this.completePromise(name, { value: normalize(value, `the value of promise "${name}"`) }),
      reject: (message: string) =>
        this.completePromise(name, { error: { code: 'rejected', message, status: 500 } }),
    };
  }

  private getPromise<T>(name: string): DurablePromise<T> {
    const index = this.claim();
    const rec = this.replay(index, 'promise', name);
    if (rec === 'dead') return this.future(NEVER);
    if (rec?.done) return this.future(settle<T>(rec));
    let entry = rec;
    if (!entry) {
      const cancelled = this.deliverCancel(index);
      if (cancelled) return this.future(cancelled);
      entry = { kind: 'promise', name, done: false, startedAt: this.host.now() };
      this.host.awaitPromise(index, entry);
    }
    return this.future(this.host.awaitCompletion(index, entry).then((e) => settle<T>(e)));
  }

  private async peekPromise<T>(name: string): Promise<T | undefined> {
    const index = this.claim();
    const rec = this.replay(index, 'peekPromise', name);
    if (rec === 'dead') return NEVER;
    if (rec) return settle<T | undefined>(rec);
    const state = await this.host.peekPromise(name);
    if (!this.mayProceed()) return NEVER; // as after a state read (see `get`)
    const entry: JournalEntry = { kind: 'peekPromise', name, done: true };
    if (state?.done && state.error) entry.error = state.error;
    else if (state?.done) entry.value = state.value;
    this.host.append(index, entry);
    return settle<T | undefined>(entry);
  }

  private completePromise(name: string, result: Outcome): Promise<void> {
    const index = this.claim();
    const rec = this.replay(index, 'completePromise', name, result);
    if (rec === 'dead') return NEVER;
    if (rec) return droppable(settle<void>(rec).then(() => undefined));
    return droppable(
      this.host
        .completePromise(index, name, result)
        .then((e) => settle<void>(e))
        .then(() => undefined),
    );
  }

  // ---- combinators --------------------------------------------------------------------

  /**
   * Waits for every future; rejects with the first failure. Which failure counts as first is
   * journaled, so a replay decides the same way.
   *
   * @example
   * ```ts
   * const [build, tests] = await ctx.all([ctx.run('build', build), ctx.run('unit tests', test)]);
   * ```
   */
  all<F extends readonly unknown[]>(futures: F): DurablePromise<Values<F>> {
    return this.combine(
      'all',
      futures,
      (ps) => Promise.all(ps),
      (pos, ps) => (pos < 0 ? Promise.all(ps) : (ps[pos] as Promise<never>)),
    ) as DurablePromise<Values<F>>;
  }

  /**
   * Settles like the first future to settle; the winner is journaled, so a replay picks it
   * again even when every input has completed by then.
   *
   * @example
   * ```ts
   * const first = await ctx.race([approval.get(), ctx.sleep('30d').then(() => 'timeout' as const)]);
   * ```
   */
  race<F extends readonly unknown[]>(futures: F): DurablePromise<Awaited<F[number]>> {
    return this.combine(
      'race',
      futures,
      (ps) => Promise.race(ps),
      (pos, ps) => ps[pos]!,
    ) as DurablePromise<Awaited<F[number]>>;
  }

  /**
   * Resolves like the first future to succeed; rejects with an `AggregateError` if all fail.
   *
   * @example
   * ```ts
   * const quote = await ctx.any([ctx.run('carrier A', quoteA), ctx.run('carrier B', quoteB)]);
   * ```
   */
  any<F extends readonly unknown[]>(futures: F): DurablePromise<Awaited<F[number]>> {
    return this.combine(
      'any',
      futures,
      (ps) => Promise.any(ps),
      (pos, ps) => (pos < 0 ? Promise.any(ps) : ps[pos]!),
    ) as DurablePromise<Awaited<F[number]>>;
  }

  /**
   * Waits for every future and reports each outcome.
   *
   * @example
   * ```ts
   * const results = await ctx.allSettled([ctx.run('sms', sms), ctx.run('email', email)]);
   * ```
   */
  allSettled<F extends readonly unknown[]>(futures: F): DurablePromise<Settled<F>> {
    return this.combine(
      'allSettled',
      futures,
      (ps) => Promise.allSettled(ps),
      (_pos, ps) => Promise.allSettled(ps),
    ) as DurablePromise<Settled<F>>;
  }

  /**
   * Runs a combinator over the inputs' settlement, recording which input decided it (-1: all
   * of them). On replay the recorded decision is reused instead of racing again.
   */
  private combine(
    name: string,
    futures: readonly unknown[],
    live: (ps: Promise<unknown>[]) => Promise<unknown>,
    replayed: (pos: number, ps: Promise<unknown>[]) => Promise<unknown>,
  ): DurablePromise<unknown> {
    const index = this.claim();
    const ps = futures.map((f) => Promise.resolve(f));
    // A replayed decision subscribes only to the inputs that decided it, and a live one stops
    // caring once decided: an input that fails later (a losing awakeable rejected, a losing
    // timer cancelled) must not be an unhandled rejection, which would end the process, and
    // recovery, replaying the same journal, would end it again. Awaiting the combinator still
    // sees every failure that decides it.
    for (const p of ps) p.catch(() => undefined);
    const rec = this.replay(index, 'combinator', name);
    if (rec === 'dead') return this.future(NEVER);
    if (rec) {
      // A decision naming an input the code no longer passes (fewer inputs now, or a damaged
      // entry) cannot be replayed: pause the invocation rather than fail inside the handler.
      const pos = rec.value;
      if (!Number.isInteger(pos) || (pos as number) < -1 || (pos as number) >= ps.length) {
        const recorded = `${describeEntry(rec)} decided by input ${JSON.stringify(pos)}`;
        this.dead = true;
        this.host.fatal(
          new NonDeterminismError(index, recorded, `${name}() over ${ps.length} inputs`),
        );
        return this.future(NEVER);
      }
      return this.future(replayed(pos as number, ps));
    }
    // Tag each input with its position so the deciding one is known.
    const decide = (pos: number): void => {
      if (!this.dead) this.host.append(index, { kind: 'combinator', name, done: true, value: pos });
    };
    let decided = false;
    const tagged = ps.map((p, i) =>
      p.then(
        (v) => {
          if (!decided && (name === 'race' || name === 'any')) {
            decided = true;
            decide(i);
          }
          return v;
        },
        (e: unknown) => {
          if (!decided && (name === 'race' || name === 'all')) {
            decided = true;
            decide(i);
          }
          throw e;
        },
      ),
    );
    const result = live(tagged).then(
      (v) => {
        if (!decided) {
          decided = true;
          decide(-1);
        }
        return v;
      },
      (e: unknown) => {
        if (!decided) {
          decided = true;
          decide(-1);
        }
        throw e;
      },
    );
    return this.future(result);
  }

  /**
   * `p` as the handler may observe it: never once the attempt is abandoned or while the lease
   * is in doubt (see `future`), checked synchronously when it settles.
   */
  private observed<T>(p: Promise<T>): Promise<T> {
    return p.then(
      (v) => (this.mayProceed() ? v : NEVER),
      (err: unknown) => {
        if (!this.mayProceed()) return NEVER;
        throw err;
      },
    );
  }

  /** Wraps a promise as a durable future whose `orTimeout` races a durable timer. */
  private future<T>(p: Promise<T>): DurablePromise<T> {
    // The handler observes nothing once its attempt is abandoned (a fence, a suspension), nor
    // while its process's lease is in doubt: a result whose commit answered late, or a process
    // waking from a stall, would otherwise run handler code (code outside the journal) next to
    // the process that adopted the invocation. Checked at delivery, synchronously.
    return new DurablePromise(this.observed(p), (self, d) => {
      const timer = this.sleep(d).then(() => {
        throw new TimeoutError(`timed out after ${typeof d === 'number' ? `${d} ms` : d}`);
      });
      return this.race([self, timer]);
    });
  }

  // ---- cancellation and outcome ----------------------------------------------------------

  /**
   * If a cancellation waits to be delivered, records it at `index` (in place of the step the
   * handler attempted) and returns the rejection the handler sees.
   */
  private deliverCancel(index: number): Promise<never> | undefined {
    if (!this.host.takeCancel()) return undefined;
    const entry: JournalEntry = {
      kind: 'cancel',
      name: '',
      done: true,
      error: toErrorInfo(new CancelledError()),
    };
    this.host.append(index, entry);
    return settle<never>(entry);
  }

  /**
   * Reports an outcome beyond the status (shown by `GET /invocations/{id}`), e.g. a saga's
   * `compensated`.
   */
  setOutcome(outcome: string): void {
    const index = this.claim();
    const rec = this.replay(index, 'outcome', outcome);
    if (rec === 'dead' || rec) return;
    this.host.append(index, { kind: 'outcome', name: outcome, done: true });
  }

  private send(target: Target, input: unknown, options: SendOptions): InvocationHandle {
    // Before the send takes an index: options that cannot be used fail the handler at once
    // (terminal), live or replayed alike.
    checkSendFlow(options);
    const index = this.claim();
    const rec = this.replay(index, 'send', targetName(target), input, options);
    if (rec === 'dead') return { invocationId: NEVER };
    if (rec) return { invocationId: Promise.resolve(rec.calleeId!) };
    const delay = options.delay === undefined ? 0 : parseDuration(options.delay);
    return {
      invocationId: droppable(
        this.observed(
          this.host.startSend(
            index,
            target,
            normalize(input, `the input of ${targetName(target)}`),
            options,
            delay,
          ),
        ),
      ),
    };
  }

  // ---- versioning -----------------------------------------------------------------------

  /** Whether this invocation takes the new branch of `changeId` (see `Context.patched`). */
  patched(changeId: string): boolean {
    return this.patch(changeId, 'patched');
  }

  /** Replays a retired gate's marker (see `Context.deprecatePatch`). */
  deprecatePatch(changeId: string): void {
    this.patch(changeId, 'deprecatePatch');
  }

  /**
   * A versioning gate, decided as Temporal decides `patched`: a marker recorded here (among
   * the markers at the code's next index) means the run took the new branch; replaying entries
   * recorded by code that did not ask here means old code ran past this point, so the old
   * branch; past the journal's end the decision is live: the new branch, with a marker. A
   * marker takes an index only where it is recorded, so an old journal replays unshifted.
   */
  private patch(changeId: string, method: 'patched' | 'deprecatePatch'): boolean {
    if (typeof changeId !== 'string' || changeId === '')
      throw new UsageError(`ctx.${method}() needs a non-empty change id`);
    if (isVersionMarkerName(changeId))
      throw new UsageError(`ctx.${method}(): change ids starting with "@version:" are Keel's own`);
    if (this.dead) return true; // the attempt is abandoned: nothing it does is recorded
    // Several gates at one point record consecutive markers; a marker before ours belongs to
    // a gate the code no longer asks about (removed once retired), and is skipped.
    for (let i = this.nextIndex; ; i++) {
      const rec = this.host.recorded.get(i);
      if (rec?.kind !== 'patch') break;
      if (rec.name === changeId) {
        this.nextIndex = i + 1;
        return true;
      }
    }
    if (this.nextIndex < this.replayEnd) {
      if (method === 'patched') return false;
      // A retired gate has no old branch left to take: this run started before the change.
      const index = this.nextIndex;
      const rec = this.host.recorded.get(index);
      this.dead = true;
      this.host.fatal(
        new NonDeterminismError(
          index,
          rec ? describeEntry(rec) : 'no entry',
          `deprecatePatch("${changeId}"), whose old branch this invocation took (it started before the change)`,
        ),
      );
      return true;
    }
    // Recorded also by deprecatePatch, so code rolled back to `patched` takes the same branch.
    this.host.append(this.nextIndex++, { kind: 'patch', name: changeId, done: true });
    return true;
  }

  /**
   * The index of the code's next journaled call. Patch markers recorded there are skipped: the
   * code no longer asks about their gate (it was retired, and its call removed), and the run
   * took the branch that stayed.
   */
  private claim(): number {
    while (this.host.recorded.get(this.nextIndex)?.kind === 'patch') this.nextIndex++;
    return this.nextIndex++;
  }

  // ---- replay ---------------------------------------------------------------------------

  /** The recorded entry at `index`, after checking it matches what the code attempts now. */
  private replay(
    index: number,
    kind: EntryKind,
    name: string | typeof ANY_NAME,
    /** What the code passes (see `AttemptedEntry`), only for the host's `checkReplay`. */
    input?: unknown,
    options?: SendOptions,
  ): JournalEntry | undefined | 'dead' {
    if (this.dead) return 'dead';
    const rec = this.host.recorded.get(index);
    // A delivered cancellation took the place of whatever waiting step the code attempted.
    const matches =
      !rec ||
      rec.kind === 'cancel' ||
      (rec.kind === kind && (name === ANY_NAME || rec.name === name));
    if (!matches) {
      const attempted = describeEntry({ kind, name: name === ANY_NAME ? '' : name });
      const err = new NonDeterminismError(index, describeEntry(rec), attempted);
      this.dead = true;
      this.host.fatal(err);
      return 'dead';
    }
    // Only a test kit's host has the hook (no object is built without it).
    if (rec && this.host.checkReplay) {
      const attempted: AttemptedEntry = { kind, name: name === ANY_NAME ? undefined : name, input };
      if (options !== undefined) attempted.options = options;
      const err = this.host.checkReplay(index, rec, attempted);
      if (err) {
        this.dead = true;
        this.host.fatal(err);
        return 'dead';
      }
    }
    return rec;
  }
}

/**
 * A promise a handler may fire and forget (a send's invocation id, the completion of an
 * awakeable or a durable promise), as the documented `ctx.objectSendClient(C, k).add(1)` does:
 * its rejection must not end the process as an unhandled rejection; awaiting it still sees it.
 * When the write behind it fails, the engine fails the attempt itself (it is retried), so
 * nothing that depends on the write goes on as if it had been recorded.
 */
function droppable<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** A step's entry with its timing (see `JournalEntry.startedAt`); `attempts` only when > 1. */
function withTiming(
  entry: JournalEntry,
  startedAt: number,
  durationMs: number,
  attempts: number,
): JournalEntry {
  entry.startedAt = startedAt;
  entry.durationMs = durationMs;
  if (attempts > 1) entry.attempts = attempts;
  return entry;
}

/** Milliseconds since the monotonic reading `t0`, to a tenth. */
function elapsed(host: InvocationHost, t0: number): number {
  return Math.round((host.monotonic() - t0) * 10) / 10;
}

function settle<T>(entry: JournalEntry): Promise<T> {
  if (entry.error) return Promise.reject(fromErrorInfo(entry.error));
  return Promise.resolve(entry.value as T);
}

/**
 * Values cross the journal as JSON. Returning the JSON form on first execution too means the
 * handler sees exactly what a replay will see (a Date becomes its ISO string either way).
 */
export function normalize(value: unknown, what = 'a value'): unknown {
  if (value === null || value === undefined) return value;
  const t = typeof value;
  if (t === 'string' || t === 'boolean') return value;
  if (t === 'number') return Number.isFinite(value) ? value : null; // as JSON.stringify does
  if (t === 'object') {
    // Plain data (the common case) is copied directly: the same result as the JSON round trip
    // below, without printing and parsing every string. A getter that throws is left to the
    // round trip too, which reports it as JSON.stringify would.
    try {
      const copy = plainCopy(value, 0);
      if (copy !== NOT_PLAIN) return copy;
    } catch {
      // the JSON round trip below decides
    }
  }
  let json: string | undefined;
  try {
    json = t === 'object' ? JSON.stringify(value) : undefined;
  } catch (err) {
    throw new TerminalError(`${what} cannot be stored as JSON: ${errorMessage(err)}`, {
      code: 'not_json',
      cause: err,
    });
  }
  if (json === undefined)
    throw new TerminalError(`${what} cannot be stored as JSON: a ${t} has no JSON form`, {
      code: 'not_json',
    });
  return JSON.parse(json);
}

/** Returned by {@link plainCopy} for anything it leaves to the JSON round trip. */
const NOT_PLAIN: unique symbol = Symbol('not plain');
/** Deeper than this, {@link plainCopy} gives up (cycles end here and get JSON's error). */
const MAX_PLAIN_DEPTH = 32;

/**
 * `JSON.parse(JSON.stringify(value))` for plain data: arrays, and objects whose prototype is
 * `Object.prototype` or null, holding strings, numbers, booleans, null and such values. A fresh
 * copy (strings are shared, being immutable), with JSON's rules: non-finite numbers and -0
 * become null and 0, `undefined` properties are dropped and `undefined` array items become
 * null. Anything else (a `toJSON`, a Date, a class instance, a Map, a function, a bigint, a
 * `__proto__` key, nesting beyond {@link MAX_PLAIN_DEPTH}) returns {@link NOT_PLAIN}, and the
 * caller takes the JSON round trip, whose result or error is then the answer.
 */
function plainCopy(value: object, depth: number): unknown {
  if (depth > MAX_PLAIN_DEPTH) return NOT_PLAIN;
  if (Array.isArray(value)) {
    if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return NOT_PLAIN;
    const n = value.length;
    const out: unknown[] = [];
    for (let i = 0; i < n; i++) {
      const v = plainItem(value[i], depth);
      if (v === NOT_PLAIN) return NOT_PLAIN;
      out.push(v === undefined ? null : v);
    }
    return out;
  }
  const proto = Object.getPrototypeOf(value) as unknown;
  if (proto !== Object.prototype && proto !== null) return NOT_PLAIN;
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return NOT_PLAIN;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(value)) {
    // Assigning "__proto__" would set the prototype, not a property (JSON.parse makes one).
    if (k === '__proto__') return NOT_PLAIN;
    const v = plainItem((value as Record<string, unknown>)[k], depth);
    if (v === NOT_PLAIN) return NOT_PLAIN;
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** One value inside plain data, or {@link NOT_PLAIN}; `undefined` stays undefined. */
function plainItem(v: unknown, depth: number): unknown {
  switch (typeof v) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return v;
    case 'number':
      return Number.isFinite(v) ? (v === 0 ? 0 : v) : null;
    case 'object':
      return v === null ? null : plainCopy(v, depth + 1);
    default:
      // Functions and symbols (dropped or null in JSON), bigints (an error): the slow path.
      return NOT_PLAIN;
  }
}

/**
 * Debounce and throttle options of a handler's send, checked (`InvalidFlowControlError`). A
 * throttle in `drop` mode is refused: a dropped send starts no invocation, so its journal entry
 * would have no id to record and its handle nothing to resolve with.
 */
function checkSendFlow(options: SendOptions): void {
  if (options.debounce !== undefined) checkDebounce(options.debounce);
  if (options.throttle !== undefined && checkThrottle(options.throttle).mode === 'drop')
    throw new UsageError(
      "throttle mode 'drop' is not available for sends inside a handler (a dropped send has no invocation to journal): use mode 'delay', or send with drop from outside (engine.send, the ingress, keel/client)",
    );
}
