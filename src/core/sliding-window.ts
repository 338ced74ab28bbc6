/**
 * A strict sliding window ("at most N events in any window of length W") kept as a bounded
 * number of slots instead of one timestamp per event, so recording an event costs O(1) time
 * and space whatever N is.
 *
 * Each slot is `[first, last, count]`: the first and last event it holds and how many. An
 * event joins the newest slot while it is less than `W / slots` after that slot's first event,
 * else it opens a new slot. A slot is forgotten only once its *last* event has left the window
 * (`last <= now - W`), so every event is counted for at least W after it happened: no window of
 * length W ever holds more than N events. The price is caution: a slot straddling the window's
 * edge counts whole until its last event leaves, which delays the next event by less than
 * `W / slots`. Slots open at least `W / slots` apart and a live one ends after `now - W`, so
 * at most `slots + 2` are live at once (clocks that run backwards only merge into the newest).
 *
 * Used by flow-control queues (their start logs, see `src/store/queue-plan.ts`); the
 * integrations' rate limiter (`src/integrations/policies/rate-limit.ts`) keeps the same shape
 * of slots and applies the same rule.
 */

/** One slot: `[first event, last event, events]`, timestamps in epoch ms. */
export type WindowSlot = [first: number, last: number, count: number];

/** The window: at most `limit` events in any `periodMs`, tracked with about `slots` slots. */
export interface WindowRule {
  limit: number;
  periodMs: number;
  /** How finely the window is tracked: a delay of less than `periodMs / slots` at most. */
  slots: number;
}

/**
 * The slots still inside the window at `now` (the same array when none left).
 *
 * @example
 * ```ts
 * const live = liveSlots(stored, Date.now(), rule);
 * ```
 */
export function liveSlots(slots: WindowSlot[], now: number, rule: WindowRule): WindowSlot[] {
  const from = now - rule.periodMs;
  // Slots are in time order, so these are the oldest ones; a filter, not a prefix, all the same.
  const live = slots.filter((s) => s[1] > from);
  return live.length === slots.length ? slots : live;
}

/**
 * How many more events live slots (see {@link liveSlots}) allow right now; 0 or less when none.
 *
 * @example
 * ```ts
 * if (windowRoom(liveSlots(stored, now, rule), rule) > 0) start();
 * ```
 */
export function windowRoom(live: readonly WindowSlot[], rule: WindowRule): number {
  let used = 0;
  for (const s of live) used += s[2];
  return rule.limit - used;
}

/**
 * The earliest time at which live slots that are full (see {@link windowRoom}) allow one more
 * event: when enough of the oldest slots have left the window.
 *
 * @example
 * ```ts
 * const retryAt = windowRoom(live, rule) > 0 ? now : windowOpensAt(live, rule);
 * ```
 */
export function windowOpensAt(live: readonly WindowSlot[], rule: WindowRule): number {
  let used = 0;
  for (const s of live) used += s[2];
  for (const [, last, count] of live) {
    used -= count;
    if (used < rule.limit) return last + rule.periodMs;
  }
  // Not reached for non-empty slots (the last one leaving empties the window).
  return Number.NEGATIVE_INFINITY;
}

/**
 * Live slots with one more event at `now` (a new array; the input is not changed).
 *
 * @example
 * ```ts
 * stored = recordEvent(liveSlots(stored, now, rule), now, rule);
 * ```
 */
export function recordEvent(live: WindowSlot[], now: number, rule: WindowRule): WindowSlot[] {
  const newest = live[live.length - 1];
  // `(now - first) * slots < periodMs`, not `now - first < periodMs / slots`: integer arithmetic,
  // the same in SQL (PostgreSQL's fast path applies this rule too).
  if (newest !== undefined && (now - newest[0]) * rule.slots < rule.periodMs) {
    const out = live.slice();
    out[out.length - 1] = [newest[0], Math.max(newest[1], now), newest[2] + 1];
    return out;
  }
  return [...live, [now, now, 1]];
}
