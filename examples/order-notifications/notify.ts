/**
 * Seed 000, exercises 1 and 2: the `TwilioClient.SendSMS` and `SlackClient.PostMessage` of the
 * seed, as functions over Keel connectors. Each call is one journaled step (`use(ctx, ...)`), so
 * a replay after a restart returns the recorded answer and never sends again; and each catches
 * its own failure: a notification that could not be sent is logged and reported, never thrown,
 * so it cannot fail the order.
 */
import { CancelledError, TerminalError, type Context } from '../../src/index.js';
import {
  IntegrationCallError,
  use,
  type Connector,
  type IntegrationResponse,
  type SlackOperations,
  type TwilioMessage,
  type TwilioOperations,
} from '../../src/integrations/index.js';

/** The seed's `SMSRequest`. */
export interface SMSRequest {
  /** E.164, e.g. `+15558675310`. */
  To: string;
  Message: string;
}

/** The seed's `SMSResponse`: Twilio's Message sid (`sms_mock_<unix>` in mock mode) and status. */
export interface SMSResponse {
  MessageSID: string;
  Status: string;
}

/** What became of a notification that could not be sent. */
export interface NotificationFailure {
  error: string;
  code: string;
}

/**
 * The seed's `TwilioClient`: `SendSMS` from a fixed Twilio number.
 *
 * @example
 * ```ts
 * const client = new TwilioClient(connectors.sms, '+15005550006');
 * const sent = await client.SendSMS(ctx, { To: '+15558675310', Message: 'Order 1 confirmed' });
 * if ('MessageSID' in sent) ctx.log.info(`SMS ${sent.MessageSID}`);
 * ```
 */
export class TwilioClient {
  constructor(
    private readonly connector: Connector<TwilioOperations>,
    private readonly from: string,
  ) {}

  /** Sends the SMS as a journaled step; a failure is logged and returned, not thrown. */
  async SendSMS(ctx: Context, req: SMSRequest): Promise<SMSResponse | NotificationFailure> {
    try {
      const message: TwilioMessage = await use(ctx, this.connector).send_sms({
        To: req.To,
        From: this.from,
        Body: req.Message,
      });
      return { MessageSID: message.sid, Status: message.status };
    } catch (err) {
      const failure = failureOf(err);
      ctx.log.warn(`SMS to ${req.To} not sent (the order goes on): ${failure.error}`);
      return failure;
    }
  }
}

/** The seed's `SlackField`. */
export interface SlackField {
  Title: string;
  Value: string;
}

/** The seed's `SlackMessage`. */
export interface SlackMessage {
  Channel: string;
  Text: string;
  Fields: SlackField[];
}

/** What {@link SlackClient.PostMessage} did with a message. */
export interface SlackDelivery {
  Channel: string;
  Text: string;
  sent: boolean;
  /** Answered by the in-process mock (mock mode), not by Slack. */
  mock?: boolean;
  error?: string;
}

/**
 * The seed's `SlackClient`: `PostMessage` to an incoming webhook (one connector per channel).
 *
 * @example
 * ```ts
 * await new SlackClient(connectors.slack.orders).PostMessage(ctx, {
 *   Channel: '#orders',
 *   Text: 'New order order-1: $59.98',
 *   Fields: [{ Title: 'Customer', Value: 'cust-123' }],
 * });
 * ```
 */
export class SlackClient {
  constructor(private readonly connector: Connector<SlackOperations>) {}

  /**
   * Posts the message as a journaled step (fields as a Slack attachment); in mock mode the
   * message is also logged. A failure is logged and returned, never thrown.
   */
  async PostMessage(ctx: Context, msg: SlackMessage): Promise<SlackDelivery> {
    try {
      const res: IntegrationResponse = await use(ctx, this.connector).post_message.withResponse({
        channel: msg.Channel,
        text: msg.Text,
        attachments: [
          {
            fallback: msg.Text,
            fields: msg.Fields.map((f) => ({ title: f.Title, value: f.Value, short: true })),
          },
        ],
      });
      const mock = res.source === 'mock';
      if (mock) {
        const fields = msg.Fields.map((f) => `${f.Title}=${f.Value}`).join(', ');
        ctx.log.info(`[slack mock] ${msg.Channel}: ${msg.Text} (${fields})`);
      }
      return { Channel: msg.Channel, Text: msg.Text, sent: true, ...(mock ? { mock } : {}) };
    } catch (err) {
      const { error } = failureOf(err);
      ctx.log.warn(`Slack message to ${msg.Channel} not sent (the order goes on): ${error}`);
      return { Channel: msg.Channel, Text: msg.Text, sent: false, error };
    }
  }
}

/**
 * A notification's failure as data. A cancellation of the order, or anything that is not a
 * terminal failure of the call (a bug, a replay mismatch), is not the notification's to swallow.
 */
export function failureOf(err: unknown): NotificationFailure {
  if (err instanceof CancelledError || !(err instanceof TerminalError)) throw err;
  // The provider's own words (Twilio's `code` 21211 and message, Slack's `channel_not_found`).
  const body = err instanceof IntegrationCallError ? err.failure.body : undefined;
  const said =
    typeof body === 'string'
      ? body
      : typeof body === 'object' && body !== null
        ? Object.entries(body as Record<string, unknown>)
            .filter(([k]) => k === 'code' || k === 'message')
            .map(([, v]) => String(v))
            .join(': ')
        : '';
  return { error: said ? `${err.message} (${said})` : err.message, code: err.code };
}
