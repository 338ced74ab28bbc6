import type pg from 'pg';
import { StoreError } from '../errors.js';
import { parseStartLog, runAsync, type QueueQuery } from '../queue-plan.js';
import type { QueueAdmit, QueueAdmitResult, QueueStats } from '../types.js';
import { decodeInvocation, type InvocationRecord } from './codec.js';
import { withPayloads } from './blobs.js';
import { asStoreError, isBrokenConnection } from './errors.js';

const FINISHED = "('completed', 'failed')";

/** SQLSTATEs after which the whole transaction is run again. */
const RETRY = new Set(['40P01', '40001']);

/**
 * `queue.admit` on PostgreSQL: the plan of queue-plan.ts in a transaction of its own. It first
 * locks the queue's row, so admissions of one queue are serialized across processes (each
 * sees the slots the previous one took); and, when `owner` is set, the owner's process row
 * `FOR KEY SHARE` as a fenced batch does (migration 6): a process that was reaped admits
 * nothing under its old id.
 */
export async function admitQueued(
  pool: pg.Pool,
  s: string,
  req: QueueAdmit,
  onFenced: (processId: string) => void,
): Promise<QueueAdmitResult> {
  for (let attempt = 0; ; attempt++) {
    let client: pg.PoolClient | undefined;
    try {
      client = await pool.connect();
      return await admitOnce(client, s, req, onFenced);
    } catch (err) {
      const code = (err as { code?: string }).code;
      const again =
        (code !== undefined && RETRY.has(code)) || (isBrokenConnection(err) && attempt < 3);
      if (client) {
        await client.query('ROLLBACK').catch(() => {});
        client.release(isBrokenConnection(err) ? (err as Error) : undefined);
        client = undefined;
      }
      if (again && attempt < 5) continue;
      throw err instanceof StoreError
        ? err
        : asStoreError(err, `the admission of queue "${req.queue}" on PostgreSQL`);
    } finally {
      client?.release();
    }
  }
}

async function admitOnce(
  c: pg.PoolClient,
  s: string,
  req: QueueAdmit,
  onFenced: (processId: string) => void,
): Promise<QueueAdmitResult> {
  const { queue } = req;
  await c.query('BEGIN');
  if (req.owner !== undefined) {
    const alive = await c.query(`SELECT 1 FROM ${s}.processes WHERE id = $1 FOR KEY SHARE`, [
      req.owner,
    ]);
    if (alive.rowCount === 0) {
      onFenced(req.owner);
      throw new StoreError(
        'process_fenced',
        `process ${req.owner} is no longer registered (it was presumed dead and reaped): it admits nothing from queue "${queue}".`,
      );
    }
  }
  await c.query(
    `INSERT INTO ${s}.queues (queue, turn, starts) VALUES ($1, 0, '[]') ON CONFLICT DO NOTHING`,
    [queue],
  );
  const locked = await c.query<{ turn: string; starts: string }>(
    `SELECT turn, starts FROM ${s}.queues WHERE queue = $1 FOR UPDATE`,
    [queue],
  );
  const head = locked.rows[0]!;
  const result = await runAsync(req, async (q: QueueQuery): Promise<unknown> => {
    switch (q.q) {
      case 'active': {
        await c.query(
          `DELETE FROM ${s}.queue_items AS q WHERE q.queue = $1 AND q.admitted AND NOT EXISTS (` +
            `SELECT 1 FROM ${s}.invocations i WHERE i.id = q.invocation_id AND i.status NOT IN ${FINISHED})`,
          [queue],
        );
        const r = await c.query<{ qkey: string; n: string }>(
          `SELECT qkey, count(*) AS n FROM ${s}.queue_items WHERE queue = $1 AND admitted GROUP BY qkey`,
          [queue],
        );
        return r.rows.map((x) => [x.qkey, Number(x.n)]);
      }
      case 'queue':
        return { turn: Number(head.turn), starts: parseStartLog(head.starts) };
      case 'keys': {
        const r = await c.query<{ qkey: string; turn: string; starts: string }>(
          `SELECT qkey, turn, starts FROM ${s}.queue_keys WHERE queue = $1 AND waiting > 0 ` +
            'ORDER BY turn, qkey LIMIT $2',
          [queue, q.limit],
        );
        return r.rows.map((x) => ({
          key: x.qkey,
          turn: Number(x.turn),
          starts: parseStartLog(x.starts),
        }));
      }
      case 'items': {
        const r = await c.query<{ invocation_id: string }>(
          `SELECT invocation_id FROM ${s}.queue_items WHERE queue = $1 AND qkey = $2 AND NOT admitted ` +
            'ORDER BY priority DESC, n LIMIT $3',
          [queue, q.key, q.limit],
        );
        return r.rows.map((x) => x.invocation_id);
      }
      case 'start': {
        await c.query(
          `UPDATE ${s}.queue_keys SET waiting = greatest(waiting - 1, 0) WHERE queue = $1 AND qkey = $2`,
          [queue, q.key],
        );
        const r = await c.query<InvocationRecord>(
          `UPDATE ${s}.invocations SET status = 'running', owner = $1, modified_at = $2 ` +
            "WHERE id = $3 AND status = 'queued' RETURNING *",
          [req.owner ?? null, req.now, q.id],
        );
        if (r.rowCount === 0) {
          await c.query(`DELETE FROM ${s}.queue_items WHERE invocation_id = $1`, [q.id]);
          return undefined;
        }
        await c.query(`UPDATE ${s}.queue_items SET admitted = true WHERE invocation_id = $1`, [
          q.id,
        ]);
        // An out-of-line input is read now: the caller runs the row (see blobs.ts).
        return withPayloads(c, s, decodeInvocation(r.rows[0]!));
      }
      case 'empty':
        // Only while no item waits under the key: one filed since the items were read keeps it.
        await c.query(
          `UPDATE ${s}.queue_keys SET waiting = 0 WHERE queue = $1 AND qkey = $2 AND NOT EXISTS (` +
            `SELECT 1 FROM ${s}.queue_items WHERE queue = $1 AND qkey = $2 AND NOT admitted)`,
          [queue, q.key],
        );
        await c.query(
          `DELETE FROM ${s}.queue_keys WHERE queue = $1 AND qkey = $2 AND waiting = 0 AND starts = '[]'`,
          [queue, q.key],
        );
        return undefined;
      case 'saveKey': {
        // `waiting = 0` is checked again on a row a concurrent put updated: that row stays.
        if (q.starts.length === 0) {
          const gone = await c.query(
            `DELETE FROM ${s}.queue_keys WHERE queue = $1 AND qkey = $2 AND waiting = 0`,
            [queue, q.key],
          );
          if ((gone.rowCount ?? 0) > 0) return undefined;
        }
        await c.query(
          `UPDATE ${s}.queue_keys SET turn = $1, starts = $2 WHERE queue = $3 AND qkey = $4`,
          [q.turn, JSON.stringify(q.starts), queue, q.key],
        );
        return undefined;
      }
      case 'prune': {
        // Index queue_keys_idle (migration 15); see the query's comment in queue-plan.ts. The
        // newest start is the last of the newest slot (migration 16).
        const r = await c.query(
          `DELETE FROM ${s}.queue_keys AS k WHERE k.queue = $1 AND k.waiting = 0 AND k.qkey IN (` +
            `SELECT i.qkey FROM ${s}.queue_keys AS i WHERE i.queue = $1 AND i.waiting = 0 ` +
            'ORDER BY i.turn, i.qkey LIMIT $2) ' +
            // A start time of the previous versions' form (see parseStartLog) is its own last.
            "AND coalesce(k.starts::jsonb -> -1 ->> 1, k.starts::jsonb ->> -1, '0')::numeric <= $3",
          [queue, q.limit, q.before],
        );
        return r.rowCount ?? 0;
      }
      case 'anyWaiting': {
        const r = await c.query(
          `SELECT 1 FROM ${s}.queue_keys WHERE queue = $1 AND waiting > 0 LIMIT 1`,
          [queue],
        );
        return (r.rowCount ?? 0) > 0;
      }
      case 'saveQueue':
        await c.query(`UPDATE ${s}.queues SET turn = $1, starts = $2 WHERE queue = $3`, [
          q.turn,
          JSON.stringify(q.starts),
          queue,
        ]);
        return undefined;
    }
  });
  await c.query('COMMIT');
  return result;
}

/** See `Store.queueStats`. */
export async function queueStats(pool: pg.Pool, s: string, queue: string): Promise<QueueStats> {
  const r = await pool.query<{
    waiting: string;
    running: string;
    keys: string;
    oldest: string | null;
  }>(
    'SELECT ' +
      `(SELECT count(*) FROM ${s}.queue_items q JOIN ${s}.invocations i ON i.id = q.invocation_id ` +
      "  WHERE q.queue = $1 AND NOT q.admitted AND i.status = 'queued') AS waiting, " +
      `(SELECT count(*) FROM ${s}.queue_items q JOIN ${s}.invocations i ON i.id = q.invocation_id ` +
      `  WHERE q.queue = $1 AND q.admitted AND i.status NOT IN ${FINISHED}) AS running, ` +
      `(SELECT count(*) FROM ${s}.queue_keys WHERE queue = $1 AND waiting > 0) AS keys, ` +
      `(SELECT min(i.created_at) FROM ${s}.queue_items q JOIN ${s}.invocations i ON i.id = q.invocation_id ` +
      "  WHERE q.queue = $1 AND NOT q.admitted AND i.status = 'queued') AS oldest",
    [queue],
  );
  const row = r.rows[0]!;
  const out: QueueStats = {
    waiting: Number(row.waiting),
    running: Number(row.running),
    keys: Number(row.keys),
  };
  if (row.oldest !== null) out.oldestWaitingSince = Number(row.oldest);
  return out;
}
