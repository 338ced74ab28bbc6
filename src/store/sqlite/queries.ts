import type Database from 'better-sqlite3';
import type { JournalEntry } from '../../core/journal.js';
import { listInvocationsSql, SQLITE_ERROR_CODE } from '../list-sql.js';
import type { InvocationFilter, InvocationRow, KvRow, PromiseRow, TimerRow } from '../types.js';
import {
  type EncodedEntry,
  type InvocationRecord,
  type PromiseRecord,
  type TimerRecord,
  decodeEntry,
  decodeInvocation,
  decodePromise,
  decodeTimer,
  fromJson,
} from './codec.js';
import { BlobStatements } from './blob-ops.js';
import {
  decodeColumn,
  entryBlobBytes,
  LargePayload,
  missingBlob,
  withEntryBlob,
} from '../payloads.js';

/**
 * Must match the WHERE clause of the partial index `invocations_active` term for term:
 * SQLite only uses a partial index when the query repeats its condition.
 */
const ACTIVE = "status NOT IN ('completed', 'failed')";

const DEFAULT_LIST_LIMIT = 100;

interface KvRecord {
  value: string;
  version: number;
  expires_at: number | null;
}

function decodeKv(r: KvRecord): KvRow {
  const row: KvRow = { value: fromJson(r.value), version: r.version };
  if (r.expires_at !== null) row.expiresAt = r.expires_at;
  return row;
}

/** Prepared read statements. Reads run synchronously on the writer's connection. */
export class Queries {
  private readonly invocation: Database.Statement;
  private readonly byDedupe: Database.Statement;
  private readonly journal: Database.Statement;
  private readonly state: Database.Statement;
  private readonly stateKeys: Database.Statement;
  private readonly stateKeysOf: Database.Statement;
  private readonly stateKeysFirst: Database.Statement;
  private readonly runnable: Database.Statement;
  private readonly runnableOf: Database.Statement;
  private readonly keyHolders: Database.Statement;
  private readonly promise: Database.Statement;
  private readonly timers: Database.Statement;
  private readonly timersOf: Database.Statement;
  private readonly expiredIds: Database.Statement;
  private readonly lists = new Map<string, Database.Statement>();
  private readonly kv: Database.Statement;
  private readonly kvList: Database.Statement;
  private blobStatements?: BlobStatements;

  /** Blob reads (large payloads), prepared on first use. */
  private get blobs(): BlobStatements {
    return (this.blobStatements ??= new BlobStatements(this.db));
  }

  constructor(private readonly db: Database.Database) {
    this.invocation = db.prepare('SELECT * FROM invocations WHERE id = ?');
    this.kv = db.prepare('SELECT value, version, expires_at FROM kv WHERE scope = ? AND key = ?');
    // The prefix range is [prefix, prefix || U+FFFF): index-friendly, unlike LIKE with escapes.
    this.kvList = db.prepare(
      'SELECT key, value, version, expires_at FROM kv WHERE scope = ? AND key > ? AND key >= ? AND key < ? ' +
        'ORDER BY key LIMIT ?',
    );
    this.byDedupe = db.prepare('SELECT * FROM invocations WHERE dedupe = ?');
    this.journal = db.prepare(
      'SELECT idx, kind, name, done, data FROM journal WHERE invocation_id = ? ORDER BY idx',
    );
    this.state = db.prepare('SELECT value FROM state WHERE service = ? AND key = ? AND name = ?');
    this.stateKeys = db
      .prepare('SELECT name FROM state WHERE service = ? AND key = ? ORDER BY name')
      .pluck();
    // Through the primary key (service, key, name): one index range per page.
    this.stateKeysOf = db
      .prepare('SELECT DISTINCT key FROM state WHERE service = ? AND key > ? ORDER BY key LIMIT ?')
      .pluck();
    this.stateKeysFirst = db
      .prepare('SELECT DISTINCT key FROM state WHERE service = ? ORDER BY key LIMIT ?')
      .pluck();
    this.runnable = db.prepare(
      `SELECT * FROM invocations WHERE ${ACTIVE} AND status IN ('running', 'pending') ORDER BY seq`,
    );
    // Through invocations_owner (owner, seq): its condition is implied by these terms.
    this.runnableOf = db.prepare(
      `SELECT * FROM invocations WHERE ${ACTIVE} AND owner = ? AND status IN ('running', 'pending') ORDER BY seq`,
    );
    this.keyHolders = db.prepare(
      `SELECT id, service, key, status, seq FROM invocations WHERE ${ACTIVE} ` +
        // 'paused' too: the engine keeps a paused invocation's key held, like a suspended one.
        "AND status IN ('running', 'suspended', 'backing-off', 'paused', 'pending') AND exclusive = 1 AND key <> '' ORDER BY seq",
    );
    this.promise = db.prepare(
      'SELECT done, value, error FROM promises WHERE service = ? AND key = ? AND name = ?',
    );
    this.timers = db.prepare(
      'SELECT invocation_id, idx, fire_at FROM timers WHERE fire_at <= ? ORDER BY fire_at, invocation_id, idx LIMIT ?',
    );
    // The owner's timers: due ones in fire_at order, each checked against its invocation. Due
    // timers are few (they are deleted as they fire), so the scan stays short.
    this.timersOf = db.prepare(
      'SELECT t.invocation_id, t.idx, t.fire_at FROM timers AS t JOIN invocations AS i ON i.id = t.invocation_id ' +
        'WHERE t.fire_at <= ? AND i.owner = ? ORDER BY t.fire_at, t.invocation_id, t.idx LIMIT ?',
    );
    this.expiredIds = db
      .prepare(
        "SELECT id FROM invocations WHERE expires_at <= ? AND status IN ('completed', 'failed') ORDER BY expires_at LIMIT ?",
      )
      .pluck();
  }

  getInvocation(id: string): InvocationRow | undefined {
    const r = this.invocation.get(id) as InvocationRecord | undefined;
    return r && decodeInvocation(r, this.blobs.part);
  }

  findByDedupe(dedupe: string): InvocationRow | undefined {
    const r = this.byDedupe.get(dedupe) as InvocationRecord | undefined;
    return r && decodeInvocation(r, this.blobs.part);
  }

  getJournal(id: string): Array<[number, JournalEntry]> {
    const rows = this.journal.all(id) as Array<EncodedEntry & { idx: number }>;
    return rows.map((r) => {
      const entry = decodeEntry(r);
      if (entryBlobBytes(entry) === undefined) return [r.idx, entry];
      const blob = this.blobs.part(id, r.idx);
      if (blob === undefined) throw missingBlob(`journal entry ${r.idx} of invocation ${id}`);
      return [r.idx, withEntryBlob(entry, blob)];
    });
  }

  getState(service: string, key: string, name: string): unknown {
    const r = this.state.get(service, key, name) as { value: string | null } | undefined;
    if (r === undefined) return undefined;
    const value = decodeColumn(r.value);
    if (!(value instanceof LargePayload)) return value;
    const blob = this.blobs.stateValue(service, key, name);
    if (blob === undefined) throw missingBlob(`state "${name}" of ${service}/${key}`);
    return JSON.parse(blob);
  }

  getStateKeys(service: string, key: string): string[] {
    return this.stateKeys.all(service, key) as string[];
  }

  listStateKeys(service: string, options: { after?: string; limit?: number } = {}): string[] {
    const limit = options.limit ?? DEFAULT_LIST_LIMIT;
    // '' is a key like any other: without `after` the first page must include it.
    return (
      options.after === undefined
        ? this.stateKeysFirst.all(service, limit)
        : this.stateKeysOf.all(service, options.after, limit)
    ) as string[];
  }

  listRunnable(owner?: string): InvocationRow[] {
    const rows = owner === undefined ? this.runnable.all() : this.runnableOf.all(owner);
    return (rows as InvocationRecord[]).map((r) => decodeInvocation(r, this.blobs.part));
  }

  listKeyHolders(): Array<Pick<InvocationRow, 'id' | 'service' | 'key' | 'status' | 'seq'>> {
    return this.keyHolders.all() as Array<
      Pick<InvocationRow, 'id' | 'service' | 'key' | 'status' | 'seq'>
    >;
  }

  dueTimers(before: number, limit: number, owner?: string): TimerRow[] {
    const rows =
      owner === undefined
        ? this.timers.all(before, limit)
        : this.timersOf.all(before, owner, limit);
    return (rows as TimerRecord[]).map(decodeTimer);
  }

  expired(now: number, limit: number): string[] {
    return this.expiredIds.all(now, limit) as string[];
  }

  getPromise(service: string, key: string, name: string): PromiseRow | undefined {
    const r = this.promise.get(service, key, name) as PromiseRecord | undefined;
    return r && decodePromise(r);
  }

  getKv(scope: string, key: string): KvRow | undefined {
    const r = this.kv.get(scope, key) as KvRecord | undefined;
    return r && decodeKv(r);
  }

  listKv(
    scope: string,
    options: { prefix?: string; after?: string; limit?: number } = {},
  ): Array<KvRow & { key: string }> {
    const prefix = options.prefix ?? '';
    const rows = this.kvList.all(
      scope,
      options.after ?? '',
      prefix,
      prefix + '\uffff',
      options.limit ?? DEFAULT_LIST_LIMIT,
    ) as Array<KvRecord & { key: string }>;
    return rows.map((r) => ({ key: r.key, ...decodeKv(r) }));
  }

  listInvocations(filter: InvocationFilter): InvocationRow[] {
    const params: Array<string | number> = [];
    const sql = listInvocationsSql(filter, filter.limit ?? DEFAULT_LIST_LIMIT, {
      table: 'invocations',
      param: (v) => (params.push(v), '?'),
      errorCode: SQLITE_ERROR_CODE,
    });
    let stmt = this.lists.get(sql);
    if (stmt === undefined) {
      stmt = this.db.prepare(sql);
      this.lists.set(sql, stmt);
    }
    // No blobs: a list shows an out-of-line input or output as a LargePayload (its size).
    return (stmt.all(params) as InvocationRecord[]).map((r) => decodeInvocation(r));
  }
}
