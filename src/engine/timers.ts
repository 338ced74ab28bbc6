import type { Store, TimerRow } from '../store/types.js';
import type { Clock } from './clock.js';

/**
 * Durable timers. Every timer lives in the Store; this service holds in memory only those due
 * within the next `windowMs` (a bounded heap), and reloads the next window from the Store as
 * time passes. A million sleeping workflows therefore cost storage, not RAM.
 */
export class TimerService {
  private heap: TimerRow[] = [];
  /** Timers in the heap or fired and not yet deleted, so a reload never fires one twice. */
  private readonly known = new Set<string>();
  private loadedUntil = 0;
  private cancelNext: (() => void) | undefined;
  private nextAt = Infinity;
  private cancelReload: (() => void) | undefined;
  private stopped = true;

  constructor(
    private readonly clock: Clock,
    private readonly store: Store,
    private readonly onFire: (t: TimerRow) => void,
    /** Shared stores: only timers of invocations this process owns. */
    private readonly owner: () => string | undefined = () => undefined,
    private readonly windowMs = 60_000,
    private readonly batch = 10_000,
  ) {}

  async start(): Promise<void> {
    this.stopped = false;
    await this.reload_();
  }

  /**
   * Stops firing and forgets every timer held: after a cluster process lost its lease they are
   * other processes' timers, and a later `start()` loads only its own.
   */
  stop(): void {
    this.stopped = true;
    this.cancelNext?.();
    this.cancelReload?.();
    this.cancelNext = this.cancelReload = undefined;
    this.nextAt = Infinity;
    this.reloadAt = Infinity;
    this.heap = [];
    this.known.clear();
    this.loadedUntil = 0;
  }

  /** Registers a timer that was just made durable. */
  add(t: TimerRow): void {
    if (this.stopped) return;
    if (t.fireAt > this.loadedUntil) {
      // The reload of its window will find it; make sure that reload happens in time.
      this.scheduleReload(t.fireAt - this.windowMs);
      return;
    }
    this.push(t);
    this.arm();
  }

  /** Loads the current window again now (after taking over another process's invocations). */
  reload(): void {
    if (this.stopped) return;
    this.reloadAt = Infinity;
    this.cancelReload?.();
    this.reloadSafely();
  }

  /** A failed reload (the store is unreachable) is tried again soon, or timers would stop. */
  private reloadSafely(): void {
    this.reload_().catch(() => {
      this.reloadAt = Infinity;
      this.scheduleReload(this.clock.now() + 1000);
    });
  }

  /**
   * Reloads the window if a timer overdue by more than `graceMs` is in the store but not held
   * here. A write that put a timer (a retry, a delayed start) and whose answer was lost (the
   * connection dropped after the commit, or the commit landed after the client saw the error)
   * leaves the timer durable yet unknown here, and nothing else would ever register it. The
   * check reads at most `limit` overdue timers, so it is cheap enough for every sweep.
   */
  async reloadIfStranded(graceMs: number, limit = 100): Promise<void> {
    if (this.stopped) return;
    const rows = await this.store.dueTimers(this.clock.now() - graceMs, limit, this.owner());
    if (this.stopped) return;
    if (rows.some((r) => !this.known.has(keyOf(r.invocationId, r.index)))) this.reload();
  }

  /** Forgets a fired timer once its deletion is durable. */
  done(invocationId: string, index: number): void {
    this.known.delete(keyOf(invocationId, index));
  }

  private push(t: TimerRow): void {
    const k = keyOf(t.invocationId, t.index);
    if (this.known.has(k)) return;
    this.known.add(k);
    const h = this.heap;
    h.push(t);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.fireAt <= h[i]!.fireAt) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  private pop(): TimerRow | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]!.fireAt < h[m]!.fireAt) m = l;
        if (r < h.length && h[r]!.fireAt < h[m]!.fireAt) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }

  private arm(): void {
    const first = this.heap[0];
    const at = first ? first.fireAt : Infinity;
    if (at >= this.nextAt) return;
    this.cancelNext?.();
    this.nextAt = at;
    this.cancelNext = this.clock.setTimer(at - this.clock.now(), () => this.fire());
  }

  private fire(): void {
    this.cancelNext = undefined;
    this.nextAt = Infinity;
    if (this.stopped) return;
    const now = this.clock.now();
    while (this.heap.length > 0 && this.heap[0]!.fireAt <= now) this.onFire(this.pop()!);
    this.arm();
  }

  private async reload_(): Promise<void> {
    this.cancelReload = undefined;
    this.reloadAt = Infinity;
    if (this.stopped) return;
    const until = this.clock.now() + this.windowMs;
    const rows = await this.store.dueTimers(until, this.batch, this.owner());
    // A full batch means more timers are due in this window than we hold: stop the window at
    // the last one loaded, and load the rest when we get there.
    const full = rows.length === this.batch;
    this.loadedUntil = full ? rows[rows.length - 1]!.fireAt : until;
    for (const r of rows) this.push(r);
    this.arm();
    let next = this.loadedUntil - this.windowMs / 4;
    if (!full) {
      // Nothing else is due in this window: sleep until the window before the next timer
      // (a fake clock jumping 30 days then costs one reload, not one per window).
      const ahead = await this.store.dueTimers(
        Number.MAX_SAFE_INTEGER,
        rows.length + 1,
        this.owner(),
      );
      const first = ahead[rows.length];
      next = first ? Math.max(next, first.fireAt - this.windowMs) : Number.MAX_SAFE_INTEGER;
    }
    this.scheduleReload(next);
  }

  private reloadAt = Infinity;

  private scheduleReload(at: number): void {
    if (this.stopped || at >= this.reloadAt) return;
    this.cancelReload?.();
    this.reloadAt = at;
    if (at >= Number.MAX_SAFE_INTEGER) {
      this.cancelReload = undefined;
      return;
    }
    this.cancelReload = this.clock.setTimer(Math.max(0, at - this.clock.now()), () =>
      this.reloadSafely(),
    );
  }
}

function keyOf(id: string, index: number): string {
  return `${id}#${index}`;
}
