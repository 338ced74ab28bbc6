/**
 * Time as the engine sees it. Injected so tests can use a fake clock (see `keel/testing`) and
 * move through a 30-day timer without sleeping.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  /** Calls `fn` after `ms`; returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
}

/** The real clock. Timers are unref'd: a pending timer never keeps the process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
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
