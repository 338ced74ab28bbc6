/**
 * Slack: messages through an incoming webhook. The webhook's URL is the whole endpoint and its
 * only credential, so it comes from the environment like a secret.
 */
import { integration } from '../declarations/config.js';
import { env, type Configurable } from '../declarations/secrets.js';
import {
  withOverrides,
  type Connector,
  type ConnectorOptions,
  type OperationTypes,
} from './common.js';
import { slackMock } from './slack.mock.js';
import type { SlackWebhookMessage, SlackWebhookResult } from './slack.types.js';

export type * from './slack.types.js';

/** The operations of {@link slack}, with their parameter and result types. */
export interface SlackOperations {
  post_message: OperationTypes<SlackWebhookMessage, SlackWebhookResult>;
}

/** Options of {@link slack}. */
export interface SlackOptions extends Omit<ConnectorOptions, 'baseUrl'> {
  /** `https://hooks.slack.com/services/T…/B…/…`. Default `env('SLACK_WEBHOOK_URL')`. */
  webhookUrl?: Configurable;
}

/**
 * Slack, ready to call: `post_message` to an incoming webhook.
 *
 * Defaults: the URL from `$SLACK_WEBHOOK_URL`; JSON bodies; at most 1 message per second (Slack's
 * limit per webhook, shared by every process); 10s timeout; 3 retries from 1s honouring
 * `Retry-After`; a breaker opening after 5 failures in a minute for 30s. Slack's error words
 * (`no_text`, `channel_not_found`, ...) come with a 4xx and are not retried. One webhook posts to
 * one channel: declare one connector per channel, each with its own `name` and URL.
 *
 * Mock: answers `ok` and keeps every message in `mock.requests`; `no_text` for an empty message,
 * 410 `channel_is_archived` for `channel: '#archived'`, 404 `channel_not_found` for a channel
 * named `missing…`.
 *
 * @example
 * ```ts
 * export const orders = slack({ name: 'SlackOrders', webhookUrl: env('SLACK_ORDERS_WEBHOOK_URL') });
 *
 * await use(ctx, orders).post_message({
 *   text: `New order ${orderId}: $${(total / 100).toFixed(2)}`,
 *   attachments: [{ fields: [{ title: 'Customer', value: customer, short: true }] }],
 * });
 * ```
 */
export function slack(options: SlackOptions = {}): Connector<SlackOperations> {
  return integration(
    withOverrides(
      {
        name: 'Slack',
        baseUrl: options.webhookUrl ?? env('SLACK_WEBHOOK_URL'),
        timeout: '10s',
        retry: { maxAttempts: 4, initialInterval: '1s', maxInterval: '30s' },
        circuitBreaker: { failures: 5, window: '1m', reset: '30s' },
        rateLimit: { requests: 1, per: '1s' },
        mock: slackMock(),
        // '' is the webhook URL itself.
        operations: { post_message: { method: 'POST', path: '' } },
      },
      options,
    ),
  );
}
