import type Database from 'better-sqlite3';
import { recordEvent, windowRoom } from '../../core/sliding-window.js';
import {
  liveStarts,
  parseStartLog,
  rateRule,
  runSync,
  type QueueQuery,
  type StartSlots,
} from '../queue-plan.js';
import type { QueueAdmit, QueueAdmitResult, QueueStats } from '../types.js';
import { decodeInvocation, type InvocationRecord } from './codec.js';
import { BlobStatements } from './blob-ops.js';

const FINISHED = "('completed', 'failed')";

/** Idle key rows (nothing waiting) looked at per fast-path start for ones that can go. */
const PRUNE_PER_START = 4;

/** A stored start log without the slots that left the rate's window (empty without a rate). */
function startsIn(stored: string | undefined, rate: QueueAdmit['rate'], now: number): StartSlots {
  if (!rate || stored === undefined) return [];
  return liveStarts(parseStartLog(stored), rate, now);
}

/** The statements of flow-control queues (migration 12), prepared on first use. */
export class QueueStatements {
  private readonly seqOfQueued: Database.Statement;
  private readonly putItem: Database.Statement;
  private readonly countWaiting: Database.Statement;
  private readonly forgetFinished: Database.Statement;
  private readonly activeByKey: Database.Statement;
  private readonly queueRow: Database.Statement;
  private readonly keys: Database.Statement;
  private readonly items: Database.Statement;
  private readonly startInvocation: Database.Statement;
  private readonly invocation: Database.Statement;
  private readonly admitItem: Database.Statement;
  private readonly dropItem: Database.Statement;
  private readonly uncount: Database.Statement;
  private readonly empty: Database.Statement;
  private readonly dropIdle: Database.Statement;
  private readonly dropUnlogged: Database.Statement;
  private readonly prune: Database.Statement;
  private readonly saveKey: Database.Statement;
  private readonly saveQueue: Database.Statement;
  private readonly stats: Database.Statement;
  private readonly anyWaiting: Database.Statement;
  private readonly countAdmitted: Database.Statement;
  private readonly countAdmittedKey: Database.Statement;
  private readonly keyRow: Database.Statement;
  private readonly putAdmitted: Database.Statement;
  private readonly stampKey: Database.Statement;
  /** Large payloads (migration 13): a started row's out-of-line input. */
  private readonly blobs: BlobStatements;

  constructor(db: Database.Database) {
    this.blobs = new BlobStatements(db);
    this.seqOfQueued = db.prepare("SELECT seq FROM invocations WHERE id = ? AND status = 'queued'");
    this.putItem = db.prepare(
      'INSERT OR IGNORE INTO queue_items (invocation_id, queue, qkey, priority, n) VALUES (?, ?, ?, ?, ?)',
    );
    // A key that had nothing waiting (a new one, or one whose row was deleted when it had
    // nothing left to count) joins the back of the round: the queue's current turn.
    this.countWaiting = db.prepare(
      'INSERT INTO queue_keys (queue, qkey, waiting, turn) ' +
        'VALUES (?, ?, 1, coalesce((SELECT turn FROM queues WHERE queue = ?), 0)) ' +
        'ON CONFLICT (queue, qkey) DO UPDATE SET waiting = waiting + 1, ' +
        'turn = CASE WHEN waiting = 0 THEN max(turn, excluded.turn) ELSE turn END',
    );
    this.forgetFinished = db.prepare(
      'DELETE FROM queue_items WHERE queue = ? AND admitted = 1 AND NOT EXISTS (' +
        `SELECT 1 FROM invocations i WHERE i.id = queue_items.invocation_id AND i.status NOT IN ${FINISHED})`,
    );
    this.activeByKey = db.prepare(
      'SELECT qkey, count(*) AS n FROM queue_items WHERE queue = ? AND admitted = 1 GROUP BY qkey',
    );
    this.queueRow = db.prepare('SELECT turn, starts FROM queues WHERE queue = ?');
    this.keys = db.prepare(
      'SELECT qkey, turn, starts FROM queue_keys WHERE queue = ? AND waiting > 0 ORDER BY turn, qkey LIMIT ?',
    );
    this.items = db.prepare(
      'SELECT invocation_id FROM queue_items WHERE queue = ? AND qkey = ? AND admitted = 0 ' +
        'ORDER BY priority DESC, n LIMIT ?',
    );
    this.startInvocation = db.prepare(
      "UPDATE invocations SET status = 'running', owner = ?, modified_at = ? WHERE id = ? AND status = 'queued'",
    );
    this.invocation = db.prepare('SELECT * FROM invocations WHERE id = ?');
    this.admitItem = db.prepare('UPDATE queue_items SET admitted = 1 WHERE invocation_id = ?');
    this.dropItem = db.prepare('DELETE FROM queue_items WHERE invocation_id = ?');
    this.uncount = db.prepare(
      'UPDATE queue_keys SET waiting = max(waiting - 1, 0) WHERE queue = ? AND qkey = ?',
    );
    // Only while no item waits under the key: one filed since the items were read keeps it.
    this.empty = db.prepare(
      'UPDATE queue_keys SET waiting = 0 WHERE queue = ? AND qkey = ? AND NOT EXISTS (' +
        'SELECT 1 FROM queue_items WHERE queue = ? AND qkey = ? AND admitted = 0)',
    );
    this.dropIdle = db.prepare(
      'DELETE FROM queue_keys WHERE queue = ? AND qkey = ? AND waiting = 0',
    );
    this.dropUnlogged = db.prepare(
      "DELETE FROM queue_keys WHERE queue = ? AND qkey = ? AND waiting = 0 AND starts = '[]'",
    );
    // The idle rows served longest ago (index queue_keys_idle, migration 15) whose newest start
    // (the last of the newest slot, migration 16) is out of the per-key rate's window: a key's
    // turn and start log are written together, so the oldest turns hold the oldest starts.
    this.prune = db.prepare(
      'DELETE FROM queue_keys WHERE queue = ? AND waiting = 0 AND qkey IN (' +
        'SELECT qkey FROM queue_keys WHERE queue = ? AND waiting = 0 ORDER BY turn, qkey LIMIT ?) ' +
        // A start time of the previous versions' form (see parseStartLog) is its own last.
        "AND coalesce(json_extract(starts, '$[#-1][1]'), json_extract(starts, '$[#-1]'), 0) <= ?",
    );
    this.saveKey = db.prepare(
      'UPDATE queue_keys SET turn = ?, starts = ? WHERE queue = ? AND qkey = ?',
    );
    this.saveQueue = db.prepare(
      'INSERT INTO queues (queue, turn, starts) VALUES (?, ?, ?) ' +
        'ON CONFLICT (queue) DO UPDATE SET turn = excluded.turn, starts = excluded.starts',
    );
    this.anyWaiting = db.prepare(
      'SELECT 1 FROM queue_keys WHERE queue = ? AND waiting > 0 LIMIT 1',
    );
    this.countAdmitted = db.prepare(
      'SELECT count(*) FROM queue_items WHERE queue = ? AND admitted = 1',
    );
    this.countAdmittedKey = db.prepare(
      'SELECT count(*) FROM queue_items WHERE queue = ? AND qkey = ? AND admitted = 1',
    );
    this.keyRow = db.prepare('SELECT starts FROM queue_keys WHERE queue = ? AND qkey = ?');
    this.putAdmitted = db.prepare(
      'INSERT INTO queue_items (invocation_id, queue, qkey, priority, n, admitted) VALUES (?, ?, ?, ?, ?, 1)',
    );
    this.stampKey = db.prepare(
      'INSERT INTO queue_keys (queue, qkey, waiting, turn, starts) VALUES (?, ?, 0, ?, ?) ' +
        'ON CONFLICT (queue, qkey) DO UPDATE SET turn = excluded.turn, starts = excluded.starts',
    );
    this.stats = db.prepare(
      'SELECT ' +
        '(SELECT count(*) FROM queue_items q JOIN invocations i ON i.id = q.invocation_id ' +
        "  WHERE q.queue = @q AND q.admitted = 0 AND i.status = 'queued') AS waiting, " +
        '(SELECT count(*) FROM queue_items q JOIN invocations i ON i.id = q.invocation_id ' +
        `  WHERE q.queue = @q AND q.admitted = 1 AND i.status NOT IN ${FINISHED}) AS running, ` +
        '(SELECT count(*) FROM queue_keys WHERE queue = @q AND waiting > 0) AS keys, ' +
        '(SELECT min(i.created_at) FROM queue_items q JOIN invocations i ON i.id = q.invocation_id ' +
        "  WHERE q.queue = @q AND q.admitted = 0 AND i.status = 'queued') AS oldest",
    );
  }

  /** `queue.put`: only for a `queued` invocation of this write (a dedupe conflict inserted none). */
  put(
    id: string,
    queue: string,
    key: string,
    priority: number,
    admit: Omit<QueueAdmit, 'queue' | 'max'> | undefined,
  ): { admitted: boolean } {
    const seq = this.seqOfQueued.pluck().get(id) as number | undefined;
    if (seq === undefined) return { admitted: false };
    if (admit && this.admitNow(id, queue, key, priority, seq, admit)) return { admitted: true };
    if (this.putItem.run(id, queue, key, priority, seq).changes > 0)
      this.countWaiting.run(queue, key, queue);
    return { admitted: false };
  }

  /**
   * The fast path of a queue that is not full: nothing waits (so no one is passed over) and
   * every limit allows one more start. The same counts and start logs as `admit` keeps.
   */
  private admitNow(
    id: string,
    queue: string,
    key: string,
    priority: number,
    seq: number,
    req: Omit<QueueAdmit, 'queue' | 'max'>,
  ): boolean {
    if (this.anyWaiting.get(queue) !== undefined) return false;
    // Admitted items include finished ones not forgotten yet: below the limit with them, the
    // queue is below it for sure; only at the limit are they forgotten and counted again. So
    // the forgetting (one lookup per item) is paid about once per `concurrency` starts.
    const full = (): boolean =>
      (req.concurrency !== undefined &&
        (this.countAdmitted.pluck().get(queue) as number) >= req.concurrency) ||
      (req.keyConcurrency !== undefined &&
        (this.countAdmittedKey.pluck().get(queue, key) as number) >= req.keyConcurrency);
    if (full()) {
      this.forgetFinished.run(queue);
      if (full()) return false;
    }
    const head = this.queueRow.get(queue) as { turn: number; starts: string } | undefined;
    let qStarts = startsIn(head?.starts, req.rate, req.now);
    if (req.rate && windowRoom(qStarts, rateRule(req.rate)) <= 0) return false;
    let kStarts = req.keyRate
      ? startsIn(this.keyRow.pluck().get(queue, key) as string | undefined, req.keyRate, req.now)
      : [];
    if (req.keyRate && windowRoom(kStarts, rateRule(req.keyRate)) <= 0) return false;
    if (this.startInvocation.run(req.owner ?? null, req.now, id).changes === 0) return false;
    this.putAdmitted.run(id, queue, key, priority, seq);
    if (req.rate) qStarts = recordEvent(qStarts, req.now, rateRule(req.rate));
    if (req.keyRate) kStarts = recordEvent(kStarts, req.now, rateRule(req.keyRate));
    const turn = (head?.turn ?? 0) + 1;
    // Nothing waits under the key: its row is only needed for a per-key rate's start log (it
    // comes back at the queue's turn when an item waits again, as it would be stamped now).
    if (req.keyRate) this.stampKey.run(queue, key, turn, JSON.stringify(kStarts));
    else this.dropIdle.run(queue, key);
    this.saveQueue.run(queue, turn, JSON.stringify(qStarts));
    this.pruneIdle(queue, req, PRUNE_PER_START);
    return true;
  }

  /** `queue.admit`: the plan of queue-plan.ts against this connection, inside the batch. */
  admit(req: QueueAdmit): QueueAdmitResult {
    const { queue } = req;
    const owner = req.owner ?? null;
    return runSync(req, (q: QueueQuery): unknown => {
      switch (q.q) {
        case 'active':
          this.forgetFinished.run(queue);
          return (this.activeByKey.all(queue) as Array<{ qkey: string; n: number }>).map((r) => [
            r.qkey,
            r.n,
          ]);
        case 'queue': {
          const r = this.queueRow.get(queue) as { turn: number; starts: string } | undefined;
          return r ? { turn: r.turn, starts: parseStartLog(r.starts) } : { turn: 0, starts: [] };
        }
        case 'keys':
          return (
            this.keys.all(queue, q.limit) as Array<{ qkey: string; turn: number; starts: string }>
          ).map((r) => ({ key: r.qkey, turn: r.turn, starts: parseStartLog(r.starts) }));
        case 'items':
          return this.items.pluck().all(queue, q.key, q.limit);
        case 'start': {
          this.uncount.run(queue, q.key);
          if (this.startInvocation.run(owner, req.now, q.id).changes === 0) {
            this.dropItem.run(q.id);
            return undefined;
          }
          this.admitItem.run(q.id);
          // With an out-of-line input read: the caller runs the row.
          return decodeInvocation(this.invocation.get(q.id) as InvocationRecord, this.blobs.part);
        }
        case 'empty':
          this.empty.run(queue, q.key, queue, q.key);
          this.dropUnlogged.run(queue, q.key);
          return undefined;
        case 'saveKey':
          if (q.starts.length === 0 && this.dropIdle.run(queue, q.key).changes > 0)
            return undefined;
          this.saveKey.run(q.turn, JSON.stringify(q.starts), queue, q.key);
          return undefined;
        case 'prune':
          return this.prune.run(queue, queue, q.limit, q.before).changes;
        case 'saveQueue':
          this.saveQueue.run(queue, q.turn, JSON.stringify(q.starts));
          return undefined;
        case 'anyWaiting':
          return this.anyWaiting.get(queue) !== undefined;
      }
    });
  }

  /**
   * Deletes up to `limit` idle key rows of `queue` that no limit of `req` counts any more (see
   * the `prune` statement): a start adds at most one idle row, so a few per start keep them to
   * the keys started within the per-key rate's period.
   */
  private pruneIdle(queue: string, req: Omit<QueueAdmit, 'queue' | 'max'>, limit: number): void {
    this.prune.run(queue, queue, limit, req.now - (req.keyRate?.periodMs ?? 0));
  }

  /** See `Store.queueStats`. */
  statsOf(queue: string): QueueStats {
    const r = this.stats.get({ q: queue }) as {
      waiting: number;
      running: number;
      keys: number;
      oldest: number | null;
    };
    const out: QueueStats = { waiting: r.waiting, running: r.running, keys: r.keys };
    if (r.oldest !== null) out.oldestWaitingSince = r.oldest;
    return out;
  }
}
