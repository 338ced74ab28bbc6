/**
 * Firing schedules in one process. It keeps every stored schedule in memory with the time its
 * next tick is due, in a min-heap (due.ts), and ONE engine-clock timer for the earliest of them
 * (a fake clock in tests). When ticks come due it evaluates each schedule against its stored
 * row, not its memory:
 *
 * 1. read the row: gone, paused, or its `lastTick` already at the tick: nothing to do;
 * 2. decide which due ticks to fire (ticks.ts: on time, or as the missed-tick policy says);
 * 3. send the target with the idempotency key `schedule:<name>:<tick>`;
 * 4. once the sends are durable, compare-and-set `lastTick`.
 *
 * Every process sharing a PostgreSQL store does the same at the same moment; the idempotency key
 * makes each tick one invocation whichever sends first, and `lastTick` keeps a process that
 * restarts (or lags) from sending old ticks again. A crash between 3 and 4 sends the tick again
 * at the next start, which the idempotency key answers with the invocation it made (as long as
 * the engine's `retention` keeps it: 24 hours by default).
 *
 * Schedules due together are handled in windows of `batch`: a window's rows are read a page of
 * the scope at a time (rows.ts), then all its sends start together, without waiting for one
 * another (the store's group commit makes them a few shared commits), and its compare-and-sets
 * go in writes of up to 1,000. 10,000 schedules due at one second thus cost about 10 reads and
 * 10 writes of the scheduler's own besides the sends. Changes made by other processes
 * (PostgreSQL) are noticed by reading a change counter every `refreshMs` and re-listing only
 * when it moved.
 */
import { errorMessage, KeelError } from '../core/errors.js';
import type { ExtensionHost } from '../engine/extension.js';
import { kernelOf } from '../engine/kernel.js';
import { DueQueue } from './due.js';
import {
  changeCount,
  listSchedules,
  putOp,
  readSchedules,
  type ScheduleRow,
  type StoredSchedule,
} from './rows.js';
import { isoOf, tickKey, tickRequest } from './targets.js';
import { decide, jitterOf, ticksOf, type Ticks } from './ticks.js';

interface Entry {
  row: ScheduleRow;
  /** What its ticks and jitter derive from (pattern, timezone, jitter): a change makes new ones. */
  timing: string;
  ticks: Ticks;
  /** This schedule's jitter: its ticks are due this long after their time. */
  delay: number;
  /** When it is next evaluated; undefined: paused, or its pattern fires no more. */
  fireAt?: number;
  /** The time it is queued at in the {@link DueQueue}. */
  queuedAt?: number;
  /** Failed sends in a row (a store outage): the next evaluation backs off. */
  failures: number;
}

/** An evaluation that fired (or passed over) ticks: `lastTick` is to become `through`. */
interface Mark {
  entry: Entry;
  /** The row the decision was made on: the compare-and-set expects its version. */
  row: ScheduleRow;
  through: number;
  /** The latest tick sent, if any was. */
  fired: number | undefined;
}

export interface SchedulerOptions {
  /** How often a process on a shared store looks for other processes' changes. */
  refreshMs: number;
  /**
   * How many due schedules are sent together (rounded up to whole pages of 1,000 when many are
   * due): the next such window is read meanwhile, and sent once this one's sends are durable.
   */
  batch: number;
}

/** The most compare-and-sets of `lastTick` in one write. */
const WRITE_CHUNK = 1000;

/** Where evaluation starts: ticks at or before this are done, or were never to fire. */
export function baseOf(v: StoredSchedule): number {
  return Math.max(v.lastTick ?? Number.NEGATIVE_INFINITY, v.since);
}

/** What an entry's ticks and jitter are made of. */
function timingOf(row: ScheduleRow): string {
  const s = row.value.spec;
  return `${s.jitterMs}|${s.timezone ?? ''}|${s.cron}`;
}

export class Scheduler {
  private readonly entries = new Map<string, Entry>();
  private readonly due = new DueQueue<Entry>((e) => this.entries.get(e.row.name) === e);
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
    // Deleted and re-planned entries leave stale items behind: start the heap afresh.
    this.due.rebuild(this.entries.values());
    this.changes = changes;
  }

  /** Takes `row` as the schedule's state (unless this process knows a newer version). */
  private adopt(row: ScheduleRow): Entry {
    const had = this.entries.get(row.name);
    if (had && had.row.version > row.version) return had;
    if (had && had.row.version === row.version) return had;
    const timing = timingOf(row);
    const entry: Entry =
      had && had.timing === timing
        ? had
        : {
            row,
            timing,
            ticks: ticksOf(row.value.spec),
            delay: jitterOf(row.name, row.value.spec.jitterMs),
            failures: 0,
          };
    entry.row = row;
    this.entries.set(row.name, entry);
    this.plan(entry);
    return entry;
  }

  /** Sets when the entry is next evaluated: its first tick after what is done, plus its jitter. */
  private plan(entry: Entry): void {
    const v = entry.row.value;
    const next = v.paused ? undefined : entry.ticks.next(baseOf(v));
    this.setFireAt(entry, next === undefined ? undefined : next + entry.delay);
  }

  private setFireAt(entry: Entry, at: number | undefined): void {
    entry.fireAt = at;
    this.due.update(entry);
  }

  /** Forgets a schedule found deleted, unless it was replaced (deleted and created) meanwhile. */
  private forget(entry: Entry): void {
    if (this.entries.get(entry.row.name) === entry) this.entries.delete(entry.row.name);
  }

  /** One timer, for the earliest evaluation due. */
  private arm(): void {
    if (this.closed) return;
    // Stale items (deleted, re-planned schedules) are dropped as they surface; a heap grown far
    // beyond the schedules (a long run of changes to far-off times) is built again.
    if (this.due.size > 2 * this.entries.size + 1024) this.due.rebuild(this.entries.values());
    const at = this.due.peek() ?? Number.POSITIVE_INFINITY;
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

  /** Evaluates every schedule due, then arms the timer again. */
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
        const due = this.due.takeDue(now);
        if (due.length > 0) await this.evaluateAll(due, now);
      } while (this.rerun && !this.closed);
    } finally {
      this.running = false;
      this.arm();
    }
  }

  /**
   * Evaluates `due` a window of at most `batch` schedules at a time. A window's rows are read
   * first, then all its sends start together, so that every tick's invocation is created before
   * the first of them runs to its end: the engine starts each invocation as it creates it, and
   * sends started chunk by chunk would share the event loop with the earlier chunks' handlers
   * and outcome writes. The next window is read while this one's sends become durable.
   */
  private async evaluateAll(due: Entry[], now: number): Promise<void> {
    const byName = new Map(due.map((e) => [e.row.name, e]));
    // Name order: the order the scope's pages come in, and the same in every process, so two
    // processes' writes of the same rows take their locks in one order.
    const names = [...byName.keys()].sort();
    // The previous window's sends (the next window waits for them), and every window's end.
    let sending: Promise<unknown> | undefined;
    const done: Array<Promise<void>> = [];
    let window: Array<[string, ScheduleRow | undefined]> = [];
    const fireWindow = async (): Promise<void> => {
      const w = window;
      window = [];
      await sending;
      if (this.closed) return;
      const taken = w.map(([name, row]): [Entry, ScheduleRow | undefined] => {
        const entry = byName.get(name)!;
        byName.delete(name);
        return [entry, row];
      });
      // Compare-and-sets go in writes of at most a page each, each once its own sends are
      // durable; the next window's sends need not wait for them.
      const sent: Array<Promise<unknown>> = [];
      for (let i = 0; i < taken.length; i += WRITE_CHUNK) {
        const chunk = this.evaluateChunk(taken.slice(i, i + WRITE_CHUNK), now);
        sent.push(chunk.sent);
        done.push(chunk.done);
      }
      sending = Promise.all(sent);
    };
    try {
      for await (const chunk of readSchedules(this.host.store, names, this.entries.size)) {
        if (this.closed) break;
        window.push(...chunk);
        if (window.length >= this.options.batch) await fireWindow();
      }
      if (window.length > 0) await fireWindow();
    } catch (err) {
      if (!this.closed)
        this.host.log('warn', `schedules: reading due schedules failed: ${errorMessage(err)}`);
    } finally {
      await Promise.all(done);
      // Not read (a read failed, or the scheduler closed): tried again after a pause.
      for (const entry of byName.values()) this.failed(entry, now, undefined);
    }
  }

  /**
   * Sends the chunk's due ticks (`sent`: once they are durable), then marks them done in one
   * write (`done`). Neither rejects.
   */
  private evaluateChunk(
    chunk: ReadonlyArray<[Entry, ScheduleRow | undefined]>,
    now: number,
  ): { sent: Promise<Array<Mark | undefined>>; done: Promise<void> } {
    const sent = Promise.all(chunk.map(([entry, fresh]) => this.fire(entry, fresh, now)));
    return { sent, done: sent.then((marks) => this.markAll(marks, now)) };
  }

  /** Marks what was fired; on a failure to write, backs off (nothing was marked). */
  private async markAll(marks: Array<Mark | undefined>, now: number): Promise<void> {
    const todo = marks.filter((m): m is Mark => m !== undefined);
    if (todo.length === 0) return;
    try {
      await this.markDone(todo);
      for (const m of todo) m.entry.failures = 0;
    } catch (err) {
      // Not marked: the next evaluation sends the same ticks (the same keys) again.
      for (const m of todo) this.failed(m.entry, now, err);
    }
  }

  /**
   * One schedule's evaluation up to its sends: what to mark when they went, or undefined when
   * nothing is to be marked (deleted, paused, nothing due, or a send failed). Never rejects.
   */
  private async fire(
    taken: Entry,
    fresh: ScheduleRow | undefined,
    now: number,
  ): Promise<Mark | undefined> {
    const name = taken.row.name;
    let entry = taken;
    try {
      if (fresh === undefined) {
        this.forget(taken);
        return undefined;
      }
      entry = this.adopt(fresh);
      // Taken from the queue: queued again at its time, whatever happens next.
      this.plan(entry);
      const v = fresh.value;
      if (v.paused) return undefined;
      const decision = decide(entry.ticks, v.spec.missed, baseOf(v), now, entry.delay);
      if (decision.through === undefined) return undefined;
      let fired: number | undefined;
      for (const tick of decision.fire) {
        const key = tickKey(name, tick);
        const at = isoOf(tick);
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
      return { entry, row: fresh, through: decision.through, fired };
    } catch (err) {
      this.failed(entry, now, err);
      return undefined;
    }
  }

  /** An evaluation failed (a store outage): nothing was marked, so it is evaluated again, later. */
  private failed(entry: Entry, now: number, err: unknown): void {
    if (this.closed) return;
    entry.failures++;
    this.setFireAt(entry, now + Math.min(1000 * 2 ** (entry.failures - 1), 60_000));
    if (err !== undefined)
      this.host.log(
        'warn',
        `schedules: ${entry.row.name}: evaluating failed: ${errorMessage(err)}`,
        { schedule: entry.row.name },
      );
  }

  /**
   * Compare-and-sets `lastTick` (and `lastFired`) of every mark in one write; those another
   * writer changed first are read again and set again (unless the change made it moot).
   */
  private async markDone(marks: Mark[]): Promise<void> {
    let todo = marks;
    for (let attempt = 0; todo.length > 0; attempt++) {
      const writes: Array<{ mark: Mark; value: StoredSchedule }> = [];
      for (const m of todo) {
        const v = m.row.value;
        // Already there (another process marked it), or given up on: take the row as it is.
        if ((v.lastTick ?? Number.NEGATIVE_INFINITY) >= m.through || attempt >= 10)
          this.adopt(m.row);
        else {
          const value: StoredSchedule = {
            ...v,
            lastTick: m.through,
            ...(m.fired === undefined
              ? {}
              : { lastFired: Math.max(m.fired, v.lastFired ?? m.fired) }),
          };
          writes.push({ mark: m, value });
        }
      }
      if (writes.length === 0) return;
      const results = (await this.host.store.write(
        writes.map((w) => putOp(w.mark.row.name, w.value, w.mark.row.version)),
      )) as Array<{ ok: boolean; version: number }>;
      const lost = new Map<string, Mark>();
      writes.forEach((w, i) => {
        const r = results[i];
        if (r?.ok) this.adopt({ name: w.mark.row.name, value: w.value, version: r.version });
        else lost.set(w.mark.row.name, w.mark);
      });
      todo = [];
      if (lost.size === 0) return;
      for await (const chunk of readSchedules(this.host.store, [...lost.keys()], this.entries.size))
        for (const [name, row] of chunk) {
          const m = lost.get(name)!;
          if (row === undefined) this.forget(m.entry);
          else todo.push({ ...m, row });
        }
    }
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
