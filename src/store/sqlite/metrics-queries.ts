import type Database from 'better-sqlite3';
import type { InvocationStatus } from '../types.js';
import { type ActiveCounts, type KeyQueueDepth, KEY_QUEUE_SCAN_LIMIT } from '../observe.js';

/**
 * The reads of `GET /metrics` (see `Store.countActive`, `Store.keyQueueDepths`). They repeat the
 * condition of the partial index `invocations_active` term for term, so SQLite counts unfinished
 * invocations from that index alone: the cost follows what waits, not the finished rows that
 * dominate the table. The metrics layer caches their answers for a few seconds.
 */
export class MetricsQueries {
  private readonly byStatus: Database.Statement;
  private readonly timers: Database.Statement;
  private readonly hot: Database.Statement;

  constructor(db: Database.Database) {
    this.byStatus = db.prepare(
      "SELECT status, count(*) AS n FROM invocations WHERE status NOT IN ('completed', 'failed') GROUP BY status",
    );
    this.timers = db.prepare('SELECT count(*) AS n FROM timers');
    this.hot = db.prepare(
      'SELECT service, key, count(*) AS depth FROM (' +
        "SELECT service, key FROM invocations WHERE status NOT IN ('completed', 'failed') " +
        `AND status = 'pending' AND exclusive = 1 ORDER BY seq LIMIT ${KEY_QUEUE_SCAN_LIMIT}` +
        ') GROUP BY service, key ORDER BY depth DESC LIMIT ?',
    );
  }

  countActive(): ActiveCounts {
    const byStatus: ActiveCounts['byStatus'] = {};
    for (const r of this.byStatus.all() as Array<{ status: InvocationStatus; n: number }>)
      byStatus[r.status] = r.n;
    return { byStatus, timers: (this.timers.get() as { n: number }).n };
  }

  keyQueueDepths(limit: number): KeyQueueDepth[] {
    return this.hot.all(limit) as KeyQueueDepth[];
  }
}
