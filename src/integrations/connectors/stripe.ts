/**
 * Stripe: charges and refunds over Stripe's REST API (form-encoded bodies, a secret key as a
 * bearer token, an `Idempotency-Key` on every POST so a retried or replayed charge is charged
 * once).
 */
import { bearer } from '../declarations/auth/config.js';
import { integration } from '../declarations/config.js';
import { env, type Secret } from '../declarations/secrets.js';
import {
  FORM_HEADERS,
  withOverrides,
  type Connector,
  type ConnectorOptions,
  type OperationTypes,
} from './common.js';
import { stripeMock } from './stripe.mock.js';
import type {
  StripeCharge,
  StripeCreateChargeParams,
  StripeCreateRefundParams,
  StripeRefund,
  StripeRetrieveChargeParams,
  StripeRetrieveRefundParams,
} from './stripe.types.js';

export type * from './stripe.types.js';

/** The operations of {@link stripe}, with their parameter and result types. */
export interface StripeOperations {
  create_charge: OperationTypes<StripeCreateChargeParams, StripeCharge>;
  retrieve_charge: OperationTypes<StripeRetrieveChargeParams, StripeCharge>;
  create_refund: OperationTypes<StripeCreateRefundParams, StripeRefund>;
  retrieve_refund: OperationTypes<StripeRetrieveRefundParams, StripeRefund>;
}

/** Options of {@link stripe}. */
export interface StripeOptions extends ConnectorOptions {
  /** The secret key (`sk_live_…`, `sk_test_…`, or a restricted `rk_…`). Default `env('STRIPE_SECRET_KEY')`. */
  apiKey?: Secret;
  /** The `Stripe-Version` the response types follow. Default `2024-06-20`. */
  apiVersion?: string;
}

/**
 * Stripe, ready to call: `create_charge`, `retrieve_charge`, `create_refund`, `retrieve_refund`.
 *
 * Defaults: base URL `https://api.stripe.com`; `Authorization: Bearer $STRIPE_SECRET_KEY`; bodies
 * form-encoded (`metadata[order]=42`); an `Idempotency-Key` on every POST, stable across retries
 * and crashes; 30s timeout; 3 retries from 500ms up to 8s (429, 5xx, network, and 409, which
 * Stripe answers while another request with the same key is running); a breaker opening after 5
 * failures in a minute for 30s. Declines (402) and invalid requests (400) are not retried.
 *
 * Mock (`KEEL_MOCK=1`): Stripe-shaped charges and refunds; `tok_chargeDeclined` and the other
 * test tokens of {@link STRIPE_DECLINES} fail with 402 as in Stripe's test mode; a refund of an
 * unknown charge gives 404.
 *
 * @example
 * ```ts
 * export const payments = stripe(); // reads STRIPE_SECRET_KEY when called
 *
 * // in a handler:
 * const charge = await use(ctx, payments).create_charge({
 *   amount: 2000,
 *   currency: 'usd',
 *   source: 'tok_visa',
 *   metadata: { order_id: orderId },
 * });
 * ```
 */
export function stripe(options: StripeOptions = {}): Connector<StripeOperations> {
  const form = { headers: FORM_HEADERS };
  return integration(
    withOverrides(
      {
        name: 'Stripe',
        baseUrl: 'https://api.stripe.com',
        auth: bearer(options.apiKey ?? env('STRIPE_SECRET_KEY')),
        headers: { 'Stripe-Version': options.apiVersion ?? '2024-06-20' },
        timeout: '30s',
        retry: { maxAttempts: 4, initialInterval: '500ms', maxInterval: '8s' },
        circuitBreaker: { failures: 5, window: '1m', reset: '30s' },
        idempotency: { enabled: true, header: 'Idempotency-Key' },
        errors: { retryable: [409] },
        mock: stripeMock(),
        operations: {
          create_charge: { method: 'POST', path: '/v1/charges', ...form },
          retrieve_charge: { method: 'GET', path: '/v1/charges/{id}' },
          create_refund: { method: 'POST', path: '/v1/refunds', ...form },
          retrieve_refund: { method: 'GET', path: '/v1/refunds/{id}' },
        },
      },
      options,
    ),
  );
}
