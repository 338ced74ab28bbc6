import type { InvocationStatus } from './types.js';

/**
 * Told of every batch a store commits (the engine's metrics). Called on the commit path, so an
 * implementation must do nothing but a few additions.
 */
export interface CommitObserver {
  /**
   * A batch of `calls` `write()` calls committed; `seconds`: SQLite's transaction (on the event
   * loop), PostgreSQL's round trip.
   */
  committed(calls: number, seconds: number): void;
  /** SQLite: one fdatasync of the WAL took `seconds`. */
  synced(seconds: number): void;
}

/** Unfinished invocations by status, and the timers pending (see `Store.countActive`). */
export interface ActiveCounts {
  byStatus: Partial<Record<InvocationStatus, number>>;
  timers: number;
}

/** How many invocations wait for one object key (see `Store.keyQueueDepths`). */
export interface KeyQueueDepth {
  service: string;
  key: string;
  depth: number;
}

/**
 * `keyQueueDepths` looks at most at this many pending invocations (the oldest): the answer stays
 * bounded in cost when a million wait, and the keys that pile up are among the oldest.
 */
export const KEY_QUEUE_SCAN_LIMIT = 100_000;
