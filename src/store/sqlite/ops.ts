import type Database from 'better-sqlite3';
import type { ErrorInfo } from '../../core/errors.js';
import { StoreError } from '../errors.js';
import { encodeMessage, keepStartedAt } from '../json.js';
import type { ClusterMessage, OpResult, PromiseWaiter, WriteOp } from '../types.js';
import { QueueStatements } from './queue-ops.js';
import { BlobStatements } from './blob-ops.js';
import {
  type PayloadLimits,
  INPUT_PART,
  OUTPUT_PART,
  checkPayload,
  payloadLimits,
  splitValue,
} from '../payloads.js';
import {
  type EncodedEntry,
  type InvocationField,
  type InvocationRecord,
  type PromiseRecord,
  type SqlValue,
  INVOCATION_COLUMNS,
  INVOCATION_FIELDS,
  completeEncoded,
  decodeEntry,
  decodeInvocation,
  encodeEntry,
  encodeField,
  fromJson,
  toJson,
} from './codec.js';

/**
 * A write op with its values already encoded, ready to run inside the batch transaction.
 * Encoding happens in `write()`, so the batch loop does nothing but execute statements.
 */
export type PreparedOp = (s: WriteStatements) => OpResult;

/** A message a write sends when it commits: to process `to`, or to every process. */
export interface Notice {
  to?: string;
  message: ClusterMessage;
}

/** The invocation columns a completion needs. */
interface OwnerRecord {
  seq: number;
  status: string;
  owner: string | null;
}

/** Must match the partial indexes `invocations_active` and `invocations_owner` term for term. */
const ACTIVE = "status NOT IN ('completed', 'failed')";

const INSERT_FIELDS = INVOCATION_FIELDS;
const INSERT_SQL =
  `INSERT INTO invocations (${INSERT_FIELDS.map((f) => INVOCATION_COLUMNS[f][0]).join(', ')}) ` +
  `VALUES (${INSERT_FIELDS.map(() => '?').join(', ')}) ` +
  // Only a dedupe conflict is expected and answered with the existing row; a duplicate id
  // still raises, because that is a bug in the caller, not a race.
  'ON CONFLICT (dedupe) WHERE dedupe IS NOT NULL DO NOTHING';

/** Prepared statements for writes, created once per connection. */
export class WriteStatements {
  readonly insertInvocation: Database.Statement;
  readonly invocationByDedupe: Database.Statement;
  readonly deleteInvocation: Database.Statement;
  readonly deleteJournal: Database.Statement;
  readonly deleteTimers: Database.Statement;
  readonly putEntry: Database.Statement;
  readonly entryDone: Database.Statement;
  readonly setState: Database.Statement;
  readonly deleteState: Database.Statement;
  readonly clearState: Database.Statement;
  readonly putTimer: Database.Statement;
  readonly deleteTimer: Database.Statement;
  readonly promise: Database.Statement;
  readonly completePromise: Database.Statement;
  readonly addPromise: Database.Statement;
  readonly putWaiter: Database.Statement;
  readonly waitersOf: Database.Statement;
  readonly deleteWaitersOf: Database.Statement;
  readonly deleteInvocationWaiters: Database.Statement;
  readonly entry: Database.Statement;
  readonly invocationOwner: Database.Statement;
  readonly resumeSeq: Database.Statement;
  readonly deleteInvocationLock: Database.Statement;
  readonly registerProcess: Database.Statement;
  readonly heartbeat: Database.Statement;
  readonly expiredProcesses: Database.Statement;
  readonly deleteProcess: Database.Statement;
  readonly ownedBy: Database.Statement;
  readonly takeOver: Database.Statement;
  readonly takeOverOne: Database.Statement;
  readonly orphanOwners: Database.Statement;
  readonly suspend: Database.Statement;
  readonly insertLock: Database.Statement;
  readonly lockHolder: Database.Statement;
  readonly deleteLock: Database.Statement;
  readonly nextPending: Database.Statement;
  readonly setOwner: Database.Statement;
  readonly startWaiting: Database.Statement;
  readonly kvVersion: Database.Statement;
  readonly kvPut: Database.Statement;
  readonly kvDelete: Database.Statement;
  readonly kvPurge: Database.Statement;
  /**
   * Where the ops of the call being run put the messages they send; set by the group commit
   * before each call, so the messages of a call rolled back are dropped with it.
   */
  outbox: Notice[] = [];
  private readonly updates = new Map<string, Database.Statement>();
  private queueStatements?: QueueStatements;
  private blobStatements?: BlobStatements;

  /** The statements of the blob tables (large payloads), prepared on first use. */
  get blobs(): BlobStatements {
    return (this.blobStatements ??= new BlobStatements(this.db));
  }

  /** The statements of flow-control queues, prepared on first use. */
  get queues(): QueueStatements {
    return (this.queueStatements ??= new QueueStatements(this.db));
  }

  constructor(private readonly db: Database.Database) {
    this.insertInvocation = db.prepare(INSERT_SQL);
    this.invocationByDedupe = db.prepare('SELECT * FROM invocations WHERE dedupe = ?');
    this.deleteInvocation = db.prepare('DELETE FROM invocations WHERE id = ?');
    this.deleteJournal = db.prepare('DELETE FROM journal WHERE invocation_id = ?');
    this.deleteTimers = db.prepare('DELETE FROM timers WHERE invocation_id = ?');
    this.putEntry = db.prepare(
      'INSERT OR REPLACE INTO journal (invocation_id, idx, kind, name, done, data) VALUES (?, ?, ?, ?, ?, ?)',
    );
    // A completion keeps the waiting entry's `startedAt` from its data (see `keepStartedAt`).
    this.entryDone = db.prepare(
      'SELECT done, data FROM journal WHERE invocation_id = ? AND idx = ?',
    );
    this.setState = db.prepare(
      'INSERT OR REPLACE INTO state (service, key, name, value) VALUES (?, ?, ?, ?)',
    );
    this.deleteState = db.prepare('DELETE FROM state WHERE service = ? AND key = ? AND name = ?');
    this.clearState = db.prepare('DELETE FROM state WHERE service = ? AND key = ?');
    this.putTimer = db.prepare(
      'INSERT OR REPLACE INTO timers (invocation_id, idx, fire_at) VALUES (?, ?, ?)',
    );
    this.deleteTimer = db.prepare('DELETE FROM timers WHERE invocation_id = ? AND idx = ?');
    this.promise = db.prepare(
      'SELECT done, value, error FROM promises WHERE service = ? AND key = ? AND name = ?',
    );
    // Inserts or completes a pending promise; `changes` is 0 when it was completed already.
    this.completePromise = db.prepare(
      'INSERT INTO promises (service, key, name, done, value, error) VALUES (?, ?, ?, 1, ?, ?) ' +
        'ON CONFLICT (service, key, name) DO UPDATE SET done = 1, value = excluded.value, error = excluded.error ' +
        'WHERE promises.done = 0',
    );
    this.addPromise = db.prepare(
      'INSERT OR IGNORE INTO promises (service, key, name, done) VALUES (?, ?, ?, 0)',
    );
    this.putWaiter = db.prepare(
      'INSERT OR REPLACE INTO promise_waiters (invocation_id, idx, service, key, name, kind, entry_name) ' +
        'VALUES (?, ?, ?, ?, ?, ?, ?)',
    );
    this.waitersOf = db.prepare(
      'SELECT invocation_id, idx, kind, entry_name FROM promise_waiters ' +
        'WHERE service = ? AND key = ? AND name = ? ORDER BY invocation_id, idx',
    );
    this.deleteWaitersOf = db.prepare(
      'DELETE FROM promise_waiters WHERE service = ? AND key = ? AND name = ?',
    );
    this.deleteInvocationWaiters = db.prepare(
      'DELETE FROM promise_waiters WHERE invocation_id = ?',
    );
    this.entry = db.prepare(
      'SELECT kind, name, done, data FROM journal WHERE invocation_id = ? AND idx = ?',
    );
    this.invocationOwner = db.prepare(
      'SELECT seq, status, owner, run_at FROM invocations WHERE id = ?',
    );
    this.resumeSeq = db.prepare("UPDATE invocations SET status = 'running' WHERE seq = ?");
    this.deleteInvocationLock = db.prepare('DELETE FROM key_locks WHERE invocation_id = ?');
    this.registerProcess = db.prepare(
      'INSERT INTO processes (id, lease_until) VALUES (?, ?) ' +
        'ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until',
    );
    // Never shortens the lease (see the PostgreSQL adapter's migration 7).
    this.heartbeat = db.prepare(
      'UPDATE processes SET lease_until = max(lease_until, ?) WHERE id = ?',
    );
    this.expiredProcesses = db
      .prepare('SELECT id FROM processes WHERE lease_until < ? AND id <> ? ORDER BY id')
      .pluck();
    this.deleteProcess = db.prepare('DELETE FROM processes WHERE id = ?');
    // ACTIVE as in the partial index invocations_owner, term for term.
    this.ownedBy = db.prepare(
      `SELECT id, seq FROM invocations WHERE owner = ? AND ${ACTIVE} ORDER BY seq`,
    );
    this.takeOver = db.prepare(`UPDATE invocations SET owner = ? WHERE owner = ? AND ${ACTIVE}`);
    this.takeOverOne = db.prepare('UPDATE invocations SET owner = ? WHERE id = ?');
    // Owners of unfinished invocations that are not registered (see process.reap).
    this.orphanOwners = db
      .prepare(
        `SELECT DISTINCT owner FROM invocations WHERE owner IS NOT NULL AND ${ACTIVE} ` +
          'AND owner <> ? AND owner NOT IN (SELECT id FROM processes) ORDER BY owner',
      )
      .pluck();
    // Not when an entry it waits for (a JSON array of indexes) is done already.
    this.suspend = db.prepare(
      "UPDATE invocations SET status = 'suspended', modified_at = ? WHERE id = ? AND status = 'running' " +
        'AND NOT EXISTS (SELECT 1 FROM journal WHERE invocation_id = invocations.id AND done = 1 ' +
        'AND idx IN (SELECT value FROM json_each(?)))',
    );
    this.insertLock = db.prepare(
      'INSERT INTO key_locks (service, key, invocation_id) VALUES (?, ?, ?) ON CONFLICT (service, key) DO NOTHING',
    );
    this.lockHolder = db
      .prepare('SELECT invocation_id FROM key_locks WHERE service = ? AND key = ?')
      .pluck();
    this.deleteLock = db.prepare(
      'DELETE FROM key_locks WHERE service = ? AND key = ? AND invocation_id = ?',
    );
    // Through invocations_active (status, seq): the key's pending invocations in seq order.
    this.nextPending = db.prepare(
      `SELECT * FROM invocations WHERE ${ACTIVE} AND status = 'pending' AND exclusive = 1 ` +
        'AND service = ? AND key = ? ORDER BY seq LIMIT 1',
    );
    // A key handed on starts its new holder (see key.release).
    this.setOwner = db.prepare(
      "UPDATE invocations SET owner = ?, status = 'running' WHERE seq = ?",
    );
    this.startWaiting = db.prepare(
      "UPDATE invocations SET status = 'running' WHERE id = ? AND status IN ('pending', 'scheduled')",
    );
    this.kvVersion = db.prepare('SELECT version FROM kv WHERE scope = ? AND key = ?').pluck();
    this.kvPut = db.prepare(
      'INSERT OR REPLACE INTO kv (scope, key, value, version, expires_at) VALUES (?, ?, ?, ?, ?)',
    );
    this.kvDelete = db.prepare('DELETE FROM kv WHERE scope = ? AND key = ?');
    this.kvPurge = db.prepare(
      'DELETE FROM kv WHERE (scope, key) IN (SELECT scope, key FROM kv WHERE expires_at <= ? LIMIT ?)',
    );
  }

  /** One statement per distinct set of updated fields; engines use a handful of shapes. */
  update(fields: readonly InvocationField[], ifStatus = false): Database.Statement {
    const cacheKey = `${fields.join(',')}${ifStatus ? '?' : ''}`;
    let stmt = this.updates.get(cacheKey);
    if (stmt === undefined) {
      // No field to set still checks the status (`status = status`), for the result.
      const assignments =
        fields.map((f) => `${INVOCATION_COLUMNS[f][0]} = ?`).join(', ') || 'status = status';
      const where = ifStatus ? 'id = ? AND status = ?' : 'id = ?';
      stmt = this.db.prepare(`UPDATE invocations SET ${assignments} WHERE ${where}`);
      this.updates.set(cacheKey, stmt);
    }
    return stmt;
  }
}

const UPDATABLE = new Set<string>(INVOCATION_FIELDS.filter((f) => f !== 'id'));

function existingByDedupe(s: WriteStatements, id: string, dedupe: string | undefined) {
  const existing = s.invocationByDedupe.get(dedupe) as InvocationRecord | undefined;
  if (existing === undefined)
    throw new Error(`insert of invocation ${id} was ignored without a dedupe conflict`);
  return decodeInvocation(existing, s.blobs.part);
}

/** The default limits, for callers that pass none. */
const DEFAULT_LIMITS = payloadLimits();

/** An invocation's input and output blobs to write with its row (large payloads). */
type PartBlobs = Array<[part: number, data: string]>;

/**
 * Splits the input and output (`field`, encoded as `value`) of an invocation row or update:
 * the column's value to bind, and, for a large value, the blob to write with it.
 */
function splitPart(
  field: InvocationField,
  value: SqlValue,
  id: string,
  limits: PayloadLimits,
  blobs: PartBlobs,
): SqlValue {
  if (field !== 'input' && field !== 'output') return value;
  const split = splitValue(
    value as string | null,
    limits,
    () => `the ${field} of invocation ${id}`,
  );
  if (split.blob !== undefined)
    blobs.push([field === 'input' ? INPUT_PART : OUTPUT_PART, split.blob]);
  return split.stored;
}

function putParts(s: WriteStatements, id: string, blobs: PartBlobs): void {
  for (const [part, data] of blobs) s.blobs.putPart(id, part, data);
}

interface WaiterRecord {
  invocation_id: string;
  idx: number;
  kind: string;
  entry_name: string;
}

/** A stored entry without `value` and `error`, ready for {@link completeEncoded}. */
function withoutOutcome(stored: EncodedEntry, invocationId: string, index: number): EncodedEntry {
  if (stored.data === null) return stored;
  const { value: _v, error: _e, ...rest } = decodeEntry(stored);
  return encodeEntry(rest, invocationId, index);
}

/**
 * The rest of a completion recorded for `invocationId` (`inv`: its row before, if it exists):
 * resumes it if suspended, and wakes its owner when that is not `notifyFrom`.
 */
function completion(
  s: WriteStatements,
  invocationId: string,
  inv: OwnerRecord | undefined,
  notifyFrom: string | undefined,
): { completed: true; resumed: boolean; owner?: string } {
  if (inv === undefined) return { completed: true, resumed: false };
  const resumed = inv.status === 'suspended';
  if (resumed) s.resumeSeq.run(inv.seq);
  if (inv.owner === null) return { completed: true, resumed };
  if (notifyFrom !== undefined && inv.owner !== notifyFrom)
    s.outbox.push({ to: inv.owner, message: { type: 'wake', invocationId } });
  return { completed: true, resumed, owner: inv.owner };
}

/**
 * Validates and encodes an op. Throws a `write_failed` StoreError for values that cannot be
 * stored, so the whole `write()` call fails before any of it reaches the database.
 */
export function prepareOp(op: WriteOp, limits: PayloadLimits = DEFAULT_LIMITS): PreparedOp {
  switch (op.op) {
    case 'invocation.insert': {
      const row = op.row;
      const blobs: PartBlobs = [];
      const params = INSERT_FIELDS.map((f) =>
        splitPart(f, encodeField(f, row[f], row.id), row.id, limits, blobs),
      );
      const dedupe = row.dedupe;
      if (op.acquireKey) {
        const running = params.map((v, i) => (INSERT_FIELDS[i] === 'status' ? 'running' : v));
        const lock = [row.service, row.key, row.id];
        return (s) => {
          const acquired = s.insertLock.run(lock).changes > 0;
          if (s.insertInvocation.run(acquired ? running : params).changes > 0) {
            putParts(s, row.id, blobs);
            return { inserted: true, acquired };
          }
          if (acquired) s.deleteLock.run(lock);
          return { inserted: false, existing: existingByDedupe(s, row.id, dedupe) };
        };
      }
      return (s) => {
        if (s.insertInvocation.run(params).changes > 0) {
          putParts(s, row.id, blobs);
          return { inserted: true };
        }
        const existing = s.invocationByDedupe.get(dedupe) as InvocationRecord | undefined;
        if (existing === undefined)
          throw new Error(`insert of invocation ${row.id} was ignored without a dedupe conflict`);
        return { inserted: false, existing: decodeInvocation(existing, s.blobs.part) };
      };
    }
    case 'invocation.update': {
      const fields: InvocationField[] = [];
      const values: SqlValue[] = [];
      const blobs: PartBlobs = [];
      for (const [field, value] of Object.entries(op.set)) {
        // `id` and `seq` are not settable; tolerate them so a spread row can be passed as `set`.
        if (field === 'seq' || field === 'id') continue;
        if (!UPDATABLE.has(field)) {
          throw new StoreError(
            'write_failed',
            `cannot update invocation ${op.id}: unknown field "${field}"`,
          );
        }
        fields.push(field as InvocationField);
        // A field present with value undefined clears the column (e.g. runAt after a retry starts).
        const v = encodeField(field as InvocationField, value, op.id);
        values.push(splitPart(field as InvocationField, v, op.id, limits, blobs));
      }
      const ifStatus = op.ifStatus;
      const id = op.id;
      // Blobs only with a row that was updated: none of an invocation that is gone.
      if (ifStatus !== undefined) {
        values.push(id, ifStatus);
        return (s) => {
          const updated = s.update(fields, true).run(values).changes > 0;
          if (updated) putParts(s, id, blobs);
          return { updated };
        };
      }
      if (fields.length === 0) return () => undefined;
      values.push(id);
      return (s) => {
        if (s.update(fields).run(values).changes > 0) putParts(s, id, blobs);
        return undefined;
      };
    }
    case 'invocation.expect': {
      const { id, status, runAt } = op;
      return (s) => {
        const row = s.invocationOwner.get(id) as
          { status: string; run_at: number | null } | undefined;
        if (row && (status as string[]).includes(row.status)) {
          if (runAt === undefined || row.run_at === runAt) return undefined;
          throw runAtMoved(id, runAt, row.run_at);
        }
        throw expectationFailed(id, status, row?.status);
      };
    }
    case 'invocation.suspend': {
      const params = [op.modifiedAt, op.id, JSON.stringify(op.waitingFor)];
      return (s) => ({ suspended: s.suspend.run(params).changes > 0 });
    }
    case 'invocation.delete': {
      const id = op.id;
      return (s) => {
        s.deleteInvocation.run(id);
        s.deleteJournal.run(id);
        s.deleteTimers.run(id);
        s.deleteInvocationWaiters.run(id);
        s.deleteInvocationLock.run(id);
        s.blobs.deleteInvocation(id);
        return undefined;
      };
    }
    case 'journal.put': {
      const { invocationId, index } = op;
      const e = encodeEntry(op.entry, invocationId, index, limits);
      const params = [invocationId, index, e.kind, e.name, e.done, e.data];
      const blob = e.blob;
      return (s) => {
        s.putEntry.run(params);
        if (blob !== undefined) s.blobs.putPart(invocationId, index, blob);
        return undefined;
      };
    }
    case 'journal.complete': {
      const { invocationId, index, notifyFrom } = op;
      const e = encodeEntry(op.entry, invocationId, index, limits);
      return (s) => {
        const stored = s.entryDone.get(invocationId, index) as
          { done: number; data: string | null } | undefined;
        if (stored !== undefined && stored.done !== 0) return { completed: false, resumed: false };
        const inv = s.invocationOwner.get(invocationId) as OwnerRecord | undefined;
        // The completion won the race against the entry's start (or the start is in this
        // same batch further back): record it, unless the invocation itself is gone.
        if (stored === undefined && inv === undefined) return { completed: false, resumed: false };
        const data = stored === undefined ? e.data : keepStartedAt(e.data, stored.data);
        s.putEntry.run(invocationId, index, e.kind, e.name, e.done, data);
        if (e.blob !== undefined) s.blobs.putPart(invocationId, index, e.blob);
        return completion(s, invocationId, inv, notifyFrom);
      };
    }
    case 'state.set': {
      const { service, key, name } = op;
      const what = () => `state "${name}" of ${service}/${key}`;
      const { stored, blob } = splitValue(toJson(op.value, what), limits, what);
      const params = [service, key, name, stored];
      return (s) => {
        s.setState.run(params);
        // A value in line leaves no blob of an earlier large one behind.
        if (blob !== undefined) s.blobs.putStateValue(service, key, name, blob);
        else s.blobs.deleteStateValue(service, key, name);
        return undefined;
      };
    }
    case 'state.delete': {
      const { service, key, name } = op;
      const params = [service, key, name];
      return (s) => {
        s.deleteState.run(params);
        s.blobs.deleteStateValue(service, key, name);
        return undefined;
      };
    }
    case 'state.clear': {
      const { service, key } = op;
      const params = [service, key];
      return (s) => {
        s.clearState.run(params);
        s.blobs.clearStateValues(service, key);
        return undefined;
      };
    }
    case 'promise.complete': {
      const { service, key, name } = op;
      if (op.value !== undefined && op.error !== undefined) {
        throw new StoreError(
          'write_failed',
          `cannot complete promise "${name}" of ${service}/${key} with both a value and an error`,
        );
      }
      const what = () => `the value of promise "${name}" of ${service}/${key}`;
      const value = toJson(op.value, what);
      checkPayload(value, limits, what);
      const error = toJson(op.error, () => `the error of promise "${name}" of ${service}/${key}`);
      const params = [service, key, name, value, error];
      const promise = [service, key, name];
      const notifyFrom = op.notifyFrom;
      return (s) => {
        if (s.completePromise.run(params).changes === 0) return { completed: false, waiters: [] };
        const waiters: PromiseWaiter[] = [];
        for (const w of s.waitersOf.all(promise) as WaiterRecord[]) {
          const invocationId = w.invocation_id;
          const stored = s.entry.get(invocationId, w.idx) as EncodedEntry | undefined;
          // Completed by something else meanwhile (or replaced by a done entry): keep it.
          if (stored !== undefined && stored.done !== 0) continue;
          const inv = s.invocationOwner.get(invocationId) as OwnerRecord | undefined;
          // As journal.complete: record the completion unless the invocation itself is gone.
          if (stored === undefined && inv === undefined) continue;
          const base: EncodedEntry =
            stored !== undefined
              ? withoutOutcome(stored, invocationId, w.idx)
              : { kind: w.kind, name: w.entry_name, done: 0, data: null };
          const e = completeEncoded(base, value, error);
          s.putEntry.run(invocationId, w.idx, e.kind, e.name, e.done, e.data);
          const { resumed, owner } = completion(s, invocationId, inv, notifyFrom);
          const waiter: PromiseWaiter = { invocationId, index: w.idx, resumed };
          if (owner !== undefined) waiter.owner = owner;
          waiters.push(waiter);
        }
        s.deleteWaitersOf.run(promise);
        return { completed: true, waiters };
      };
    }
    case 'promise.await': {
      const { service, key, name, invocationId, index } = op;
      const promise = [service, key, name];
      const e = encodeEntry(op.entry, invocationId, index);
      const entryParams = [invocationId, index, e.kind, e.name, e.done, e.data];
      const waiterParams = [invocationId, index, service, key, name, e.kind, e.name];
      // The entry as it is stored when the promise is already done: the outcome is spliced
      // into its JSON at flush time, so the promise's value is never decoded and re-encoded.
      const { value: _v, error: _e, ...rest } = op.entry;
      const base = encodeEntry(rest, invocationId, index);
      return (s) => {
        const p = s.promise.get(promise) as PromiseRecord | undefined;
        if (p !== undefined && p.done !== 0) {
          const done = completeEncoded(base, p.value, p.error);
          s.putEntry.run(invocationId, index, done.kind, done.name, done.done, done.data);
          const res: { done: true; value?: unknown; error?: ErrorInfo } = { done: true };
          if (p.error !== null) res.error = fromJson(p.error) as ErrorInfo;
          else if (p.value !== null) res.value = fromJson(p.value);
          return res;
        }
        if (p === undefined) s.addPromise.run(promise);
        s.putEntry.run(entryParams);
        s.putWaiter.run(waiterParams);
        return { done: false };
      };
    }
    case 'timer.put': {
      const t = op.timer;
      const params = [t.invocationId, t.index, t.fireAt];
      return (s) => {
        s.putTimer.run(params);
        return undefined;
      };
    }
    case 'timer.delete': {
      const params = [op.invocationId, op.index];
      return (s) => {
        s.deleteTimer.run(params);
        return undefined;
      };
    }
    case 'notify': {
      const notice: Notice = { message: JSON.parse(encodeMessage(op.message)) as ClusterMessage };
      if (op.to !== undefined) notice.to = op.to;
      return (s) => {
        s.outbox.push(notice);
        return undefined;
      };
    }
    case 'process.register': {
      const params = [op.id, op.leaseUntil];
      return (s) => {
        s.registerProcess.run(params);
        return undefined;
      };
    }
    case 'process.heartbeat': {
      const params = [op.leaseUntil, op.id];
      return (s) => ({ alive: s.heartbeat.run(params).changes > 0 });
    }
    case 'process.leave': {
      const params = [op.id];
      return (s) => void s.deleteProcess.run(params);
    }
    case 'process.reap': {
      const { now, by, limit } = op;
      return (s) => {
        const expired = s.expiredProcesses.all(now, by) as string[];
        for (const dead of expired) s.deleteProcess.run(dead);
        // The expired ones, now unregistered, and any other owner nobody registered.
        const orphaned = s.orphanOwners.all(by) as string[];
        let taken: Array<{ id: string; seq: number }> = [];
        for (const owner of orphaned)
          taken.push(...(s.ownedBy.all(owner) as Array<{ id: string; seq: number }>));
        if (limit !== undefined && taken.length > limit) {
          // As PostgreSQL's: the oldest `limit`; the rest stay for the next reap.
          taken = taken.sort((a, b) => a.seq - b.seq).slice(0, limit);
          for (const t of taken) s.takeOverOne.run(by, t.id);
        } else for (const owner of orphaned) s.takeOver.run(by, owner);
        taken.sort((a, b) => a.seq - b.seq);
        const reaped = [...new Set([...expired, ...orphaned])].sort();
        return { reaped, invocations: taken.map((t) => t.id) };
      };
    }
    case 'key.acquire': {
      const { service, key, invocationId } = op;
      const params = [service, key, invocationId];
      return (s) => {
        const inserted = s.insertLock.run(params).changes > 0;
        const holder = inserted ? invocationId : (s.lockHolder.get(service, key) as string);
        if (holder !== invocationId) return { acquired: false, holder };
        // An acquire (a late one, sent while it was pending, or a repeated one) of an
        // invocation that ran and finished meanwhile: nothing would ever release the key, so
        // it is freed, as PostgreSQL's store does.
        const row = s.invocationOwner.get(invocationId) as { status: string } | undefined;
        if (row?.status !== 'completed' && row?.status !== 'failed') {
          // A waiting invocation that holds the key is started by the same op, so the store
          // never shows a key holder as not started (see PostgreSQL's migration 11).
          if (s.startWaiting.run(invocationId).changes > 0)
            return { acquired: true, holder: invocationId, started: true };
          return { acquired: true, holder: invocationId };
        }
        s.deleteLock.run(params);
        return { acquired: false };
      };
    }
    case 'key.release': {
      const { service, key, invocationId, owner } = op;
      const params = [service, key, invocationId];
      return (s) => {
        if (s.deleteLock.run(params).changes === 0) return {};
        const next = s.nextPending.get(service, key) as InvocationRecord | undefined;
        if (next === undefined) return {};
        s.insertLock.run(service, key, next.id);
        // Started as it gets the key: a decision that expects it pending (a cancel, a pause)
        // must find it changed, or it would end an invocation that runs (two in one key).
        s.setOwner.run(owner, next.seq);
        return { next: decodeInvocation({ ...next, owner, status: 'running' }, s.blobs.part) };
      };
    }
    case 'kv.put': {
      const { scope, key, expectVersion } = op;
      const what = () => `value "${key}" of key-value scope "${scope}"`;
      const value = toJson(op.value, what) ?? 'null';
      checkPayload(value, limits, what);
      const expiresAt = op.expiresAt ?? null;
      return (s) => {
        const found = (s.kvVersion.get(scope, key) as number | undefined) ?? 0;
        if (expectVersion !== undefined && found !== expectVersion)
          return { ok: false, version: found };
        s.kvPut.run(scope, key, value, found + 1, expiresAt);
        return { ok: true, version: found + 1 };
      };
    }
    case 'kv.delete': {
      const { scope, key, expectVersion } = op;
      return (s) => {
        const found = (s.kvVersion.get(scope, key) as number | undefined) ?? 0;
        if (found === 0 || (expectVersion !== undefined && found !== expectVersion))
          return { ok: false, version: found };
        s.kvDelete.run(scope, key);
        return { ok: true, version: found };
      };
    }
    case 'kv.purge': {
      const params = [op.before, op.limit ?? 1000];
      return (s) => ({ deleted: s.kvPurge.run(params).changes });
    }
    case 'queue.put': {
      const { invocationId, queue, key, priority, admit } = op;
      return (s) => s.queues.put(invocationId, queue, key, priority, admit);
    }
    case 'queue.admit': {
      const { op: _op, ...req } = op;
      return (s) => s.queues.admit(req);
    }
    default: {
      const unknown: never = op;
      throw new StoreError(
        'write_failed',
        `unknown write op ${JSON.stringify((unknown as { op: unknown }).op)}`,
      );
    }
  }
}

/** The error of an `invocation.expect` op that does not hold. */
/** The `invocation.expect` of a debounced start found `runAt` moved (a send joined meanwhile). */
export function runAtMoved(id: string, expected: number, actual: number | null): StoreError {
  return new StoreError(
    'precondition_failed',
    `invocation ${id} runs at ${actual ?? 'no time'}, not ${expected}: it was moved meanwhile, ` +
      'and none of the write was applied. Read it again.',
  );
}

export function expectationFailed(
  id: string,
  expected: string[],
  actual: string | undefined,
): StoreError {
  return new StoreError(
    'precondition_failed',
    `invocation ${id} is ${actual === undefined ? 'gone' : actual}, not ${expected.join(' or ')}: ` +
      'it changed meanwhile, and none of the write was applied. Read it again.',
  );
}
