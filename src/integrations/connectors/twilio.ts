/**
 * Twilio: SMS over the Programmable Messaging API (form-encoded, HTTP Basic with the Account SID
 * and Auth Token, or an API key).
 */
import { basic } from '../declarations/auth/config.js';
import { integration } from '../declarations/config.js';
import {
  env,
  isEnvRef,
  type Configurable,
  type Env,
  type Secret,
} from '../declarations/secrets.js';
import {
  AMBIGUOUS_SERVER_ERRORS,
  FORM_HEADERS,
  withOverrides,
  type Connector,
  type ConnectorOptions,
  type OperationTypes,
} from './common.js';
import { twilioMock } from './twilio.mock.js';
import type {
  TwilioFetchMessageParams,
  TwilioMessage,
  TwilioSendSmsParams,
} from './twilio.types.js';

export type * from './twilio.types.js';

/** The operations of {@link twilio}, with their parameter and result types. */
export interface TwilioOperations {
  send_sms: OperationTypes<TwilioSendSmsParams, TwilioMessage>;
  fetch_message: OperationTypes<TwilioFetchMessageParams, TwilioMessage>;
}

/** Options of {@link twilio}. */
export interface TwilioOptions extends ConnectorOptions {
  /**
   * The account (`AC…`), which is part of every URL. Default `env('TWILIO_ACCOUNT_SID')`. Unlike
   * the credentials it is read when the connector is created, since it goes into the paths.
   */
  accountSid?: Configurable;
  /** Default `env('TWILIO_AUTH_TOKEN')`. Not used when `apiKey` is given. */
  authToken?: Secret;
  /** An API key (`SK…` and its secret) instead of the Auth Token, as Twilio recommends in production. */
  apiKey?: { sid: Configurable; secret: Secret };
  /** Where `accountSid` is read from when it is `env(...)`. Default `process.env`. */
  env?: Env;
}

/** What stands in for an account SID that is not set (mock mode needs none). */
export const TWILIO_PLACEHOLDER_ACCOUNT = 'ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX';

/**
 * Twilio, ready to call: `send_sms` and `fetch_message`.
 *
 * Defaults: base URL `https://api.twilio.com`; HTTP Basic `$TWILIO_ACCOUNT_SID:$TWILIO_AUTH_TOKEN`;
 * form-encoded bodies; 15s timeout; 3 retries from 1s; a breaker opening after 5 failures in a
 * minute for 30s. Twilio has no idempotency keys, so a `send_sms` that got 500, 502 or 504 (Twilio
 * may have queued it) is not retried, while 429 and 503 (it did not) are.
 *
 * Mock: a `queued` Message resource (`SM…` sid derived from the request), `delivered` when
 * fetched; Twilio's magic test numbers fail as with test credentials (`To: '+15005550001'` → 400
 * code 21211, `'+15005550004'` → 21610 unsubscribed; see {@link TWILIO_MAGIC_TO}).
 *
 * @example
 * ```ts
 * export const sms = twilio();
 *
 * const message = await use(ctx, sms).send_sms({
 *   To: '+15558675310',
 *   From: '+15005550006',
 *   Body: `Order ${orderId} confirmed`,
 * });
 * message.sid; // 'SM…'
 * ```
 */
export function twilio(options: TwilioOptions = {}): Connector<TwilioOperations> {
  const account = options.accountSid ?? env('TWILIO_ACCOUNT_SID');
  const sid = isEnvRef(account)
    ? (options.env ?? process.env)[account.env] || TWILIO_PLACEHOLDER_ACCOUNT
    : account;
  const base = `/2010-04-01/Accounts/${encodeURIComponent(sid)}`;
  const auth =
    options.apiKey !== undefined
      ? basic(options.apiKey.sid, options.apiKey.secret)
      : basic(account, options.authToken ?? env('TWILIO_AUTH_TOKEN'));
  return integration(
    withOverrides(
      {
        name: 'Twilio',
        baseUrl: 'https://api.twilio.com',
        auth,
        timeout: '15s',
        retry: { maxAttempts: 4, initialInterval: '1s', maxInterval: '10s' },
        circuitBreaker: { failures: 5, window: '1m', reset: '30s' },
        mock: twilioMock(),
        operations: {
          send_sms: {
            method: 'POST',
            path: `${base}/Messages.json`,
            headers: FORM_HEADERS,
            errors: AMBIGUOUS_SERVER_ERRORS,
          },
          fetch_message: { method: 'GET', path: `${base}/Messages/{Sid}.json` },
        },
      },
      options,
    ),
  );
}
