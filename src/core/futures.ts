import type { Duration } from './duration.js';

/**
 * A durable future: what `ctx.run`, `ctx.sleep`, calls, awakeables and durable promises
 * return. It is awaitable like a promise, combinable with `ctx.all / race / any / allSettled`
 * (deterministically on replay), and can be given a deadline with `orTimeout`.
 *
 * @example
 * ```ts
 * const approval = await ctx.promise<Approval>('approval').get().orTimeout('30d');
 * ```
 */
export class DurablePromise<T> implements PromiseLike<T> {
  /** @internal */
  constructor(
    readonly inner: Promise<T>,
    private readonly timeout: (self: PromiseLike<unknown>, d: Duration) => DurablePromise<unknown>,
  ) {
    // A future nobody awaits (the loser of a race, a call fired and forgotten) must not crash
    // the process with an unhandled rejection; awaiting it still sees the rejection.
    inner.catch(() => undefined);
  }

  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.inner.then(onfulfilled, onrejected);
  }

  catch<R = never>(onrejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.inner.catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<T> {
    return this.inner.finally(onfinally);
  }

  /**
   * Races this future against a durable timer: rejects with a `TimeoutError` (code `timeout`)
   * if the duration passes first. Deterministic on replay.
   *
   * @example
   * ```ts
   * const ready = await restaurantReady.promise.orTimeout('45m');
   * ```
   */
  orTimeout(duration: Duration): DurablePromise<T> {
    return this.timeout(this, duration) as DurablePromise<T>;
  }

  get [Symbol.toStringTag](): string {
    return 'DurablePromise';
  }
}

/** The value types of a tuple of futures. */
export type Values<F extends readonly unknown[]> = { -readonly [K in keyof F]: Awaited<F[K]> };

/** The settled results of a tuple of futures, as `Promise.allSettled` gives them. */
export type Settled<F extends readonly unknown[]> = {
  -readonly [K in keyof F]: PromiseSettledResult<Awaited<F[K]>>;
};
