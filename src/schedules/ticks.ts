/**
 * Tick arithmetic, pure: which ticks of a cron pattern fall in a time range, which of them a
 * missed-tick policy fires, and each schedule's fixed jitter. Times are epoch milliseconds;
 * croner does the calendar (timezones, DST, seconds).
 */
import type { Cron } from 'croner';
import { cronOf, MISSED_GRACE_MS, type MissedPolicy, type ScheduleSpec } from './spec.js';

/**
 * A cron pattern's ticks, with the last answers remembered: schedules of the same pattern and
 * timezone share one (see {@link ticksOf}), and a batch of them evaluated at the same moment
 * asks the same questions, so 10,000 hourly schedules cost a few croner calls, not 30,000.
 */
export class Ticks {
  private readonly memo = new Map<number, number | undefined>();
  constructor(private readonly cron: Cron) {}

  /** The first tick strictly after `after`, or undefined when the pattern fires no more. */
  next(after: number): number | undefined {
    if (this.memo.has(after)) return this.memo.get(after);
    const t = this.cron.nextRun(new Date(after))?.getTime();
    if (this.memo.size >= 256) this.memo.clear();
    this.memo.set(after, t);
    return t;
  }
}

const shared = new Map<string, Ticks>();

/** The {@link Ticks} of a pattern in a timezone, shared by every schedule that has them. */
export function ticksOf(spec: Pick<ScheduleSpec, 'cron' | 'timezone'>): Ticks {
  const id = `${spec.timezone ?? ''}|${spec.cron}`;
  let t = shared.get(id);
  if (t === undefined) {
    // Patterns that no schedule uses any more are dropped wholesale now and then.
    if (shared.size >= 10_000) shared.clear();
    t = new Ticks(cronOf(spec));
    shared.set(id, t);
  }
  return t;
}

function nextTick(ticks: Ticks, after: number): number | undefined {
  return ticks.next(after);
}

/**
 * The latest `k` ticks in `(after, upTo]`, oldest first. Enumerates backwards in growing windows
 * rather than forwards from `after`: a `* * * * * *` schedule down for a week has 604,800 ticks
 * behind it, of which only the last few matter.
 */
export function latestTicks(cron: Ticks, after: number, upTo: number, k: number): number[] {
  if (upTo <= after || k < 1) return [];
  for (let window = 2_000; ; window *= 8) {
    const from = Math.max(after, upTo - window);
    const found: number[] = [];
    for (let t = nextTick(cron, from); t !== undefined && t <= upTo; t = nextTick(cron, t)) {
      found.push(t);
      // Only the last k are kept, so a window dense with ticks costs k numbers of memory.
      if (found.length > k) found.shift();
    }
    if (found.length >= k || from === after) return found;
  }
}

/** What one evaluation of a schedule decides. */
export interface TickDecision {
  /** The latest tick that came due (fired or not): what `lastTick` becomes. */
  through?: number;
  /** The ticks to fire, oldest first. */
  fire: number[];
}

/**
 * The ticks after `base` that came due (`tick + delayMs <= now`, `delayMs` the schedule's jitter), and which of them to
 * fire: the latest one when on time (less than {@link MISSED_GRACE_MS} late), else as the
 * policy says.
 */
export function decide(
  cron: Ticks,
  policy: MissedPolicy,
  base: number,
  now: number,
  delayMs: number,
): TickDecision {
  const upTo = now - delayMs;
  const want = typeof policy === 'object' ? policy.all : 1;
  const due = latestTicks(cron, base, upTo, want);
  const through = due[due.length - 1];
  if (through === undefined) return { fire: [] };
  if (policy === 'skip')
    return { through, fire: upTo - through < MISSED_GRACE_MS ? [through] : [] };
  return { through, fire: due };
}

/**
 * The fixed delay of a schedule's ticks, in `[0, jitterMs)`: FNV-1a of its name, so every
 * process (and every restart) agrees on it without storing it.
 */
export function jitterOf(name: string, jitterMs: number): number {
  if (jitterMs <= 0) return 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % jitterMs;
}
