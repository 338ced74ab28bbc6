import type { Context } from '../core/context.js';
import { UsageError } from '../core/errors.js';
import type { DurablePromise } from '../core/futures.js';
import { BUSES_RUNTIME, type BusesRuntime } from './runtime.js';
import type { BusKind, PublishOptions } from './types.js';
import { producerSpan } from '../observability/tracing/messaging.js';

/** Publishes made so far by each handler attempt's context. */
const ordinals = new WeakMap<object, number>();

/**
 * Publishes `payload` (as JSON) from a handler, as one journaled step: once the broker confirmed
 * it (RabbitMQ publisher confirm, JetStream ack) the step is durable, and a replay does not
 * publish again. Its message id is `{invocationId}:publish:{n}` (n counts this invocation's
 * publishes in code order), the same in every retry and after a crash, so a publish repeated
 * because the process died between the broker's confirm and the journal write carries the
 * same id: JetStream drops it (`Nats-Msg-Id`, within the stream's duplicate window), and a
 * Keel subscription on RabbitMQ deduplicates by `messageId`.
 *
 * `destination` is the exchange on RabbitMQ (`''`, the default exchange, with
 * `routingKey: queue` publishes to a queue) and the subject on NATS.
 *
 * @example
 * ```ts
 * const Orders = service({
 *   name: 'Orders',
 *   handlers: {
 *     place: async (ctx, order: Order) => {
 *       await ctx.run('save', () => db.save(order));
 *       await publish(ctx, 'rabbitmq', 'orders', order, { routingKey: 'order.created' });
 *       await publish(ctx, 'nats', 'orders.created', order);
 *     },
 *   },
 * });
 * ```
 */
export function publish(
  ctx: Context,
  bus: BusKind,
  destination: string,
  payload: unknown,
  options: PublishOptions = {},
): DurablePromise<{ messageId: string }> {
  const runtime = BUSES_RUNTIME.of(ctx);
  if (runtime === undefined)
    throw new UsageError(
      `publish(ctx, '${bus}', ...): no buses on this engine. Add createBuses({...}) to the engine's extensions`,
    );
  // Synchronous up to ctx.run, so concurrent publishes take their ordinals in code order.
  const n = ordinals.get(ctx) ?? 0;
  ordinals.set(ctx, n + 1);
  const messageId = `${ctx.invocationId}:publish:${n}`;
  return publishStep(
    ctx,
    runtime,
    options.name ?? `publish ${bus} ${destination}`,
    bus,
    destination,
    options.routingKey ?? '',
    payload,
    messageId,
    options.headers ?? {},
    () => runtime.countPublished(bus),
  );
}

/**
 * The journaled publish `publish` and dead-lettering share. `counted` runs inside the step once
 * the broker confirmed, so each metric counts what this process really published: a replay
 * counts nothing again, and a dead letter is not counted as a handler's publish.
 */
export function publishStep(
  ctx: Context,
  runtime: BusesRuntime,
  name: string,
  bus: BusKind,
  destination: string,
  routingKey: string,
  payload: unknown,
  messageId: string,
  headers: Record<string, string>,
  counted: () => void,
): DurablePromise<{ messageId: string }> {
  const body = Buffer.from(JSON.stringify(payload ?? null), 'utf8');
  return ctx.run(name, async () => {
    await producerSpan(bus, destination, messageId, headers, (h) =>
      runtime.connection(bus).publish(destination, routingKey, body, messageId, h),
    );
    counted();
    return { messageId };
  });
}
