import type { CallOptions, Logger, SendOptions } from '../core/context.js';
import { checkDelay } from '../core/duration.js';
import {
  CancelledError,
  errorMessage,
  TerminalError,
  toErrorInfo,
  UsageError,
} from '../core/errors.js';
import { checkDebounce, checkThrottle } from '../core/flow.js';
import { targetName, type JournalEntry, type Target } from '../core/journal.js';
import type { StepWrite } from '../core/replay.js';
import type { OpResult, TimerRow, WriteOp } from '../store/types.js';
import { redactDeep } from '../observability/redact.js';
import { fieldsOf } from './info.js';
import { entryResult, isUnavailable, RETRY_LATER_MS, type Kernel, type Outcome } from './kernel.js';
import type { Runner } from './runner.js';

/**
 * What a running handler asks of the engine, through its {@link Runner}: journal writes
 * (steps, state, sleeps), calls and sends to other handlers. Completions (awakeables,
 * promises) are `Completions`'; how an attempt ends is `Outcomes`'.
 *
 * Every write of an attempt goes through {@link write} or {@link failsAttempt}: a write that
 * fails (the store unreachable) stops the attempt, which is retried from its journal, rather
 * than letting the handler go on as if the write had been recorded.
 */
export class RunnerHost {
  constructor(private readonly k: Kernel) {}

  /** Every write of a runner goes through here; a failed write stops the invocation. */
  write(runner: Runner, ops: WriteOp[]): Promise<OpResult[]> {
    const p = this.k.store.write(ops);
    p.catch((err: unknown) => this.failAttempt(runner, err));
    return p;
  }

  /** A journal write of the attempt failed: the attempt stops and is retried from its journal. */
  failAttempt(runner: Runner, err: unknown): void {
    if (runner.dead) return;
    if ((err as { code?: unknown } | null)?.code === 'payload_too_large') {
      // A value above the store's limit (a state value, say) is as large on every attempt:
      // the invocation fails for good rather than retrying the same write forever.
      const message = `a journal write failed: ${errorMessage(err)}`;
      this.k.outcomes.finish(runner, {
        error: new TerminalError(message, { code: 'payload_too_large', cause: err }),
      });
      return;
    }
    this.k.log(
      'error',
      `a journal write failed: ${errorMessage(err)}; the attempt is retried`,
      fieldsOf(runner.row),
    );
    this.k.outcomes.abandon(runner);
    this.k.outcomes.scheduleRetry(runner.row, runner.row.attempt + 1, -1, 1000, err);
  }

  /**
   * `p` is a write (or a read-then-write) the attempt depends on, whose promise the handler
   * may drop (a send, a completion) or may catch: when the store is unavailable, the attempt
   * stops and is retried from its journal, rather than going on as if the write had been
   * recorded (or failing the step or the handler with an outage, which would spend its retries
   * or look like the step's own failure). Errors of the operation itself still reach the
   * handler through `p`.
   */
  failsAttempt<T>(runner: Runner, p: Promise<T>): Promise<T> {
    p.catch((err: unknown) => {
      if (isUnavailable(err)) this.failAttempt(runner, err);
    });
    return p;
  }

  /** Records a step's entry, with the step's key-value writes (`runWithWrites`) in the same write. */
  commit(
    runner: Runner,
    index: number,
    entry: JournalEntry,
    writes: readonly StepWrite[] | undefined,
  ): Promise<unknown> {
    const ops: WriteOp[] = [{ op: 'journal.put', invocationId: runner.row.id, index, entry }];
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
    // An outage fails the attempt (the step's result is not durable, so the step runs again
    // in the retry): the handler, which may catch what its step throws, must not take an
    // outage for the step's failure. Other write errors reach the handler.
    return this.failsAttempt(runner, this.k.store.write(ops));
  }

  /** Records an entry nobody waits for (state changes, an outcome label). */
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
    return this.k.store.getState(runner.row.service, runner.row.key, name);
  }

  readStateKeys(runner: Runner): Promise<string[]> {
    return this.k.store.getStateKeys(runner.row.service, runner.row.key);
  }

  /** Records a sleep with its durable timer, in one write. */
  startSleep(runner: Runner, index: number, entry: JournalEntry): void {
    const timer: TimerRow = { invocationId: runner.row.id, index, fireAt: entry.wakeAt! };
    this.write(runner, [
      { op: 'journal.put', invocationId: runner.row.id, index, entry },
      { op: 'timer.put', timer },
    ]).then(
      () => this.k.timers.add(timer),
      () => undefined,
    );
  }

  /** Starts the callee of a call, recorded atomically with the caller's journal entry. */
  startCall(
    runner: Runner,
    index: number,
    target: Target,
    input: unknown,
    options: CallOptions | undefined,
    /** The trace context the callee's spans are children of (see observability/tracing). */
    trace?: string,
  ): void {
    const { k } = this;
    const name = targetName(target);
    const me = runner.row.id;
    const pending: JournalEntry = { kind: 'call', name, done: false, startedAt: k.clock.now() };
    runner.expecting++; // busy until the call is created (validation and dedupe lookups are async)
    k.admission
      .createNamed(
        target,
        { input, idempotencyKey: options?.idempotencyKey, trace },
        { id: me, index },
        (row) => {
          runner.callees.set(index, row.id);
          return [
            { op: 'journal.put', invocationId: me, index, entry: { ...pending, calleeId: row.id } },
          ];
        },
        true, // ctx.call normalized the input
      )
      .then(
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
          // The call could not start (unknown target, invalid input): the call fails
          // terminally. An outage on the way is no answer of the target's: the attempt is
          // retried instead.
          if (isUnavailable(err)) return this.failAttempt(runner, err);
          this.failsAttempt(
            runner,
            k.completions.completeEntry(me, index, {
              ...pending,
              done: true,
              error: toErrorInfo(err),
            }),
          ).catch(() => undefined);
        },
      );
  }

  /** Waits for a callee this runner is not the primary caller of, and completes the entry. */
  attachCall(runner: Runner, index: number, entry: JournalEntry): void {
    const { k } = this;
    runner.expecting++;
    const settle = (outcome: Outcome): void => {
      runner.doneExpecting();
      // Not recorded (an outage): the attempt is retried, and its replay waits again.
      this.failsAttempt(
        runner,
        k.completions.completeEntry(runner.row.id, index, {
          ...entry,
          done: true,
          ...entryResult(outcome),
          completedAt: k.clock.now(),
          completedBy: `call ${entry.calleeId!}`,
        }),
      ).catch(() => undefined);
    };
    k.results.await(entry.calleeId!, true).then(settle, (err: unknown) => {
      // The store could not be read (an outage): that is no outcome of the callee's. Wait
      // again later (staying busy meanwhile) rather than fail the call with it.
      k.log('warn', `could not wait for ${entry.calleeId}: ${errorMessage(err)}`);
      k.clock.setTimer(RETRY_LATER_MS, () => {
        runner.doneExpecting();
        if (!runner.dead && !k.stopping) this.attachCall(runner, index, entry);
      });
    });
  }

  /** Starts the target of a send; resolves with its id once the invocation is durable. */
  startSend(
    runner: Runner,
    index: number,
    target: Target,
    input: unknown,
    options: SendOptions | undefined,
    delayMs: number,
    /** The trace context the started invocation's spans are children of. */
    trace?: string,
  ): Promise<string> {
    // Most handlers never look at the send's id: an outage while sending must stop the
    // attempt, or it would go on as if the send had been recorded (and it would never happen).
    return this.failsAttempt(
      runner,
      this.sendNow(runner, index, target, input, options, delayMs, trace),
    );
  }

  private async sendNow(
    runner: Runner,
    index: number,
    target: Target,
    input: unknown,
    options: SendOptions | undefined,
    delayMs: number,
    trace: string | undefined,
  ): Promise<string> {
    const { k } = this;
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
      if (options?.debounce !== undefined || options?.throttle !== undefined) {
        // The send's entry rides in the write that makes it durable: the insert of a new
        // burst or a throttled invocation, or the write that joins a burst.
        const sent = await k.flow.send(
          {
            ...k.admission.resolve(target.service, target.handler, target.key),
            input,
            idempotencyKey: options.idempotencyKey,
            delayMs: delayMs > 0 ? delayMs : undefined,
            trace,
            ...(options.debounce === undefined
              ? {}
              : { debounce: checkDebounce(options.debounce) }),
            ...(options.throttle === undefined
              ? {}
              : { throttle: checkThrottle(options.throttle) }),
          },
          (r) => [{ op: 'journal.put', invocationId: me, index, entry: entryFor(r.id) }],
          true, // ctx.send normalized the input
        );
        // A throttled send that found its idempotency key's invocation wrote nothing.
        if (sent.existing && options.debounce === undefined && !runner.dead)
          await this.write(runner, [
            { op: 'journal.put', invocationId: me, index, entry: entryFor(sent.invocationId) },
          ]);
        return sent.invocationId;
      }
      const { row, existing, durable } = await k.admission.createNamed(
        target,
        { input, idempotencyKey: options?.idempotencyKey, delayMs, trace },
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

  /** Completes a waiting entry with a cancellation (and cancels the callee of a call). */
  cancelEntry(runner: Runner, index: number, entry: JournalEntry): void {
    const { k } = this;
    const cancelled: JournalEntry = {
      ...entry,
      done: true,
      value: undefined,
      error: toErrorInfo(new CancelledError()),
      completedAt: k.clock.now(),
      completedBy: 'cancel',
    };
    const extra: WriteOp[] =
      entry.kind === 'sleep' ? [{ op: 'timer.delete', invocationId: runner.row.id, index }] : [];
    // Not recorded (an outage): the attempt is retried. The cancellation's 'delivered' mark
    // rides in the same batch, so it failed too and the replay is cancelled again.
    this.failsAttempt(
      runner,
      k.completions.completeEntry(runner.row.id, index, cancelled, extra),
    ).catch(() => undefined);
    // Cancellation propagates to the invocation this one waits on.
    const callee = entry.calleeId ?? runner.callees.get(index);
    if (entry.kind === 'call' && callee) void k.control.cancel(callee).catch(() => undefined);
  }

  /** The cancellation reached the handler: remember it durably so it is delivered once. */
  cancelDelivered(runner: Runner): void {
    runner.row.cancel = 'delivered';
    void this.write(runner, [
      { op: 'invocation.update', id: runner.row.id, set: { cancel: 'delivered' } },
    ]).catch(() => undefined);
  }

  /**
   * A step body starts only where it may (see `Ownership.mayStartStep`); otherwise another
   * process may be running the same invocation, and the attempt is dropped (its owner runs it
   * again).
   */
  mayStartStep(runner: Runner): boolean {
    if (this.k.own.mayStartStep(runner)) return true;
    this.k.outcomes.abandon(runner);
    // No status write follows (none may land): nothing is settling. Left marked, the
    // invocation would never be resumed here once taken over under the new id: every resume
    // would wait for a write that never comes (the fence, which clears the marks of the
    // runners it drops, no longer finds this one among them).
    this.k.settling.delete(runner.row.id);
    return false;
  }

  /** A handler's log line, with its invocation's fields. */
  log(runner: Runner, level: keyof Logger, message: string, args: unknown[]): void {
    // Cleaned here, not only in Keel's own logger: an app's `logger` option gets the fields too.
    this.k.log(level, message, { ...fieldsOf(runner.row), args: redactDeep(args) });
  }

  resource(key: symbol): unknown {
    return this.k.resources.get(key);
  }
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
