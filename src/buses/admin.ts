/**
 * The buses on the admin API, mounted under `/buses` (read-only: the user token may read it).
 *
 * | Request                            | Answer                                                      |
 * | ---------------------------------- | ----------------------------------------------------------- |
 * | `GET /buses`                       | 200 `{ connections }`: each broker connection's status      |
 * | `GET /buses/subscriptions`         | 200 `{ subscriptions }`: each with source, target, options, counters, connection |
 * | `GET /buses/subscriptions/{name}`  | 200 one subscription; 404 `not_found` for an unknown name   |
 */
import { NotFoundError } from '../core/errors.js';
import type { Mount, MountRequest } from '../http/mount.js';
import { MethodNotAllowedError, sendJson } from '../http/respond.js';
import type { BusesRuntime } from './runtime.js';
import type { ConnectionStatus, Subscription, SubscriptionCounters } from './types.js';

/** Descriptions of `key`/`dedupeBy` functions made from declarations (`payload.customerId`). */
const labels = new WeakMap<object, string>();

/**
 * Gives a subscription's function a description for the admin API; returns it.
 *
 * @example
 * ```ts
 * const key = labelled((m: BusMessage) => String(m.headers.tenant), 'headers.tenant');
 * ```
 */
export function labelled<F extends object>(fn: F, label: string): F {
  labels.set(fn, label);
  return fn;
}

/** One subscription as `GET /buses/subscriptions` lists it. */
export interface SubscriptionView {
  name: string;
  bus: Subscription['bus'];
  /** Where messages come from: RabbitMQ exchange, routing keys and queue; NATS stream, subject and durable. */
  source: Record<string, unknown>;
  /** `Service.handler`. */
  target: string;
  options: {
    /** How messages are ordered: `none`, or the key (`payload.customerId`, or `function`). */
    key: string;
    /** What messages are deduplicated by: `message id`, a path, or `function`. */
    dedupeBy: string;
    maxAttempts: number;
    prefetch: number;
    deadLetter: string | null;
  };
  counters: SubscriptionCounters;
  /** The connection it consumes on; `state: 'connecting'` before the engine started it. */
  connection: Pick<ConnectionStatus, 'state' | 'connects' | 'since' | 'lastError' | 'url'> | null;
}

/**
 * The view of one subscription.
 *
 * @example
 * ```ts
 * const views = runtime.subscriptions().map((s) => viewSubscription(runtime, s));
 * ```
 */
export function viewSubscription(rt: BusesRuntime, s: Subscription): SubscriptionView {
  const source: Record<string, unknown> =
    s.bus === 'rabbitmq'
      ? {
          exchange: s.exchange,
          exchangeType: s.exchangeType ?? 'topic',
          routingKeys: typeof s.routingKeys === 'string' ? [s.routingKeys] : [...s.routingKeys],
          queue: s.queue,
        }
      : s.bus === 'nats'
        ? { stream: s.stream, subject: s.subject, durable: s.durable }
        : { topic: s.topic, qos: 1 };
  const conn = rt.connectionStatus(s.bus);
  return {
    name: s.name,
    bus: s.bus,
    source,
    target: `${s.target.definition.name}.${s.target.handler}`,
    options: {
      key: s.key ? (labels.get(s.key) ?? 'function') : 'none',
      dedupeBy: s.dedupeBy ? (labels.get(s.dedupeBy) ?? 'function') : 'message id',
      maxAttempts: Math.max(1, s.maxAttempts ?? 3),
      // MQTT: one at a time per connection (see src/buses/mqtt.ts).
      prefetch: s.bus === 'mqtt' ? 1 : (s.prefetch ?? 32),
      deadLetter: !s.deadLetter
        ? null
        : 'queue' in s.deadLetter
          ? s.deadLetter.queue
          : 'topic' in s.deadLetter
            ? s.deadLetter.topic
            : s.deadLetter.subject,
    },
    counters: rt.counters(s.name),
    connection: conn
      ? {
          url: conn.url,
          state: conn.state,
          connects: conn.connects,
          since: conn.since,
          ...(conn.lastError !== undefined ? { lastError: conn.lastError } : {}),
        }
      : null,
  };
}

/**
 * The admin mount; `runtime` is read per request (the mount exists before the engine started).
 * `createBuses` mounts it as `mounts.admin`, so it is served under `/buses`.
 *
 * @example
 * ```ts
 * const mount = busesAdminMount(() => buses.runtime);
 * ```
 */
export function busesAdminMount(runtime: () => BusesRuntime): Mount {
  return async (r) => {
    if ((r.req.method ?? 'GET') !== 'GET')
      throw new MethodNotAllowedError(r.req.method ?? '?', 'GET');
    const rt = runtime();
    const [first, second, ...rest] = r.segments;
    if (first === undefined) return send(r, { connections: rt.status() });
    if (first === 'subscriptions' && second === undefined)
      return send(r, { subscriptions: rt.subscriptions().map((s) => viewSubscription(rt, s)) });
    if (first === 'subscriptions' && rest.length === 0) {
      const s = rt.subscription(second!);
      if (!s)
        throw new NotFoundError(`no subscription "${second}"; GET /buses/subscriptions lists them`);
      return send(r, viewSubscription(rt, s));
    }
    throw new NotFoundError(
      `no route /buses/${r.segments.join('/')}; try GET /buses/subscriptions`,
    );
  };
}

function send(r: MountRequest, value: unknown): void {
  sendJson(r.res, 200, value, r.closing ? ['connection', 'close'] : undefined);
}
