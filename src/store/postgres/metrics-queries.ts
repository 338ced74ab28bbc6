import type pg from 'pg';
import type { InvocationStatus } from '../types.js';
import { type ActiveCounts, type KeyQueueDepth, KEY_QUEUE_SCAN_LIMIT } from '../observe.js';

/**
 * The reads of `GET /metrics` (see `Store.countActive`, `Store.keyQueueDepths`), as named
 * prepared statements. They repeat the condition of the partial index `invocations_active`, so
 * the planner counts unfinished invocations from that index: the cost follows what waits, not
 * the finished rows. The metrics layer caches their answers for a few seconds.
 */
export class MetricsQueries {
  private readonly byStatus: pg.QueryConfig;
  private readonly timers: pg.QueryConfig;
  private readonly hot: pg.QueryConfig;

  constructor(
    private readonly pool: pg.Pool,
    s: string,
    prefix: string,
  ) {
    this.byStatus = {
      name: `${prefix}m_status`,
      text: `SELECT status, count(*)::int AS n FROM ${s}.invocations WHERE status NOT IN ('completed', 'failed') GROUP BY status`,
    };
    this.timers = { name: `${prefix}m_timers`, text: `SELECT count(*)::int AS n FROM ${s}.timers` };
    this.hot = {
      name: `${prefix}m_hot`,
      text:
        `SELECT service, key, count(*)::int AS depth FROM (SELECT service, key FROM ${s}.invocations ` +
        `WHERE status NOT IN ('completed', 'failed') AND status = 'pending' AND exclusive ` +
        `ORDER BY seq LIMIT ${KEY_QUEUE_SCAN_LIMIT}) q GROUP BY service, key ORDER BY depth DESC LIMIT $1`,
    };
  }

  async countActive(): Promise<ActiveCounts> {
    const [status, timers] = await Promise.all([
      this.pool.query<{ status: InvocationStatus; n: number }>(this.byStatus),
      this.pool.query<{ n: number }>(this.timers),
    ]);
    const byStatus: ActiveCounts['byStatus'] = {};
    for (const r of status.rows) byStatus[r.status] = r.n;
    return { byStatus, timers: timers.rows[0]?.n ?? 0 };
  }

  async keyQueueDepths(limit: number): Promise<KeyQueueDepth[]> {
    const res = await this.pool.query<KeyQueueDepth>({ ...this.hot, values: [limit] });
    return res.rows;
  }
}
