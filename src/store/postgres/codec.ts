import type { ErrorInfo } from '../../core/errors.js';
import type { EntryKind, JournalEntry } from '../../core/journal.js';
import { StoreError } from '../errors.js';
import { encodeMessage, fromJson, toJson } from '../json.js';
import {
  type PayloadLimits,
  INPUT_PART,
  OUTPUT_PART,
  checkPayload,
  decodeColumn,
  LargePayload,
  payloadLimits,
  splitEntryData,
  splitValue,
} from '../payloads.js';
import type {
  InvocationRow,
  InvocationStatus,
  OpResult,
  PromiseRow,
  PromiseWaiter,
  TimerRow,
  WriteOp,
} from '../types.js';

/**
 * Client-side encoding of write ops into the tuples that `apply` (migration 2) runs, and
 * decoding of rows. The semantics are the SQLite codec's: values are JSON text with SQL NULL for
 * `undefined`, journal entries are `kind`/`name`/`done` columns plus a `data` object, and rows
 * decode with absent (not `undefined`-valued) optional fields.
 */

type Json = string | number | boolean | null | Json[] | { [k: string]: Json };

/** An invocation field's column and encoder. */
const COLUMNS: {
  readonly [F in keyof Omit<InvocationRow, 'seq'>]-?: readonly [
    column: string,
    encode: (v: InvocationRow[F], id: string) => Json,
  ];
} = {
  id: ['id', (v) => v],
  service: ['service', (v) => v],
  handler: ['handler', (v) => v],
  key: ['key', (v) => v],
  exclusive: ['exclusive', (v) => (v === undefined ? null : v)],
  status: ['status', (v) => v],
  input: ['input', (v, id) => toJson(v, () => `the input of invocation ${id}`)],
  output: ['output', (v, id) => toJson(v, () => `the output of invocation ${id}`)],
  error: ['error', (v, id) => toJson(v, () => `the error of invocation ${id}`)],
  dedupe: ['dedupe', opt],
  callerId: ['caller_id', opt],
  callerEntry: ['caller_entry', opt],
  attempt: ['attempt', (v) => v],
  retryIndex: ['retry_index', (v) => v],
  runAt: ['run_at', opt],
  createdAt: ['created_at', (v) => v],
  modifiedAt: ['modified_at', (v) => v],
  completedAt: ['completed_at', opt],
  expiresAt: ['expires_at', opt],
  cancel: ['cancel', opt],
  outcome: ['outcome', opt],
  owner: ['owner', opt],
  trace: ['trace', opt],
};

type Field = keyof typeof COLUMNS;
const FIELDS = Object.keys(COLUMNS) as Field[];
const UPDATABLE = new Set<string>(FIELDS.filter((f) => f !== 'id'));

function opt<T extends Json>(v: T | undefined): T | null {
  return v === undefined ? null : v;
}

function encodeField(field: Field, value: unknown, id: string): Json {
  const encode = COLUMNS[field][1] as (v: unknown, id: string) => Json | undefined;
  const v = encode(value, id);
  // `undefined` in a required column becomes NULL and fails its NOT NULL constraint.
  return v === undefined ? null : v;
}

/** The raw `invocations` row, as node-postgres returns it (bigint parsed to number). */
export interface InvocationRecord {
  seq: number;
  id: string;
  service: string;
  handler: string;
  key: string;
  exclusive: boolean;
  status: string;
  input: string | null;
  output: string | null;
  error: string | null;
  dedupe: string | null;
  caller_id: string | null;
  caller_entry: number | null;
  attempt: number;
  retry_index: number;
  run_at: number | null;
  created_at: number;
  modified_at: number;
  completed_at: number | null;
  expires_at: number | null;
  cancel: string | null;
  outcome: string | null;
  owner: string | null;
  /** Migration 8. */
  trace?: string | null;
  /** Reads that join the blob table (migration 13): the out-of-line input and output. */
  input_blob?: string | null;
  output_blob?: string | null;
}

/**
 * An input or output column: its value, read from `blob` when stored out of line, or, without
 * the blob (a list, a write's answer), a {@link LargePayload} giving its size.
 */
function payload(stored: string | null, blob: string | null | undefined): unknown {
  const v = decodeColumn(stored);
  return v instanceof LargePayload && blob != null ? JSON.parse(blob) : v;
}

export function decodeInvocation(r: InvocationRecord): InvocationRow {
  const row: InvocationRow = {
    id: r.id,
    service: r.service,
    handler: r.handler,
    key: r.key,
    exclusive: r.exclusive,
    status: r.status as InvocationStatus,
    input: payload(r.input, r.input_blob),
    attempt: r.attempt,
    retryIndex: r.retry_index,
    createdAt: Number(r.created_at),
    modifiedAt: Number(r.modified_at),
    seq: Number(r.seq),
  };
  // Absent rather than `undefined`-valued keys, so rows compare and print like the originals.
  if (r.output !== null) row.output = payload(r.output, r.output_blob);
  if (r.error !== null) row.error = fromJson(r.error) as ErrorInfo;
  if (r.dedupe !== null) row.dedupe = r.dedupe;
  if (r.caller_id !== null) row.callerId = r.caller_id;
  if (r.caller_entry !== null) row.callerEntry = r.caller_entry;
  if (r.run_at !== null) row.runAt = Number(r.run_at);
  if (r.completed_at !== null) row.completedAt = Number(r.completed_at);
  if (r.expires_at !== null) row.expiresAt = Number(r.expires_at);
  if (r.cancel !== null) row.cancel = r.cancel as 'requested' | 'delivered';
  if (r.outcome !== null) row.outcome = r.outcome;
  if (r.owner !== null) row.owner = r.owner;
  if (r.trace != null) row.trace = r.trace;
  return row;
}

/** A journal entry split into its columns; `data` holds every other field. */
export interface EncodedEntry {
  kind: string;
  name: string;
  done: boolean;
  data: string | null;
}

/**
 * An entry as stored. With `limits`, data longer than the threshold goes to `blob` (see
 * store/payloads.ts), which the caller writes with the entry.
 */
export function encodeEntry(
  entry: JournalEntry,
  invocationId: string,
  index: number,
  limits?: PayloadLimits,
): EncodedEntry & { blob?: string } {
  const { kind, name, done, startedAt, ...rest } = entry;
  const what = () => `journal entry ${index} (${kind} "${name}") of invocation ${invocationId}`;
  // JSON.stringify drops undefined-valued keys and keeps nulls: exactly the distinction we need.
  let json: string | null = null;
  for (const k in rest) {
    if ((rest as Record<string, unknown>)[k] !== undefined) {
      json = toJson(rest, what);
      break;
    }
  }
  const { data, blob } = splitEntryData(json, startedAt, limits, what);
  const e = { kind, name, done: !!done, data };
  return blob === undefined ? e : { ...e, blob };
}

export function decodeEntry(r: EncodedEntry): JournalEntry {
  const entry: JournalEntry = { kind: r.kind as EntryKind, name: r.name, done: r.done };
  return r.data === null
    ? entry
    : Object.assign(entry, JSON.parse(r.data) as Partial<JournalEntry>);
}

export interface PromiseRecord {
  done: boolean;
  value: string | null;
  error: string | null;
}

export function decodePromise(r: PromiseRecord): PromiseRow {
  const row: PromiseRow = { done: r.done };
  if (r.value !== null) row.value = fromJson(r.value);
  if (r.error !== null) row.error = fromJson(r.error) as ErrorInfo;
  return row;
}

export interface TimerRecord {
  invocation_id: string;
  idx: number;
  fire_at: number;
}

export function decodeTimer(r: TimerRecord): TimerRow {
  return { invocationId: r.invocation_id, index: r.idx, fireAt: Number(r.fire_at) };
}

/** Turns the raw result `apply` returned for one op into the op's result. */
export type ResultDecoder = (raw: unknown) => OpResult;

const none: ResultDecoder = () => undefined;

/** `apply` reports only the inserts that found their dedupe key taken. */
const insertResult: ResultDecoder = (raw) =>
  raw === undefined || raw === true
    ? { inserted: true }
    : { inserted: false, existing: decodeInvocation(raw as InvocationRecord) };

/** `[true, acquired]`, or the invocation holding the dedupe key. */
const insertAcquireResult: ResultDecoder = (raw) =>
  Array.isArray(raw)
    ? { inserted: true, acquired: raw[1] === true }
    : { inserted: false, existing: decodeInvocation(raw as InvocationRecord) };

const completeResult: ResultDecoder = (raw) => {
  const [completed, resumed, owner] = raw as [boolean, boolean, string | null | undefined];
  return owner == null ? { completed, resumed } : { completed, resumed, owner };
};

const promiseCompleteResult: ResultDecoder = (raw) => {
  const r = raw as { c: boolean; w: Array<[string, number, boolean, string | null]> };
  const waiters: PromiseWaiter[] = r.w.map(([invocationId, index, resumed, owner]) => {
    const w: PromiseWaiter = { invocationId, index, resumed };
    if (owner !== null) w.owner = owner;
    return w;
  });
  return { completed: r.c, waiters };
};

const heartbeatResult: ResultDecoder = (raw) => ({ alive: raw === true });

const reapResult: ResultDecoder = (raw) => {
  const r = raw as { r: string[]; i: string[] };
  return { reaped: r.r, invocations: r.i };
};

const acquireResult: ResultDecoder = (raw) => {
  const [acquired, holder, started] = raw as [boolean, string | null, boolean | undefined];
  const r = holder === null ? { acquired } : { acquired, holder };
  return started === true ? { ...r, started } : r;
};

const releaseResult: ResultDecoder = (raw) =>
  raw === undefined || raw === null || Object.keys(raw).length === 0
    ? {}
    : { next: decodeInvocation(raw as InvocationRecord) };

const versionResult: ResultDecoder = (raw) => {
  const [ok, version] = raw as [boolean, number];
  return { ok, version };
};

const promiseAwaitResult: ResultDecoder = (raw) => {
  if (raw === false) return { done: false };
  const r = raw as { v: string | null; e: string | null };
  const res: { done: true; value?: unknown; error?: ErrorInfo } = { done: true };
  if (r.e !== null) res.error = fromJson(r.e) as ErrorInfo;
  else if (r.v !== null) res.value = fromJson(r.v);
  return res;
};

/**
 * Kinds of blind writes `apply` runs as one multi-row statement per kind (the bits of its
 * `plan`). `ALONE` (0) marks an op that reads before it writes and runs on its own.
 */
export const KIND = {
  ALONE: 0,
  INSERT: 1,
  UPDATE: 2,
  JOURNAL_PUT: 4,
  STATE_SET: 8,
  STATE_DELETE: 16,
  TIMER_PUT: 32,
  TIMER_DELETE: 64,
  /** Migration 17: a message, sent at commit; reads and writes no row. */
  NOTIFY: 128,
} as const;

/** An op encoded for `apply`, and how to decode its result. */
export interface EncodedOp {
  tuple: Json[];
  decode: ResultDecoder;
  kind: number;
  /**
   * For a blind write, the rows it touches (and, for an insert, the dedupe key it reads): two
   * ops with a key in common never go into the same run. NUL separates the parts: a stored
   * string never contains one (see {@link encodeCall}).
   */
  keys: string[];
  /**
   * The tuple without its blobs (migration 13's `bi`, `bs`), for the check of
   * {@link encodeCall}: a blob is the JSON text of a value, which holds no character
   * PostgreSQL refuses, and scanning megabytes of it for one would cost seconds.
   */
  probe?: Json[];
}

const invocationKey = (id: string) => `i\0${id}`;
const entryKey = (invocationId: string, index: number) => `j\0${invocationId}\0${index}`;
const stateKey = (service: string, key: string, name: string) => `s\0${service}\0${key}\0${name}`;
const timerKey = (invocationId: string, index: number) => `t\0${invocationId}\0${index}`;

/**
 * Validates and encodes an op. Throws a `write_failed` StoreError for values that cannot be
 * stored, so the whole `write()` call fails before any of it reaches the database.
 */
export function encodeOp(op: WriteOp, limits: PayloadLimits = DEFAULT_LIMITS): EncodedOp {
  const large: LargeValues = {};
  let e = encodeOpUntraced(op, limits, large);
  const trace = traceOf(op);
  // A blind insert or update carries its trace in its record, which migration 17's runs write.
  if (trace !== undefined && e.kind === KIND.ALONE) {
    // The statements of migrations 1 to 7 name their columns and skip `trace`: migration 8's
    // `tr` applies the op, then sets it. It runs on its own, as ops that read first do.
    e = {
      tuple: ['tr', trace.id, trace.value, e.tuple],
      decode: e.decode,
      kind: KIND.ALONE,
      keys: [],
    };
  }
  // Migration 13's `bi` and `bs` apply the op, then write its blobs: on their own too.
  if (large.parts !== undefined) {
    const { id, blobs } = large.parts;
    const tuple = ['bi', id, blobs, e.tuple];
    const probe = ['bi', id, blobs.map(([part]) => [part, '']), e.tuple];
    return { tuple, decode: e.decode, kind: KIND.ALONE, keys: [], probe };
  }
  if (large.state !== undefined) {
    const { service, key, name, blob } = large.state;
    const tuple = ['bs', service, key, name, blob, e.tuple];
    const probe = ['bs', service, key, name, '', e.tuple];
    return { tuple, decode: e.decode, kind: KIND.ALONE, keys: [], probe };
  }
  return e;
}

/** The default limits, for callers that pass none. */
const DEFAULT_LIMITS = payloadLimits();

/** The blobs an op writes with its row (see migration 13), filled in by `encodeOpUntraced`. */
interface LargeValues {
  parts?: { id: string; blobs: Array<[part: number, json: string]> };
  state?: { service: string; key: string; name: string; blob: string };
}

/** The input or output column of invocation `id`, its blob (if large) noted in `large`. */
function splitPart(
  field: 'input' | 'output',
  text: Json,
  id: string,
  limits: PayloadLimits,
  large: LargeValues,
): Json {
  const split = splitValue(text as string | null, limits, () => `the ${field} of invocation ${id}`);
  if (split.blob !== undefined)
    addPart(large, id, field === 'input' ? INPUT_PART : OUTPUT_PART, split.blob);
  return split.stored;
}

function addPart(large: LargeValues, id: string, part: number, blob: string): void {
  large.parts ??= { id, blobs: [] };
  large.parts.blobs.push([part, blob]);
}

/** The trace an insert or update writes (value null clears it), or undefined when it writes none. */
function traceOf(op: WriteOp): { id: string; value: string | null } | undefined {
  if (op.op === 'invocation.insert') {
    return op.row.trace === undefined ? undefined : { id: op.row.id, value: op.row.trace };
  }
  if (op.op === 'invocation.update' && 'trace' in op.set) {
    return { id: op.id, value: op.set.trace ?? null };
  }
  return undefined;
}

function encodeOpUntraced(op: WriteOp, limits: PayloadLimits, large: LargeValues): EncodedOp {
  switch (op.op) {
    case 'invocation.insert': {
      const row = op.row;
      const record: Record<string, Json> = {};
      for (const f of FIELDS) {
        let v = encodeField(f, row[f], row.id);
        if (f === 'input' || f === 'output') v = splitPart(f, v, row.id, limits, large);
        // Absent keys are NULL for jsonb_populate_record: smaller batches.
        if (v !== null) record[COLUMNS[f][0]] = v;
      }
      if (op.acquireKey) {
        // Reads the key's lock before it writes: runs on its own.
        return { tuple: ['ia', record], decode: insertAcquireResult, kind: KIND.ALONE, keys: [] };
      }
      const keys = [invocationKey(row.id)];
      if (typeof row.dedupe === 'string') keys.push(`d\0${row.dedupe}`);
      return { tuple: ['i', record], decode: insertResult, kind: KIND.INSERT, keys };
    }
    case 'invocation.update': {
      const set: Record<string, Json> = {};
      for (const [field, value] of Object.entries(op.set)) {
        // `id` and `seq` are not settable; tolerate them so a spread row can be passed as `set`.
        if (field === 'seq' || field === 'id') continue;
        if (!UPDATABLE.has(field)) {
          throw new StoreError(
            'write_failed',
            `cannot update invocation ${op.id}: unknown field "${field}"`,
          );
        }
        // A field present with value undefined clears the column (e.g. runAt after a retry starts).
        let v = encodeField(field as Field, value, op.id);
        if (field === 'input' || field === 'output') v = splitPart(field, v, op.id, limits, large);
        set[COLUMNS[field as Field][0]] = v;
      }
      if (op.ifStatus !== undefined) {
        // Reads the status before it writes (migration 5): runs on its own.
        return {
          tuple: ['uc', op.id, set, op.ifStatus],
          decode: (raw) => ({ updated: raw === true }),
          kind: KIND.ALONE,
          keys: [],
        };
      }
      return {
        tuple: ['u', op.id, set],
        decode: none,
        kind: KIND.UPDATE,
        keys: [invocationKey(op.id)],
      };
    }
    case 'invocation.suspend':
      // Reads the journal before it writes (migration 6): runs on its own.
      return {
        tuple: ['ss', op.id, op.waitingFor, op.modifiedAt],
        decode: (raw) => ({ suspended: raw === true }),
        kind: KIND.ALONE,
        keys: [],
      };
    case 'invocation.expect':
      // Reads (and locks) the row before the call's other ops (migration 7): runs on its own.
      return {
        // With runAt: migration 14's fourth element.
        tuple:
          op.runAt === undefined ? ['ie', op.id, op.status] : ['ie', op.id, op.status, op.runAt],
        decode: none,
        kind: KIND.ALONE,
        keys: [],
      };
    case 'invocation.delete':
      return { tuple: ['d', op.id], decode: none, kind: KIND.ALONE, keys: [] };
    case 'journal.put': {
      const e = encodeEntry(op.entry, op.invocationId, op.index, limits);
      if (e.blob !== undefined) addPart(large, op.invocationId, op.index, e.blob);
      return {
        tuple: ['j', op.invocationId, op.index, e.kind, e.name, e.done, e.data],
        decode: none,
        kind: KIND.JOURNAL_PUT,
        keys: [entryKey(op.invocationId, op.index)],
      };
    }
    case 'journal.complete': {
      const e = encodeEntry(op.entry, op.invocationId, op.index, limits);
      if (e.blob !== undefined) addPart(large, op.invocationId, op.index, e.blob);
      return {
        tuple: ['c', op.invocationId, op.index, e.kind, e.name, e.done, e.data, opt(op.notifyFrom)],
        decode: completeResult,
        kind: KIND.ALONE,
        keys: [],
      };
    }
    case 'state.set': {
      const { service, key, name } = op;
      const what = () => `state "${name}" of ${service}/${key}`;
      const { stored: value, blob } = splitValue(toJson(op.value, what), limits, what);
      if (blob !== undefined) large.state = { service, key, name, blob };
      return {
        tuple: ['s', service, key, name, value],
        decode: none,
        kind: KIND.STATE_SET,
        keys: [stateKey(service, key, name)],
      };
    }
    case 'state.delete':
      return {
        tuple: ['sd', op.service, op.key, op.name],
        decode: none,
        kind: KIND.STATE_DELETE,
        keys: [stateKey(op.service, op.key, op.name)],
      };
    case 'state.clear':
      return { tuple: ['sc', op.service, op.key], decode: none, kind: KIND.ALONE, keys: [] };
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
      return {
        tuple: ['pc', service, key, name, value, error, opt(op.notifyFrom)],
        decode: promiseCompleteResult,
        kind: KIND.ALONE,
        keys: [],
      };
    }
    case 'promise.await': {
      const { service, key, name, invocationId, index } = op;
      const e = encodeEntry(op.entry, invocationId, index);
      // The entry as it is stored when the promise is already done: the outcome is spliced
      // into its JSON by the database, so the promise's value is never decoded and re-encoded.
      const { value: _v, error: _e, ...rest } = op.entry;
      const base = encodeEntry(rest, invocationId, index);
      return {
        tuple: [
          'pa',
          service,
          key,
          name,
          invocationId,
          index,
          e.kind,
          e.name,
          e.done,
          e.data,
          base.data,
        ],
        decode: promiseAwaitResult,
        kind: KIND.ALONE,
        keys: [],
      };
    }
    case 'timer.put': {
      const t = op.timer;
      return {
        tuple: ['t', t.invocationId, t.index, t.fireAt],
        decode: none,
        kind: KIND.TIMER_PUT,
        keys: [timerKey(t.invocationId, t.index)],
      };
    }
    case 'timer.delete':
      return {
        tuple: ['td', op.invocationId, op.index],
        decode: none,
        kind: KIND.TIMER_DELETE,
        keys: [timerKey(op.invocationId, op.index)],
      };
    case 'notify':
      return {
        tuple: ['n', encodeMessage(op.message), opt(op.to)],
        decode: none,
        kind: KIND.NOTIFY,
        keys: [],
      };
    case 'process.register':
      return { tuple: ['pr', op.id, op.leaseUntil], decode: none, kind: KIND.ALONE, keys: [] };
    case 'process.heartbeat':
      return {
        tuple: ['ph', op.id, op.leaseUntil],
        decode: heartbeatResult,
        kind: KIND.ALONE,
        keys: [],
      };
    case 'process.leave':
      // Needs migration 19's apply_op.
      return { tuple: ['pl', op.id], decode: none, kind: KIND.ALONE, keys: [] };
    case 'process.reap':
      return {
        // A limit needs migration 18's apply_op; without one, the reap is migration 6's.
        tuple: op.limit === undefined ? ['px', op.now, op.by] : ['px', op.now, op.by, op.limit],
        decode: reapResult,
        kind: KIND.ALONE,
        keys: [],
      };
    case 'key.acquire':
      return {
        tuple: ['ka', op.service, op.key, op.invocationId],
        decode: acquireResult,
        kind: KIND.ALONE,
        keys: [],
      };
    case 'key.release':
      return {
        tuple: ['kr', op.service, op.key, op.invocationId, op.owner],
        decode: releaseResult,
        kind: KIND.ALONE,
        keys: [],
      };
    case 'kv.put': {
      const what = () => `value "${op.key}" of key-value scope "${op.scope}"`;
      const value = toJson(op.value, what) ?? 'null';
      checkPayload(value, limits, what);
      return {
        tuple: ['kp', op.scope, op.key, value, opt(op.expectVersion), opt(op.expiresAt)],
        decode: versionResult,
        kind: KIND.ALONE,
        keys: [],
      };
    }
    case 'kv.delete':
      return {
        tuple: ['kd', op.scope, op.key, opt(op.expectVersion)],
        decode: versionResult,
        kind: KIND.ALONE,
        keys: [],
      };
    case 'kv.purge':
      return {
        tuple: ['kx', op.before, op.limit ?? 1000],
        decode: (raw) => ({ deleted: raw as number }),
        kind: KIND.ALONE,
        keys: [],
      };
    case 'queue.put':
      return {
        tuple: [
          'qp',
          op.invocationId,
          op.queue,
          op.key,
          op.priority,
          op.admit === undefined ? null : (JSON.parse(JSON.stringify(op.admit)) as Json),
        ],
        decode: (raw) => ({ admitted: raw === true }),
        kind: KIND.ALONE,
        keys: [],
      };
    case 'queue.admit':
      // Runs in a transaction of its own (see PostgresStore.write), never in a batch.
      throw new StoreError(
        'write_failed',
        'queue.admit must be the only op of its write() call; none of the write was applied.',
      );
    default: {
      const unknown: never = op;
      throw new StoreError(
        'write_failed',
        `unknown write op ${JSON.stringify((unknown as { op: unknown }).op)}`,
      );
    }
  }
}

/**
 * An escape PostgreSQL cannot take in a string outside the stored values: `\u0000` (text cannot
 * hold NUL) or a lone surrogate (not valid UTF-8). Stored values are JSON text inside a JSON
 * string, so their own escapes arrive with the backslash doubled and do not match.
 */
const UNSTORABLE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** The ops of one `write()` call, encoded, in order. */
export interface PreparedCall {
  /** The JSON text of each op's tuple. */
  json: string[];
  decoders: ResultDecoder[];
  /** Each op's {@link KIND}. */
  kinds: number[];
  /** Each op's {@link EncodedOp.keys}. */
  keys: string[][];
}

/**
 * Encodes the ops of one `write()` call. Throws a `write_failed` StoreError when the call
 * cannot be stored; the other calls are unaffected.
 */
export function encodeCall(ops: WriteOp[], limits: PayloadLimits = DEFAULT_LIMITS): PreparedCall {
  const call: PreparedCall = { json: [], decoders: [], kinds: [], keys: [] };
  for (const op of ops) {
    const e = encodeOp(op, limits);
    const json = JSON.stringify(e.tuple);
    const checked = e.probe === undefined ? json : JSON.stringify(e.probe);
    // Most ops hold no escape at all: a plain search first (the pattern scans every position).
    if (checked.includes('\\u') && UNSTORABLE.test(checked)) {
      throw new StoreError(
        'write_failed',
        `cannot store ${op.op}: an id, key or name holds a NUL character or an unpaired surrogate, ` +
          'which PostgreSQL text cannot hold. Use another character (stored values may hold them).',
      );
    }
    call.json.push(json);
    call.decoders.push(e.decode);
    call.kinds.push(e.kind);
    call.keys.push(e.keys);
  }
  return call;
}
