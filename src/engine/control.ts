import { CancelledError, ConflictError, toErrorInfo, type ErrorInfo } from '../core/errors.js';
import type { InvocationRow, InvocationStatus } from '../store/types.js';
import { notFound, toInfo, type InvocationInfo } from './info.js';
import { isPreconditionFailed, type Kernel } from './kernel.js';
import { resumeInvocation } from './pause.js';
import type { Runner } from './runner.js';

/** How many times an operator's cancel or kill reads an invocation again that changed meanwhile. */
const DECIDE_TRIES = 5;

/** Every status but the finished ones. */
const UNFINISHED: InvocationStatus[] = [
  'queued',
  'pending',
  'scheduled',
  'running',
  'suspended',
  'backing-off',
  'paused',
];

/**
 * An operator's (or a cancelled caller's) control of an invocation: cancel, kill, purge, and
 * resuming a paused one. Each decides from the invocation's current status and writes only
 * while that status still holds (`invocation.expect`), so a decision never overwrites what
 * changed meanwhile (another process, a timer); it is read again and decided anew.
 */
export class Control {
  constructor(private readonly k: Kernel) {}

  /**
   * Cancels gracefully: the handler sees a `CancelledError` at its next await. An invocation
   * that has not started yet ends at once. 404 unknown, 409 finished or paused.
   */
  cancel(id: string): Promise<InvocationInfo> {
    return this.decide(() => this.cancelOnce(id));
  }

  /** Ends an invocation now with code `killed`: no compensation runs. 404 unknown, 409 finished. */
  kill(id: string): Promise<InvocationInfo> {
    return this.decide(() => this.killOnce(id));
  }

  /** Deletes a finished invocation with its journal. 404 unknown, 409 not finished. */
  async purge(id: string): Promise<void> {
    const row = await this.k.store.getInvocation(id);
    if (!row) throw notFound(id);
    if (row.status !== 'completed' && row.status !== 'failed') {
      throw new ConflictError(
        `invocation ${id} is ${row.status}: only finished invocations can be purged (cancel or kill it first)`,
        'not_finished',
      );
    }
    await this.k.store.write([{ op: 'invocation.delete', id }]);
  }

  /** Resumes a paused invocation (see pause.ts, which also pauses). 404 unknown, 409 not paused. */
  resumePaused(id: string): Promise<InvocationInfo> {
    return resumeInvocation(this.k, id);
  }

  /**
   * Runs a decision again while its write finds the invocation changed (`precondition_failed`),
   * up to {@link DECIDE_TRIES} times.
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

  private async cancelOnce(id: string): Promise<InvocationInfo> {
    const { k } = this;
    const read = k.active.get(id)?.row ?? (await k.store.getInvocation(id));
    // It may have started while the row was read (its object key handed to it): then its
    // runner decides, not the row that says pending (ending that would end a running
    // invocation and hand its key on while it runs).
    const runner = k.active.get(id);
    const row = runner?.row ?? read;
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
    if (row.status === 'pending' || row.status === 'scheduled' || row.status === 'queued') {
      // Not started: nothing to compensate, it ends here.
      k.own.dequeue(row);
      const error = toErrorInfo(new CancelledError());
      const unrecorded = await k.outcomes.finishRow(row, { error }, false, [
        'pending',
        'scheduled',
        'queued',
      ]);
      if (unrecorded) throw unrecorded;
      return toInfo({ ...row, status: 'failed', error });
    }
    if (k.own.elsewhere(row.owner)) {
      // Another process runs it: record the request and tell that process.
      await k.store.write([
        { op: 'invocation.update', id, set: { cancel: 'requested', modifiedAt: k.clock.now() } },
        { op: 'notify', to: row.owner!, message: { type: 'cancel', invocationId: id } },
      ]);
      return toInfo({ ...row, cancel: 'requested' });
    }
    return this.applyCancel(row, runner);
  }

  /** A cancel request recorded by another process for an invocation this process owns. */
  async cancelOwned(id: string): Promise<void> {
    const runner = this.k.active.get(id);
    if (runner) {
      runner.row.cancel = 'requested';
      runner.requestCancel();
      return;
    }
    await this.decide(async () => {
      const row = await this.k.store.getInvocation(id);
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
    const { k } = this;
    const id = row.id;
    const now = k.clock.now();
    row.cancel = 'requested';
    if (runner) {
      await k.store.write([
        { op: 'invocation.update', id, set: { cancel: 'requested', modifiedAt: now } },
      ]);
      if (!runner.dead) {
        runner.requestCancel();
        return toInfo(row);
      }
      // It suspended (or backed off) while the request was written: the dropped runner would
      // never see it, and the row would sleep on until its wait ended. Wake it instead.
      await this.cancelOwned(id);
      return toInfo(row);
    }
    // Suspended or backing off: wake it up so the handler sees the cancellation now. Only if it
    // still is: a finished invocation set running again would run again.
    await k.store.write([
      { op: 'invocation.expect', id, status: ['suspended', 'backing-off', 'running'] },
      {
        op: 'invocation.update',
        id,
        set: { cancel: 'requested', status: 'running', modifiedAt: now },
      },
    ]);
    if (k.loading.has(id)) k.cancelRequests.add(id);
    k.admission.resume({ ...row, status: 'running', cancel: 'requested' });
    return toInfo({ ...row, status: 'running' });
  }

  private async killOnce(id: string): Promise<InvocationInfo> {
    const { k } = this;
    const read = k.active.get(id)?.row ?? (await k.store.getInvocation(id));
    // Started while the row was read: that attempt must stop too (see `cancelOnce`).
    const runner = k.active.get(id);
    const row = runner?.row ?? read;
    if (!row) throw notFound(id);
    if (row.status === 'completed' || row.status === 'failed') {
      throw new ConflictError(
        `invocation ${id} has already finished (${row.status})`,
        'already_finished',
      );
    }
    if (runner) k.outcomes.abandon(runner);
    k.own.dequeue(row);
    const error: ErrorInfo = {
      code: 'killed',
      message: `invocation ${id} was killed by an operator`,
      // A 4xx like `cancelled`: the invocation ended on purpose, nothing failed on the server.
      status: 409,
    };
    const unrecorded = await k.outcomes.finishRow(row, { error }, false, UNFINISHED);
    if (unrecorded) throw unrecorded;
    if (k.own.elsewhere(row.owner)) {
      // Its process stops running it when it hears this.
      await k.store.write([
        { op: 'notify', to: row.owner!, message: { type: 'kill', invocationId: id } },
      ]);
    }
    return toInfo({ ...row, status: 'failed', error });
  }
}
