import type { ServerResponse } from 'node:http';

/**
 * Whether the client of `res` went away before its answer was sent, for the engine's
 * `WaitOptions.gone`: the engine releases the wait at once instead of holding it until the
 * invocation ends. An AbortSignal would do, but an AbortController and an EventTarget per
 * request cost a few percent of the server's CPU on the hot path; this is one closure.
 */
export function clientGone(res: ServerResponse): {
  readonly happened: boolean;
  watch(fn: () => void): () => void;
} {
  let happened = false;
  let watcher: (() => void) | undefined;
  res.once('close', () => {
    if (res.writableFinished) return;
    happened = true;
    const fn = watcher;
    watcher = undefined;
    fn?.();
  });
  return {
    get happened() {
      return happened;
    },
    watch(fn) {
      watcher = fn;
      return () => {
        if (watcher === fn) watcher = undefined;
      };
    },
  };
}
