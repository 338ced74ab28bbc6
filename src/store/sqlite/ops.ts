import type Database from 'better-sqlite3';
import { StoreError } from '../errors.js';
import type { OpResult, WriteOp } from '../types.js';
import {
  type InvocationField,
  type InvocationRecord,
  type SqlValue,
  INVOCATION_COLUMNS,
  INVOCATION_FIELDS,
  decodeInvocation,
  encodeEntry,
  encodeField,
  toJson,
} from './codec.js';

/**
 * A write op with its values already encoded, ready to run inside the batch transaction.
 * Encoding happens in `write()`, so the batch loop does nothing but execute statements.
 */
export type PreparedOp = (s: WriteStatements) => OpResult;

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
  readonly invocationExists: Database.Statement;
  readonly deleteInvocation: Database.Statement;
  readonly deleteJournal: Database.Statement;
  readonly deleteTimers: Database.Statement;
  readonly putEntry: Database.Statement;
  readonly entryDone: Database.Statement;
  readonly resume: Database.Statement;
  readonly setState: Database.Statement;
  readonly deleteState: Database.Statement;
  readonly clearState: Database.Statement;
  readonly putTimer: Database.Statement;
  readonly deleteTimer: Database.Statement;
  private readonly updates = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {
    this.insertInvocation = db.prepare(INSERT_SQL);
    this.invocationByDedupe = db.prepare('SELECT * FROM invocations WHERE dedupe = ?');
    this.invocationExists = db.prepare('SELECT 1 FROM invocations WHERE id = ?').pluck();
    this.deleteInvocation = db.prepare('DELETE FROM invocations WHERE id = ?');
    this.deleteJournal = db.prepare('DELETE FROM journal WHERE invocation_id = ?');
    this.deleteTimers = db.prepare('DELETE FROM timers WHERE invocation_id = ?');
    this.putEntry = db.prepare(
      'INSERT OR REPLACE INTO journal (invocation_id, idx, kind, name, done, data) VALUES (?, ?, ?, ?, ?, ?)',
    );
    this.entryDone = db
      .prepare('SELECT done FROM journal WHERE invocation_id = ? AND idx = ?')
      .pluck();
    this.resume = db.prepare(
      "UPDATE invocations SET status = 'running' WHERE id = ? AND status = 'suspended'",
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
  }

  /** One statement per distinct set of updated fields; engines use a handful of shapes. */
  update(fields: readonly InvocationField[]): Database.Statement {
    const cacheKey = fields.join(',');
    let stmt = this.updates.get(cacheKey);
    if (stmt === undefined) {
      const assignments = fields.map((f) => `${INVOCATION_COLUMNS[f][0]} = ?`).join(', ');
      stmt = this.db.prepare(`UPDATE invocations SET ${assignments} WHERE id = ?`);
      this.updates.set(cacheKey, stmt);
    }
    return stmt;
  }
}

const UPDATABLE = new Set<string>(INVOCATION_FIELDS.filter((f) => f !== 'id'));

/**
 * Validates and encodes an op. Throws a `write_failed` StoreError for values that cannot be
 * stored, so the whole `write()` call fails before any of it reaches the database.
 */
export function prepareOp(op: WriteOp): PreparedOp {
  switch (op.op) {
    case 'invocation.insert': {
      const row = op.row;
      const params = INSERT_FIELDS.map((f) => encodeField(f, row[f], row.id));
      const dedupe = row.dedupe;
      return (s) => {
        if (s.insertInvocation.run(params).changes > 0) return { inserted: true };
        const existing = s.invocationByDedupe.get(dedupe) as InvocationRecord | undefined;
        if (existing === undefined)
          throw new Error(`insert of invocation ${row.id} was ignored without a dedupe conflict`);
        return { inserted: false, existing: decodeInvocation(existing) };
      };
    }
    case 'invocation.update': {
      const fields: InvocationField[] = [];
      const values: SqlValue[] = [];
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
        values.push(encodeField(field as InvocationField, value, op.id));
      }
      if (fields.length === 0) return () => undefined;
      values.push(op.id);
      return (s) => {
        s.update(fields).run(values);
        return undefined;
      };
    }
    case 'invocation.delete': {
      const id = op.id;
      return (s) => {
        s.deleteInvocation.run(id);
        s.deleteJournal.run(id);
        s.deleteTimers.run(id);
        return undefined;
      };
    }
    case 'journal.put': {
      const e = encodeEntry(op.entry, op.invocationId, op.index);
      const params = [op.invocationId, op.index, e.kind, e.name, e.done, e.data];
      return (s) => {
        s.putEntry.run(params);
        return undefined;
      };
    }
    case 'journal.complete': {
      const { invocationId, index } = op;
      const e = encodeEntry(op.entry, invocationId, index);
      const params = [invocationId, index, e.kind, e.name, e.done, e.data];
      return (s) => {
        const done = s.entryDone.get(invocationId, index) as number | undefined;
        if (done === undefined) {
          // The completion won the race against the entry's start (or the start is in this
          // same batch further back): record it, unless the invocation itself is gone.
          if (s.invocationExists.get(invocationId) === undefined)
            return { completed: false, resumed: false };
        } else if (done !== 0) {
          return { completed: false, resumed: false };
        }
        s.putEntry.run(params);
        return { completed: true, resumed: s.resume.run(invocationId).changes > 0 };
      };
    }
    case 'state.set': {
      const { service, key, name } = op;
      const params = [
        service,
        key,
        name,
        toJson(op.value, () => `state "${name}" of ${service}/${key}`),
      ];
      return (s) => {
        s.setState.run(params);
        return undefined;
      };
    }
    case 'state.delete': {
      const params = [op.service, op.key, op.name];
      return (s) => {
        s.deleteState.run(params);
        return undefined;
      };
    }
    case 'state.clear': {
      const params = [op.service, op.key];
      return (s) => {
        s.clearState.run(params);
        return undefined;
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
    default: {
      const unknown: never = op;
      throw new StoreError(
        'write_failed',
        `unknown write op ${JSON.stringify((unknown as { op: unknown }).op)}`,
      );
    }
  }
}
