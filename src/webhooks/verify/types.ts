/** The providers Keel verifies inbound webhooks for. */
export type WebhookProvider =
  'stripe' | 'github' | 'slack' | 'twilio' | 'sendgrid' | 'shippo' | 'standard-webhooks';

/** One header's value as Node (`IncomingHttpHeaders`) or a plain object holds it. */
export type HeaderValue = string | readonly string[] | undefined;

/**
 * Request headers: a fetch `Headers`, Node's `req.headers`, or any plain object. Names are
 * matched case-insensitively.
 */
export type WebhookHeaders = Headers | Readonly<Record<string, HeaderValue>>;

/** The raw request body, exactly as received: signatures cover bytes, not parsed JSON. */
export type RawBody = Buffer | Uint8Array | string;

/**
 * What every verifier takes. `secret` accepts a list during a secret rotation: the request passes
 * when it verifies with any of them.
 */
export interface VerifyInput<S = string | readonly string[]> {
  /** The body bytes as received, before any JSON or form parsing. */
  rawBody: RawBody;
  headers: WebhookHeaders;
  secret: S;
  /** The current time (a `Date` or epoch milliseconds); defaults to `Date.now()`. */
  now?: Date | number;
  /** How far the signed timestamp may be from `now`, either way. Default 300 (5 minutes). */
  toleranceSeconds?: number;
}

/** A request whose signature verified. */
export interface VerifiedWebhook {
  ok: true;
  provider: WebhookProvider;
  /** The body as UTF-8 text: exactly the bytes that were verified. */
  body: string;
  /**
   * The provider's delivery or message id, when a header carries one (`webhook-id`,
   * `X-GitHub-Delivery`, `I-Twilio-Idempotency-Token`): a key to deduplicate on. Only
   * `webhook-id` is covered by the signature; see `replayKey` for the others.
   */
  id?: string;
  /**
   * For providers that sign neither a timestamp nor their delivery id (GitHub, Twilio): the hex
   * SHA-256 of what the signature covers, in a canonical form. A captured request replayed under
   * a fresh id has the same `replayKey`: deduplicate on it as well as on `id`.
   */
  replayKey?: string;
  /** The signed timestamp, in Unix seconds, for providers that sign one. */
  timestamp?: number;
  /** The event type, when a header carries it (`X-GitHub-Event`). */
  eventType?: string;
}

/** A request that failed verification. Answer it with 401 and change nothing. */
export interface RejectedWebhook {
  ok: false;
  provider: WebhookProvider;
  code: 'invalid_signature';
  /** What was wrong, for logs; never contains the secret or the expected signature. */
  reason: string;
}

/**
 * The outcome of every verifier.
 *
 * @example
 * ```ts
 * const result: VerifyResult = verifyGitHub({ rawBody, headers, secret });
 * if (!result.ok) return { status: 401, body: result.reason };
 * ```
 */
export type VerifyResult = VerifiedWebhook | RejectedWebhook;
