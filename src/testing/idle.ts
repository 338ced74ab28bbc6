import type { Kernel } from '../engine/kernel.js';
import { TestAppError } from './errors.js';
import type { FakeClock } from './fake-clock.js';
import type { WatchedStore } from './watched-store.js';

/** Turns of the event loop in a row that must find nothing to do before the engine counts as idle. */
const QUIET_TURNS = 3;
/** Busy turns spent on `setImmediate` before the wait backs off to 1 ms timers (saves CPU). */
const FAST_TURNS = 50;

/**
 * Knows when an engine has nothing runnable left: nothing loads a journal, nothing settles a
 * status write, every runner in memory waits only for a completion (a timer, an awakeable, a
 * call whose callee waits too), no store call is in flight, and that holds for a few turns of
 * the event loop in a row with no new store call. Timers of the fake clock that are due are
 * fired, so work scheduled "now" (a retention sweep, a zero delay) is part of it.
 */
export class IdleWatch {
  constructor(
    private readonly kernel: () => Kernel,
    private readonly store: WatchedStore,
    private readonly clock: FakeClock,
    private readonly stallMs: number,
  ) {}

  /** Waits until the engine is idle and no timer of the fake clock is due. */
  async idle(): Promise<void> {
    for (;;) {
      await this.quiesce();
      const next = this.clock.nextTimerAt;
      if (next === undefined || next > this.clock.now()) return;
      await this.clock.advance(0, () => this.quiesce());
    }
  }

  /** Waits until the engine is idle, leaving the fake clock's timers alone. */
  async quiesce(): Promise<void> {
    let quiet = 0;
    let busy = 0;
    let seen = this.progress();
    let since = performance.now();
    for (;;) {
      const now = this.progress();
      if (now !== seen) {
        seen = now;
        since = performance.now();
        quiet = 0;
      }
      if (this.isQuiet()) {
        if (++quiet >= QUIET_TURNS) return;
        busy = 0;
      } else {
        quiet = 0;
        if (performance.now() - since > this.stallMs) throw this.stalled();
      }
      if (busy++ < FAST_TURNS || quiet > 0) await new Promise<void>((r) => setImmediate(r));
      else await new Promise<void>((r) => setTimeout(r, 1));
    }
  }

  private isQuiet(): boolean {
    const k = this.kernel();
    if (this.store.inFlight > 0 || k.loading.size > 0 || k.settling.size > 0) return false;
    for (const r of k.active.values()) if (!r.dead && !r.isIdle) return false;
    return true;
  }

  /** Changes whenever the engine does something: a store call starts or ends, a runner comes or goes. */
  private progress(): string {
    const k = this.kernel();
    return `${this.store.calls}/${this.store.inFlight}/${k.active.size}/${k.loading.size}/${k.settling.size}`;
  }

  private stalled(): TestAppError {
    const k = this.kernel();
    const busy = [...k.active.values()]
      .filter((r) => !r.dead && !r.isIdle)
      .map((r) => `${r.invocationId} (${r.row.service}/${r.row.handler})`);
    const what = [
      busy.length > 0 ? `${busy.join(', ')} still running` : '',
      this.store.inFlight > 0 ? `${this.store.inFlight} store call(s) unanswered` : '',
      k.loading.size > 0 ? `${[...k.loading.keys()].join(', ')} loading` : '',
      k.settling.size > 0 ? `${[...k.settling].join(', ')} settling` : '',
    ].filter((s) => s !== '');
    return new TestAppError(
      `the engine made no progress for ${this.stallMs} ms but is not idle: ${what.join('; ')}. ` +
        'A handler or a ctx.run step is awaiting something that does not settle by itself (a ' +
        'promise outside the engine, a real timer, a server that does not answer): settle it ' +
        'in the test, or raise the idleTimeout option of testApp.',
      'idle_stalled',
    );
  }
}
