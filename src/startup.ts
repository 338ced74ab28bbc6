import { errorMessage } from './core/errors.js';
import type { EngineLogger } from './engine/engine.js';
import { StoreError } from './store/errors.js';

/** First pause after a failed start; it doubles after each failure up to {@link MAX_PAUSE_MS}. */
const FIRST_PAUSE_MS = 250;
/** The cap: a database that comes back is found within this long. */
const MAX_PAUSE_MS = 10_000;

/** How {@link startWhileUnavailable} waits. */
export interface StartWaitOptions {
  /** Give up after this many milliseconds of failed attempts; `Infinity`: never. */
  maxWaitMs: number;
  /** Where each failed attempt is reported (`warn`). */
  logger: EngineLogger;
  /** Says what to check, e.g. which database it waits for. */
  hint: string;
  /** Test seams: the pause between attempts, and the time. */
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/**
 * Runs `attempt` until it succeeds, again after a pause whenever it fails because the store is
 * unavailable (`store_unavailable`: the database is down, still starting, or unreachable), with
 * capped exponential backoff and jitter. A restarted process must wait for its database, not
 * exit: the database often comes back after the processes that use it (a host reboot, a
 * failover). Any other error (a bad configuration, a schema migrated by a newer Keel) fails at
 * once: waiting would not fix it. `attempt` must clean up after itself when it fails.
 */
export async function startWhileUnavailable<T>(
  attempt: () => Promise<T>,
  options: StartWaitOptions,
): Promise<T> {
  const sleep = options.sleep ?? ((ms) => new Promise<void>((r) => setTimeout(r, ms)));
  const now = options.now ?? Date.now;
  const started = now();
  for (let failures = 1; ; failures++) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof StoreError) || err.code !== 'store_unavailable') throw err;
      const waited = now() - started;
      const base = Math.min(MAX_PAUSE_MS, FIRST_PAUSE_MS * 2 ** (failures - 1));
      // Jitter, so that many processes restarted together do not retry in lockstep.
      const pause = Math.round(base * (0.8 + 0.4 * Math.random()));
      if (waited + pause > options.maxWaitMs) {
        throw new StoreError(
          'store_unavailable',
          `gave up starting after ${failures} attempt(s) over ${seconds(waited)}: ` +
            `${errorMessage(err)} ${options.hint}, or allow a longer wait (storeWait, KEEL_STORE_WAIT).`,
          err,
        );
      }
      options.logger(
        'warn',
        `cannot start yet (attempt ${failures}, waiting ${seconds(waited)} so far): ` +
          `${errorMessage(err)} Trying again in ${seconds(pause)}; the ports open once started. ` +
          `${options.hint}.`,
        {},
      );
      await sleep(pause);
    }
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
}
