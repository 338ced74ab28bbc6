/**
 * Shippo. READ THIS before relying on it.
 *
 * Shippo does not sign webhooks by default. Its documentation ("Webhook security") offers three
 * protections, any of which may be combined:
 *
 * 1. an IP allow-list of Shippo's senders (not checked here: do it at the edge, if at all);
 * 2. a self-generated token the user appends to the webhook URL (`https://...?token=123abc`),
 *    which Shippo sends back on every POST. This is the default protection and what
 *    {@link verifyShippo} checks when `secret.token` is set: constant-time comparison of the
 *    `token` query parameter (or of a header, `tokenHeader`, for a proxy that moves it there).
 *    It proves the sender knows the URL; it does NOT protect the body's integrity or prevent
 *    replays, and URLs end up in logs more easily than headers;
 * 3. HMAC, which Shippo enables only on request (through the account manager). Its exact format is
 *    not in Shippo's public documentation. When `secret.hmacSecret` is set, Keel requires one of:
 *    - `Shippo-Auth-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` (the format
 *      integrations report Shippo sending), with the usual 5-minute tolerance; or
 *    - `X-Shippo-Signature: <hex HMAC-SHA256 of the raw body>` (optionally `sha256=`-prefixed),
 *      which has no timestamp and so no replay protection.
 *    Neither format could be checked against a published Shippo example; confirm with Shippo
 *    when they provision the secret.
 *
 * Every protection that is configured is required; configuring none is an error.
 */
import { WebhookConfigError } from '../errors.js';
import {
  accept,
  anyMatch,
  checkTimestamp,
  hmac,
  parseHex,
  readHeader,
  reject,
  safeEqualText,
  toBuffer,
} from '../internal.js';
import type { VerifyInput, VerifyResult } from './types.js';

/** What Shippo webhooks are checked with; set at least one. */
export interface ShippoSecret {
  /** The self-generated token in the webhook URL (`?token=...`); several during a rotation. */
  token?: string | readonly string[];
  /** The HMAC secret Shippo provisions on request; several during a rotation. */
  hmacSecret?: string | readonly string[];
}

/** What {@link verifyShippo} takes. */
export interface ShippoVerifyInput extends VerifyInput<ShippoSecret> {
  /** The URL the request arrived at, with its query string; needed for the token check. */
  url?: string;
  /** The query parameter carrying the token. Default `token`. */
  tokenParam?: string;
  /** A header that may carry the token instead (e.g. when a proxy moves it out of the URL). */
  tokenHeader?: string;
}

const AUTH_SIGNATURE = 'Shippo-Auth-Signature';
const BODY_SIGNATURE = 'X-Shippo-Signature';

function list(value: string | readonly string[] | undefined, what: string): readonly string[] {
  if (value === undefined) return [];
  const items = typeof value === 'string' ? [value] : value;
  if (items.length === 0 || items.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new WebhookConfigError(`Shippo webhook verification: the ${what} must not be empty`);
  }
  return items;
}

/**
 * Verifies a Shippo webhook with a URL token and/or an HMAC signature, whichever are configured
 * (see the module comment for exactly what each proves).
 *
 * @example
 * ```ts
 * // Webhook registered in Shippo as https://hooks.example.com/shippo?token=<SHIPPO_WEBHOOK_TOKEN>
 * const result = verifyShippo({
 *   rawBody,
 *   headers: req.headers,
 *   url: `https://hooks.example.com${req.url}`,
 *   secret: { token: process.env.SHIPPO_WEBHOOK_TOKEN! },
 * });
 * ```
 */
export function verifyShippo(input: ShippoVerifyInput): VerifyResult {
  const tokens = list(input.secret.token, 'token');
  const hmacSecrets = list(input.secret.hmacSecret, 'HMAC secret');
  if (tokens.length === 0 && hmacSecrets.length === 0) {
    throw new WebhookConfigError(
      'Shippo webhook verification needs secret.token (the ?token= in the webhook URL) and/or secret.hmacSecret; Shippo does not sign webhooks by default',
    );
  }
  const body = toBuffer(input.rawBody);

  if (tokens.length > 0) {
    const presented = presentedToken(input);
    if ('reason' in presented) return reject('shippo', presented.reason);
    let matched = false;
    for (const t of tokens) if (safeEqualText(presented.token, t)) matched = true;
    if (!matched) return reject('shippo', 'the webhook token does not match');
  }

  let timestamp: number | undefined;
  if (hmacSecrets.length > 0) {
    const checked = checkHmac(input, hmacSecrets, body);
    if ('reason' in checked) return reject('shippo', checked.reason);
    timestamp = checked.timestamp;
  }
  return accept('shippo', body, timestamp === undefined ? {} : { timestamp });
}

function presentedToken(input: ShippoVerifyInput): { token: string } | { reason: string } {
  const param = input.tokenParam ?? 'token';
  if (input.url === undefined && input.tokenHeader === undefined) {
    throw new WebhookConfigError(
      'Shippo token verification needs the request url (with its query string) or a tokenHeader',
    );
  }
  if (input.tokenHeader !== undefined) {
    const read = readHeader(input.headers, input.tokenHeader);
    if (read.repeated) return { reason: `the ${input.tokenHeader} header appears more than once` };
    if (read.value) return { token: read.value.trim() };
  }
  if (input.url !== undefined) {
    let url: URL;
    try {
      url = new URL(input.url, 'http://placeholder.invalid');
    } catch {
      return { reason: 'the request URL cannot be parsed' };
    }
    const values = url.searchParams.getAll(param);
    if (values.length > 1) return { reason: `the ${param} query parameter appears more than once` };
    if (values[0]) return { token: values[0] };
  }
  const where = [
    input.url !== undefined ? `the ${param} query parameter` : undefined,
    input.tokenHeader !== undefined ? `the ${input.tokenHeader} header` : undefined,
  ]
    .filter(Boolean)
    .join(' or ');
  return { reason: `no webhook token in ${where}` };
}

function checkHmac(
  input: ShippoVerifyInput,
  secrets: readonly string[],
  body: Buffer,
): { timestamp?: number } | { reason: string } {
  const auth = readHeader(input.headers, AUTH_SIGNATURE);
  if (auth.repeated) return { reason: `the ${AUTH_SIGNATURE} header appears more than once` };
  if (auth.value !== undefined && auth.value.trim() !== '') {
    let t: string | undefined;
    const v1: string[] = [];
    for (const part of auth.value.split(',')) {
      const item = part.trim();
      const eq = item.indexOf('=');
      if (eq <= 0) {
        return { reason: `${AUTH_SIGNATURE} is malformed: expected "t=<seconds>,v1=<hex>"` };
      }
      if (item.slice(0, eq) === 't') t = item.slice(eq + 1);
      else if (item.slice(0, eq) === 'v1') v1.push(item.slice(eq + 1));
    }
    if (t === undefined || v1.length === 0) {
      return { reason: `${AUTH_SIGNATURE} is malformed: expected "t=<seconds>,v1=<hex>"` };
    }
    const checked = checkTimestamp(
      t,
      `the ${AUTH_SIGNATURE} timestamp`,
      input.now,
      input.toleranceSeconds,
    );
    if ('reason' in checked) return checked;
    const prefix = Buffer.from(`${t}.`, 'utf8');
    const candidates = v1.flatMap((hex) => parseHex(hex, 32) ?? []);
    const expected = secrets.map((s) => hmac('sha256', s, prefix, body));
    if (!anyMatch(candidates, expected)) {
      return { reason: `${AUTH_SIGNATURE} does not match the body (a wrong HMAC secret?)` };
    }
    return { timestamp: checked.seconds };
  }

  const plain = readHeader(input.headers, BODY_SIGNATURE);
  if (plain.repeated) return { reason: `the ${BODY_SIGNATURE} header appears more than once` };
  if (plain.value === undefined || plain.value.trim() === '') {
    return {
      reason: `an HMAC secret is configured but neither ${AUTH_SIGNATURE} nor ${BODY_SIGNATURE} is present`,
    };
  }
  const text = plain.value.trim();
  const candidate = parseHex(text.startsWith('sha256=') ? text.slice(7) : text, 32);
  if (candidate === undefined) {
    return { reason: `${BODY_SIGNATURE} is malformed: expected 64 hex digits` };
  }
  const expected = secrets.map((s) => hmac('sha256', s, body));
  if (!anyMatch([candidate], expected)) {
    return { reason: `${BODY_SIGNATURE} does not match the body (a wrong HMAC secret?)` };
  }
  return {};
}
