/**
 * Retries `fn` while SQLite reports the database busy or locked, for up to `timeoutMs`.
 *
 * Only for opening: some steps there (switching to WAL mode, reading a WAL that another process
 * is recovering or deleting as it closes) return SQLITE_BUSY at once, without consulting the busy
 * timeout. `fn` must be safe to repeat. Sleeps synchronously: opening is synchronous anyway.
 */
export function retryWhileBusy<T>(fn: () => T, timeoutMs: number): T {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err) || Date.now() + delay > deadline) throw err;
      sleepSync(delay);
    }
  }
}

/** Whether an error is SQLite's "database is busy/locked" (another connection holds a lock). */
export function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return (
    typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
  );
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}
