/**
 * The parts of Stripe's API objects the connector's operations use (api.stripe.com/v1, API
 * version 2024-06-20 and later), typed as Stripe documents them. Amounts are in the smallest
 * currency unit (cents); timestamps are Unix seconds.
 */

/** `POST /v1/charges`. */
export interface StripeCreateChargeParams {
  /** In the smallest currency unit: 2000 is $20.00. At least 50 cents (or equivalent). */
  amount: number;
  /** Three-letter ISO code, lower case: `usd`. */
  currency: string;
  /** A token or card id (`tok_visa`); or give `customer`. */
  source?: string;
  customer?: string;
  description?: string;
  /** Up to 50 keys; values are strings. */
  metadata?: Record<string, string>;
  receipt_email?: string;
  /** `false` authorizes only (capture later). Default true. */
  capture?: boolean;
  statement_descriptor_suffix?: string;
}

/** `GET /v1/charges/{id}`. */
export interface StripeRetrieveChargeParams {
  id: string;
}

/** `POST /v1/refunds`. */
export interface StripeCreateRefundParams {
  /** The charge to refund; or give `payment_intent`. */
  charge?: string;
  payment_intent?: string;
  /** Default: whatever of the charge is not refunded yet. */
  amount?: number;
  reason?: 'duplicate' | 'fraudulent' | 'requested_by_customer';
  metadata?: Record<string, string>;
}

/** `GET /v1/refunds/{id}`. */
export interface StripeRetrieveRefundParams {
  id: string;
}

/** A Stripe charge object (the fields Keel's examples rely on). */
export interface StripeCharge {
  id: string;
  object: 'charge';
  amount: number;
  amount_captured: number;
  amount_refunded: number;
  balance_transaction: string | null;
  captured: boolean;
  created: number;
  currency: string;
  customer: string | null;
  description: string | null;
  failure_code: string | null;
  failure_message: string | null;
  livemode: boolean;
  metadata: Record<string, string>;
  outcome: {
    network_status: string;
    reason: string | null;
    risk_level: string;
    seller_message: string;
    type: string;
  } | null;
  paid: boolean;
  payment_method: string | null;
  payment_method_details: {
    type: 'card';
    card: {
      brand: string;
      last4: string;
      funding: string;
      exp_month: number;
      exp_year: number;
      country: string;
    };
  } | null;
  receipt_email: string | null;
  receipt_url: string | null;
  refunded: boolean;
  status: 'succeeded' | 'pending' | 'failed';
}

/** A Stripe refund object. */
export interface StripeRefund {
  id: string;
  object: 'refund';
  amount: number;
  balance_transaction: string | null;
  charge: string;
  created: number;
  currency: string;
  metadata: Record<string, string>;
  payment_intent: string | null;
  reason: 'duplicate' | 'fraudulent' | 'requested_by_customer' | null;
  receipt_number: string | null;
  status: 'pending' | 'requires_action' | 'succeeded' | 'failed' | 'canceled';
}

/** The body of every Stripe error response. */
export interface StripeErrorBody {
  error: {
    type: 'api_error' | 'card_error' | 'idempotency_error' | 'invalid_request_error';
    code?: string;
    decline_code?: string;
    message: string;
    param?: string;
    charge?: string;
    doc_url?: string;
  };
}
