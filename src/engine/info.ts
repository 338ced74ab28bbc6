import { NotFoundError, type ErrorInfo } from '../core/errors.js';
import type { DebounceOptions, ThrottleOptions } from '../core/flow.js';
import { targetName } from '../core/journal.js';
import type { InvocationRow } from '../store/types.js';
import { idempotencyKeyOf } from './dedupe.js';

/** A request to run a handler, as the ingress and the programmatic client make it. */
export interface InvokeRequest {
  service: string;
  handler: string;
  /** Object or workflow key; omit for services. */
  key?: string;
  input?: unknown;
  idempotencyKey?: string;
  /** Sends only: start after this many milliseconds. */
  delayMs?: number;
  /**
   * Sends only: one invocation, with the last input, per burst of sends with this key (see
   * docs/flow-control.md). Not with `delayMs`, an idempotency key or `throttle`.
   */
  debounce?: DebounceOptions;
  /**
   * Sends only: at most `limit` starts per `period` per key; beyond it delayed to the next free
   * slot, or (`mode: 'drop'`) refused with `ThrottledError` (see docs/flow-control.md).
   */
  throttle?: ThrottleOptions;
  /**
   * The W3C trace context the invocation's spans continue (the `traceparent` and `tracestate`
   * headers' values). Without it, the span active where `invoke`/`send` is called (if any).
   */
  traceparent?: string;
  tracestate?: string;
}

/** What a send answers: the invocation's id and status when accepted. */
export interface SendResult {
  invocationId: string;
  status: InvocationRow['status'];
  /** True when an idempotency key or workflow key matched an existing invocation. */
  existing: boolean;
}

/** Public view of an invocation, as `GET /invocations/{id}` shows it. */
export interface InvocationInfo {
  id: string;
  target: string;
  service: string;
  handler: string;
  key?: string;
  status: InvocationRow['status'];
  attempt: number;
  createdAt: string;
  modifiedAt: string;
  completedAt?: string;
  nextAttemptAt?: string;
  idempotencyKey?: string;
  error?: ErrorInfo;
  /** Set once a cancellation was requested, then delivered to the handler. */
  cancel?: 'requested' | 'delivered';
  /** What the handler reported beyond its status, e.g. a saga's `compensated`. */
  outcome?: string;
}

/** `Service/key/handler` (or `Service/handler`), as logs and errors name an invocation. */
export function targetOf(row: Pick<InvocationRow, 'service' | 'handler' | 'key'>): string {
  return targetName({ service: row.service, handler: row.handler, key: row.key });
}

/** The log fields of an invocation's lines (`key` only for objects and workflows). */
export function fieldsOf(row: InvocationRow): Record<string, unknown> {
  const fields: Record<string, unknown> = {
    invocationId: row.id,
    target: targetOf(row),
    service: row.service,
    handler: row.handler,
  };
  if (row.key !== '') fields.key = row.key;
  return fields;
}

export function notFound(id: string): NotFoundError {
  return new NotFoundError(`no invocation "${id}": it never existed or its retention ended`);
}

/** Date's range: ±8.64e15 ms (±100,000,000 days) around 1970. */
const MAX_DATE_MS = 8.64e15;

/**
 * A stored time as ISO-8601. A time beyond Date's range (a run-at an older version stored for
 * an unbounded delay) would make `toISOString` throw and fail every listing page containing
 * it: it shows as the farthest representable time instead.
 */
function isoTime(t: number): string {
  if (Number.isNaN(t)) return new Date(0).toISOString();
  return new Date(Math.min(Math.max(t, -MAX_DATE_MS), MAX_DATE_MS)).toISOString();
}

/** The public view of a stored invocation. */
export function toInfo(row: InvocationRow): InvocationInfo {
  const iso = (t: number | undefined): string | undefined =>
    t === undefined ? undefined : isoTime(t);
  const info: InvocationInfo = {
    id: row.id,
    target: targetOf(row),
    service: row.service,
    handler: row.handler,
    status: row.status,
    attempt: row.attempt,
    createdAt: iso(row.createdAt)!,
    modifiedAt: iso(row.modifiedAt)!,
  };
  if (row.key) info.key = row.key;
  if (row.completedAt !== undefined) info.completedAt = iso(row.completedAt);
  if (row.status === 'backing-off' || row.status === 'scheduled')
    info.nextAttemptAt = iso(row.runAt);
  const idempotencyKey = idempotencyKeyOf(row.dedupe);
  if (idempotencyKey !== undefined) info.idempotencyKey = idempotencyKey;
  if (row.error) info.error = row.error;
  if (row.cancel) info.cancel = row.cancel;
  if (row.outcome) info.outcome = row.outcome;
  return info;
}
