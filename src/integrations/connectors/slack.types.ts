/**
 * Slack incoming webhooks: a JSON message POSTed to the webhook's URL, answered `ok` as plain
 * text, or an error word (`no_text`, `channel_not_found`, ...) with a 4xx.
 */

/** A Block Kit block; see api.slack.com/reference/block-kit/blocks. */
export interface SlackBlock {
  type: string;
  block_id?: string;
  [field: string]: unknown;
}

/** A legacy attachment (still the easiest way to show fields side by side). */
export interface SlackAttachment {
  fallback?: string;
  color?: string;
  pretext?: string;
  title?: string;
  text?: string;
  fields?: { title: string; value: string; short?: boolean }[];
  [field: string]: unknown;
}

/** The message an incoming webhook accepts. `text` is required unless `blocks` or `attachments` are given. */
export interface SlackWebhookMessage {
  text?: string;
  blocks?: SlackBlock[];
  attachments?: SlackAttachment[];
  /** Honoured by legacy webhooks only; an app's webhook posts to the channel it was made for. */
  channel?: string;
  username?: string;
  icon_emoji?: string;
  icon_url?: string;
  /** Reply in a thread. */
  thread_ts?: string;
  mrkdwn?: boolean;
  unfurl_links?: boolean;
}

/** Slack's answer: `ok`, or an error word such as `no_text`. */
export type SlackWebhookResult = 'ok';
