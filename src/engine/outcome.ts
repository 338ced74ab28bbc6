import {
  errorMessage,
  isTerminal,
  KeelError,
  RetriesExhaustedError,
  TerminalError,
  toErrorInfo,
} from '../core/errors.js';
import type { JournalEntry } from '../core/journal.js';
import { normalize } from '../core/replay.js';
import { backoffDelay, type ResolvedRetryPolicy } from '../core/retry.js';
import { validate } from '../core/schema.js';
import type { InvocationRow, InvocationStatus, TimerRow, WriteOp } from '../store/types.js';
import { AWAKEABLE_SCOPE, type AwakeableRef } from './completions.js';
import { fieldsOf, targetOf } from './info.js';
import { entryResult, isPreconditionFailed, type Kernel, type Outcome } from './kernel.js';
import type { Runner } from './runner.js';

/**
 * How an attempt ends: it suspends (waits without memory), backs off and retries, pauses (it
 * cannot go on until an operator acts) or finishes, recording its outcome, completing its
 * caller's entry, handing its object key on and answering whoever waits for its result.
 */
export class Outcomes {
  private readonly suspendTimers = new Map<string, () => void>();

  constructor(private readonly k: Kernel) {}

  /** The runner only waits: it suspends if it still does after `suspendAfter`. */
  idle(runner: Runner): void {
    const { k } = this;
    const id = runner.row.id;
    // Paused by an operator: it stops here, at its wait (the pause is recorded already).
    if (runner.pauseRequested) return this.park(runner);
    if (this.suspendTimers.has(id)) return;
    const cancel = k.clock.setTimer(k.suspendAfterMs, () => {
      this.suspendTimers.delete(id);
      if (runner.dead || !runner.isIdle || k.active.get(id) !== runner) return;
      this.suspend(runner);
    });
    this.suspendTimers.set(id, cancel);
  }

  /** The engine stops: no runner suspends any more. */
  dropSuspendTimers(): void {
    for (const cancel of this.suspendTimers.values()) cancel();
    this.suspendTimers.clear();
  }

  /** Drops a waiting invocation from memory; a completion or timer resumes it by replay. */
  private suspend(runner: Runner): void {
    const { k } = this;
    const waitingFor = runner.waitingIndexes();
    this.abandon(runner);
    const id = runner.row.id;
    // Not if a completion of what it waits for is durable already: one that committed while
    // it was going to sleep found it running, so did not resume it, and its wake-up may have
    // reached the runner just dropped. Then it runs again instead.
    k.host
      .write(runner, [{ op: 'invocation.suspend', id, waitingFor, modifiedAt: k.clock.now() }])
      .then(([r]) => {
        k.settling.delete(id);
        if (!(r as { suspended: boolean }).suspended) return k.admission.resumeById(id);
      })
      .catch(() => undefined)
      .finally(() => k.settling.delete(id));
  }

  /**
   * Stops an attempt an operator paused (see pause.ts), at a wait or before a step body: the
   * pause's write records the status, and `k.pausing` keeps any attempt from starting until
   * it is durable, so nothing is settling here.
   */
  park(runner: Runner): void {
    this.abandon(runner);
    this.k.settling.delete(runner.row.id);
  }

  /** Kills a runner and forgets it, keeping its object key held. */
  abandon(runner: Runner): void {
    const { k } = this;
    const id = runner.row.id;
    k.settling.add(id);
    runner.kill();
    if (k.active.get(id) === runner) k.active.delete(id);
    const cancel = this.suspendTimers.get(id);
    if (cancel) {
      cancel();
      this.suspendTimers.delete(id);
    }
  }

  /** A step or the handler failed with a retryable error: back off, then replay. */
  retry(
    runner: Runner,
    failure: { error: unknown; index: number; attempt: number; policy: ResolvedRetryPolicy },
  ): void {
    if (runner.pauseRequested) {
      // Paused meanwhile: no backoff timer; the failed attempt still counts when it resumes.
      this.park(runner);
      void this.k.store
        .write([
          {
            op: 'invocation.update',
            id: runner.row.id,
            set: { attempt: failure.attempt, retryIndex: failure.index },
            ifStatus: 'paused',
          },
        ])
        .catch(() => undefined);
      return;
    }
    this.abandon(runner);
    const delay = backoffDelay(failure.policy, failure.attempt, Math.random());
    this.scheduleRetry(runner.row, failure.attempt, failure.index, delay, failure.error);
  }

  /** Records the backing-off status with the timer that replays the invocation. */
  scheduleRetry(
    row: InvocationRow,
    attempt: number,
    index: number,
    delay: number,
    error: unknown,
  ): void {
    const { k } = this;
    const runAt = k.clock.now() + delay;
    const what = index >= 0 ? `step ${index}` : 'the handler';
    k.log(
      'warn',
      `attempt ${attempt} failed in ${what}: ${errorMessage(error)}; retrying in ${delay} ms`,
      fieldsOf(row),
    );
    const timer: TimerRow = { invocationId: row.id, index: -1, fireAt: runAt };
    k.store
      .write([
        // Only while it runs: an operator may have paused (or killed) it from another process.
        { op: 'invocation.expect', id: row.id, status: ['running', 'pending'] },
        {
          op: 'invocation.update',
          id: row.id,
          set: {
            status: 'backing-off',
            attempt,
            retryIndex: index,
            runAt,
            modifiedAt: k.clock.now(),
            error: toErrorInfo(error),
          },
        },
        { op: 'timer.put', timer },
      ])
      .then(
        () => k.timers.add(timer),
        (err: unknown) => {
          if (!isPreconditionFailed(err))
            k.log('error', `could not schedule a retry of ${row.id}: ${errorMessage(err)}`);
        },
      )
      .finally(() => k.settling.delete(row.id));
  }

  /** Stops the invocation and pauses it with `error` (non-determinism, an internal failure). */
  fatal(runner: Runner, error: KeelError): void {
    this.abandon(runner);
    this.pauseRow(runner.row, error);
  }

  /**
   * Pauses an invocation that cannot go on (non-determinism, a journal that cannot be read or
   * replayed): it holds its object key and waits, with the error recorded, for an operator to
   * fix the cause and resume it, or to kill it. Nothing else stops.
   */
  pauseRow(row: InvocationRow, error: KeelError): void {
    const { k } = this;
    k.settling.add(row.id);
    k.log('error', `${error.message} The invocation is paused.`, fieldsOf(row));
    k.store
      .write([
        {
          op: 'invocation.update',
          id: row.id,
          set: { status: 'paused', error: toErrorInfo(error), modifiedAt: k.clock.now() },
        },
      ])
      .catch((err: unknown) => k.log('error', `could not pause ${row.id}: ${errorMessage(err)}`))
      .finally(() => k.settling.delete(row.id));
  }

  /** The handler returned or threw: retry it, or record its outcome. */
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
    // Nothing will take over what its steps left running.
    this.k.strayBodies.delete(runner.row.id);
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
    const { k } = this;
    const { id: invocationId, service } = runner.row;
    const expiresAt = k.clock.now() + k.retention.of(service);
    const ops: WriteOp[] = [];
    const expire = (id: string, index: number): void => {
      const value: AwakeableRef = { invocationId, index };
      ops.push({ op: 'kv.put', scope: AWAKEABLE_SCOPE, key: id, value, expiresAt });
    };
    for (const [index, e] of runner.recorded)
      if (e.kind === 'awakeable' && e.name) expire(e.name, index);
    for (const [id, index] of runner.awakeableIds ?? []) expire(id, index);
    if (ops.length === 0) return;
    k.store.write(ops).catch((err: unknown) => {
      k.log('warn', `could not set the expiry of awakeable lookups: ${errorMessage(err)}`);
    });
  }

  /**
   * Records the outcome, completes the caller's entry, then releases the key and wakes waiters.
   * `freeDedupe`: a failure also clears the row's dedupe key in the same write (see `finish`).
   * Resolves with the store's error when the outcome could not be recorded, else undefined.
   */
  finishRow(
    row: InvocationRow,
    outcome: Outcome,
    freeDedupe = false,
    /** Only while its status is one of these (an operator's cancel or kill: see `Control`). */
    expect?: InvocationStatus[],
  ): Promise<Error | undefined> {
    const { k } = this;
    const now = k.clock.now();
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
        expiresAt: now + k.retention.of(row.service),
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
            completedAt: now,
            completedBy: `call ${row.id}`,
          }
        : undefined;
    const caller = row.callerId === undefined ? undefined : k.active.get(row.callerId);
    const me = k.own.processId;
    if (callerEntry)
      ops.push({
        op: 'journal.complete',
        invocationId: row.callerId!,
        index: row.callerEntry!,
        entry: callerEntry,
        ...(me ? { notifyFrom: me } : {}),
      });
    ops.push(...k.own.finishOps(row));
    if (caller) caller.expecting++;
    return k.store
      .write(ops)
      .then(
        (results): undefined => {
          const loading = k.loading.get(row.id);
          if (loading) loading.finished = true;
          if (clearDedupe) row.dedupe = undefined;
          k.metrics?.finished(
            row.service,
            row.handler,
            failed ? outcome.error : undefined,
            (now - row.createdAt) / 1000,
          );
          if (failed) k.log('warn', `failed: ${outcome.error.message}`, fieldsOf(row));
          k.own.finished(row, results);
          k.queues.finished(row);
          k.results.settle(row.id, outcome);
          if (caller) caller.doneExpecting();
          if (callerEntry) {
            const r = results[first + 1] as { resumed: boolean; owner?: string } | undefined;
            // A caller owned by another process was woken by the store.
            if (!k.own.elsewhere(r?.owner)) {
              k.completions.deliver(
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
          if (!failed && (err as { code?: unknown } | null)?.code === 'payload_too_large') {
            // An output above the store's hard limit is as large on every attempt: the
            // invocation fails with that, rather than running again at each start.
            const error = new TerminalError(
              `the output of ${targetOf(row)} is too large to store: ${errorMessage(err)}`,
              { code: 'payload_too_large' },
            );
            return this.finishRow(row, { error: toErrorInfo(error) }, freeDedupe, expect);
          }
          k.log(
            'error',
            `could not record the outcome of ${row.id}: ${errorMessage(err)}; it runs again at the next start`,
          );
          // Resolved, not rejected: most callers fire and forget. An operator's kill or cancel
          // checks it, so that it never answers for an outcome that was not recorded.
          return err instanceof Error
            ? err
            : new KeelError(errorMessage(err), { code: 'internal', cause: err });
        },
      )
      .finally(() => k.settling.delete(row.id));
  }
}
