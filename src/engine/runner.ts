import type { CallOptions, Logger, SendOptions } from '../core/context.js';
import type { HandlerSpec } from '../core/definitions.js';
import { errorMessage, KeelError, type ErrorInfo } from '../core/errors.js';
import type { JournalEntry, Target } from '../core/journal.js';
import { ContextImpl, type InvocationHost, type Outcome, type StepWrite } from '../core/replay.js';
import type { ResolvedRetryPolicy } from '../core/retry.js';
import type { InvocationRow } from '../store/types.js';
import { AttemptTrace } from '../observability/tracing/attempt.js';
import { MAX_STRAY_INVOCATIONS, type Kernel, type StrayBody } from './kernel.js';

interface Waiter {
  resolve(e: JournalEntry): void;
  /** The entry waited for. */
  entry: JournalEntry;
}

/**
 * One attempt of one invocation: the handler closure, its context and what it waits for.
 * When the invocation suspends or its attempt fails, the runner is dropped with everything it
 * holds; the next attempt replays the journal in a fresh runner.
 *
 * It is the handler context's `InvocationHost`: what the handler asks goes to the engine's
 * parts (journal writes, calls and sends to `RunnerHost`, completions to `Completions`, the
 * end of the attempt to `Outcomes`), with this runner's bookkeeping (busy, waiting) around it.
 */
export class Runner implements InvocationHost {
  readonly ctx: ContextImpl;
  /** This attempt's spans (see observability/tracing). */
  readonly tracing: AttemptTrace;
  /** Completions delivered before the handler asked for them (created on first use). */
  private delivered: Map<number, JournalEntry> | undefined;
  /** The entries the handler waits for right now. */
  private readonly waiting = new Map<number, Waiter>();
  private busy = 0;
  /** Step bodies in flight, by journal index (see {@link runStepBody}). */
  private bodies?: Map<number, StrayBody>;
  /** Completions the engine is committing for this runner; it is not idle until they land. */
  expecting = 0;
  dead = false;
  /**
   * An operator paused the invocation (see pause.ts): the attempt stops at its next wait or
   * before its next step body, keeping everything its journal recorded.
   */
  pauseRequested = false;
  /** A cancellation requested and not yet delivered to the handler. */
  private cancelPending: boolean;
  /**
   * The cancellation was delivered while replaying the waits of a suspended attempt: every
   * recorded wait the handler re-awaits gets it too, as all of them would have in memory
   * ({@link requestCancel}). The first one re-awaited may be a decided race's losing timer,
   * which the handler never looks at again; cancelling only that one left the handler
   * waiting forever with its cancellation spent.
   */
  private cancelOnReplay = false;
  private awakeableSet: Set<number> | undefined;
  /** Random ids (and indexes) of the awakeables this attempt created; earlier ones are in `recorded`. */
  awakeableIds: Map<string, number> | undefined;
  private calleeMap: Map<number, string> | undefined;
  /**
   * The writes of this attempt's awakeables that have not settled yet: a step body waits for
   * them, so an id it hands out resolves everywhere (see `ContextImpl.execute`).
   */
  private unwrittenAwakeables: Set<Promise<void>> | undefined;

  /** Awakeables created by this attempt (their entries may not be committed yet). */
  get awakeables(): Set<number> {
    return (this.awakeableSet ??= new Set());
  }

  /** Invocations started by calls of this attempt, by entry index. */
  get callees(): Map<number, string> {
    return (this.calleeMap ??= new Map());
  }

  constructor(
    private readonly k: Kernel,
    readonly row: InvocationRow,
    readonly spec: HandlerSpec,
    readonly recorded: ReadonlyMap<number, JournalEntry>,
    readonly retryPolicy: ResolvedRetryPolicy,
    readonly isWorkflow: boolean,
  ) {
    this.cancelPending = row.cancel === 'requested';
    this.ctx = new ContextImpl(this, spec.shared);
    this.tracing = new AttemptTrace(row);
  }

  get invocationId(): string {
    return this.row.id;
  }
  get service(): string {
    return this.row.service;
  }
  get key(): string {
    return this.row.key;
  }
  get attempt(): number {
    return this.row.attempt;
  }
  get retryIndex(): number {
    return this.row.retryIndex;
  }

  /** Runs the handler to its end (or until the attempt is abandoned). */
  async start(): Promise<void> {
    this.storeRootTrace();
    let outcome: { output: unknown } | { error: unknown };
    try {
      outcome = { output: await this.tracing.run(() => this.spec.fn(this.ctx, this.row.input)) };
    } catch (error) {
      outcome = { error };
    }
    if (this.dead) return;
    this.tracing.end(outcome);
    try {
      this.k.outcomes.finish(this, outcome);
    } catch (err) {
      // A fault of the engine, not of the handler: retrying would meet it again, and letting
      // it escape would end the process. Isolate this invocation instead.
      this.k.outcomes.fatal(
        this,
        new KeelError(
          `the engine failed while finishing the invocation: ${errorMessage(err)}. ` +
            'Resume it once the cause is fixed, or kill it.',
          { code: 'internal', cause: err },
        ),
      );
    }
  }

  /** Abandons this attempt: the handler's pending awaits never settle and it is garbage. */
  kill(): void {
    if (!this.dead && this.bodies !== undefined && this.bodies.size > 0) {
      // A body cannot be stopped: the next attempt here takes its outcome over rather than run
      // it again (see Kernel.strayBodies).
      const strays = this.k.strayBodies;
      const mine = strays.get(this.row.id) ?? new Map<number, StrayBody>();
      for (const [index, stray] of this.bodies) mine.set(index, stray);
      strays.delete(this.row.id);
      strays.set(this.row.id, mine);
      if (strays.size > MAX_STRAY_INVOCATIONS) strays.delete(strays.keys().next().value!);
      this.bodies = undefined;
    }
    this.dead = true;
    this.tracing.end();
    this.ctx.kill();
    this.waiting.clear();
  }

  /** The journal indexes the handler waits for right now. */
  waitingIndexes(): number[] {
    return [...this.waiting.keys()];
  }

  /**
   * A completion the engine was committing for this runner landed or failed. Once nothing is in
   * flight the runner may be idle again, and must say so: otherwise a runner whose suspend timer
   * fired while it was busy would wait in memory forever, and a completion whose write's answer
   * an outage lost would never reach it (nor a suspension that would replay it).
   */
  doneExpecting(): void {
    this.expecting--;
    this.checkIdle();
  }

  private checkIdle(): void {
    if (this.isIdle && !this.dead) this.k.outcomes.idle(this);
  }

  /** True when the handler waits only for completions (timers, calls) and does nothing else. */
  get isIdle(): boolean {
    return this.busy === 0 && this.expecting === 0 && this.waiting.size > 0;
  }

  /**
   * A cancellation was requested: entries the handler waits for now are completed with it;
   * if it waits for nothing, its next step or wait sees it.
   */
  requestCancel(): void {
    if (this.dead) return;
    this.cancelPending = true;
    if (this.waiting.size === 0) return;
    this.cancelPending = false;
    this.k.host.cancelDelivered(this);
    for (const [index, w] of this.waiting) this.k.host.cancelEntry(this, index, w.entry);
  }

  /** A completion for entry `index` arrived (and is durable). */
  deliver(index: number, entry: JournalEntry): void {
    if (this.dead) return;
    this.tracing.settle(index, entry.error);
    const w = this.waiting.get(index);
    if (w) {
      this.waiting.delete(index);
      w.resolve(entry);
    } else {
      (this.delivered ??= new Map()).set(index, entry);
    }
  }

  // ---- InvocationHost --------------------------------------------------------------------

  now(): number {
    return this.k.clock.now();
  }

  monotonic(): number {
    const { clock } = this.k;
    // A clock without one (a fake clock) times durable waits; a step body takes real time.
    return clock.monotonic ? clock.monotonic() : performance.now();
  }

  epochOf(monotonic: number): number {
    const { clock } = this.k;
    return clock.monotonic && clock.epochOf ? clock.epochOf(monotonic) : clock.now();
  }

  commit(index: number, entry: JournalEntry, writes?: readonly StepWrite[]): Promise<unknown> {
    this.busy++;
    const done = (): void => {
      this.busy--;
      this.checkIdle();
    };
    const p = this.k.host.commit(this, index, entry, writes);
    p.then(done, done);
    return p;
  }

  append(index: number, entry: JournalEntry): void {
    this.k.host.append(this, index, entry);
  }

  readState(name: string): Promise<unknown> {
    return this.k.host.readState(this, name);
  }

  readStateKeys(): Promise<string[]> {
    return this.k.host.readStateKeys(this);
  }

  startSleep(index: number, entry: JournalEntry): void {
    this.tracing.wait(index, 'sleep', 'sleep');
    this.k.host.startSleep(this, index, entry);
  }

  startCall(index: number, target: Target, input: unknown, options: CallOptions | undefined): void {
    const trace = this.tracing.call(index, target.service, target.handler, target.key);
    this.k.host.startCall(this, index, target, input, options, trace);
  }

  startSend(
    index: number,
    target: Target,
    input: unknown,
    options: SendOptions | undefined,
    delayMs: number,
  ): Promise<string> {
    const trace = this.tracing.send(index, target.service, target.handler, target.key);
    return this.k.host.startSend(this, index, target, input, options, delayMs, trace);
  }

  awaitCompletion(index: number, entry: JournalEntry): Promise<JournalEntry> {
    const early = this.delivered?.get(index);
    if (early) {
      this.delivered!.delete(index);
      return Promise.resolve(early);
    }
    if (entry.done) return Promise.resolve(entry);
    if (this.cancelPending) {
      this.cancelPending = false;
      if (this.recorded.has(index)) this.cancelOnReplay = true;
      this.k.host.cancelDelivered(this);
      this.k.host.cancelEntry(this, index, entry);
    } else if (this.cancelOnReplay && this.recorded.has(index)) {
      this.k.host.cancelEntry(this, index, entry);
    }
    return new Promise<JournalEntry>((resolve) => {
      this.waiting.set(index, { resolve, entry });
      // Let the handler reach all of its concurrent awaits before deciding it is idle.
      queueMicrotask(() => {
        if (this.isIdle && !this.dead) this.k.outcomes.idle(this);
      });
    });
  }

  trackBody(p: Promise<unknown>): void {
    this.busy++;
    // A step's duration for the metrics, in a callback that exists anyway. Date.now(), not
    // performance.now(): a tenth of its cost on a VM's clock, and steps worth watching take
    // milliseconds (see keel_step_duration_seconds).
    const metrics = this.k.metrics;
    const t0 = metrics === undefined ? 0 : Date.now();
    const done = (): void => {
      if (metrics !== undefined && !this.dead) metrics.step(this.row, Date.now() - t0);
      this.busy--;
      if (this.isIdle && !this.dead) this.k.outcomes.idle(this);
    };
    p.then(done, done);
  }

  mayStartStep(): boolean {
    if (!this.dead && this.pauseRequested) this.k.outcomes.park(this);
    return !this.dead && this.k.host.mayStartStep(this);
  }

  newAwakeableId(index: number): string {
    return this.k.completions.awakeableIdFor(this.row.id, index);
  }

  createAwakeable(index: number, entry: JournalEntry): void {
    this.tracing.wait(index, 'awakeable', 'awakeable');
    this.awakeables.add(index);
    if (entry.name) (this.awakeableIds ??= new Map()).set(entry.name, index);
    const written = this.k.completions.createAwakeable(this, index, entry);
    const pending = (this.unwrittenAwakeables ??= new Set());
    pending.add(written);
    void written.then(() => pending.delete(written));
  }

  /**
   * A step body must not start before `write` settles. The engine hands in its own insert: an
   * embedded store starts an invocation before its insert is durable, and a body acting on the
   * world under an id a crash then loses would act again under the new id of the caller's retry.
   */
  holdStepsUntil(write: Promise<unknown>): void {
    const settled = write.then(
      () => undefined,
      () => undefined,
    );
    const pending = (this.unwrittenAwakeables ??= new Set());
    pending.add(settled);
    void settled.then(() => pending.delete(settled));
  }

  awakeablesDurable(): Promise<void> | undefined {
    const pending = this.unwrittenAwakeables;
    if (pending === undefined || pending.size === 0) return undefined;
    return Promise.all(pending).then(() => undefined);
  }

  completeAwakeable(index: number, id: string, result: Outcome): Promise<JournalEntry> {
    return this.track(this.k.completions.completeAwakeable(this, index, id, result));
  }

  awaitPromise(index: number, entry: JournalEntry): void {
    this.tracing.wait(index, `promise ${entry.name}`, 'promise', entry.name);
    this.k.completions.awaitPromise(this, index, entry);
  }

  peekPromise(
    name: string,
  ): Promise<{ done: boolean; value?: unknown; error?: ErrorInfo } | undefined> {
    return this.k.completions.peekPromise(this, name);
  }

  completePromise(index: number, name: string, result: Outcome): Promise<JournalEntry> {
    return this.track(this.k.completions.completePromise(this, index, name, result));
  }

  takeCancel(): boolean {
    if (!this.cancelPending || this.dead) return false;
    this.cancelPending = false;
    this.k.host.cancelDelivered(this);
    return true;
  }

  /** Counts an engine round trip as work, so the runner is not idle (and not suspended) meanwhile. */
  private track<T>(p: Promise<T>): Promise<T> {
    this.busy++;
    const done = (): void => {
      this.busy--;
      this.checkIdle();
    };
    p.then(done, done);
    return p;
  }

  retry(failure: {
    error: unknown;
    index: number;
    attempt: number;
    policy: ResolvedRetryPolicy;
  }): void {
    if (this.dead) return;
    this.tracing.end({ error: failure.error });
    this.k.outcomes.retry(this, failure);
  }

  fatal(error: KeelError): void {
    if (this.dead) return;
    this.tracing.end({ error });
    this.k.outcomes.fatal(this, error);
  }

  /**
   * Runs a step body, or takes over the execution an earlier attempt of this invocation left
   * running here (see `Kernel.strayBodies`): a retry of a sibling step, a pause or a timed-out
   * wait ended that attempt while this body ran, and DESIGN.md lets a step's body run again only
   * after a crash. Its outcome is this attempt's.
   */
  runStepBody(index: number, name: string, fn: () => unknown): Promise<unknown> {
    const strays = this.k.strayBodies;
    if (strays.size > 0) {
      const mine = strays.get(this.row.id);
      const stray = mine?.get(index);
      if (stray !== undefined && stray.name === name) {
        mine!.delete(index);
        if (mine!.size === 0) strays.delete(this.row.id);
        return this.followBody(index, stray);
      }
    }
    return this.followBody(index, { name, body: this.tracing.step(index, name, fn) });
  }

  /** The step bodies of this attempt still in flight (their steps have not gone on). */
  bodiesInFlight(): Array<Promise<unknown>> {
    return this.bodies === undefined ? [] : [...this.bodies.values()].map((b) => b.body);
  }

  /** Notes a body in flight until its step goes on ({@link bodySettled}), for {@link kill}. */
  private followBody(index: number, stray: StrayBody): Promise<unknown> {
    (this.bodies ??= new Map()).set(index, stray);
    return stray.body;
  }

  /**
   * A body's step goes on here (its result or failure is this attempt's). A body that settled
   * while the attempt ended before its step could go on stays, and is handed over settled.
   */
  bodySettled(index: number): void {
    this.bodies?.delete(index);
  }

  /**
   * An invocation started without a trace context gets its first attempt's span as its trace
   * (when an SDK records), so its later attempts, in any process, join the same trace.
   */
  private storeRootTrace(): void {
    const trace = this.tracing.rootTrace();
    if (trace === undefined) return;
    this.row.trace = trace;
    void this.k.host
      .write(this, [{ op: 'invocation.update', id: this.row.id, set: { trace } }])
      .catch(() => undefined);
  }

  log(level: keyof Logger, message: string, args: unknown[]): void {
    this.k.host.log(this, level, message, args);
  }
  resource(key: symbol): unknown {
    return this.k.host.resource(key);
  }
}
