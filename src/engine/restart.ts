import {
  ConflictError,
  registerErrorClass,
  TerminalError,
  ValidationError,
} from '../core/errors.js';
import { describeEntry, type JournalEntry } from '../core/journal.js';
import type { InvocationStatus } from '../store/types.js';
import { notFound, type InvocationInfo } from './info.js';
import type { Kernel } from './kernel.js';
import { restartInvocation } from './pause.js';

/**
 * Restart from a journal prefix ("keep the completed steps up to entry N, run the rest anew"),
 * as Restate's restart-as-new `from` and Temporal's reset to an event do it:
 *
 * - a NEW invocation (new id) of the same target, key and input, whose journal starts as a copy
 *   of the old one's entries `0 .. N-1`. Its first attempt replays them: their step bodies do
 *   not run again, their calls and sends are not made again, their recorded values (a step's
 *   result or terminal error, a `ctx.now()`, a state read, a call's answer) are what the
 *   handler sees. Entry `N` onwards runs as new.
 * - the old invocation must be finished (completed or failed, a killed one included): a
 *   running journal can change under the copy (409 `not_finished`). It stays readable by its
 *   id; a workflow's run hands its key to the new run, as a plain restart does.
 * - `fromEntry: 0` copies nothing: it is exactly a plain restart (`restartInvocation`).
 * - every entry of the prefix must carry over safely; otherwise the restart is refused (409,
 *   {@link RestartPrefixError} naming the entry) and nothing is written:
 *   - an entry that never completed (a call, an awakeable, a durable promise, left waiting by
 *     a kill, or as the loser of a decided race): its completion is addressed to the old
 *     invocation, so the new one would wait forever (`entry_unfinished`). An unfinished sleep
 *     is the exception: it carries over with a new timer at its recorded wake-up time (the
 *     losing timer of every `orTimeout` is such a sleep).
 *   - a cancellation delivered to the old invocation: carried over, it would cancel the new
 *     one at the same point (`entry_not_portable`).
 *   An index the journal lacks (a step still running in parallel when the old invocation
 *   ended recorded nothing) is not an error: that step runs again.
 * - an object's exclusive handler must be able to take its key at once (409 `key_busy`
 *   otherwise; see `Admit.prefix`).
 *
 * What is not rolled back: object or workflow state (the prefix's `ctx.set`s are not applied
 * again; state is what the old invocation and everything after it left), durable promises of
 * a workflow key, and effects of the prefix's calls and sends (their callees stay as they are).
 * `ctx.random()` and `ctx.uuid()` are seeded by the invocation id, so the new invocation draws
 * other values than the old one did: code before entry N that branches on them may meet a
 * non-determinism error (the invocation is then paused, as any replay that diverges).
 *
 * The copied entries, their sleeps' timers and the new invocation are one store write: there
 * is never an invocation with half a prefix.
 */

/** What `Engine.restart` takes besides the id. */
export interface RestartOptions {
  /**
   * The journal index of the first entry to run again: entries `0 .. fromEntry-1` are copied
   * into the new invocation and replayed, not executed. `0` (or absent): a plain restart.
   * Between 0 and the number of entries the journal has (that number keeps every entry and
   * runs only the code after the last one).
   */
  fromEntry?: number;
}

/** Why a restart from a prefix was refused (see the file's comment). */
export type RestartPrefixCode = 'entry_out_of_range' | 'entry_unfinished' | 'entry_not_portable';

/**
 * A restart from a journal prefix that cannot be done: `fromEntry` past the journal's end
 * (HTTP 400, `entry_out_of_range`), or an entry of the prefix that cannot carry over (HTTP
 * 409, `entry_unfinished` or `entry_not_portable`). `entry` is the index at fault. Terminal:
 * the same request fails the same way.
 *
 * @example
 * ```ts
 * try {
 *   await engine.restart(id, { fromEntry: 5 });
 * } catch (err) {
 *   if (err instanceof RestartPrefixError && err.code === 'entry_unfinished')
 *     await engine.restart(id, { fromEntry: err.entry }); // keep what did complete
 * }
 * ```
 */
export class RestartPrefixError extends TerminalError {
  declare readonly code: RestartPrefixCode;

  constructor(
    message: string,
    code: RestartPrefixCode,
    /** The journal index at fault. */
    readonly entry: number,
  ) {
    super(message, { code, status: code === 'entry_out_of_range' ? 400 : 409 });
  }
}

// Rebuilt with its class when stored (a step that restarts invocations and fails with it).
registerErrorClass(RestartPrefixError, [
  'entry_out_of_range',
  'entry_unfinished',
  'entry_not_portable',
]);

const FINISHED: InvocationStatus[] = ['completed', 'failed'];

/** Restarts `id` keeping its journal's first `fromEntry` entries (see the file's comment). */
export async function restartFromEntry(
  k: Kernel,
  id: string,
  fromEntry: number,
): Promise<InvocationInfo> {
  if (!Number.isSafeInteger(fromEntry) || fromEntry < 0)
    throw new ValidationError(
      `fromEntry must be a whole number from 0 (the journal index of the first entry to run again), not ${String(fromEntry)}`,
    );
  if (fromEntry === 0) return restartInvocation(k, id);
  const row = await k.store.getInvocation(id);
  if (!row) throw notFound(id);
  if (!FINISHED.includes(row.status))
    throw new ConflictError(
      `invocation ${id} is ${row.status}: a restart from a journal prefix copies a finished journal (a running one can change under the copy); wait for it to end, or cancel or kill it first`,
      'not_finished',
    );
  const prefix = prefixOf(id, await k.store.getJournal(id), fromEntry);
  return restartInvocation(k, id, prefix);
}

/** The entries `0 .. n-1` of `id`'s journal, each checked to carry over safely. */
function prefixOf(
  id: string,
  journal: ReadonlyArray<[number, JournalEntry]>,
  n: number,
): Map<number, JournalEntry> {
  const entries = new Map(journal);
  const size = journal.length === 0 ? 0 : journal[journal.length - 1]![0] + 1;
  if (n > size)
    throw new RestartPrefixError(
      `fromEntry ${n} is past the end of the journal of invocation ${id}, which has ${size} entries: give 0 to ${size} (${size} keeps every entry and runs only the code after the last)`,
      'entry_out_of_range',
      n,
    );
  const prefix = new Map<number, JournalEntry>();
  for (let i = 0; i < n; i++) {
    const e = entries.get(i);
    // A step still running in parallel (`ctx.all`) when the old invocation ended recorded
    // nothing: it runs again, as after a crash.
    if (!e) continue;
    // An awakeable's name is its id, a capability: never in an error message (or a log).
    const what = e.kind === 'awakeable' ? e.kind : describeEntry(e);
    const at = `entry ${i} (${what}) of invocation ${id}`;
    const before = `restart from entry ${i} or before`;
    if (e.kind === 'cancel')
      throw new RestartPrefixError(
        `${at} is the cancellation delivered to it: carried over, it would cancel the new invocation at the same point; ${before}`,
        'entry_not_portable',
        i,
      );
    if (!e.done && !(e.kind === 'sleep' && e.wakeAt !== undefined))
      throw new RestartPrefixError(
        `${at} never completed: its completion would go to ${id}, never to the new invocation, which would wait for it forever; ${before} (an entry a decided race left waiting: restart from before the race)`,
        'entry_unfinished',
        i,
      );
    prefix.set(i, e);
  }
  return prefix;
}
