/**
 * The `IntegrationPatterns` service: one handler per pattern of seed 003, each calling a declared
 * integration as a journaled step (`use(ctx, integration)`), and the handlers of the seed's
 * events table:
 *
 * | Event                      | Action                                  |
 * |----------------------------|-----------------------------------------|
 * | `WebhookDeliveryFailed`    | a Slack message                         |
 * | `IntegrationCircuitOpened` | a Slack message + an outbound webhook   |
 * | `IntegrationCircuitClosed` | a log line                              |
 *
 * The events reach the handlers durably: the integrations runtime's `subscribers` and the
 * webhooks' `onDeliveryFailed` (see {@link createIntegrationPatterns}).
 */
import type { Context } from '../../src/core/context.js';
import { TerminalError } from '../../src/core/errors.js';
import { service, type Definition } from '../../src/index.js';
import {
  env,
  slack,
  use,
  type EventSubscriber as IntegrationSubscriber,
  type Integration,
  type IntegrationEvent,
} from '../../src/integrations/index.js';
import { publish } from '../../src/webhooks/outbound/publish.js';
import type { EventSubscriber, WebhookDeliveryFailed } from '../../src/webhooks/outbound/types.js';
import { patternIntegrations, type PatternIntegrations } from './declarations.js';

/** The Slack connector the events table posts with. */
export type OpsSlack = ReturnType<typeof slack>;

/** The service's name. */
export const SERVICE = 'IntegrationPatterns';

/** The event type the outbound webhook carries when a circuit opens. */
export const CIRCUIT_OPENED_EVENT = 'integration.circuit_opened';

/** What {@link createIntegrationPatterns} builds. */
export interface IntegrationPatterns {
  /** The `IntegrationPatterns` service. */
  definitions: Definition[];
  /** The seven declared integrations and the ops Slack channel, for the integrations runtime. */
  integrations: Integration[];
  /** The same, by name. */
  byName: PatternIntegrations;
  /** The Slack channel the events table posts to (`OpsSlack`). */
  opsSlack: OpsSlack;
  /** For the integrations runtime's `subscribers`: circuit events → `onCircuitEvent`. */
  subscribers: IntegrationSubscriber[];
  /** For the webhooks' `onDeliveryFailed`: dead-lettered deliveries → `onWebhookDeliveryFailed`. */
  onDeliveryFailed: EventSubscriber;
}

/**
 * Builds the example: by default the file's declarations with their mocks, Slack from
 * `$SLACK_OPS_WEBHOOK_URL` (its mock when unset), log lines to `console.info`.
 *
 * @example
 * ```ts
 * const patterns = createIntegrationPatterns();
 * const app = await startApp({
 *   services: patterns.definitions,
 *   integrationsFile: INTEGRATIONS_FILE,
 *   integrations: { integrations: patterns.integrations, subscribers: patterns.subscribers },
 *   webhooks: { onDeliveryFailed: patterns.onDeliveryFailed },
 * });
 * ```
 */
export function createIntegrationPatterns(
  options: {
    integrations?: PatternIntegrations;
    opsSlack?: OpsSlack;
    log?: (line: string) => void;
  } = {},
): IntegrationPatterns {
  const i = options.integrations ?? patternIntegrations();
  const ops =
    options.opsSlack ?? slack({ name: 'OpsSlack', webhookUrl: env('SLACK_OPS_WEBHOOK_URL') });
  const log = options.log ?? ((line: string) => console.info(line));

  const notify = (ctx: Context, n: { to: string; message: string }) =>
    use(ctx, i.NotificationService).send<{ id: string; to: string; status: string }>(n);

  const IntegrationPatterns = service({
    name: SERVICE,
    handlers: {
      /** GitHubAPI.get_user: cached 5 minutes, behind the breaker and the rate limit. */
      githubUser: async (ctx, username: string) =>
        use(ctx, i.GitHubAPI).get_user({ username: required(username, 'username') }),
      /** GitHubAPI.list_repos: the authenticated user's repositories. */
      githubRepos: async (ctx) => use(ctx, i.GitHubAPI).list_repos(),
      /** GitHubAPI.create_issue. */
      createIssue: async (
        ctx,
        input: { owner: string; repo: string; title: string; body?: string },
      ) => use(ctx, i.GitHubAPI).create_issue({ ...input }),
      /** GitHubAPI.get_rate_limit. */
      githubRateLimit: async (ctx) => use(ctx, i.GitHubAPI).get_rate_limit(),
      /** WeatherAPI.get_current: cached 15 minutes; the last good answer while unavailable. */
      weather: async (ctx, city: string) =>
        use(ctx, i.WeatherAPI).get_current({ city: required(city, 'city') }),
      /** StripeAPI.create_charge: every retry carries the same generated idempotency key. */
      charge: async (ctx, input: { amount: number; currency?: string; source?: string }) =>
        use(ctx, i.StripeAPI).create_charge({
          amount: input.amount,
          currency: input.currency ?? 'usd',
          source: input.source ?? 'tok_visa',
        }),
      /** GitHubGraphQL.get_user_repos: `login` required, `first` 10 unless given. */
      userRepos: async (ctx, input: { login: string; first?: number }) =>
        use(ctx, i.GitHubGraphQL).get_user_repos({ ...input }),
      /** NotificationService.send: one notification; calls are batched 100 at a time. */
      notify: async (ctx, input: { to: string; message: string }) => notify(ctx, input),
      /** `count` notifications at once: they leave in batches of at most 100. */
      notifyMany: async (ctx, input: { count: number; to?: string; message?: string }) => {
        const count = Math.floor(input.count);
        if (!(count >= 1 && count <= 1000))
          throw new TerminalError('count must be between 1 and 1000', { status: 400 });
        const sent = await Promise.all(
          Array.from({ length: count }, (_, n) =>
            notify(ctx, {
              to: input.to ?? `user${n + 1}@example.com`,
              message: input.message ?? `Notification ${n + 1}`,
            }),
          ),
        );
        return { sent: sent.filter((s) => s.status === 'sent').length, results: sent.length };
      },
      /** StorageService.put_object (SigV4). */
      putObject: async (ctx, input: { bucket: string; key: string; body: string }) =>
        use(ctx, i.StorageService).put_object({ ...input }),
      /** StorageService.get_object. */
      getObject: async (ctx, input: { bucket: string; key: string }) =>
        use(ctx, i.StorageService).get_object({ ...input }),
      /** WebhookDeliveryService: publishes an event to the subscribed webhook endpoints. */
      publishEvent: async (ctx, input: { type: string; data?: unknown }) =>
        publish(ctx, required(input?.type, 'type'), input.data ?? null),

      /** Events table: `WebhookDeliveryFailed` → Slack. */
      onWebhookDeliveryFailed: async (ctx, e: WebhookDeliveryFailed) => {
        await use(ctx, ops).post_message({
          text: `:rotating_light: Webhook delivery failed: ${e.event_type} to ${e.endpoint_url} after ${e.attempts} attempt${e.attempts === 1 ? '' : 's'} (${e.reason}${e.last_status_code === undefined ? '' : `, last status ${e.last_status_code}`}). Delivery ${e.delivery_id} is in the dead-letter queue: POST /webhooks/deliveries/${e.delivery_id}/retry`,
        });
        return { notified: true };
      },
      /**
       * Events table: `IntegrationCircuitOpened` → Slack + an outbound webhook;
       * `IntegrationCircuitClosed` → a log line. (Half-opened is only logged by the runtime.)
       */
      onCircuitEvent: async (ctx, e: IntegrationEvent) => {
        if (e.type === 'IntegrationCircuitOpened') {
          await use(ctx, ops).post_message({
            text: `:warning: Circuit opened for ${e.integration} (${e.reason ?? 'failures'}, ${e.failures ?? '?'} failures); calls fail fast until ${e.probeAt ?? 'the reset time'}`,
          });
          await publish(ctx, CIRCUIT_OPENED_EVENT, e, { id: safeId(e.id) });
          return { action: 'slack+webhook' };
        }
        if (e.type === 'IntegrationCircuitClosed') {
          await ctx.run('log', () => {
            log(
              `IntegrationCircuitClosed: ${e.integration} recovered (${e.reason ?? 'closed'}) at ${e.at}`,
            );
          });
          return { action: 'log' };
        }
        return { action: 'none' };
      },
    },
  });

  return {
    definitions: [IntegrationPatterns],
    integrations: [...Object.values(i), ops],
    byName: i,
    opsSlack: ops,
    subscribers: [{ service: SERVICE, handler: 'onCircuitEvent' }],
    onDeliveryFailed: { target: IntegrationPatterns, handler: 'onWebhookDeliveryFailed' },
  };
}

function required(value: string | undefined, name: string): string {
  if (typeof value !== 'string' || value.trim() === '')
    throw new TerminalError(`${name} is required`, { status: 400 });
  return value;
}

/** A message id from an event id: receivers deduplicate a repeated event on it. */
function safeId(id: string): string {
  return id.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 128);
}
