/**
 * Standard Webhooks (https://www.standardwebhooks.com), the signing scheme Svix uses and Keel
 * uses for its own outbound deliveries:
 *
 * - headers `webhook-id`, `webhook-timestamp` (Unix seconds), `webhook-signature`;
 * - `webhook-signature` is a space-separated list of `v1,<base64 HMAC-SHA256>` entries, the HMAC
 *   taken over `${id}.${timestamp}.${body}` and keyed by the base64-decoded secret (the part
 *   after `whsec_`);
 * - receivers reject timestamps more than 5 minutes away from their clock, either way.
 *
 * Svix's `svix-id`/`svix-timestamp`/`svix-signature` headers are accepted too. Asymmetric
 * (`v1a`, ed25519) signatures are not implemented: such entries are skipped.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { WebhookConfigError } from './errors.js';
import {
  accept,
  anyMatch,
  checkTimestamp,
  hmac,
  parseBase64,
  readHeader,
  reject,
  toBuffer,
} from './internal.js';
import type { RawBody, VerifyResult, WebhookHeaders } from './verify/types.js';

const PREFIX = 'whsec_';
const PROVIDER = 'standard-webhooks';

/**
 * Generates a new endpoint secret: `whsec_` followed by the base64 of `bytes` random bytes
 * (default 32; the spec asks for 24 to 64). Show it to the user once; store it encrypted.
 *
 * @example
 * ```ts
 * const secret = standardWebhooks.generateSecret(); // 'whsec_3q2+7w...'
 * ```
 */
export function generateSecret(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < 24 || bytes > 64) {
    throw new RangeError(`a webhook secret has 24 to 64 random bytes, not ${bytes}`);
  }
  return PREFIX + randomBytes(bytes).toString('base64');
}

/**
 * The key bytes of a `whsec_...` secret (the prefix is optional). Throws `WebhookConfigError`
 * when the rest is not base64.
 *
 * @example
 * ```ts
 * standardWebhooks.decodeSecret('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw').length; // 24
 * ```
 */
export function decodeSecret(secret: string): Buffer {
  const text = secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret;
  const key = parseBase64(text);
  if (key === undefined || key.length === 0) {
    throw new WebhookConfigError(
      'a Standard Webhooks secret is "whsec_" followed by base64 key bytes; this one is not (was it truncated or copied with quotes?)',
    );
  }
  return key;
}

/** What {@link sign} signs. */
export interface SignInput {
  /** The message id, the same on every attempt of one delivery. */
  id: string;
  /** When this attempt is sent: Unix seconds, or a `Date`. */
  timestamp: number | Date;
  body: RawBody;
  /** The endpoint secret; during a rotation, several: one signature each. */
  secret: string | readonly string[];
}

function timestampSeconds(timestamp: number | Date): number {
  const seconds =
    typeof timestamp === 'number' ? timestamp : Math.floor(timestamp.getTime() / 1000);
  if (!Number.isSafeInteger(seconds) || seconds < 0) {
    throw new RangeError(`a webhook timestamp is whole Unix seconds, not ${String(timestamp)}`);
  }
  return seconds;
}

function digest(key: Buffer, id: string, seconds: number, body: Buffer): Buffer {
  return hmac('sha256', key, Buffer.from(`${id}.${seconds}.`, 'utf8'), body);
}

/** {@link digest} of a body given as text: hashed as UTF-8 directly, with no Buffer copies. */
function digestText(key: Buffer, id: string, seconds: number, body: string): Buffer {
  return createHmac('sha256', key).update(`${id}.${seconds}.${body}`, 'utf8').digest();
}

/**
 * The `webhook-signature` value for one delivery attempt: `v1,<base64>`, or several such entries
 * separated by spaces when `secret` lists more than one (receivers accept any).
 *
 * @example
 * ```ts
 * standardWebhooks.sign({
 *   id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
 *   timestamp: 1614265330,
 *   body: '{"test": 2432232314}',
 *   secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
 * }); // 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE='
 * ```
 */
export function sign(input: SignInput): string {
  const secrets = typeof input.secret === 'string' ? [input.secret] : input.secret;
  if (secrets.length === 0) throw new WebhookConfigError('sign needs at least one secret');
  if (input.id.length === 0 || /[\s.]/.test(input.id)) {
    // A dot would make `id.timestamp.body` ambiguous; whitespace cannot travel in a header.
    throw new RangeError('a webhook id must be non-empty, without dots or whitespace');
  }
  const seconds = timestampSeconds(input.timestamp);
  const body = toBuffer(input.body);
  return secrets
    .map((s) => `v1,${digest(decodeSecret(s), input.id, seconds, body).toString('base64')}`)
    .join(' ');
}

/**
 * The three headers of a signed delivery attempt.
 *
 * @example
 * ```ts
 * const headers = standardWebhooks.signedHeaders({ id: delivery.id, timestamp: new Date(), body, secret });
 * await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body });
 * ```
 */
export function signedHeaders(input: SignInput): {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
} {
  return {
    'webhook-id': input.id,
    'webhook-timestamp': String(timestampSeconds(input.timestamp)),
    'webhook-signature': sign(input),
  };
}

/**
 * A signer bound to one endpoint secret (or several, during a rotation), decoded once: for a
 * sender that signs many messages to the same endpoint. Returns the same headers as
 * {@link signedHeaders}.
 *
 * @example
 * ```ts
 * const signFor = standardWebhooks.signer(endpoint.secret);
 * const headers = signFor('msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
 * ```
 */
export function signer(
  secret: string | readonly string[],
): (id: string, timestamp: number | Date, body: RawBody) => ReturnType<typeof signedHeaders> {
  const secrets = typeof secret === 'string' ? [secret] : secret;
  if (secrets.length === 0) throw new WebhookConfigError('signer needs at least one secret');
  const keys = secrets.map(decodeSecret);
  const sig = (k: Buffer, id: string, seconds: number, body: RawBody): string =>
    `v1,${(typeof body === 'string' ? digestText(k, id, seconds, body) : digest(k, id, seconds, toBuffer(body))).toString('base64')}`;
  return (id, timestamp, body) => {
    if (id.length === 0 || /[\s.]/.test(id))
      throw new RangeError('a webhook id must be non-empty, without dots or whitespace');
    const seconds = timestampSeconds(timestamp);
    return {
      'webhook-id': id,
      'webhook-timestamp': String(seconds),
      'webhook-signature':
        keys.length === 1
          ? sig(keys[0]!, id, seconds, body)
          : keys.map((k) => sig(k, id, seconds, body)).join(' '),
    };
  };
}

/** What {@link verify} checks. */
export interface VerifyInput {
  headers: WebhookHeaders;
  /** The raw body as received. */
  body: RawBody;
  /** The endpoint secret (`whsec_...`); during a rotation, several. */
  secret: string | readonly string[];
  /** Default 300 seconds, either way. */
  toleranceSeconds?: number;
  /** The current time (a `Date` or epoch milliseconds); defaults to `Date.now()`. */
  now?: Date | number;
}

function header(headers: WebhookHeaders, name: 'id' | 'timestamp' | 'signature') {
  const standard = readHeader(headers, `webhook-${name}`);
  if (standard.value !== undefined) return { ...standard, name: `webhook-${name}` };
  const svix = readHeader(headers, `svix-${name}`);
  if (svix.value !== undefined) return { ...svix, name: `svix-${name}` };
  return { ...standard, name: `webhook-${name}` };
}

/**
 * Verifies a Standard Webhooks (or Svix) request: the id, timestamp and signature headers must
 * be present, the timestamp within the tolerance, and at least one `v1` entry of
 * `webhook-signature` must match.
 *
 * @example
 * ```ts
 * const result = standardWebhooks.verify({ headers: req.headers, body: rawBody, secret });
 * if (!result.ok) return reply(401, result.reason);
 * ```
 */
export function verify(input: VerifyInput): VerifyResult {
  const secrets = typeof input.secret === 'string' ? [input.secret] : input.secret;
  if (secrets.length === 0) throw new WebhookConfigError('verify needs at least one secret');
  const keys = secrets.map(decodeSecret);

  const id = header(input.headers, 'id');
  const ts = header(input.headers, 'timestamp');
  const sig = header(input.headers, 'signature');
  for (const h of [id, ts, sig]) {
    if (h.repeated) return reject(PROVIDER, `the ${h.name} header appears more than once`);
    if (h.value === undefined || h.value.trim() === '') {
      return reject(PROVIDER, `the ${h.name} header is missing`);
    }
  }
  const msgId = id.value!.trim();
  const checked = checkTimestamp(ts.value!.trim(), ts.name, input.now, input.toleranceSeconds);
  if ('reason' in checked) return reject(PROVIDER, checked.reason);

  const candidates: Buffer[] = [];
  for (const entry of sig.value!.trim().split(/\s+/)) {
    const comma = entry.indexOf(',');
    if (comma < 0) continue;
    if (entry.slice(0, comma) !== 'v1') continue;
    const decoded = parseBase64(entry.slice(comma + 1));
    if (decoded !== undefined) candidates.push(decoded);
  }
  if (candidates.length === 0) {
    return reject(
      PROVIDER,
      `${sig.name} has no v1 signature (expected space-separated entries like "v1,<base64>")`,
    );
  }
  const body = toBuffer(input.body);
  const expected = keys.map((k) => digest(k, msgId, checked.seconds, body));
  if (!anyMatch(candidates, expected)) {
    return reject(
      PROVIDER,
      `no v1 signature in ${sig.name} matches the body (${candidates.length} checked): a wrong secret, or the body was changed after signing`,
    );
  }
  return accept(PROVIDER, body, { id: msgId, timestamp: checked.seconds });
}
