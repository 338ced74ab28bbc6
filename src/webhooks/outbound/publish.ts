import type { Context } from '../../core/context.js';
import { UsageError } from '../../core/errors.js';
import { checkEventType } from './endpoint-input.js';
import { runtimeOf, startDeliveries } from './service.js';

/** Options of {@link publish}. */
export interface PublishOptions {
  /**
   * The message id receivers see as `webhook-id` (1-128 letters, digits, `_`, `-`). Default: a
   * new `msg_...` id. Give your own (`order-42-shipped`) when receivers should be able to
   * deduplicate on a business id.
   */
  id?: string;
}

/** What {@link publish} did. */
export interface Published {
  /** The message id (`webhook-id`). */
  id: string;
  /** Deliveries started; -1 when a fan-out invocation starts them (many endpoints). */
  deliveries: number;
}

/**
 * Publishes an event from a handler to every active endpoint subscribed to `type`, exactly once:
 * which endpoints match is a journaled step and each delivery is a journaled send, so a replay,
 * a retry of the handler or a crash never publishes twice. Each delivery then runs on its own,
 * signed per Standard Webhooks and retried on the schedule; `publish` does not wait for them.
 *
 * The body each endpoint receives is `{ "type", "timestamp", "data": payload }`.
 *
 * Await each `publish` before starting the next one in the same handler: a publish journals its
 * sends after its step completes, so two running at once would record them in an order that
 * depends on timing, which a replay cannot reproduce. Starting one while another is pending
 * throws a `UsageError`.
 *
 * @example
 * ```ts
 * import { publish } from 'keel/webhooks';
 *
 * export const Orders = object({
 *   name: 'Orders',
 *   handlers: {
 *     ship: async (ctx, tracking: string) => {
 *       ctx.set('status', 'shipped');
 *       await publish(ctx, 'order.shipped', { orderId: ctx.key, tracking });
 *     },
 *   },
 * });
 * ```
 */
export async function publish(
  ctx: Context,
  type: string,
  payload: unknown,
  options: PublishOptions = {},
): Promise<Published> {
  const rt = runtimeOf(ctx);
  checkEventType(type);
  if (options.id !== undefined) rt.checkMessageId(options.id);
  if (publishing.has(ctx))
    throw new UsageError(
      `publish("${type}") started while another publish of this handler is still running; await each publish before the next (not Promise.all), so that replays journal them in the same order`,
    );
  publishing.add(ctx);
  try {
    const plan = await ctx.run(`webhooks: publish ${type}`, () => rt.plan(type, options.id));
    // Rebuilt from journaled values on replay: the same bytes every time.
    const body = rt.body(type, plan.c, payload);
    return { id: plan.m, deliveries: await startDeliveries(ctx, rt, type, body, plan) };
  } finally {
    publishing.delete(ctx);
  }
}

/** Contexts with a publish in progress. */
const publishing = new WeakSet<object>();
