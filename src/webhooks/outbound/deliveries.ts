/**
 * The delivery log and dead-letter queue: one record per delivery in the key-value space (scope
 * `keel.webhooks.deliveries`, key `{endpointId}/{sortKey}`, newest first), holding every attempt
 * and the body. Each record expires `retention` after its last write (7 days by default), so a
 * dead-lettered delivery can be retried for a week and the log cleans itself.
 *
 * A record is written by the invocation that runs the delivery, once per attempt and never
 * concurrently: automatic attempts run in one invocation, and a manual retry is refused while
 * the delivery is pending. The write rides in the commit of the attempt's journal entry, so the
 * log never shows an attempt whose result is not durable, and costs no store write of its own.
 */
import { ValidationError } from '../../core/errors.js';
import type { StepWrite } from '../../core/replay.js';
import type { Clock } from '../../engine/clock.js';
import type { KvRow, Store } from '../../store/types.js';
import { parseDeliveryId, sortKeyBound } from './ids.js';
import { SCOPES, type DeliveryRecord, type DeliveryStatus } from './types.js';

export interface StoredDelivery {
  record: DeliveryRecord;
  version: number;
}

/** A page of the log. */
export interface DeliveryPage {
  deliveries: Array<Omit<DeliveryRecord, 'body'>>;
  /** Pass as `cursor` for the next (older) page. */
  next_cursor?: string;
}

const PAGE = 200;
/** Records read at most per list request when filtering by status, so a request stays bounded. */
const SCAN_BUDGET = 5_000;

export class DeliveryLog {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly retentionMs: number,
  ) {}

  /**
   * The write of a record, for the commit of the attempt step that made it (`runWithWrites`):
   * the record is durable exactly when the attempt's journaled result is. Its retention runs
   * from now, or from its next attempt when later.
   */
  putOp(record: DeliveryRecord): StepWrite {
    const ids = parseDeliveryId(record.id)!;
    const now = this.clock.now();
    const next = record.next_attempt_at ? Date.parse(record.next_attempt_at) : now;
    const expiresAt = Math.max(now, next) + this.retentionMs;
    record.updated_at = new Date(now).toISOString();
    record.expires_at = new Date(expiresAt).toISOString();
    return { op: 'kv.put', scope: SCOPES.deliveries, key: ids.logKey, value: record, expiresAt };
  }

  async get(deliveryId: string): Promise<StoredDelivery | undefined> {
    const ids = parseDeliveryId(deliveryId);
    if (!ids) return undefined;
    const row = await this.store.getKv(SCOPES.deliveries, ids.logKey);
    // Expired records stay in the store until the engine's next purge; they are gone to us.
    if (!row || this.expired(row, this.clock.now())) return undefined;
    return { record: row.value as DeliveryRecord, version: row.version };
  }

  /**
   * Dead-lettered deliveries in the log, of every endpoint, reading at most `scanLimit` records
   * (beyond, the count is a lower bound). Expired records do not count: they are gone to `get`.
   */
  async countFailed(scanLimit: number): Promise<number> {
    let n = 0;
    let read = 0;
    let after: string | undefined;
    while (read < scanLimit) {
      const rows = await this.store.listKv(SCOPES.deliveries, {
        limit: PAGE,
        ...(after === undefined ? {} : { after }),
      });
      const now = this.clock.now();
      for (const row of rows)
        if ((row.value as DeliveryRecord).status === 'failed' && !this.expired(row, now)) n++;
      read += rows.length;
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1]!.key;
    }
    return n;
  }

  /** Whether a record outlived its retention (it stays in the store until the next sweep). */
  private expired(row: KvRow, now: number): boolean {
    return row.expiresAt !== undefined && row.expiresAt <= now;
  }

  /** An endpoint's deliveries, newest first, optionally only those with `status`. */
  async list(
    endpointId: string,
    options: { status?: DeliveryStatus; limit?: number; cursor?: string },
  ): Promise<DeliveryPage> {
    const limit = options.limit ?? 50;
    const prefix = `${endpointId}/`;
    if (options.cursor !== undefined && !options.cursor.startsWith(prefix))
      throw new ValidationError(
        `cursor "${options.cursor}" is not valid here: pass the next_cursor of a previous page of this endpoint`,
      );
    const out: DeliveryPage['deliveries'] = [];
    let after = options.cursor;
    let scanned = 0;
    for (;;) {
      // One more than the page when not filtering: its presence says there is a next page.
      const ask = options.status ? PAGE : limit + 1 - out.length;
      const rows = await this.store.listKv(SCOPES.deliveries, {
        prefix,
        limit: ask,
        ...(after !== undefined ? { after } : {}),
      });
      const now = this.clock.now();
      for (const row of rows) {
        scanned++;
        const r = row.value as DeliveryRecord;
        if (this.expired(row, now)) {
          // Gone to `get` already: listed, it would be a link to a 404. Purged at the next sweep.
        } else if (!options.status || r.status === options.status) {
          if (out.length === limit) return { deliveries: out, next_cursor: after! };
          out.push(summary(r));
        }
        after = row.key;
      }
      if (rows.length < ask) return { deliveries: out };
      if (scanned >= SCAN_BUDGET) return { deliveries: out, next_cursor: after! };
    }
  }

  /** The failed (dead-lettered) deliveries of an endpoint created at or after `since`. */
  async *failedSince(endpointId: string, since: number): AsyncGenerator<StoredDelivery> {
    const prefix = `${endpointId}/`;
    const bound = prefix + sortKeyBound(since);
    let after: string | undefined;
    for (;;) {
      const rows = await this.store.listKv(SCOPES.deliveries, {
        prefix,
        limit: PAGE,
        ...(after !== undefined ? { after } : {}),
      });
      const now = this.clock.now();
      for (const row of rows) {
        // Keys sort newest first: past the bound, everything is older than `since`.
        if (row.key.slice(0, bound.length) > bound) return;
        const record = row.value as DeliveryRecord;
        // An expired record is not replayed: its retention ended, as `get` says.
        if (record.status === 'failed' && !this.expired(row, now))
          yield { record, version: row.version };
      }
      if (rows.length < PAGE) return;
      after = rows[rows.length - 1]!.key;
    }
  }
}

/** A record without its body, as lists show it. */
export function summary(r: DeliveryRecord): Omit<DeliveryRecord, 'body'> {
  const { body: _body, ...rest } = r;
  return rest;
}
