import { errorMessage } from '../core/errors.js';
import type { JournalEntry } from '../core/journal.js';
import type { TimerRow } from '../store/types.js';
import type { Kernel } from './kernel.js';

/**
 * What a due timer does (the `TimerService` decides when): index -1 starts a scheduled
 * invocation or replays one that backed off; any other index completes that sleep entry.
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
    startAfterTimer(k, t.invocationId, again);
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
function startAfterTimer(k: Kernel, id: string, again: (err: unknown) => void): void {
  const now = k.clock.now();
  k.store
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
      k.timers.done(id, -1);
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
