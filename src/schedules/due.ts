/**
 * Schedules by the time they are next due: a binary min-heap, so that finding the earliest (to
 * arm the one timer) and taking those due at a tick cost O(log n) each, not a scan of every
 * schedule. A change of a schedule's time pushes it again rather than moving it: the earlier
 * item goes stale and is dropped when it reaches the top (see {@link DueQueue.live}).
 */

/** What the queue holds: the schedule's current due time, and the one it is queued at. */
export interface Queued {
  /** When it is due now; undefined: never (paused, or its pattern fires no more). */
  fireAt?: number;
  /** The time of its live item in the queue, if it has one. */
  queuedAt?: number;
}

interface Item<T> {
  at: number;
  value: T;
}

export class DueQueue<T extends Queued> {
  private heap: Array<Item<T>> = [];

  /**
   * @param current Whether `value` is still one the caller keeps (a deleted or replaced one is
   *   not): items of others are stale.
   */
  constructor(private readonly current: (value: T) => boolean) {}

  /** Items held, stale ones included. */
  get size(): number {
    return this.heap.length;
  }

  /** Queues `value` at its `fireAt`, unless it is queued there already (or is never due). */
  update(value: T): void {
    const at = value.fireAt;
    if (value.queuedAt === at) return;
    // Never due: its item (if any) goes stale, and a later time pushes a new one.
    value.queuedAt = at;
    if (at !== undefined) this.push({ at, value });
  }

  /** The earliest due time, or undefined when nothing is due ever. */
  peek(): number | undefined {
    this.dropStale();
    return this.heap[0]?.at;
  }

  /** Takes every value due at or before `now`, earliest first. */
  takeDue(now: number): T[] {
    const out: T[] = [];
    for (;;) {
      this.dropStale();
      const top = this.heap[0];
      if (top === undefined || top.at > now) return out;
      this.pop();
      top.value.queuedAt = undefined;
      out.push(top.value);
    }
  }

  /** Builds the heap again from `values` alone, dropping every stale item. */
  rebuild(values: Iterable<T>): void {
    this.heap = [];
    for (const v of values) {
      v.queuedAt = undefined;
      this.update(v);
    }
  }

  /** An item is live while its value is kept, due at that time, and queued at that time. */
  private live(item: Item<T>): boolean {
    const v = item.value;
    return v.queuedAt === item.at && v.fireAt === item.at && this.current(v);
  }

  private dropStale(): void {
    for (let top = this.heap[0]; top !== undefined && !this.live(top); top = this.heap[0]) {
      this.pop();
      const v = top.value;
      // Its time changed without an update: queued again at the time it has now.
      if (v.queuedAt === top.at && this.current(v)) {
        v.queuedAt = undefined;
        this.update(v);
      }
    }
  }

  private push(item: Item<T>): void {
    const h = this.heap;
    h.push(item);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (h[p]!.at <= item.at) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = item;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r]!.at < h[l]!.at ? r : l;
      if (h[c]!.at >= last.at) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}
