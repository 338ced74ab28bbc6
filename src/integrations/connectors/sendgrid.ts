/**
 * SendGrid: email through the v3 Mail Send API (JSON, the API key as a bearer token).
 */
import { bearer } from '../declarations/auth/config.js';
import { integration } from '../declarations/config.js';
import { env, type Secret } from '../declarations/secrets.js';
import {
  AMBIGUOUS_SERVER_ERRORS,
  withOverrides,
  type Connector,
  type ConnectorOptions,
  type OperationTypes,
} from './common.js';
import { sendgridMock } from './sendgrid.mock.js';
import type { SendGridMailParams } from './sendgrid.types.js';

export type * from './sendgrid.types.js';

/** The operations of {@link sendgrid}, with their parameter and result types. */
export interface SendGridOperations {
  /** Accepted with 202 and no body: the result is `null`; `withResponse` has `x-message-id`. */
  send_mail: OperationTypes<SendGridMailParams, null>;
}

/** Options of {@link sendgrid}. */
export interface SendGridOptions extends ConnectorOptions {
  /** Default `env('SENDGRID_API_KEY')`. */
  apiKey?: Secret;
}

/**
 * SendGrid, ready to call: `send_mail`.
 *
 * Defaults: base URL `https://api.sendgrid.com` (use `https://api.eu.sendgrid.com` for EU
 * subusers); `Authorization: Bearer $SENDGRID_API_KEY`; 30s timeout; 3 retries from 1s; a
 * breaker opening after 5 failures in a minute for 30s. SendGrid has no idempotency keys, so a
 * send that got 500, 502 or 504 is not retried (it may have been accepted); 429 and 503 are.
 *
 * Mock: 202 with an `X-Message-Id` (200 with `mail_settings.sandbox_mode.enable`, as SendGrid
 * does); 400 with SendGrid's `errors` list for a missing field or an invalid address; 403 for a
 * sender at `@unverified.test` (not a verified Sender Identity).
 *
 * @example
 * ```ts
 * export const mail = sendgrid();
 *
 * await use(ctx, mail).send_mail({
 *   personalizations: [{ to: [{ email: customer.email }] }],
 *   from: { email: 'orders@example.com', name: 'Example Shop' },
 *   subject: `Order ${orderId} confirmed`,
 *   content: [{ type: 'text/plain', value: 'Thanks for your order!' }],
 * });
 * ```
 */
export function sendgrid(options: SendGridOptions = {}): Connector<SendGridOperations> {
  return integration(
    withOverrides(
      {
        name: 'SendGrid',
        baseUrl: 'https://api.sendgrid.com',
        auth: bearer(options.apiKey ?? env('SENDGRID_API_KEY')),
        timeout: '30s',
        retry: { maxAttempts: 4, initialInterval: '1s', maxInterval: '30s' },
        circuitBreaker: { failures: 5, window: '1m', reset: '30s' },
        mock: sendgridMock(),
        operations: {
          send_mail: { method: 'POST', path: '/v3/mail/send', errors: AMBIGUOUS_SERVER_ERRORS },
        },
      },
      options,
    ),
  );
}
