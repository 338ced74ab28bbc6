/**
 * The outbound runtime of one engine: endpoints, the delivery log, breakers, the HTTP sender,
 * and the operations the management API and `publish` need. Registered with the engine under
 * {@link WEBHOOKS_RUNTIME}, so the internal service's handlers reach it from their context.
 */
import { registerWebhookMetrics, WebhookTotals } from './metrics.js';
import { ConflictError, NotFoundError, TerminalError, ValidationError } from '../../core/errors.js';
import type { StepWithWrites } from '../../core/replay.js';
import { contextKey, type ExtensionHost } from '../../engine/extension.js';
import { RetrySchedule } from '../schedule.js';
import { policyOf } from '../../core/retry.js';
import { checkEventType } from './endpoint-input.js';
import { runAttempt, type AttemptDeps, type AttemptResult } from './attempt.js';
import { breakerOptions, EndpointBreakers } from './breakers.js';
import type { ResolvedOutbound } from './options.js';
import { DeliveryLog, summary } from './deliveries.js';
import { Endpoints } from './endpoints.js';
import { Sender } from './http.js';
import { deliveryId, deliverySortKey, newMessageId, parseDeliveryId } from './ids.js';
import type {
  AttemptRecord,
  DeliverInput,
  DeliveryRecord,
  EndpointRecord,
  EndpointView,
  FanoutInput,
  OutboundOptions,
  RetryInput,
} from './types.js';

/** Where handlers' contexts find the runtime (see `runtimeOf` in service.ts). */
export const WEBHOOKS_RUNTIME = contextKey<WebhooksRuntime>('keel.webhooks');
/** The internal service that runs deliveries. */
export const SERVICE_NAME = 'keel.webhooks';

/** What a publish step decided: deliveries to start directly, or a fan-out invocation. */
export type Plan =
  | { m: string; c: number; d: Array<[deliveryId: string, endpointId: string]> }
  | { m: string; c: number; f: 1 };

const MESSAGE_ID = /^[A-Za-z0-9_-]{1,128}$/;

/** The answer of `POST /webhooks/{id}/test`: the test delivery and how its one attempt went. */
export interface TestDelivery extends Omit<DeliveryRecord, 'body'> {
  /** The endpoint's answer; null when none came (refused, timed out, blocked). */
  response_status_code: number | null;
  /** How long the attempt took, in milliseconds. */
  duration_ms: number;
}

export class WebhooksRuntime {
  readonly endpoints: Endpoints;
  readonly log: DeliveryLog;
  readonly breakers: EndpointBreakers;
  readonly sender: Sender;
  private readonly deps: AttemptDeps;
  /** Attempts counted for `GET /metrics`. */
  readonly totals = new WebhookTotals();

  constructor(
    readonly host: ExtensionHost,
    readonly options: ResolvedOutbound,
    raw: OutboundOptions,
  ) {
    const { store, clock } = host;
    const ttl = store.shared ? options.cacheTtlMs : Infinity;
    this.endpoints = new Endpoints(store, clock, ttl);
    this.log = new DeliveryLog(store, clock, options.retentionMs);
    this.breakers = new EndpointBreakers(store, clock, breakerOptions(raw.breaker), ttl);
    this.sender = new Sender({
      allow: options.allow,
      ...(raw.resolve ? { resolve: raw.resolve } : {}),
      timeoutMs: options.timeoutMs,
      bodyLimit: options.responseBodyLimit,
      connections: options.connections,
    });
    this.deps = {
      clock,
      endpoints: this.endpoints,
      breakers: this.breakers,
      sender: this.sender,
      log: this.log,
      signature: options.signature,
      totals: this.totals,
      schedule: (now) =>
        new RetrySchedule({
          retry: policyOf(options.retry),
          now: () => now,
          random: Math.random,
        }),
    };
    if (host.metrics) registerWebhookMetrics(host.metrics, this.totals, this.log);
  }

  // ---- publishing --------------------------------------------------------------------------

  /** The body of an event: Standard Webhooks' `{ type, timestamp, data }`. */
  body(type: string, createdAt: number, payload: unknown): string {
    let body: string;
    try {
      body = JSON.stringify({
        type,
        timestamp: new Date(createdAt).toISOString(),
        data: payload ?? null,
      });
    } catch (err) {
      throw new TerminalError(
        `the payload of "${type}" cannot be sent as JSON: ${(err as Error).message}`,
        { code: 'not_json', status: 400 },
      );
    }
    // A UTF-16 unit is at most 3 bytes of UTF-8: most bodies need no byte count at all.
    if (
      body.length * 3 > this.options.maxPayloadBytes &&
      Buffer.byteLength(body) > this.options.maxPayloadBytes
    )
      throw new TerminalError(
        `the payload of "${type}" is ${Buffer.byteLength(body)} bytes serialized, over the limit of ${this.options.maxPayloadBytes} (webhooks.maxPayloadBytes); send a reference to the data instead`,
        { code: 'payload_too_large', status: 413 },
      );
    return body;
  }

  checkMessageId(id: string): void {
    if (!MESSAGE_ID.test(id))
      throw new ValidationError(
        `event id ${JSON.stringify(id)} is not valid: 1 to 128 letters, digits, "_" or "-" (it becomes the webhook-id header)`,
      );
  }

  /** The body of a publish step: who gets this event. */
  async plan(type: string, id: string | undefined): Promise<Plan> {
    const c = this.host.clock.now();
    const m = id ?? newMessageId(c);
    const matched = await this.endpoints.matching(type);
    if (matched.length > this.options.directFanout) return { m, c, f: 1 };
    return { m, c, d: pairs(matched, c) };
  }

  /** The body of a fan-out's step: every endpoint subscribed now. */
  async match(type: string, createdAt: number): Promise<Array<[string, string]>> {
    return pairs(await this.endpoints.matching(type), createdAt);
  }

  deliverInput(
    d: string,
    e: string,
    m: string,
    t: string,
    b: string,
    c: number,
    test = false,
  ): DeliverInput {
    const input: DeliverInput = { d, e, m, t, b, c };
    if (test) input.x = 1;
    return input;
  }

  fanoutInput(m: string, t: string, b: string, c: number): FanoutInput {
    return { m, t, b, c };
  }

  retryInput(d: string): RetryInput {
    return { d };
  }

  // ---- attempts ----------------------------------------------------------------------------

  /** The body of a deliver invocation's attempt step: its result and its record's write. */
  attempt(
    i: DeliverInput,
    prior: readonly AttemptRecord[],
  ): Promise<StepWithWrites<AttemptResult>> {
    return runAttempt(this.deps, {
      deliveryId: i.d,
      endpointId: i.e,
      messageId: i.m,
      type: i.t,
      body: i.b,
      createdAt: i.c,
      prior,
      mode: i.x ? 'test' : 'auto',
    });
  }

  /** The body of a manual retry's step: one more attempt of a finished delivery. */
  async manualAttempt(deliveryId: string): Promise<StepWithWrites<AttemptResult>> {
    const stored = await this.log.get(deliveryId);
    if (!stored) throw deliveryNotFound(deliveryId);
    const r = stored.record;
    return runAttempt(this.deps, {
      deliveryId: r.id,
      endpointId: r.endpoint_id,
      messageId: r.event_id,
      type: r.event_type,
      body: r.body,
      createdAt: Date.parse(r.created_at),
      prior: r.attempts,
      mode: 'manual',
      ...(r.failure_reason ? { previousFailure: r.failure_reason } : {}),
    });
  }

  // ---- operations of the management API ----------------------------------------------------

  /** An endpoint as the API shows it. */
  view(e: EndpointRecord): EndpointView {
    const { secret: _secret, ...rest } = e;
    const circuit = this.breakers.status(e.id);
    return { ...rest, is_healthy: e.is_active && circuit === 'closed', circuit_state: circuit };
  }

  /**
   * Sends a `webhook.test` event to one endpoint, one attempt, and returns how it went: the
   * delivery record, with its one attempt's `response_status_code` (null when no answer came)
   * and `duration_ms` at the top level, as seed 003's `POST /webhooks/{id}/test` shows them.
   */
  async test(endpointId: string): Promise<TestDelivery> {
    const endpoint = await this.endpoints.require(endpointId);
    const c = this.host.clock.now();
    const m = newMessageId(c);
    const d = deliveryId(endpoint.id, deliverySortKey(c));
    const type = 'webhook.test';
    const body = this.body(type, c, {
      message: 'a test event from Keel',
      endpoint_id: endpoint.id,
    });
    await this.host.invoke({
      service: SERVICE_NAME,
      handler: 'deliver',
      input: this.deliverInput(d, endpoint.id, m, type, body, c, true),
    });
    const record = summary((await this.log.get(d))!.record);
    const last = record.attempts[record.attempts.length - 1];
    return {
      ...record,
      response_status_code: last?.response_status_code ?? null,
      duration_ms: last?.duration_ms ?? 0,
    };
  }

  /**
   * Retries one delivery now (one attempt, past the circuit breaker) and returns its record.
   * 409 while it is still pending (its automatic attempts are not over) or when its endpoint is
   * disabled. Two concurrent retries of the same record version are one attempt.
   */
  async retry(id: string): Promise<Omit<DeliveryRecord, 'body'>> {
    const stored = await this.retryable(id);
    await this.host.invoke({
      service: SERVICE_NAME,
      handler: 'retry',
      input: this.retryInput(id),
      idempotencyKey: `${id}:${stored.version}`,
    });
    return summary((await this.log.get(id))!.record);
  }

  /**
   * Starts a retry of every dead-lettered delivery of an endpoint created since `since`.
   * `attempts[i]`: how many attempts delivery `deliveries[i]` had when its retry started, so a
   * client following the replay (`keel webhooks replay --wait`) knows when its attempt is made.
   */
  async replay(
    endpointId: string,
    since: number,
  ): Promise<{ replayed: number; deliveries: string[]; attempts: number[] }> {
    const endpoint = await this.endpoints.require(endpointId);
    if (!endpoint.is_active) throw endpointDisabled(endpoint);
    const started: string[] = [];
    const attempts: number[] = [];
    for await (const { record, version } of this.log.failedSince(endpointId, since)) {
      await this.host.send({
        service: SERVICE_NAME,
        handler: 'retry',
        input: this.retryInput(record.id),
        idempotencyKey: `${record.id}:${version}`,
      });
      started.push(record.id);
      attempts.push(record.attempts.length);
    }
    return { replayed: started.length, deliveries: started, attempts };
  }

  /** Publishes from outside a handler (durable once it resolves). */
  async publish(
    type: string,
    payload: unknown,
    id?: string,
  ): Promise<{ id: string; invocationId: string }> {
    checkEventType(type);
    if (id !== undefined) this.checkMessageId(id);
    const c = this.host.clock.now();
    const m = id ?? newMessageId(c);
    const sent = await this.host.send({
      service: SERVICE_NAME,
      handler: 'fanout',
      input: this.fanoutInput(m, type, this.body(type, c, payload), c),
      // With an explicit id, publishing the same event again is the same invocation.
      ...(id !== undefined ? { idempotencyKey: id } : {}),
    });
    return { id: m, invocationId: sent.invocationId };
  }

  /** Closes the outbound connection pools; closing again returns the same promise. */
  close(): Promise<void> {
    return (this.closing ??= this.sender.close());
  }

  private closing: Promise<void> | undefined;

  private async retryable(id: string) {
    const ids = parseDeliveryId(id);
    if (!ids) throw deliveryNotFound(id);
    const stored = await this.log.get(id);
    if (!stored) throw deliveryNotFound(id);
    if (stored.record.status === 'pending')
      throw new ConflictError(
        `delivery ${id} is still being retried automatically (next attempt at ${stored.record.next_attempt_at}); retry it once it has failed`,
        'delivery_pending',
      );
    const endpoint = await this.endpoints.get(ids.endpointId);
    if (!endpoint)
      throw new ConflictError(
        `the endpoint of delivery ${id} was deleted; nothing to retry to`,
        'endpoint_deleted',
      );
    if (!endpoint.is_active) throw endpointDisabled(endpoint);
    return stored;
  }
}

function pairs(endpoints: readonly EndpointRecord[], c: number): Array<[string, string]> {
  return endpoints.map((e) => [deliveryId(e.id, deliverySortKey(c)), e.id]);
}

function deliveryNotFound(id: string): NotFoundError {
  return new NotFoundError(
    `no delivery "${id}" (deliveries are kept for the webhooks retention, 7 days by default)`,
  );
}

function endpointDisabled(e: EndpointRecord): ConflictError {
  return new ConflictError(
    `endpoint ${e.id} is disabled${e.disabled_reason ? ` (${e.disabled_reason})` : ''}; enable it with PUT /webhooks/${e.id} {"is_active": true} first`,
    'endpoint_disabled',
  );
}
