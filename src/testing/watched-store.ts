import type { OpResult, Store, WriteOp } from '../store/types.js';

/**
 * Stands between the engine and one `write()` call (a fault, a crash check): `forward` passes
 * the ops on to the next interceptor and then to the real store.
 */
export type WriteInterceptor = (
  ops: WriteOp[],
  forward: (ops: WriteOp[]) => Promise<OpResult[]>,
) => Promise<OpResult[]>;

/** A store whose calls a test can see in flight (see {@link watchStore}). */
export interface WatchedStore {
  /** The store to give the engine: every call goes straight to the wrapped one. */
  readonly store: Store;
  /** Calls made so far that answered with a promise. */
  readonly calls: number;
  /** Calls whose promise has not settled yet. */
  readonly inFlight: number;
  /** Interceptors of `write()`, outermost first (see `TestApp.faults`, `checkCrashes`). */
  readonly interceptors: WriteInterceptor[];
}

/**
 * Wraps a real store to count its calls in flight. The engine's work between two turns of the
 * event loop is a chain of store round trips (a write, its answer, the next read), so "no call
 * in flight, and none started for a few turns" is what tells `TestApp.idle` that a cascade is
 * over, whatever the store (SQLite's group commit answers on a later turn, PostgreSQL over a
 * socket). Nothing is changed, held back or reordered, unless a test installs an interceptor
 * (`TestApp.faults`, `checkCrashes`).
 */
export function watchStore(inner: Store): WatchedStore {
  let calls = 0;
  let inFlight = 0;
  const done = (): void => {
    inFlight--;
  };
  const interceptors: WriteInterceptor[] = [];
  const intercepted = (i: number, ops: WriteOp[]): Promise<OpResult[]> => {
    const next = interceptors[i];
    return next ? next(ops, (forwarded) => intercepted(i + 1, forwarded)) : inner.write(ops);
  };
  // One wrapper per method, so the engine's hot paths do not allocate a closure per call.
  const wrapped = new Map<PropertyKey, unknown>();
  const store = new Proxy(inner, {
    get(target, prop) {
      const v = Reflect.get(target, prop) as unknown;
      if (typeof v !== 'function') return v;
      let w = wrapped.get(prop);
      if (w === undefined) {
        const fn = v as (...a: unknown[]) => unknown;
        w = (...args: unknown[]): unknown => {
          const r =
            prop === 'write' && interceptors.length > 0
              ? intercepted(0, args[0] as WriteOp[])
              : fn.apply(target, args);
          if (r instanceof Promise) {
            calls++;
            inFlight++;
            // The derived promise never rejects: a failed call stays the caller's to handle.
            r.then(done, done);
          }
          return r;
        };
        wrapped.set(prop, w);
      }
      return w;
    },
  });
  return {
    store,
    get calls() {
      return calls;
    },
    get inFlight() {
      return inFlight;
    },
    interceptors,
  };
}
