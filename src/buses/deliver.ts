/**
 * The delivery invocations a message starts: call the subscription's target, up to
 * `maxAttempts` times, and dead-letter the message when every attempt failed.
 *
 * "Failing" means the target invocation ended failed: it threw a `TerminalError` or exhausted
 * its own retry policy (transient errors are retried inside it first, as for any handler).
 * Each attempt is a new invocation of the target (a journaled call), so the count survives
 * crashes. The dead letter is published from a journaled step, with the message id
 * `{invocationId}:dead-letter`, so it is published once.
 */
import type { Context, ObjectContext } from '../core/context.js';
import { object, service } from '../core/definitions.js';
import { CancelledError, TerminalError } from '../core/errors.js';
import { publishStep } from './publish.js';
import {
  BUSES_RUNTIME,
  deadLetterOf,
  DELIVER_SERVICE,
  ORDERED_OBJECT,
  type DeliveryInput,
} from './runtime.js';
import type { Subscription } from './types.js';

/** What a delivery invocation returns. */
export interface DeliveryResult {
  /** The target's result, when an attempt succeeded. */
  result?: unknown;
  /** Attempts made. */
  attempts: number;
  /** True when every attempt failed and the message went to the dead-letter destination. */
  deadLettered: boolean;
}

async function deliver(ctx: Context, input: DeliveryInput): Promise<DeliveryResult> {
  const runtime = BUSES_RUNTIME.of(ctx);
  if (!runtime) throw new TerminalError('buses: no buses runtime on this engine');
  const sub = runtime.subscription(input.subscription);
  if (!sub)
    throw new TerminalError(
      `buses: no subscription "${input.subscription}" (removed from the code?); message ${input.message.id} not delivered`,
    );
  const max = Math.max(1, sub.maxAttempts ?? 3);
  let last: unknown;
  for (let attempt = 1; attempt <= max; attempt++) {
    try {
      const result = await callTarget(ctx, sub, input);
      return { result, attempts: attempt, deadLettered: false };
    } catch (err) {
      if (!(err instanceof TerminalError) || err instanceof CancelledError) throw err;
      last = err;
      ctx.log.warn(
        `buses: ${sub.name}: message ${input.message.id} failed (attempt ${attempt} of ${max}): ${err.message}`,
      );
    }
  }
  const error = last instanceof Error ? last.message : String(last);
  const dest = deadLetterOf(sub);
  if (!dest)
    throw new TerminalError(
      `buses: ${sub.name}: message ${input.message.id} failed ${max} attempts and the subscription has no deadLetter: ${error}`,
    );
  await publishStep(
    ctx,
    runtime,
    'dead-letter',
    sub.bus,
    dest.destination,
    dest.routingKey,
    { subscription: sub.name, message: input.message, error, attempts: max },
    `${ctx.invocationId}:dead-letter`,
    { 'x-keel-error': error, 'x-keel-subscription': sub.name },
    () => runtime.countDeadLetter(sub.name),
  );
  return { attempts: max, deadLettered: true };
}

function callTarget(ctx: Context, sub: Subscription, input: DeliveryInput): Promise<unknown> {
  const d = sub.target.definition;
  const key = input.key ?? '';
  const client =
    d.kind === 'service'
      ? ctx.serviceClient(d)
      : d.kind === 'object'
        ? ctx.objectClient(d, key)
        : ctx.workflowClient(d, key);
  const fn = (client as Record<string, (input: unknown) => Promise<unknown>>)[sub.target.handler];
  if (!fn) throw new TerminalError(`buses: ${d.name} has no handler "${sub.target.handler}"`);
  return fn(input.message);
}

// Deliveries must not give up on a store hiccup: their own failures are retried until they
// succeed; the target's failures are counted above.
const retry = { maxAttempts: Infinity, initialInterval: '1s', maxInterval: '1m' } as const;

/** Unordered deliveries: run concurrently. */
export const DeliverService = service({
  name: DELIVER_SERVICE,
  internal: true,
  retry,
  handlers: { deliver },
});

/** Ordered deliveries: keyed `{subscription}/{key}`, so one key's messages run one at a time. */
export const OrderedObject = object({
  name: ORDERED_OBJECT,
  internal: true,
  retry,
  handlers: {
    deliver: (ctx: ObjectContext, input: DeliveryInput) => deliver(ctx, input),
  },
});
