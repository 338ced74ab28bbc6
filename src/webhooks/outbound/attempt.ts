/**
 * One delivery attempt, as the body of a journaled step: look up the endpoint, ask its circuit
 * breaker, sign, POST, decide what follows (retry when, dead-letter, disable on 410) and write
 * the delivery record. Everything non-deterministic (the clock, the jitter, the HTTP answer)
 * happens here, inside the step, so its journaled result replays identically.
 *
 * The delivery record is not written here: it is returned with the result and committed with
 * the step's journal entry (`runWithWrites`), one store write for both. A crash after the POST
 * and before that commit repeats the attempt on recovery (at least once), with the same
 * `webhook-id`, and then writes its record.
 */
import type { WebhookTotals } from './metrics.js';
import { createHmac } from 'node:crypto';
import type { StepWithWrites } from '../../core/replay.js';
import type { Clock } from '../../engine/clock.js';
import type { BreakerTicket } from '../../integrations/policies/breaker.js';
import { RetrySchedule, type AttemptResponse } from '../schedule.js';
import { signer } from '../standard.js';
import type { EndpointBreakers } from './breakers.js';
import type { DeliveryLog } from './deliveries.js';
import type { Endpoints } from './endpoints.js';
import type { HttpOutcome, Sender } from './http.js';
import type {
  AttemptRecord,
  DeliveryRecord,
  EndpointRecord,
  FailureReason,
  OutboundSignature,
  WebhookDeliveryFailed,
} from './types.js';

/** What an attempt decided; journaled with it. */
export type NextStep =
  | { action: 'delivered' }
  | { action: 'retry'; delayMs: number; at: number }
  | { action: 'dead'; reason: FailureReason };

/** The journaled result of an attempt step. */
export interface AttemptResult {
  a: AttemptRecord;
  next: NextStep;
  /** Set when this attempt dead-lettered an automatic delivery: what subscribers are told. */
  failed?: WebhookDeliveryFailed;
}

/** The delivery an attempt is for. */
export interface AttemptTarget {
  deliveryId: string;
  endpointId: string;
  messageId: string;
  type: string;
  body: string;
  createdAt: number;
  /** Earlier attempts, for the record. */
  prior: readonly AttemptRecord[];
  /**
   * `auto`: a scheduled attempt; `test`: one attempt, never retried; `manual`: one attempt asked
   * for through the API, past the circuit breaker (an operator's retry should reach the endpoint).
   */
  mode: 'auto' | 'test' | 'manual';
  /** Manual retries: the reason the delivery failed before, kept if it fails again. */
  previousFailure?: FailureReason;
}

export interface AttemptDeps {
  clock: Clock;
  endpoints: Endpoints;
  breakers: EndpointBreakers;
  sender: Sender;
  log: DeliveryLog;
  schedule: (now: number) => RetrySchedule;
  /** An extra HMAC-of-the-body header (a `type: webhook` declaration's `signature`). */
  signature?: OutboundSignature | undefined;
  /** Where attempts are counted for `GET /metrics`. */
  totals?: WebhookTotals | undefined;
}

/**
 * Runs one attempt; returns its result and the write of its delivery record, for the step's
 * commit. Throws only when the store does (the step is then retried).
 */
export async function runAttempt(
  deps: AttemptDeps,
  t: AttemptTarget,
): Promise<StepWithWrites<AttemptResult>> {
  const n = t.prior.length + 1;
  const startedAt = deps.clock.now();
  const base: AttemptRecord = { attempt: n, at: new Date(startedAt).toISOString(), duration_ms: 0 };
  if (t.mode !== 'auto') base.manual = true;
  const endpoint = await deps.endpoints.get(t.endpointId);
  let a: AttemptRecord;
  let next: NextStep;
  let retryIn: AttemptResponse | undefined;
  let sent = false;

  if (!endpoint) {
    a = { ...base, error: 'the endpoint was deleted', error_code: 'endpoint_deleted' };
    next = { action: 'dead', reason: 'endpoint_deleted' };
  } else if (!endpoint.is_active && t.mode !== 'test') {
    const why = endpoint.disabled_reason ? ` (${endpoint.disabled_reason})` : '';
    a = { ...base, error: `the endpoint is disabled${why}`, error_code: 'endpoint_disabled' };
    next = { action: 'dead', reason: 'endpoint_disabled' };
  } else {
    let ticket: BreakerTicket | undefined;
    let refusedFor: number | undefined;
    if (t.mode === 'auto') {
      const d = await deps.breakers.acquire(endpoint.id);
      if (d.allowed) ticket = d.ticket;
      else refusedFor = d.retryInMs;
    }
    if (refusedFor !== undefined) {
      a = {
        ...base,
        error: `not sent: the endpoint's circuit breaker is open after repeated failures; it lets a probe through in ${Math.ceil(refusedFor / 1000)} s`,
        error_code: 'circuit_open',
      };
      // Not before the breaker would let a probe through.
      retryIn = { retryAfter: String(Math.ceil(refusedFor / 1000)) };
    } else {
      const outcome = await post(deps, endpoint, t);
      sent = true;
      a = withOutcome(base, outcome);
      retryIn = outcome.status !== undefined ? { status: outcome.status } : {};
      if (outcome.retryAfter !== undefined) retryIn.retryAfter = outcome.retryAfter;
      if (ticket) await deps.breakers.record(endpoint.id, ticket, !breakerFailure(outcome));
      else if (t.mode === 'manual' && isSuccess(outcome.status))
        await deps.breakers.reset(endpoint.id);
    }
    next = decide(deps, t, n, retryIn);
    if (retryIn.status === 410) await deps.endpoints.disable(endpoint.id, 'answered 410 Gone');
  }

  deps.totals?.attempt(
    a.error_code ?? 'success',
    sent ? a.duration_ms : undefined,
    next.action === 'dead',
  );
  const record = recordOf(t, a, next);
  const write = deps.log.putOp(record);
  const result: AttemptResult = { a, next };
  if (next.action === 'dead' && t.mode === 'auto' && notifies(next.reason))
    result.failed = failureEvent(record, endpoint?.url ?? '', next.reason);
  return { value: result, writes: [write] };
}

/** Signers by secret: the secret is decoded once, not on every attempt. */
const signers = new Map<string, ReturnType<typeof signer>>();

function post(deps: AttemptDeps, endpoint: EndpointRecord, t: AttemptTarget): Promise<HttpOutcome> {
  let sign = signers.get(endpoint.secret);
  if (!sign) {
    if (signers.size >= 10_000) signers.clear();
    sign = signer(endpoint.secret);
    signers.set(endpoint.secret, sign);
  }
  const h = sign(t.messageId, Math.floor(deps.clock.now() / 1000), t.body);
  const headers = [
    'webhook-id',
    h['webhook-id'],
    'webhook-timestamp',
    h['webhook-timestamp'],
    'webhook-signature',
    h['webhook-signature'],
  ];
  if (deps.signature)
    headers.push(deps.signature.header, bodySignature(deps.signature, endpoint.secret, t.body));
  return deps.sender.post(endpoint.url, headers, t.body);
}

/**
 * `sha256=<hex HMAC of the body>`, keyed with the secret as the API shows it: what a receiver
 * written for GitHub-style signatures checks (see `OutboundSignature`).
 *
 * @example
 * ```ts
 * bodySignature({ algorithm: 'sha256', header: 'X-Webhook-Signature' }, 'whsec_abc', '{}');
 * // 'sha256=...'
 * ```
 */
export function bodySignature(s: OutboundSignature, secret: string, body: string): string {
  return `${s.algorithm}=${createHmac(s.algorithm, secret).update(body).digest('hex')}`;
}

function decide(deps: AttemptDeps, t: AttemptTarget, n: number, last: AttemptResponse): NextStep {
  if (isSuccess(last.status)) return { action: 'delivered' };
  if (last.status === 410) return { action: 'dead', reason: 'gone' };
  if (t.mode === 'test') return { action: 'dead', reason: 'test_failed' };
  if (t.mode === 'manual') return { action: 'dead', reason: t.previousFailure ?? 'exhausted' };
  const d = deps.schedule(deps.clock.now()).decide(n, last);
  switch (d.action) {
    case 'delivered':
      return { action: 'delivered' };
    case 'disable':
      return { action: 'dead', reason: 'gone' };
    case 'retry':
      return { action: 'retry', delayMs: d.delayMs, at: d.at.getTime() };
    case 'dead_letter':
      return { action: 'dead', reason: 'exhausted' };
  }
}

function isSuccess(status: number | undefined): boolean {
  return status !== undefined && status >= 200 && status < 300;
}

/** What counts against the endpoint's breaker: no answer, a 5xx, 408 or 429. A 4xx means it is up. */
function breakerFailure(o: HttpOutcome): boolean {
  return o.status === undefined || o.status >= 500 || o.status === 408 || o.status === 429;
}

/** Only failures an operator must act on are announced; a disabled endpoint's backlog is not. */
function notifies(reason: FailureReason): boolean {
  return reason === 'exhausted' || reason === 'gone';
}

/** The attempt record `a` completed with what the POST got (`a` is changed and returned). */
function withOutcome(a: AttemptRecord, o: HttpOutcome): AttemptRecord {
  a.duration_ms = o.durationMs;
  if (o.status !== undefined) a.response_status_code = o.status;
  if (o.body !== undefined) a.response_body = o.body;
  if (o.error !== undefined) {
    a.error = o.error;
    a.error_code = o.errorCode ?? 'connection_failed';
  } else if (!isSuccess(o.status)) {
    a.error = `the endpoint answered ${o.status}`;
    a.error_code = 'http_status';
  }
  return a;
}

function recordOf(t: AttemptTarget, a: AttemptRecord, next: NextStep): DeliveryRecord {
  const record: DeliveryRecord = {
    id: t.deliveryId,
    endpoint_id: t.endpointId,
    event_id: t.messageId,
    event_type: t.type,
    status:
      next.action === 'delivered' ? 'delivered' : next.action === 'retry' ? 'pending' : 'failed',
    created_at: new Date(t.createdAt).toISOString(),
    updated_at: '',
    expires_at: '',
    attempts: [...t.prior, a],
    body: t.body,
  };
  if (next.action === 'retry') record.next_attempt_at = new Date(next.at).toISOString();
  if (next.action === 'dead') record.failure_reason = next.reason;
  if (t.mode === 'test') record.test = true;
  return record;
}

function failureEvent(
  r: DeliveryRecord,
  url: string,
  reason: FailureReason,
): WebhookDeliveryFailed {
  const last = r.attempts[r.attempts.length - 1]!;
  return {
    type: 'WebhookDeliveryFailed',
    delivery_id: r.id,
    endpoint_id: r.endpoint_id,
    endpoint_url: url,
    event_id: r.event_id,
    event_type: r.event_type,
    reason,
    attempts: r.attempts.length,
    ...(last.response_status_code !== undefined
      ? { last_status_code: last.response_status_code }
      : {}),
    ...(last.error !== undefined ? { last_error: last.error } : {}),
    at: r.updated_at,
  };
}
