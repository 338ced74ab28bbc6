/**
 * Firing schedules in one process. It keeps every stored schedule in memory with the time its
 * next tick is due, and ONE engine-clock timer for the earliest of them (a fake clock in tests).
 * When ticks come due it evaluates each schedule against its stored row, not its memory:
 *
 * 1. read the row: gone, paused, or its `lastTick` already at the tick: nothing to do;
 * 2. decide which due ticks to fire (ticks.ts: on time, or as the missed-tick policy says);
 * 3. send the target with the idempotency key `schedule:<name>:<tick>`;
 * 4. compare-and-set `lastTick`.
 *
 * Every process sharing a PostgreSQL store does the same at the same moment; the idempotency key
 * makes each tick one invocation whichever sends first, and `lastTick` keeps a process that
 * restarts (or lags) from sending old ticks again. A crash between 3 and 4 sends the tick again
 * at the next start, which the idempotency key answers with the invocation it made (as long as
 * the engine's `retention` keeps it: 24 hours by default).
 *
 * Schedules due together are evaluated concurrently in batches, so their writes share the
 * store's group commits. Changes made by other processes (PostgreSQL) are noticed by reading a
 * change counter every `refreshMs` and re-listing only when it moved.
 */
import { errorMessage, KeelError } from '../core/errors.js';
import type { ExtensionHost } from '../engine/extension.js';
import { kernelOf } from '../engine/kernel.js';
import {
  changeCount,
  listSchedules,
  putSchedule,
  readSchedule,
  type ScheduleRow,
  type StoredSchedule,
} from './rows.js';
import { tickKey, tickRequest } from './targets.js';
import { decide, jitterOf, ticksOf, type Ticks } from './ticks.js';

interface Entry {
  row: ScheduleRow;
  /** The row's spec as JSON: a change of it makes new ticks. */
  specText: string;
  ticks: Ticks;
  /** This schedule's jitter: its ticks are due this long after their time. */
  delay: number;
  /** When it is next evaluated; undefined: paused, or its pattern fires no more. */
  fireAt?: number;
  /** Failed sends in a row (a store outage): the next evaluation backs off. */
  failures: number;
}

export interface SchedulerOptions {
  /** How often a process on a shared store looks for other processes' changes. */
  refreshMs: number;
  /** How many due schedules are evaluated at once. */
  batch: number;
}

/** Where evaluation starts: ticks at or before this are done, or were never to fire. */
export function baseOf(v: StoredSchedule): number {
  return Math.max(v.lastTick ?? Number.NEGATIVE_INFINITY, v.since);
}

export class Scheduler {
  private readonly entries = new Map<string, Entry>();
  private cancelTimer: (() => void) | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private running = false;
  private rerun = false;
  private closed = false;
  private changes = -1;
  private refreshTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: ExtensionHost,
    private readonly options: SchedulerOptions,
  ) {}

  /** Loads every schedule and arms the timer; on a shared store, starts looking for changes. */
  async start(): Promise<void> {
    await this.reload();
    this.arm();
    if (this.host.store.shared && !this.refreshTimer && !this.closed) {
      // The wall clock, not the engine's: it paces reads of another process's changes, and a
      // fake clock moved by a week would otherwise fire it a hundred thousand times.
      this.refreshTimer = setInterval(() => void this.refresh(), this.options.refreshMs);
      this.refreshTimer.unref();
    }
  }

  close(): void {
    this.closed = true;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (this.refreshTimer) clearInterval(this.refreshTimer);
  }

  /** Follows a change this process made: the row as stored now, or undefined when deleted. */
  follow(name: string, row: ScheduleRow | undefined): void {
    if (row === undefined) this.entries.delete(name);
    else this.adopt(row);
    this.arm();
  }

  /** When the schedule is next evaluated (its next tick plus its jitter), if it is known here. */
  fireAt(name: string): number | undefined {
    return this.entries.get(name)?.fireAt;
  }

  private async refresh(): Promise<void> {
    if (this.closed) return;
    try {
      if ((await changeCount(this.host.store)) === this.changes) return;
      await this.reload();
      this.arm();
    } catch (err) {
      this.host.log('warn', `schedules: reading changes failed: ${errorMessage(err)}`);
    }
  }

  private async reload(): Promise<void> {
    // Read before the list: a change landing in between is seen again at the next refresh.
    const changes = await changeCount(this.host.store);
    const rows = await listSchedules(this.host.store);
    const names = new Set(rows.map((r) => r.name));
    for (const name of this.entries.keys()) if (!names.has(name)) this.entries.delete(name);
    for (const row of rows) this.adopt(row);
    this.changes = changes;
  }

  /** Takes `row` as the schedule's state (unless this process knows a newer version). */
  private adopt(row: ScheduleRow): Entry {
    const had = this.entries.get(row.name);
    if (had && had.row.version > row.version) return had;
    const specText = JSON.stringify(row.value.spec);
    const entry: Entry =
      had && had.specText === specText
        ? had
        : {
            row,
            specText,
            ticks: ticksOf(row.value.spec),
            delay: jitterOf(row.name, row.value.spec.jitterMs),
            failures: 0,
          };
    entry.row = row;
    this.plan(entry);
    this.entries.set(row.name, entry);
    return entry;
  }

  /** Sets when the entry is next evaluated: its first tick after what is done, plus its jitter. */
  private plan(entry: Entry): void {
    const v = entry.row.value;
    const next = v.paused ? undefined : entry.ticks.next(baseOf(v));
    entry.fireAt = next === undefined ? undefined : next + entry.delay;
  }

  /** One timer, for the earliest evaluation due. */
  private arm(): void {
    if (this.closed) return;
    let at = Number.POSITIVE_INFINITY;
    for (const e of this.entries.values())
      if (e.fireAt !== undefined && e.fireAt < at) at = e.fireAt;
    if (at === this.timerAt && this.cancelTimer) return;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.timerAt = at;
    if (at === Number.POSITIVE_INFINITY) return;
    const { clock } = this.host;
    this.cancelTimer = clock.setTimer(Math.max(0, at - clock.now()), () => {
      this.cancelTimer = undefined;
      this.timerAt = Number.POSITIVE_INFINITY;
      void this.run();
    });
  }

  /** Evaluates every schedule due, in concurrent batches, then arms the timer again. */
  private async run(): Promise<void> {
    // The engine stops before its extensions close: a tick due in between waits for the next start.
    if (kernelOf(this.host.engine).stopping) return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.rerun = false;
        const now = this.host.clock.now();
        const due: Entry[] = [];
        for (const e of this.entries.values())
          if (e.fireAt !== undefined && e.fireAt <= now) due.push(e);
        for (let i = 0; i < due.length && !this.closed; i += this.options.batch)
          await Promise.all(due.slice(i, i + this.options.batch).map((e) => this.evaluate(e, now)));
      } while (this.rerun && !this.closed);
    } finally {
      this.running = false;
      this.arm();
    }
  }

  private async evaluate(entry: Entry, now: number): Promise<void> {
    const name = entry.row.name;
    try {
      const fresh = await readSchedule(this.host.store, name);
      if (fresh === undefined) {
        this.entries.delete(name);
        return;
      }
      entry = this.adopt(fresh);
      const v = fresh.value;
      if (v.paused) return;
      const decision = decide(entry.ticks, v.spec.missed, baseOf(v), now, entry.delay);
      if (decision.through === undefined) return;
      let fired: number | undefined;
      for (const tick of decision.fire) {
        const key = tickKey(name, tick);
        const at = new Date(tick).toISOString();
        try {
          await this.host.send(tickRequest(this.host.engine, name, v.spec, at, key));
          fired = tick;
        } catch (err) {
          if (!permanent(err)) throw err;
          // The target went (a deploy removed it) or refuses the input: retrying cannot help.
          this.host.log(
            'error',
            `schedules: ${name}: tick ${at} not started: ${errorMessage(err)}`,
            {
              schedule: name,
            },
          );
        }
      }
      if (decision.fire.length < 1 || decision.fire[0] !== decision.through)
        this.host.log(
          'info',
          `schedules: ${name}: ticks missed up to ${new Date(decision.through).toISOString()}; fired ${decision.fire.length} of them (missed: ${JSON.stringify(v.spec.missed)})`,
          { schedule: name },
        );
      await this.markDone(entry, fresh, decision.through, fired);
      entry.failures = 0;
    } catch (err) {
      if (this.closed) return;
      // Nothing was marked: the next evaluation sends the same ticks (the same keys) again.
      entry.failures++;
      entry.fireAt = now + Math.min(1000 * 2 ** (entry.failures - 1), 60_000);
      this.host.log('warn', `schedules: ${name}: evaluating failed: ${errorMessage(err)}`, {
        schedule: name,
      });
    }
  }

  /** Compare-and-sets `lastTick` (and `lastFired`), re-reading when another writer came first. */
  private async markDone(
    entry: Entry,
    row: ScheduleRow,
    through: number,
    fired: number | undefined,
  ): Promise<void> {
    for (let attempt = 0; attempt < 10; attempt++) {
      const v = row.value;
      if ((v.lastTick ?? Number.NEGATIVE_INFINITY) >= through) break;
      const value: StoredSchedule = {
        ...v,
        lastTick: through,
        ...(fired === undefined ? {} : { lastFired: Math.max(fired, v.lastFired ?? fired) }),
      };
      const version = await putSchedule(this.host.store, row.name, value, row.version, false);
      if (version !== undefined) {
        row = { name: row.name, value, version };
        break;
      }
      const again = await readSchedule(this.host.store, row.name);
      if (again === undefined) {
        this.entries.delete(row.name);
        return;
      }
      row = again;
    }
    entry.row = row;
    this.adopt(row);
  }
}

/** A refusal of the send itself (4xx): the same send would be refused again. */
function permanent(err: unknown): boolean {
  return (
    err instanceof KeelError &&
    err.status >= 400 &&
    err.status < 500 &&
    err.status !== 408 &&
    err.status !== 429
  );
}
