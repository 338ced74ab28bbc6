/**
 * The internal Keel service that runs outbound deliveries: each delivery of an event to an
 * endpoint is one invocation of `keel.webhooks/deliver`, whose attempts are journaled steps and
 * whose waits between them are durable timers. So a delivery survives crashes and restarts the
 * way every invocation does, a waiting delivery holds no memory, and on a shared PostgreSQL
 * store deliveries spread over the processes like any invocation.
 */
import type { Context } from '../../core/context.js';
import { service } from '../../core/definitions.js';
import { TerminalError } from '../../core/errors.js';
import { runWithWrites } from '../../engine/extension.js';
import type { AttemptResult } from './attempt.js';
import { SERVICE_NAME, WEBHOOKS_RUNTIME, type Plan, type WebhooksRuntime } from './runtime.js';
import type {
  AttemptRecord,
  DeliverInput,
  EventSubscriber,
  FanoutInput,
  RetryInput,
  WebhookDeliveryFailed,
} from './types.js';

/** The runtime of the engine running `ctx`, or a terminal error saying how to enable it. */
export function runtimeOf(ctx: Context): WebhooksRuntime {
  const rt = WEBHOOKS_RUNTIME.of(ctx);
  if (!rt)
    throw new TerminalError(
      "webhooks are not enabled on this engine: pass `webhooks: {...}` to startApp, or add `createWebhooks(options)` to the engine's extensions",
      { code: 'webhooks_not_enabled' },
    );
  return rt;
}

type AnySend = Record<string, (input: unknown) => { invocationId: Promise<string> }>;

function deliveries(ctx: Context): AnySend {
  return ctx.serviceSendClient(WebhooksService) as unknown as AnySend;
}

/** Starts the deliveries a plan names; each send is journaled with the invocation it starts. */
export async function startDeliveries(
  ctx: Context,
  rt: WebhooksRuntime,
  type: string,
  body: string,
  plan: Plan,
): Promise<number> {
  const client = deliveries(ctx);
  if ('f' in plan) {
    await client.fanout!(rt.fanoutInput(plan.m, type, body, plan.c)).invocationId;
    return -1;
  }
  await Promise.all(
    plan.d.map(
      ([d, e]) => client.deliver!(rt.deliverInput(d, e, plan.m, type, body, plan.c)).invocationId,
    ),
  );
  return plan.d.length;
}

function notify(
  ctx: Context,
  subscribers: readonly EventSubscriber[],
  event: WebhookDeliveryFailed,
) {
  return Promise.all(
    subscribers.map((s) => {
      const key = typeof s.key === 'function' ? s.key(event) : (s.key ?? '');
      const client = (s.target.kind === 'service'
        ? ctx.serviceSendClient(s.target)
        : s.target.kind === 'object'
          ? ctx.objectSendClient(s.target, key)
          : ctx.workflowSendClient(s.target, key)) as unknown as AnySend;
      return client[s.handler]!(event).invocationId;
    }),
  );
}

/**
 * The internal service: `internal`, so the ingress does not route to it (its inputs are made only
 * by Keel: a delivery's body is signed with the endpoint's secret as it is given).
 */
export const WebhooksService = service({
  name: SERVICE_NAME,
  internal: true,
  // A store error inside an attempt must not end a delivery: retry it until the store is back.
  retry: { maxAttempts: Infinity, initialInterval: '1s', maxInterval: '1m' },
  handlers: {
    /** Delivers one event to one endpoint: attempts on the schedule, then delivered or dead. */
    deliver: async (ctx: Context, input: DeliverInput) => {
      const rt = runtimeOf(ctx);
      const attempts: AttemptRecord[] = [];
      for (let n = 1; ; n++) {
        // The delivery record rides in the commit of the attempt's journal entry.
        const r: AttemptResult = await runWithWrites(ctx, `attempt ${n}`, () =>
          rt.attempt(input, attempts),
        );
        attempts.push(r.a);
        if (r.next.action === 'retry') {
          await ctx.sleep(r.next.delayMs);
          continue;
        }
        if (r.failed && rt.options.subscribers.length > 0)
          await notify(ctx, rt.options.subscribers, r.failed);
        return { status: r.next.action === 'delivered' ? 'delivered' : 'failed', attempts: n };
      }
    },

    /** Fans an event out to every subscribed endpoint (many endpoints, or an outside publish). */
    fanout: async (ctx: Context, input: FanoutInput) => {
      const rt = runtimeOf(ctx);
      const d = await ctx.run('match endpoints', () => rt.match(input.t, input.c));
      return {
        deliveries: await startDeliveries(ctx, rt, input.t, input.b, { m: input.m, c: input.c, d }),
      };
    },

    /** One manual attempt of a finished delivery (`POST /webhooks/deliveries/{id}/retry`). */
    retry: async (ctx: Context, input: RetryInput) => {
      const rt = runtimeOf(ctx);
      const r = await runWithWrites(ctx, 'attempt', () => rt.manualAttempt(input.d));
      return { status: r.next.action === 'delivered' ? 'delivered' : 'failed' };
    },
  },
});
