import { parseDuration, type Duration } from '../core/duration.js';
import type { Clock } from '../engine/clock.js';

/** How long, in real time, `advance` waits at most for the store writes under way, each time. */
const HOLD_LIMIT_MS = 1000;

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
  /** Store writes the engine started and that have not settled (see {@link hold}). */
  private readonly held = new Set<Promise<unknown>>();

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

  /**
   * Told by the engine of each store write it starts: `advance` waits for those under way before
   * it moves time (see {@link Clock.hold}), so a timer that such a write records (a retry's
   * backoff, a sleep) is armed before time passes it, however long the fdatasync takes.
   */
  hold(work: Promise<unknown>): void {
    this.held.add(work);
    const done = (): void => void this.held.delete(work);
    work.then(done, done);
  }

  /**
   * The default wait between timers: a few turns of the event loop, and the store writes under
   * way (for at most {@link HOLD_LIMIT_MS} of real time: a test may hold a write on purpose).
   */
  private async settleWrites(): Promise<void> {
    await settle();
    const deadline = performance.now() + HOLD_LIMIT_MS;
    while (this.held.size > 0 && performance.now() < deadline) {
      await Promise.race([
        Promise.allSettled([...this.held]),
        new Promise<void>((r) => setTimeout(r, 10)),
      ]);
      // Continuations of the writes (arming the timers they recorded) run now.
      await settle(1);
    }
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
   * settle after each one: by default a few turns of the event loop ({@link settle}) and the
   * engine's store writes under way (see {@link hold}); `between` replaces that wait (`testApp` passes one that waits until the engine has nothing left to do).
   */
  async advance(
    d: Duration,
    between: () => Promise<void> = () => this.settleWrites(),
  ): Promise<void> {
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
