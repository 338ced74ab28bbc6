import type pg from 'pg';
import type { JournalEntry } from '../../core/journal.js';
import { fromJson } from '../json.js';
import { listInvocationsSql, POSTGRES_ERROR_CODE } from '../list-sql.js';
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
} from './codec.js';
import {
  entryBlobBytes,
  INPUT_PART,
  LargePayload,
  markerBytes,
  missingBlob,
  OUTPUT_PART,
  withEntryBlob,
} from '../payloads.js';

/**
 * A row read with its out-of-line input and output (see `invocations` in the constructor): a
 * marker left without its blob means the database was changed outside Keel.
 */
function decodeFull(r: InvocationRecord): InvocationRow {
  const row = decodeInvocation(r);
  if (row.input instanceof LargePayload) throw missingBlob(`the input of invocation ${r.id}`);
  if (row.output instanceof LargePayload) throw missingBlob(`the output of invocation ${r.id}`);
  return row;
}

/** Must match the WHERE clause of the partial index `invocations_active` for the planner to use it. */
const ACTIVE = "status NOT IN ('completed', 'failed')";

const DEFAULT_LIST_LIMIT = 100;

interface KvRecord {
  value: string;
  version: number;
  expires_at: string | number | null;
}

function decodeKv(r: KvRecord): KvRow {
  const row: KvRow = { value: fromJson(r.value), version: r.version };
  if (r.expires_at !== null) row.expiresAt = Number(r.expires_at);
  return row;
}

type KeyHolder = Pick<InvocationRow, 'id' | 'service' | 'key' | 'status' | 'seq'>;

/**
 * Reads, as named prepared statements on the pool: each connection parses and plans a statement
 * once. Reads see every committed write; a write whose `write()` has not resolved yet may or may
 * not be visible.
 */
export class Queries {
  private readonly sql: Record<
    | 'invocation'
    | 'byDedupe'
    | 'journal'
    | 'state'
    | 'stateKeys'
    | 'stateKeysOf'
    | 'stateKeysFirst'
    | 'runnable'
    | 'runnableOf'
    | 'keyHolders'
    | 'promise'
    | 'timers'
    | 'timersOf'
    | 'expired'
    | 'kv'
    | 'kvList'
    | 'payloads',
    pg.QueryConfig
  >;
  private readonly lists = new Map<string, string>();

  constructor(
    private readonly pool: pg.Pool,
    private readonly s: string,
    /** Prefix of prepared statement names: unique per schema, since pools may share a server. */
    private readonly prefix: string,
  ) {
    const q = (name: string, text: string): pg.QueryConfig => ({ name: `${prefix}${name}`, text });
    // Rows that are run (not listed) come with their out-of-line input and output (migration
    // 13), read in the same statement, so in the same snapshot as the row.
    const blob = (column: string, part: number) =>
      `CASE WHEN left(i.${column}, 6) = '@blob:' THEN (SELECT b.data FROM ${s}.invocation_blobs AS b ` +
      `WHERE b.invocation_id = i.id AND b.part = ${part}) END AS ${column}_blob`;
    const invocations = `SELECT i.*, ${blob('input', INPUT_PART)}, ${blob('output', OUTPUT_PART)} FROM ${s}.invocations AS i`;
    this.sql = {
      invocation: q('inv', `${invocations} WHERE id = $1`),
      kv: q('kv', `SELECT value, version, expires_at FROM ${s}.kv WHERE scope = $1 AND key = $2`),
      // The prefix range is [prefix, prefix || U+FFFF): index-friendly, unlike LIKE with escapes.
      kvList: q(
        'kvlist',
        `SELECT key, value, version, expires_at FROM ${s}.kv ` +
          'WHERE scope = $1 AND key > $2 AND key >= $3 AND key < $4 ORDER BY key LIMIT $5',
      ),
      byDedupe: q('dedupe', `${invocations} WHERE dedupe = $1`),
      // An entry stored out of line has a short data holding "$blob" (see store/payloads.ts).
      journal: q(
        'journal',
        `SELECT j.idx, j.kind, j.name, j.done, j.data, CASE WHEN octet_length(j.data) <= 64 ` +
          `AND position('"$blob":' IN j.data) > 0 THEN (SELECT b.data FROM ${s}.invocation_blobs AS b ` +
          'WHERE b.invocation_id = j.invocation_id AND b.part = j.idx) END AS blob ' +
          `FROM ${s}.journal AS j WHERE j.invocation_id = $1 ORDER BY j.idx`,
      ),
      state: q(
        'state',
        `SELECT st.value, CASE WHEN left(st.value, 6) = '@blob:' THEN (SELECT b.data FROM ${s}.state_blobs AS b ` +
          'WHERE b.service = st.service AND b.key = st.key AND b.name = st.name) END AS blob ' +
          `FROM ${s}.state AS st WHERE st.service = $1 AND st.key = $2 AND st.name = $3`,
      ),
      payloads: q(
        'payloads',
        `SELECT part, data FROM ${s}.invocation_blobs WHERE invocation_id = $1 AND part IN (${INPUT_PART}, ${OUTPUT_PART})`,
      ),
      stateKeys: q(
        'state_keys',
        `SELECT name FROM ${s}.state WHERE service = $1 AND key = $2 ORDER BY name`,
      ),
      // Through the primary key (service, key, name): one index range per page.
      stateKeysFirst: q(
        'state_keys_first',
        `SELECT DISTINCT key FROM ${s}.state WHERE service = $1 ORDER BY key LIMIT $2`,
      ),
      stateKeysOf: q(
        'state_keys_of',
        `SELECT DISTINCT key FROM ${s}.state WHERE service = $1 AND key > $2 ORDER BY key LIMIT $3`,
      ),
      runnable: q(
        'runnable',
        `${invocations} WHERE ${ACTIVE} AND status IN ('running', 'pending') ORDER BY seq`,
      ),
      // Read every second by each process's sweep, so its cost must follow what runs, not what
      // waits: through invocations_active's ranges of 'running' and 'pending', with the owner as
      // a filter. `IS NOT DISTINCT FROM` (equal here, since $1 is never NULL) cannot be an
      // index condition, which keeps the planner off invocations_owner (owner, seq): that one
      // holds every unfinished row of the owner, suspended and scheduled ones too, and the
      // planner took it with stale statistics, reading 170,000 entries (130-490 ms) per sweep
      // with 50,000 sleeping workflows.
      runnableOf: q(
        'runnable_of',
        `${invocations} WHERE ${ACTIVE} AND status IN ('running', 'pending') AND owner IS NOT DISTINCT FROM $1 ORDER BY seq`,
      ),
      keyHolders: q(
        'key_holders',
        `SELECT id, service, key, status, seq FROM ${s}.invocations WHERE ${ACTIVE} ` +
          // 'paused' too: the engine keeps a paused invocation's key held, like a suspended one.
          "AND status IN ('running', 'suspended', 'backing-off', 'paused', 'pending') AND exclusive AND key <> '' ORDER BY seq",
      ),
      promise: q(
        'promise',
        `SELECT done, value, error FROM ${s}.promises WHERE service = $1 AND key = $2 AND name = $3`,
      ),
      timers: q(
        'timers',
        `SELECT invocation_id, idx, fire_at FROM ${s}.timers WHERE fire_at <= $1 ORDER BY fire_at, invocation_id, idx LIMIT $2`,
      ),
      // Due timers in fire_at order, each checked against its invocation's owner.
      timersOf: q(
        'timers_of',
        `SELECT t.invocation_id, t.idx, t.fire_at FROM ${s}.timers AS t JOIN ${s}.invocations AS i ON i.id = t.invocation_id ` +
          'WHERE t.fire_at <= $1 AND i.owner = $2 ORDER BY t.fire_at, t.invocation_id, t.idx LIMIT $3',
      ),
      expired: q(
        'expired',
        `SELECT id FROM ${s}.invocations WHERE expires_at <= $1 AND status IN ('completed', 'failed') ORDER BY expires_at LIMIT $2`,
      ),
    };
  }

  private async rows<R extends pg.QueryResultRow>(
    config: pg.QueryConfig,
    values: unknown[],
  ): Promise<R[]> {
    const res = await this.pool.query<R>({ ...config, values });
    return res.rows;
  }

  async getInvocation(id: string): Promise<InvocationRow | undefined> {
    const [r] = await this.rows<InvocationRecord>(this.sql.invocation, [id]);
    return r && decodeFull(r);
  }

  async findByDedupe(dedupe: string): Promise<InvocationRow | undefined> {
    const [r] = await this.rows<InvocationRecord>(this.sql.byDedupe, [dedupe]);
    return r && decodeFull(r);
  }

  async getJournal(id: string): Promise<Array<[number, JournalEntry]>> {
    const rows = await this.rows<EncodedEntry & { idx: number; blob: string | null }>(
      this.sql.journal,
      [id],
    );
    return rows.map((r) => {
      const entry = decodeEntry(r);
      if (entryBlobBytes(entry) === undefined) return [r.idx, entry];
      if (r.blob === null) throw missingBlob(`journal entry ${r.idx} of invocation ${id}`);
      return [r.idx, withEntryBlob(entry, r.blob)];
    });
  }

  async getState(service: string, key: string, name: string): Promise<unknown> {
    const [r] = await this.rows<{ value: string | null; blob: string | null }>(this.sql.state, [
      service,
      key,
      name,
    ]);
    if (r === undefined) return undefined;
    if (markerBytes(r.value) === undefined) return fromJson(r.value);
    if (r.blob === null) throw missingBlob(`state "${name}" of ${service}/${key}`);
    return JSON.parse(r.blob);
  }

  /** The out-of-line input and output of invocation `id` (undefined: none, or in line). */
  async payloads(id: string): Promise<{ input?: unknown; output?: unknown }> {
    const rows = await this.rows<{ part: number; data: string }>(this.sql.payloads, [id]);
    const out: { input?: unknown; output?: unknown } = {};
    for (const r of rows) {
      if (r.part === INPUT_PART) out.input = JSON.parse(r.data);
      else out.output = JSON.parse(r.data);
    }
    return out;
  }

  async getStateKeys(service: string, key: string): Promise<string[]> {
    const rows = await this.rows<{ name: string }>(this.sql.stateKeys, [service, key]);
    return rows.map((r) => r.name);
  }

  async listStateKeys(
    service: string,
    options: { after?: string; limit?: number } = {},
  ): Promise<string[]> {
    const limit = options.limit ?? 100;
    // '' is a key like any other: without `after` the first page must include it.
    const rows =
      options.after === undefined
        ? await this.rows<{ key: string }>(this.sql.stateKeysFirst, [service, limit])
        : await this.rows<{ key: string }>(this.sql.stateKeysOf, [service, options.after, limit]);
    return rows.map((r) => r.key);
  }

  async listRunnable(owner?: string): Promise<InvocationRow[]> {
    const rows =
      owner === undefined
        ? await this.rows<InvocationRecord>(this.sql.runnable, [])
        : await this.rows<InvocationRecord>(this.sql.runnableOf, [owner]);
    return rows.map(decodeFull);
  }

  async listKeyHolders(): Promise<KeyHolder[]> {
    const rows = await this.rows<KeyHolder>(this.sql.keyHolders, []);
    return rows.map((r) => ({
      id: r.id,
      service: r.service,
      key: r.key,
      status: r.status,
      seq: Number(r.seq),
    }));
  }

  async dueTimers(before: number, limit: number, owner?: string): Promise<TimerRow[]> {
    const rows =
      owner === undefined
        ? await this.rows<TimerRecord>(this.sql.timers, [before, limit])
        : await this.rows<TimerRecord>(this.sql.timersOf, [before, owner, limit]);
    return rows.map(decodeTimer);
  }

  async expired(now: number, limit: number): Promise<string[]> {
    return (await this.rows<{ id: string }>(this.sql.expired, [now, limit])).map((r) => r.id);
  }

  async getPromise(service: string, key: string, name: string): Promise<PromiseRow | undefined> {
    const [r] = await this.rows<PromiseRecord>(this.sql.promise, [service, key, name]);
    return r && decodePromise(r);
  }

  async getKv(scope: string, key: string): Promise<KvRow | undefined> {
    const [r] = await this.rows<KvRecord>(this.sql.kv, [scope, key]);
    return r && decodeKv(r);
  }

  async listKv(
    scope: string,
    options: { prefix?: string; after?: string; limit?: number } = {},
  ): Promise<Array<KvRow & { key: string }>> {
    const prefix = options.prefix ?? '';
    const rows = await this.rows<KvRecord & { key: string }>(this.sql.kvList, [
      scope,
      options.after ?? '',
      prefix,
      prefix + '\uffff',
      options.limit ?? DEFAULT_LIST_LIMIT,
    ]);
    return rows.map((r) => ({ key: r.key, ...decodeKv(r) }));
  }

  async listInvocations(filter: InvocationFilter): Promise<InvocationRow[]> {
    const values: Array<string | number> = [];
    const text = listInvocationsSql(filter, filter.limit ?? DEFAULT_LIST_LIMIT, {
      table: `${this.s}.invocations`,
      param: (v) => `$${values.push(v)}`,
      errorCode: POSTGRES_ERROR_CODE,
    });
    // One prepared statement per shape of filter (which fields are set, how many statuses).
    let name = this.lists.get(text);
    if (name === undefined) {
      name = `${this.prefix}list${this.lists.size}`;
      this.lists.set(text, name);
    }
    return (await this.rows<InvocationRecord>({ name, text }, values)).map(decodeInvocation);
  }
}
