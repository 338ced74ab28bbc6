/**
 * Stripe's API in-process: charges and refunds, shaped like Stripe's own objects, failing the
 * way Stripe's test mode does for its test tokens (`tok_chargeDeclined` → 402 `card_declined`).
 *
 * Ids are derived from the idempotency key (or, without one, the parameters), so a retried
 * request gets the same charge. A charge id also carries its amount and currency behind a
 * checksum: after a restart (the charge was journaled, the mock's memory is gone) a refund of it
 * still finds it, while a made-up id gets Stripe's 404.
 */
import type { MockRequest, MockResponse } from '../declarations/mock.js';
import {
  base62Id,
  bodyObject,
  connectorMock,
  json,
  mockTimestamp,
  routes,
  stableJson,
  type ConnectorMock,
} from './mock-kit.js';
import type { StripeCharge, StripeRefund } from './stripe.types.js';

/** Declining test tokens, as in Stripe's test mode: the source → the card error. */
export const STRIPE_DECLINES: Readonly<
  Record<string, { code: string; decline_code?: string; message: string }>
> = {
  tok_chargeDeclined: {
    code: 'card_declined',
    decline_code: 'generic_decline',
    message: 'Your card was declined.',
  },
  tok_chargeDeclinedInsufficientFunds: {
    code: 'card_declined',
    decline_code: 'insufficient_funds',
    message: 'Your card has insufficient funds.',
  },
  tok_chargeDeclinedFraudulent: {
    code: 'card_declined',
    decline_code: 'fraudulent',
    message: 'Your card was declined.',
  },
  tok_chargeDeclinedIncorrectCvc: {
    code: 'incorrect_cvc',
    message: "Your card's security code is incorrect.",
  },
  tok_chargeDeclinedExpiredCard: { code: 'expired_card', message: 'Your card has expired.' },
  tok_chargeDeclinedProcessingError: {
    code: 'processing_error',
    message: 'An error occurred while processing your card. Try again in a little bit.',
  },
};

const BRANDS: Readonly<Record<string, { brand: string; last4: string; funding: string }>> = {
  tok_visa: { brand: 'visa', last4: '4242', funding: 'credit' },
  tok_visa_debit: { brand: 'visa', last4: '5556', funding: 'debit' },
  tok_mastercard: { brand: 'mastercard', last4: '4444', funding: 'credit' },
  tok_amex: { brand: 'amex', last4: '8431', funding: 'credit' },
};

/**
 * A Stripe mock with its own state (charges and refunds made so far).
 *
 * @example
 * ```ts
 * const mock = stripeMock();
 * const payments = stripe({ mock, mockMode: true });
 * mock.failNext(2, 503); // the next two calls get Stripe's api_error, then normal answers
 * ```
 */
export function stripeMock(): ConnectorMock {
  return connectorMock(makeStripe, stripeFailure);
}

/** Stripe's error body for a status injected with `failNext`. */
function stripeFailure(status: number): MockResponse {
  if (status === 429) {
    return json(429, {
      error: {
        type: 'invalid_request_error',
        code: 'rate_limit',
        message:
          'Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.',
      },
    });
  }
  return json(status, {
    error: {
      type: status >= 500 ? 'api_error' : 'invalid_request_error',
      message:
        status >= 500
          ? 'An unknown error occurred while processing the request (mock failure).'
          : `Mock failure with status ${status}.`,
    },
  });
}

interface ChargeState {
  charge: StripeCharge;
  refunds: StripeRefund[];
}

function makeStripe(): (req: MockRequest) => MockResponse {
  const charges = new Map<string, ChargeState>();
  const refunds = new Map<string, StripeRefund>();
  // Idempotency: Stripe replays the first response for a key, and refuses other parameters.
  const replies = new Map<string, { params: string; response: MockResponse }>();

  const idempotent =
    (handle: (req: MockRequest, params: Record<string, unknown>) => MockResponse) =>
    (req: MockRequest): MockResponse => {
      const params = bodyObject(req.body);
      const key = req.headers['idempotency-key'];
      if (key === undefined) return handle(req, params);
      const scope = `${req.path} ${key}`;
      const seen = replies.get(scope);
      if (seen !== undefined) {
        if (seen.params !== stableJson(params)) {
          return invalid(
            `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
            { type: 'idempotency_error' },
          );
        }
        return {
          ...seen.response,
          headers: { ...seen.response.headers, 'idempotent-replayed': 'true' },
        };
      }
      const response = handle(req, params);
      // Stripe does not save the result of a request that failed validation or hit a 5xx.
      if ((response.status ?? 200) < 500 && (response.status ?? 200) !== 400) {
        replies.set(scope, { params: stableJson(params), response });
      }
      return response;
    };

  const createCharge = (req: MockRequest, p: Record<string, unknown>): MockResponse => {
    const amount = toInt(p.amount);
    const currency = typeof p.currency === 'string' ? p.currency.toLowerCase() : undefined;
    if (p.amount === undefined) return missingParam('amount');
    if (amount === undefined || amount < 0)
      return invalid(`Invalid integer: ${stableJson(p.amount)}`, { param: 'amount' });
    if (currency === undefined) return missingParam('currency');
    if (!/^[a-z]{3}$/.test(currency))
      return invalid(`Invalid currency: ${currency}.`, { param: 'currency' });
    if (amount < 50) {
      return invalid(`Amount must be at least 50 cents`, {
        code: 'amount_too_small',
        param: 'amount',
      });
    }
    const source = typeof p.source === 'string' ? p.source : undefined;
    const customer = typeof p.customer === 'string' ? p.customer : undefined;
    if (source === undefined && customer === undefined) {
      return invalid('Must provide source or customer.', { code: 'parameter_missing' });
    }
    const seed = req.headers['idempotency-key'] ?? stableJson(p);
    const id = encodeChargeId(seed, amount, currency);
    const created = mockTimestamp('charge', seed);
    const decline = source === undefined ? undefined : STRIPE_DECLINES[source];
    const card = BRANDS[source ?? ''] ?? { brand: 'visa', last4: '4242', funding: 'credit' };
    const capture = p.capture !== false && p.capture !== 'false';
    const charge: StripeCharge = {
      id,
      object: 'charge',
      amount,
      amount_captured: decline === undefined && capture ? amount : 0,
      amount_refunded: 0,
      balance_transaction: decline === undefined ? `txn_${base62Id(24, 'txn', id)}` : null,
      captured: decline === undefined && capture,
      created,
      currency,
      customer: customer ?? null,
      description: typeof p.description === 'string' ? p.description : null,
      failure_code: decline?.code ?? null,
      failure_message: decline?.message ?? null,
      livemode: false,
      metadata: stringRecord(p.metadata),
      outcome:
        decline === undefined
          ? {
              network_status: 'approved_by_network',
              reason: null,
              risk_level: 'normal',
              seller_message: 'Payment complete.',
              type: 'authorized',
            }
          : {
              network_status: 'declined_by_network',
              reason: decline.decline_code ?? decline.code,
              risk_level: 'normal',
              seller_message: 'The bank did not return any further details with this decline.',
              type: 'issuer_declined',
            },
      paid: decline === undefined,
      payment_method: `card_${base62Id(24, 'card', source ?? customer)}`,
      payment_method_details: {
        type: 'card',
        card: { ...card, exp_month: 12, exp_year: 2034, country: 'US' },
      },
      receipt_email: typeof p.receipt_email === 'string' ? p.receipt_email : null,
      receipt_url:
        decline === undefined ? `https://pay.stripe.com/receipts/mock/${id.slice(3)}` : null,
      refunded: false,
      status: decline === undefined ? 'succeeded' : 'failed',
    };
    charges.set(id, { charge, refunds: [] });
    if (decline !== undefined) {
      return json(402, {
        error: {
          type: 'card_error',
          code: decline.code,
          ...(decline.decline_code === undefined ? {} : { decline_code: decline.decline_code }),
          message: decline.message,
          charge: id,
          doc_url: `https://stripe.com/docs/error-codes/${decline.code.replace(/_/g, '-')}`,
        },
      });
    }
    return json(200, charge, { 'request-id': `req_${base62Id(14, 'req', id)}` });
  };

  const findCharge = (id: string): ChargeState | undefined => {
    const known = charges.get(id);
    if (known !== undefined) return known;
    // Minted by a mock before a restart: rebuild what the id carries.
    const decoded = decodeChargeId(id);
    if (decoded === undefined) return undefined;
    const rebuilt: ChargeState = {
      charge: {
        id,
        object: 'charge',
        amount: decoded.amount,
        amount_captured: decoded.amount,
        amount_refunded: 0,
        balance_transaction: `txn_${base62Id(24, 'txn', id)}`,
        captured: true,
        created: mockTimestamp('charge', id),
        currency: decoded.currency,
        customer: null,
        description: null,
        failure_code: null,
        failure_message: null,
        livemode: false,
        metadata: {},
        outcome: null,
        paid: true,
        payment_method: null,
        payment_method_details: null,
        receipt_email: null,
        receipt_url: null,
        refunded: false,
        status: 'succeeded',
      },
      refunds: [],
    };
    charges.set(id, rebuilt);
    return rebuilt;
  };

  const createRefund = (req: MockRequest, p: Record<string, unknown>): MockResponse => {
    const chargeId = typeof p.charge === 'string' ? p.charge : undefined;
    if (chargeId === undefined) {
      if (typeof p.payment_intent === 'string') {
        return invalid(`No such payment_intent: '${p.payment_intent}'`, {
          code: 'resource_missing',
          param: 'payment_intent',
          status: 404,
        });
      }
      return invalid(
        'One of the following params should be provided for this request: charge or payment_intent.',
        {
          code: 'parameter_missing',
        },
      );
    }
    const state = findCharge(chargeId);
    if (state === undefined) {
      return invalid(`No such charge: '${chargeId}'`, {
        code: 'resource_missing',
        param: 'charge',
        status: 404,
      });
    }
    const { charge } = state;
    if (charge.status !== 'succeeded') {
      return invalid(`Charge ${chargeId} has not been captured, so it cannot be refunded.`, {
        code: 'charge_not_refundable',
        param: 'charge',
      });
    }
    const remaining = charge.amount - charge.amount_refunded;
    if (remaining === 0) {
      return invalid(`Charge ${chargeId} has already been refunded.`, {
        code: 'charge_already_refunded',
      });
    }
    const amount = p.amount === undefined ? remaining : toInt(p.amount);
    if (amount === undefined || amount <= 0) {
      return invalid('Invalid positive integer', { param: 'amount' });
    }
    if (amount > remaining) {
      return invalid(
        `Refund amount (${money(amount, charge.currency)}) is greater than unrefunded amount on charge (${money(remaining, charge.currency)})`,
        { param: 'amount' },
      );
    }
    const seed = req.headers['idempotency-key'] ?? `${chargeId}/${state.refunds.length}`;
    const refund: StripeRefund = {
      id: `re_${base62Id(24, 'refund', seed)}`,
      object: 'refund',
      amount,
      balance_transaction: `txn_${base62Id(24, 'txn', seed)}`,
      charge: chargeId,
      created: mockTimestamp('refund', seed),
      currency: charge.currency,
      metadata: stringRecord(p.metadata),
      payment_intent: null,
      reason: typeof p.reason === 'string' ? (p.reason as StripeRefund['reason']) : null,
      receipt_number: null,
      status: 'succeeded',
    };
    state.refunds.push(refund);
    charge.amount_refunded += amount;
    charge.refunded = charge.amount_refunded === charge.amount;
    refunds.set(refund.id, refund);
    return json(200, refund);
  };

  return routes(
    [
      { method: 'POST', path: '/v1/charges', handle: idempotent(createCharge) },
      {
        method: 'GET',
        path: '/v1/charges/{id}',
        handle: (_, { id }) => {
          const state = findCharge(id!);
          return state === undefined
            ? invalid(`No such charge: '${id}'`, {
                code: 'resource_missing',
                param: 'id',
                status: 404,
              })
            : json(200, state.charge);
        },
      },
      { method: 'POST', path: '/v1/refunds', handle: idempotent(createRefund) },
      {
        method: 'GET',
        path: '/v1/refunds/{id}',
        handle: (_, { id }) => {
          const refund = refunds.get(id!);
          return refund === undefined
            ? invalid(`No such refund: '${id}'`, {
                code: 'resource_missing',
                param: 'id',
                status: 404,
              })
            : json(200, refund);
        },
      },
    ],
    (req) => invalid(`Unrecognized request URL (${req.method}: ${req.path}).`, { status: 404 }),
  );
}

function invalid(
  message: string,
  extra: { code?: string; param?: string; status?: number; type?: string } = {},
): MockResponse {
  const { status = 400, type = 'invalid_request_error', ...rest } = extra;
  return json(status, { error: { type, message, ...rest } });
}

function missingParam(param: string): MockResponse {
  return invalid(`Missing required param: ${param}.`, { code: 'parameter_missing', param });
}

function toInt(value: unknown): number | undefined {
  const n = typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) ? n : undefined;
}

function stringRecord(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null) return {};
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
}

function money(amount: number, currency: string): string {
  return `${currency === 'usd' ? '$' : ''}${(amount / 100).toFixed(2)}${currency === 'usd' ? '' : ` ${currency}`}`;
}

/** `ch_` + 14 hash characters + currency + amount in base 36 + a 4-character checksum. */
export function encodeChargeId(seed: string, amount: number, currency: string): string {
  const body = `${base62Id(14, 'charge', seed)}${currency}${amount.toString(36)}`;
  return `ch_${body}${base62Id(4, 'check', body)}`;
}

function decodeChargeId(id: string): { amount: number; currency: string } | undefined {
  const m = /^ch_([0-9A-Za-z]{14})([a-z]{3})([0-9a-z]+)([0-9A-Za-z]{4})$/.exec(id);
  if (m === null) return undefined;
  const body = `${m[1]}${m[2]}${m[3]}`;
  if (base62Id(4, 'check', body) !== m[4]) return undefined;
  return { currency: m[2]!, amount: parseInt(m[3]!, 36) };
}
