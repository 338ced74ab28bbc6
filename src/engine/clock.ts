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
}

/** The real clock. Timers are unref'd: a pending timer never keeps the process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
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
