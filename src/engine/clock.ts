/**
 * Time as the engine sees it. Injected so tests can use a fake clock (see `keel/testing`) and
 * move through a 30-day timer without sleeping.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Calls `fn` after `ms`; returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
  /**
   * Milliseconds from an arbitrary origin that never go back (a wall clock set back must not
   * make a lease look younger). Optional: a clock without it measures with `now()`.
   */
  monotonic?(): number;
  /**
   * The epoch milliseconds a {@link monotonic} reading taken just now stands for, so a step's
   * start and its duration come from one pair of readings. Optional: `now()` otherwise.
   */
  epochOf?(monotonic: number): number;
  /**
   * Optional, for fake clocks: told of every store write the engine starts, so that moving time
   * can wait for the writes already under way (a timer written by one of them is then armed
   * before time passes it). The real clock has none.
   */
  hold?(work: Promise<unknown>): void;
}

/**
 * `performance.now()` counts from `performance.timeOrigin` but drifts from the wall clock (it
 * ignores a wall clock set, and stops while the machine sleeps): the offset between the two is
 * read again at most once a second, and changed only when it moved by more than the 1 ms that
 * `Date.now()` cannot resolve, so readings a step apart stay consistent.
 */
let epochOffset = Number.NaN;
let anchoredAt = Number.NEGATIVE_INFINITY;

/** The real clock. Timers are unref'd: a pending timer never keeps the process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  epochOf(m) {
    if (!(m - anchoredAt < 1000)) {
      anchoredAt = m;
      const offset = Date.now() - m;
      if (!(Math.abs(offset - epochOffset) <= 1)) epochOffset = offset;
    }
    return epochOffset + m;
  },
  setTimer(ms, fn) {
    // setTimeout cannot wait longer than 2^31-1 ms; longer timers re-arm themselves.
    const MAX = 2_147_483_647;
    let handle: NodeJS.Timeout;
    const arm = (left: number): void => {
      handle = setTimeout(left > MAX ? () => arm(left - MAX) : fn, Math.min(left, MAX));
      handle.unref();
    };
    arm(Math.max(0, ms));
    return () => clearTimeout(handle);
  },
};
