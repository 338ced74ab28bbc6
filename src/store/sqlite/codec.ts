import type { ErrorInfo } from '../../core/errors.js';
import type { EntryKind, JournalEntry } from '../../core/journal.js';
import { fromJson, toJson } from '../json.js';
import {
  type PayloadLimits,
  INPUT_PART,
  LargePayload,
  OUTPUT_PART,
  decodeColumn,
  missingBlob,
  splitEntryData,
} from '../payloads.js';
import type { InvocationRow, InvocationStatus, PromiseRow, TimerRow } from '../types.js';

export { fromJson, toJson };

/** What better-sqlite3 binds: no booleans, no undefined. */
export type SqlValue = string | number | bigint | null;

function opt(v: SqlValue | undefined): SqlValue {
  return v === undefined ? null : v;
}

/** The raw `invocations` row as SQLite returns it. */
export interface InvocationRecord {
  seq: number;
  id: string;
  service: string;
  handler: string;
  key: string;
  exclusive: number;
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
}

/**
 * Column name and encoder of every settable invocation field, in insert order. The single
 * source for inserts and updates, so a new field cannot be written by one and not the other.
 */
export const INVOCATION_COLUMNS: {
  readonly [F in keyof Omit<InvocationRow, 'seq'>]-?: readonly [
    column: string,
    encode: (v: InvocationRow[F], id: string) => SqlValue,
  ];
} = {
  id: ['id', (v) => v],
  service: ['service', (v) => v],
  handler: ['handler', (v) => v],
  key: ['key', (v) => v],
  exclusive: ['exclusive', (v) => (v === undefined ? null : v ? 1 : 0)],
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

export type InvocationField = keyof typeof INVOCATION_COLUMNS;
export const INVOCATION_FIELDS = Object.keys(INVOCATION_COLUMNS) as InvocationField[];

/** Encodes one field; `undefined` for a required column becomes NULL and fails the NOT NULL constraint. */
export function encodeField(field: InvocationField, value: unknown, id: string): SqlValue {
  const encode = INVOCATION_COLUMNS[field][1] as (v: unknown, id: string) => SqlValue;
  const v = encode(value, id);
  return v === undefined ? null : v;
}

/** Reads part `part` of invocation `id` from the blob table (see store/payloads.ts). */
export type BlobReader = (id: string, part: number) => string | undefined;

/**
 * The value of an input or output column: out-of-line values read through `blobs`, or, without
 * it (lists), a {@link LargePayload} giving their size.
 */
function payload(stored: string | null, id: string, part: number, blobs?: BlobReader): unknown {
  const v = decodeColumn(stored);
  if (!(v instanceof LargePayload) || blobs === undefined) return v;
  const text = blobs(id, part);
  if (text === undefined)
    throw missingBlob(`the ${part === INPUT_PART ? 'input' : 'output'} of invocation ${id}`);
  return JSON.parse(text);
}

export function decodeInvocation(r: InvocationRecord, blobs?: BlobReader): InvocationRow {
  const row: InvocationRow = {
    id: r.id,
    service: r.service,
    handler: r.handler,
    key: r.key,
    exclusive: r.exclusive !== 0,
    status: r.status as InvocationStatus,
    input: payload(r.input, r.id, INPUT_PART, blobs),
    attempt: r.attempt,
    retryIndex: r.retry_index,
    createdAt: r.created_at,
    modifiedAt: r.modified_at,
    seq: r.seq,
  };
  // Absent rather than `undefined`-valued keys, so rows compare and print like the originals.
  if (r.output !== null) row.output = payload(r.output, r.id, OUTPUT_PART, blobs);
  if (r.error !== null) row.error = fromJson(r.error) as ErrorInfo;
  if (r.dedupe !== null) row.dedupe = r.dedupe;
  if (r.caller_id !== null) row.callerId = r.caller_id;
  if (r.caller_entry !== null) row.callerEntry = r.caller_entry;
  if (r.run_at !== null) row.runAt = r.run_at;
  if (r.completed_at !== null) row.completedAt = r.completed_at;
  if (r.expires_at !== null) row.expiresAt = r.expires_at;
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
  done: number;
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
  const e = { kind, name, done: done ? 1 : 0, data };
  return blob === undefined ? e : { ...e, blob };
}

export function decodeEntry(r: EncodedEntry): JournalEntry {
  const entry: JournalEntry = { kind: r.kind as EntryKind, name: r.name, done: r.done !== 0 };
  return r.data === null
    ? entry
    : Object.assign(entry, JSON.parse(r.data) as Partial<JournalEntry>);
}

/**
 * `e` completed with a stored outcome (JSON text; NULL is `undefined`): the outcome's JSON is
 * spliced into `e.data` as it is, never decoded. `e.data` must hold no `value` or `error`.
 */
export function completeEncoded(
  e: EncodedEntry,
  value: string | null,
  error: string | null,
): EncodedEntry {
  const field =
    error !== null ? `"error":${error}` : value !== null ? `"value":${value}` : undefined;
  let data = e.data;
  if (field !== undefined) {
    // `{}` is possible: a field whose value has no JSON form (a function) is dropped.
    data = data === null || data === '{}' ? `{${field}}` : `${data.slice(0, -1)},${field}}`;
  }
  return { kind: e.kind, name: e.name, done: 1, data };
}

/** The raw `promises` row (without its key). */
export interface PromiseRecord {
  done: number;
  value: string | null;
  error: string | null;
}

export function decodePromise(r: PromiseRecord): PromiseRow {
  const row: PromiseRow = { done: r.done !== 0 };
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
  return { invocationId: r.invocation_id, index: r.idx, fireAt: r.fire_at };
}
