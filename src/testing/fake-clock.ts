import { parseDuration, type Duration } from '../core/duration.js';
import type { Clock } from '../engine/clock.js';

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * A clock that only moves when told. Timers fire in time order as `advance` passes them, and
 * the event loop gets a turn after each, so the engine's durable writes land in between.
 *
 * @example
 * ```ts
 * const clock = new FakeClock();
 * const engine = new Engine({ services: [Signup, Greeter, Counter], store, clock });
 * await engine.start();
 * const done = engine.client(Signup, 'ada').run({ email: 'ada@example.com' });
 * await clock.advance('1d'); // the one-day `ctx.sleep` fires, no real waiting
 * const accountId = await done;
 * ```
 */
export class FakeClock implements Clock {
  private current: number;
  private seq = 0;
  private pending: Pending[] = [];

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const p: Pending = { at: this.current + Math.max(0, ms), seq: this.seq++, fn };
    this.pending.push(p);
    return () => {
      this.pending = this.pending.filter((x) => x !== p);
    };
  }

  /** Timers waiting to fire. */
  get timerCount(): number {
    return this.pending.length;
  }

  /** When the earliest waiting timer falls due (epoch ms), or undefined when none waits. */
  get nextTimerAt(): number | undefined {
    let at: number | undefined;
    for (const p of this.pending) if (at === undefined || p.at < at) at = p.at;
    return at;
  }

  /**
   * Moves time forward by `d`, firing every timer that falls due, in order, and letting I/O
   * settle after each one: by default a few turns of the event loop ({@link settle}); `between`
   * replaces that wait (`testApp` passes one that waits until the engine has nothing left to do).
   */
  async advance(d: Duration, between: () => Promise<void> = () => settle()): Promise<void> {
    const target = this.current + parseDuration(d);
    await between();
    for (;;) {
      this.pending.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.pending[0];
      if (!next || next.at > target) break;
      this.pending.shift();
      this.current = Math.max(this.current, next.at);
      next.fn();
      await between();
    }
    this.current = target;
    await between();
  }
}

/** Lets pending promise callbacks and I/O completions (fsyncs) run. */
export async function settle(rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setTimeout(r, 1));
}
