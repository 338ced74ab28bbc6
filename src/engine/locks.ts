/**
 * Exclusive ownership of object keys, with a FIFO queue of waiting invocations per key. One
 * exclusive handler runs per key at a time; the key stays held while its invocation is
 * suspended, backing off or paused, exactly as a lock held across an `await`.
 */
export class KeyLocks<T> {
  private readonly holders = new Map<string, string>();
  private readonly queues = new Map<string, T[]>();

  /** Takes the key for `id` if it is free (or already `id`'s); otherwise queues `item`. */
  acquire(key: string, id: string, item: T): boolean {
    const holder = this.holders.get(key);
    if (holder === undefined || holder === id) {
      this.holders.set(key, id);
      return true;
    }
    let q = this.queues.get(key);
    if (!q) this.queues.set(key, (q = []));
    q.push(item);
    return false;
  }

  /** Releases the key held by `id` and returns the next queued item, which now holds it. */
  release(key: string, id: string, idOf: (item: T) => string): T | undefined {
    if (this.holders.get(key) !== id) return undefined;
    const q = this.queues.get(key);
    const next = q?.shift();
    if (q && q.length === 0) this.queues.delete(key);
    if (next === undefined) {
      this.holders.delete(key);
      return undefined;
    }
    this.holders.set(key, idOf(next));
    return next;
  }

  /** Takes a queued (not holding) id out of the key's queue. */
  remove(key: string, id: string, idOf: (item: T) => string): void {
    const q = this.queues.get(key);
    if (!q) return;
    const i = q.findIndex((item) => idOf(item) === id);
    if (i >= 0) q.splice(i, 1);
    if (q.length === 0) this.queues.delete(key);
  }

  holder(key: string): string | undefined {
    return this.holders.get(key);
  }

  queued(key: string): number {
    return this.queues.get(key)?.length ?? 0;
  }
}
