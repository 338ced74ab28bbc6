import { errorMessage } from '../core/errors.js';
import type { JournalEntry } from '../core/journal.js';
import { StoreError } from '../store/errors.js';
import type { TimerRow, WriteOp } from '../store/types.js';
import type { Kernel } from './kernel.js';

/**
 * The index of a debounced invocation's start timer (flow-control.ts). Not -1: a debounced
 * send moves its invocation's start later (`runAt`), which the timer held in memory does not
 * know, so this timer's firing first reads the row and waits again until `runAt` is due.
 * Other delayed starts and retries (-1) never move and start without that read.
 */
export const DEBOUNCE_TIMER = -2;

/**
 * What a due timer does (the `TimerService` decides when): index -1 starts a scheduled
 * invocation or replays one that backed off, {@link DEBOUNCE_TIMER} starts a debounced one
 * once its `runAt` is due; any other index completes that sleep entry.
 */
export function fireTimer(k: Kernel, t: TimerRow): void {
  // A timer whose firing could not be recorded (the store is unreachable) fires again soon.
  const again = (err: unknown): void => {
    k.log(
      'warn',
      `could not fire a timer of ${t.invocationId}: ${errorMessage(err)}; trying again`,
    );
    k.timers.done(t.invocationId, t.index);
    k.clock.setTimer(1000, () => k.timers.add(t));
  };
  if (t.index === -1) {
    if (!k.queues.any) startAfterTimer(k, t.invocationId, again, -1);
    else
      k.queues.fileAfterTimer(t.invocationId).then((filed) => {
        if (!filed) startAfterTimer(k, t.invocationId, again, -1);
      }, again);
    return;
  }
  if (t.index === DEBOUNCE_TIMER) {
    startDebounced(k, t, again);
    return;
  }
  const entry: JournalEntry = {
    kind: 'sleep',
    name: '',
    done: true,
    wakeAt: t.fireAt,
    completedAt: k.clock.now(),
    completedBy: 'timer',
  };
  // The deletion rides with the completion; forget the timer once both are durable.
  k.completions
    .completeEntry(t.invocationId, t.index, entry, [
      { op: 'timer.delete', invocationId: t.invocationId, index: t.index },
    ])
    .then(() => k.timers.done(t.invocationId, t.index), again);
}

/**
 * A start (scheduled) or retry (backing-off) timer makes its invocation runnable in the write
 * that deletes it: the timer is never gone while its row still waits for it, so recovery and
 * the key hand-off (which take running and pending rows) find it after a crash or while its
 * key is busy. The status checks keep a cancellation made meanwhile.
 */
function startAfterTimer(
  k: Kernel,
  id: string,
  again: (err: unknown) => void,
  index: number,
): void {
  void startNow(k, id, again, index);
}

/** {@link startAfterTimer}, settling once its write is answered. */
function startNow(
  k: Kernel,
  id: string,
  again: (err: unknown) => void,
  index: number,
  expectRunAt?: number,
): Promise<void> {
  const now = k.clock.now();
  return k.store
    .write([
      ...(expectRunAt === undefined
        ? []
        : [
            {
              op: 'invocation.expect',
              id,
              status: ['scheduled'],
              runAt: expectRunAt,
            } satisfies WriteOp,
          ]),
      { op: 'timer.delete', invocationId: id, index },
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
    .then((results) => {
      const [, started, retried] = expectRunAt === undefined ? results : results.slice(1);
      k.timers.done(id, index);
      const starts = (started as { updated: boolean }).updated;
      if (!starts && !(retried as { updated: boolean }).updated) return;
      // Durably runnable now: if this read fails, recovery (or a cluster's sweep) starts it.
      k.store.getInvocation(id).then(
        (row) => {
          if (!row || k.own.elsewhere(row.owner)) return;
          if (starts && row.status === 'pending') k.own.enqueue(row);
          else if (!starts && row.status === 'running') k.admission.resume(row);
        },
        (err: unknown) =>
          k.log('error', `could not start ${id} after its timer: ${errorMessage(err)}`),
      );
    }, again);
}

/**
 * A debounced invocation's start timer: the sends of its burst moved `runAt` (and the timer's
 * row) later while this process held the first fire time, so the row decides. Still waiting:
 * held again for its `runAt`. Due: started as any delayed start is (or filed in its queue), by
 * the write that deletes the timer and expects `scheduled`; a send whose write (which expects
 * `scheduled` too) lands after it finds it started and begins a new burst (flow-control.ts).
 * No longer scheduled (started, cancelled, paused): the timer has nothing left to do.
 *
 * The read and the start run inside `FlowControl.exclusive` for the invocation, as the sends
 * that join it do: in this process no send joins between the check and the start. A send of
 * another process sharing the store can (its write lands between this read and this write): the
 * start expects the `runAt` it read, so a send that moved it makes the start apply nothing, and
 * the timer waits again for the new time: every send of a burst gets its quiet period.
 */
function startDebounced(k: Kernel, t: TimerRow, again: (err: unknown) => void): void {
  const id = t.invocationId;
  // A send joined after the read (another process): read the row again and wait for its time.
  const moved = (err: unknown): void => {
    if (err instanceof StoreError && err.code === 'precondition_failed')
      startDebounced(k, t, again);
    else again(err);
  };
  const forget = async (): Promise<void> => {
    await k.store.write([{ op: 'timer.delete', invocationId: id, index: t.index }]);
    k.timers.done(id, t.index);
  };
  k.flow
    .exclusive(id, async () => {
      const row = await k.store.getInvocation(id);
      if (row?.status !== 'scheduled') return forget();
      // Taken over by another process meanwhile: its reload holds the timer now.
      if (k.own.elsewhere(row.owner)) {
        k.timers.done(id, t.index);
        return;
      }
      const runAt = row.runAt ?? t.fireAt;
      if (runAt > k.clock.now()) {
        k.timers.done(id, t.index);
        k.timers.add({ invocationId: id, index: t.index, fireAt: runAt });
        return;
      }
      // A queued handler's debounced start waits in its queue, as a delayed start does (that
      // write deletes a start timer -1; this one is deleted after, or by its next firing).
      if (k.queues.any && (await k.queues.fileAfterTimer(id, runAt))) return forget();
      await startNow(k, id, moved, t.index, runAt);
    })
    .catch(moved);
}
