import { errorMessage, KeelError } from '../core/errors.js';
import { notFound } from './info.js';
import type { Kernel, Outcome } from './kernel.js';
import {
  abandoned,
  goneOnAbort,
  MAX_WAITERS,
  TooManyWaitersError,
  type WaitOptions,
} from './waiters.js';

interface Deferred<T> {
  resolve(v: T): void;
  reject(e: unknown): void;
}

/**
 * Callers waiting for invocations' results: the ingress's blocking calls and attaches,
 * `Engine.attach`, and handlers' calls that joined an invocation someone else started. A
 * result reaches them from the write that recorded it (this process) or from the store
 * (another process finished it: see `ClusterOwnership`).
 */
export class Results {
  private readonly waiters = new Map<string, Array<Deferred<Outcome>>>();

  constructor(private readonly k: Kernel) {}

  /** How many callers wait here for `id`'s result. */
  count(id: string): number {
    return this.waiters.get(id)?.length ?? 0;
  }

  has(id: string): boolean {
    return this.waiters.has(id);
  }

  /** The invocations someone waits for here. */
  waitedFor(): string[] {
    return [...this.waiters.keys()];
  }

  /**
   * Waits for an invocation's outcome: registers a waiter first, then checks the store, so a
   * result that lands in between is not missed. `wait` is given for callers outside the engine
   * (attach, a call that joined an existing invocation): they are bounded per invocation and
   * released when their signal aborts. The engine's own waits (a caller's call) are neither.
   * `known`: the invocation exists even if the store does not show it yet (just created).
   */
  await(id: string, known = false, wait?: WaitOptions): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      const waiter = this.add(id, resolve, reject, wait);
      if (!waiter) return;
      this.k.store.getInvocation(id).then(
        (row) => {
          if (!row) {
            // A just-created invocation may not be flushed yet; its result will come.
            if (known || this.k.active.has(id)) return;
            this.drop(id, waiter);
            waiter.reject(notFound(id));
          } else if (row.status === 'completed' || row.status === 'failed') {
            this.drop(id, waiter);
            waiter.resolve(
              row.status === 'completed' ? { output: row.output } : { error: row.error! },
            );
          }
        },
        (err: unknown) => {
          this.drop(id, waiter);
          waiter.reject(
            err instanceof Error
              ? err
              : new KeelError(errorMessage(err), { code: 'internal', cause: err }),
          );
        },
      );
    });
  }

  /** Registers a waiter without looking at the store (a new invocation has no result yet). */
  awaitNew(id: string, wait?: WaitOptions): Promise<Outcome> {
    return new Promise<Outcome>((resolve, reject) => {
      this.add(id, resolve, reject, wait);
    });
  }

  /** Hands an outcome to everyone waiting for `id`. */
  settle(id: string, outcome: Outcome): void {
    const list = this.waiters.get(id);
    if (!list) return;
    this.waiters.delete(id);
    for (const w of list) w.resolve(outcome);
  }

  /** Settles the waiters of `id` if the store shows it finished. */
  async settleFromStore(id: string): Promise<void> {
    const row = await this.k.store.getInvocation(id);
    if (row?.status === 'completed') this.settle(id, { output: row.output });
    else if (row?.status === 'failed') this.settle(id, { error: row.error! });
  }

  /** The engine stops: every waiter gets `error` (or nothing, after a crash). */
  clear(error?: Error): void {
    if (error) for (const ws of this.waiters.values()) for (const w of ws) w.reject(error);
    this.waiters.clear();
  }

  /**
   * Adds a waiter, or rejects at once (and answers undefined) when an outside caller's signal
   * has already aborted or the invocation already has `MAX_WAITERS` waiters. The engine's own
   * waits count towards the bound but are never refused: refusing one would fail a call.
   */
  private add(
    id: string,
    resolve: (v: Outcome) => void,
    reject: (e: unknown) => void,
    wait: WaitOptions | undefined,
  ): Deferred<Outcome> | undefined {
    let list = this.waiters.get(id);
    let waiter: Deferred<Outcome> = { resolve, reject };
    if (wait) {
      const gone = wait.gone ?? (wait.signal ? goneOnAbort(wait.signal) : undefined);
      if (gone?.happened) {
        reject(abandoned(id));
        return undefined;
      }
      if (list && list.length >= MAX_WAITERS) {
        reject(new TooManyWaitersError(id));
        return undefined;
      }
      if (gone) {
        // The client went away: forget its waiter now, not when the invocation ends (which
        // may be in 30 days). The invocation itself goes on.
        const unwatch = gone.watch(() => {
          this.drop(id, waiter);
          reject(abandoned(id));
        });
        waiter = {
          resolve: (v) => {
            unwatch();
            resolve(v);
          },
          reject: (e) => {
            unwatch();
            reject(e);
          },
        };
      }
    }
    if (!list) this.waiters.set(id, (list = []));
    list.push(waiter);
    return waiter;
  }

  private drop(id: string, w: Deferred<Outcome>): void {
    const list = this.waiters.get(id);
    if (!list) return;
    const i = list.indexOf(w);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.waiters.delete(id);
  }
}
