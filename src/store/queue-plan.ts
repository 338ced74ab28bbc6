/**
 * The admission algorithm of flow-control queues (`queue.admit`), written once for every
 * adapter: a generator that asks its driver for what it needs to read and write, one small
 * query at a time. The SQLite adapter runs it synchronously inside its batch transaction, the
 * PostgreSQL adapter with an `await` per query inside a transaction that holds the queue's
 * lock, so both apply exactly the same rules:
 *
 * - **Concurrency**: admitted invocations that have not finished count against the queue's
 *   `concurrency` and their key's `keyConcurrency` (a suspended one still holds its slot).
 * - **Rates**: starts are logged per queue and per key as a sliding window of at most
 *   {@link RATE_SLOTS} + 2 slots `[first, last, count]` (src/core/sliding-window.ts): a start is
 *   allowed when the slots still in the `periodMs` before `now` count fewer than `limit`, so no
 *   window of that length ever holds more than `limit` starts. A slot is counted whole until its
 *   last start left the window, which may delay a start by less than `periodMs / RATE_SLOTS`;
 *   in exchange reading and recording a start costs O(1), whatever `limit` is.
 * - **Fairness**: keys take turns. Each admission stamps its key with the queue's next turn
 *   number, and keys with waiting invocations are served lowest turn first, so a key that just
 *   got one goes to the back, and a key with 10 waiting is served between the starts of a key
 *   with 10,000. A key that had nothing waiting joins at the queue's current turn when an item
 *   arrives (the back of the round), so a stream of new keys cannot starve a waiting one.
 * - **Key rows**: a key's row (waiting count, turn, start log) is kept only while items wait
 *   under it or its start log holds starts a per-key rate may still count. Emptied without a
 *   start log, it is deleted at once (`saveKey`, `empty`); with one, an admission deletes the
 *   idle rows served longest ago once their last start left the rate's window (`prune`). So a
 *   queue keyed by user id keeps rows for the users with work waiting or recently started, not
 *   one per user ever seen. A put after a delete creates the row again (turn: the queue's).
 * - **Priority**: within one key, higher `priority` first, then arrival order.
 */
import {
  liveSlots,
  recordEvent,
  windowOpensAt,
  windowRoom,
  type WindowRule,
  type WindowSlot,
} from '../core/sliding-window.js';
import type { InvocationRow, QueueAdmit, QueueAdmitResult, StartRate } from './types.js';

/**
 * Slots per rate window. PostgreSQL's fast path (`queue_admit_now`, migration 16) applies the
 * same number: change both together, in a new migration.
 */
export const RATE_SLOTS = 10;

/** A start log: slots `[first, last, count]` (see src/core/sliding-window.ts), oldest first. */
export type StartSlots = WindowSlot[];

/** A key with waiting invocations. */
export interface QueueKeyRow {
  key: string;
  turn: number;
  /** Its start log, for its rate. */
  starts: StartSlots;
}

/** What the algorithm asks of the adapter; the answer type is noted on each. */
export type QueueQuery =
  /** Forget admitted items whose invocation finished; answer the unfinished admitted per key: `Array<[key, n]>`. */
  | { q: 'active' }
  /** The queue's turn counter and start log: `{ turn: number; starts: StartSlots }` (zeros when new). */
  | { q: 'queue' }
  /** Keys with waiting items, lowest turn first (then key): `QueueKeyRow[]`. */
  | { q: 'keys'; limit: number }
  /** A key's waiting items, highest priority first, then oldest: invocation ids, `string[]`. */
  | { q: 'items'; key: string; limit: number }
  /**
   * Admit item `id` of `key`: its invocation goes `queued` → `running` (owner set); the item is
   * marked admitted and its key's waiting count drops. Answers the invocation row, or
   * `undefined` when it is not `queued` any more (cancelled, deleted): the item is then deleted
   * (and the waiting count drops all the same).
   */
  | { q: 'start'; id: string; key: string }
  /**
   * A key said to have waiting items has none: set its waiting count to 0 (unless an item waits
   * under it by now), and delete its row if it has no start log. Answer: none.
   */
  | { q: 'empty'; key: string }
  /**
   * Store a key's turn and start log; when the log is empty and nothing waits under the key any
   * more, delete its row instead. Answer: none.
   */
  | { q: 'saveKey'; key: string; turn: number; starts: StartSlots }
  /**
   * Of the `limit` idle keys (nothing waiting) served longest ago, delete those whose newest
   * logged start (the `last` of their newest slot) is at or before `before` (or that have none).
   * Answer: how many, `number`.
   */
  | { q: 'prune'; before: number; limit: number }
  /** Store the queue's turn counter and start log. Answer: none. */
  | { q: 'saveQueue'; turn: number; starts: StartSlots }
  /** Whether any key of the queue has waiting items: `boolean`. */
  | { q: 'anyWaiting' };

/** Keys read per round. */
const KEY_PAGE = 256;
/** Idle key rows looked at per admission for ones that can go, besides one per start. */
const PRUNE_MIN = 4;

/**
 * Reads a stored start log: slots (migration 16), or, as the versions before it wrote, start
 * times (each read as a slot of one start; migration 16 converts those, but a process of the
 * previous version may write one after the upgrade). Throws a `TypeError` naming what is wrong.
 */
export function parseStartLog(text: string): StartSlots {
  const value: unknown = JSON.parse(text);
  if (Array.isArray(value)) {
    let times = false;
    const slots = value.map((s: unknown) => {
      if (typeof s !== 'number') return s;
      times = true;
      return [s, s, 1];
    });
    const ok = slots.every(
      (s) => Array.isArray(s) && s.length === 3 && s.every((x) => Number.isFinite(x)),
    );
    if (ok)
      return times ? (slots as StartSlots).sort((a, b) => a[1] - b[1]) : (slots as StartSlots);
  }
  throw new TypeError(
    `not a queue's start log (expected [[first, last, count], ...]): ${text.slice(0, 200)}`,
  );
}

/** The window rule of a rate. */
export function rateRule(rate: StartRate): WindowRule {
  return { limit: rate.limit, periodMs: rate.periodMs, slots: RATE_SLOTS };
}

/** The start log of a rate, without the slots that left its window (empty without a rate). */
export function liveStarts(
  starts: StartSlots,
  rate: StartRate | undefined,
  now: number,
): StartSlots {
  return rate ? liveSlots(starts, now, rateRule(rate)) : [];
}

/**
 * Admits what `req`'s limits allow. Drive it with {@link runSync} or {@link runAsync}.
 */
export function* admitPlan(req: QueueAdmit): Generator<QueueQuery, QueueAdmitResult, unknown> {
  const { now } = req;
  const active = new Map((yield { q: 'active' }) as Array<[string, number]>);
  let running = 0;
  for (const n of active.values()) running += n;
  let free = Math.min(req.max, (req.concurrency ?? Infinity) - running);
  const queue = (yield { q: 'queue' }) as { turn: number; starts: StartSlots };
  let turn = queue.turn;
  let qStarts = liveStarts(queue.starts, req.rate, now);
  let retryAt: number | undefined;
  const later = (at: number): void => {
    retryAt = retryAt === undefined ? at : Math.min(retryAt, at);
  };
  if (req.rate) {
    const left = windowRoom(qStarts, rateRule(req.rate));
    if (left <= 0) later(windowOpensAt(qStarts, rateRule(req.rate)));
    free = Math.min(free, left);
  }
  const admitted: InvocationRow[] = [];
  // Rounds: every eligible key gets its share, then the keys are read again in their new turn
  // order. A round that admits nothing ends it (everything left is held back by a limit).
  while (free > 0) {
    const keys = (yield { q: 'keys', limit: KEY_PAGE }) as QueueKeyRow[];
    const eligible: Array<{ row: QueueKeyRow; cap: number; starts: StartSlots }> = [];
    for (const row of keys) {
      let cap = (req.keyConcurrency ?? Infinity) - (active.get(row.key) ?? 0);
      const starts = liveStarts(row.starts, req.keyRate, now);
      if (req.keyRate) {
        const left = windowRoom(starts, rateRule(req.keyRate));
        if (left <= 0 && cap > 0) later(windowOpensAt(starts, rateRule(req.keyRate)));
        cap = Math.min(cap, left);
      }
      if (cap > 0) eligible.push({ row, cap, starts });
    }
    if (eligible.length === 0) break;
    // A full page shares one start per key per round (more keys wait behind it); a partial one
    // shares what is free among the keys it holds.
    const share = keys.length < KEY_PAGE ? Math.max(1, Math.floor(free / eligible.length)) : 1;
    let progress = false;
    for (const e of eligible) {
      if (free <= 0) break;
      const want = Math.min(e.cap, share, free);
      const ids = (yield { q: 'items', key: e.row.key, limit: want }) as string[];
      if (ids.length === 0) {
        yield { q: 'empty', key: e.row.key };
        continue;
      }
      let took = 0;
      for (const id of ids) {
        const row = (yield { q: 'start', id, key: e.row.key }) as InvocationRow | undefined;
        if (!row) continue;
        admitted.push(row);
        took++;
        free--;
        e.starts = req.keyRate ? recordEvent(e.starts, now, rateRule(req.keyRate)) : [];
        if (req.rate) qStarts = recordEvent(qStarts, now, rateRule(req.rate));
      }
      // Even a key whose items were all stale goes to the back: its next read is fresh.
      turn++;
      yield { q: 'saveKey', key: e.row.key, turn, starts: e.starts };
      active.set(e.row.key, (active.get(e.row.key) ?? 0) + took);
      progress = true;
    }
    if (!progress) break;
  }
  if (admitted.length > 0 || turn !== queue.turn)
    yield { q: 'saveQueue', turn, starts: req.rate ? qStarts : [] };
  if (req.rate && windowRoom(qStarts, rateRule(req.rate)) <= 0)
    later(windowOpensAt(qStarts, rateRule(req.rate)));
  // Each start may leave one idle row with a start log: look at as many, and a few more.
  yield {
    q: 'prune',
    before: now - (req.keyRate?.periodMs ?? 0),
    limit: admitted.length + PRUNE_MIN,
  };
  const waiting = (yield { q: 'anyWaiting' }) as boolean;
  return retryAt === undefined ? { admitted, waiting } : { admitted, retryAt, waiting };
}

/** Runs {@link admitPlan} against synchronous answers (SQLite, inside its transaction). */
export function runSync(req: QueueAdmit, answer: (q: QueueQuery) => unknown): QueueAdmitResult {
  const plan = admitPlan(req);
  let next = plan.next();
  while (!next.done) next = plan.next(answer(next.value));
  return next.value;
}

/** Runs {@link admitPlan} against asynchronous answers (PostgreSQL, inside its transaction). */
export async function runAsync(
  req: QueueAdmit,
  answer: (q: QueueQuery) => Promise<unknown>,
): Promise<QueueAdmitResult> {
  const plan = admitPlan(req);
  let next = plan.next();
  while (!next.done) next = plan.next(await answer(next.value));
  return next.value;
}
