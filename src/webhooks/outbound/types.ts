/**
 * The records outbound webhooks keep in the Store's key-value space, and the options of the
 * outbound side. Field names are snake_case because these records are what the management API
 * returns (the shapes of seed 003: `is_active`, `response_status_code`, ...).
 */
import type { Definition } from '../../core/definitions.js';
import type { Duration } from '../../core/duration.js';
import type { RetryPolicy } from '../../core/retry.js';
import type { BreakerStatus } from '../../integrations/policies/breaker.js';
import type { Resolver } from '../ssrf.js';

/** Key-value scopes; one per kind of record, so listing one kind never reads another. */
export const SCOPES = {
  endpoints: 'keel.webhooks.endpoints',
  deliveries: 'keel.webhooks.deliveries',
  breakers: 'keel.webhooks.breakers',
  inbound: 'keel.webhooks.inbound',
} as const;

/** An endpoint as stored, secret included. Never returned by the API except at creation. */
export interface EndpointRecord {
  id: string;
  name?: string;
  url: string;
  /** Event types it receives: exact names, `prefix.*`, or `*` for all. */
  events: string[];
  /** `whsec_` + base64: the Standard Webhooks signing secret. */
  secret: string;
  is_active: boolean;
  /** Why it was disabled, when Keel disabled it (a `410 Gone`). */
  disabled_reason?: string;
  created_at: string;
  updated_at: string;
}

/** An endpoint as the API shows it: no secret, with its health. */
export interface EndpointView extends Omit<EndpointRecord, 'secret'> {
  /** Active and its circuit breaker closed. */
  is_healthy: boolean;
  circuit_state: BreakerStatus;
}

/** One HTTP attempt of a delivery, as the delivery log shows it. */
export interface AttemptRecord {
  /** 1 for the first attempt; manual retries continue the count. */
  attempt: number;
  /** When the attempt started (ISO 8601). */
  at: string;
  duration_ms: number;
  /** The response status; absent when no response came (refused, timed out, blocked). */
  response_status_code?: number;
  /** The first `responseBodyLimit` bytes of the response body (default 1 KiB). */
  response_body?: string;
  /** Why the attempt failed, when it did. Never contains the secret. */
  error?: string;
  /**
   * A stable code for a failure without a response: `timeout`, `connection_failed`,
   * `blocked_address`, `dns_failed`, `invalid_url`, `circuit_open`, `endpoint_disabled`,
   * `endpoint_deleted`; or `http_status` for a non-2xx answer.
   */
  error_code?: string;
  /** True for an attempt asked for through the API (manual retry, replay, test). */
  manual?: boolean;
}

/** Where a delivery stands. `failed` deliveries are the dead-letter queue. */
export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

/** Why a delivery was dead-lettered. */
export type FailureReason =
  /** Every attempt of the retry schedule failed. */
  | 'exhausted'
  /** The endpoint answered `410 Gone` (and was disabled). */
  | 'gone'
  /** The endpoint was disabled before the delivery could complete. */
  | 'endpoint_disabled'
  /** The endpoint was deleted before the delivery could complete. */
  | 'endpoint_deleted'
  /** A one-attempt delivery (a test) failed. */
  | 'test_failed';

/** One delivery of one event to one endpoint, with every attempt. */
export interface DeliveryRecord {
  id: string;
  endpoint_id: string;
  /** The message id: the `webhook-id` header, the same on every attempt. */
  event_id: string;
  event_type: string;
  status: DeliveryStatus;
  created_at: string;
  updated_at: string;
  /** When the next automatic attempt is due (pending deliveries). */
  next_attempt_at?: string;
  /** Set when the delivery was dead-lettered. */
  failure_reason?: FailureReason;
  /** Dead-lettered deliveries are kept until this time (the retention). */
  expires_at: string;
  attempts: AttemptRecord[];
  /** The exact body sent (JSON text), kept for manual retries and replays. */
  body: string;
  /** A test delivery (`POST /webhooks/{id}/test`): one attempt, never retried. */
  test?: boolean;
}

/**
 * The event a `WebhookDeliveryFailed` subscriber receives: a delivery was dead-lettered.
 *
 * @example
 * ```ts
 * const Ops = service({
 *   name: 'Ops',
 *   handlers: {
 *     deliveryFailed: async (ctx, e: WebhookDeliveryFailed) =>
 *       ctx.run('slack', () => slack.post(`#ops: webhook ${e.delivery_id} to ${e.endpoint_url} failed: ${e.last_error}`)),
 *   },
 * });
 * ```
 */
export interface WebhookDeliveryFailed {
  type: 'WebhookDeliveryFailed';
  delivery_id: string;
  endpoint_id: string;
  endpoint_url: string;
  event_id: string;
  event_type: string;
  reason: FailureReason;
  attempts: number;
  last_status_code?: number;
  last_error?: string;
  /** When it was dead-lettered (ISO 8601). */
  at: string;
}

/** A handler that receives `WebhookDeliveryFailed` events (one-way, journaled, once each). */
export interface EventSubscriber<E = WebhookDeliveryFailed> {
  /** The service, object or workflow. */
  target: Definition;
  handler: string;
  /** Objects and workflows: the key, or a function of the event. */
  key?: string | ((event: E) => string);
}

/** Circuit breaker policy per endpoint (see `src/integrations/policies/breaker.ts`). */
export interface EndpointBreakerOptions {
  /** Failures within `window` that open the circuit. Default 5. */
  failures?: number;
  /** Default `1m`. */
  window?: Duration;
  /** How long it stays open before one probe. Default `30s`. */
  reset?: Duration;
}

/**
 * An extra signature header on every delivery attempt: the HMAC of the body, hex, prefixed with
 * the algorithm (`X-Webhook-Signature: sha256=5d41...`), keyed with the endpoint's secret exactly
 * as the API shows it (`whsec_...`, as UTF-8 bytes). It is sent in addition to the Standard
 * Webhooks headers, so a receiver can check either. From a `type: webhook` declaration's
 * `signature: { algorithm, header }` (see `outboundFromDeclaration`).
 */
export interface OutboundSignature {
  algorithm: 'sha1' | 'sha256' | 'sha512';
  /** The header's name, e.g. `X-Webhook-Signature`. */
  header: string;
}

/** Options of the outbound side. Every field has a default. */
export interface OutboundOptions {
  /** An extra HMAC-of-the-body signature header (default none: Standard Webhooks headers only). */
  signature?: OutboundSignature;
  /**
   * How a failing delivery is retried: Keel's one retry vocabulary (the same as handlers' and
   * integrations'). Fields left out come from `WEBHOOK_RETRY`: six attempts on the schedule
   * `[1m, 5m, 30m, 2h, 8h]` with ±10% jitter, honouring a receiver's `Retry-After` up to `1d`.
   * A `schedule` given without `jitter` is followed exactly; `maxAttempts` alone keeps the
   * default schedule (its first delays, or its last one repeated).
   */
  retry?: RetryPolicy;
  /** How long delivery records (the log and the dead-letter queue) are kept. Default `7d`. */
  retention?: Duration;
  /** Per-attempt HTTP timeout, connection included. Default `15s`. */
  timeout?: Duration;
  /** Bytes of the response body kept in the log. Default 1024. */
  responseBodyLimit?: number;
  /** Largest payload `publish` accepts, serialized, in bytes. Default 256 KiB. */
  maxPayloadBytes?: number;
  /** Keep-alive connections per endpoint origin. Default 32. */
  connectionsPerEndpoint?: number;
  /**
   * Hosts, addresses or CIDR blocks that may be delivered to although not public (development
   * and tests). Default none: loopback, private, link-local and metadata addresses are refused.
   */
  allow?: readonly string[];
  /** Resolves host names; default `dns.lookup` (tests inject one to simulate DNS). */
  resolve?: Resolver;
  /** Per-endpoint circuit breaker. */
  breaker?: EndpointBreakerOptions;
  /** Handlers told about each dead-lettered delivery. */
  onDeliveryFailed?: EventSubscriber | readonly EventSubscriber[];
  /**
   * With a store shared by several processes, how long a process trusts its cached copy of the
   * endpoints and breakers before reading them again. Default `1s`. (One process: changes are
   * seen at once.)
   */
  cacheTtl?: Duration;
  /** A publish matching more endpoints than this fans out through a separate invocation. Default 16. */
  directFanout?: number;
}

/** What a deliver invocation receives. Short keys: it is stored once per delivery. */
export interface DeliverInput {
  /** Delivery id. */
  d: string;
  /** Endpoint id. */
  e: string;
  /** Message id (`webhook-id`). */
  m: string;
  /** Event type. */
  t: string;
  /** The body, exactly as sent. */
  b: string;
  /** Created at, epoch ms. */
  c: number;
  /** One attempt only (a test delivery). */
  x?: 1;
}

/** What a fan-out invocation receives (a publish matching many endpoints, or `Webhooks.publish`). */
export interface FanoutInput {
  m: string;
  t: string;
  b: string;
  c: number;
}

/** What a manual retry invocation receives. */
export interface RetryInput {
  d: string;
}
