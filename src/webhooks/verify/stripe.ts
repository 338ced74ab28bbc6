import {
  accept,
  anyMatch,
  checkTimestamp,
  hmac,
  parseHex,
  reject,
  requireHeader,
  secretList,
  toBuffer,
} from '../internal.js';
import type { VerifyInput, VerifyResult } from './types.js';

const HEADER = 'Stripe-Signature';

/**
 * Verifies a Stripe webhook: `Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, each
 * `v1` an HMAC-SHA256 of `${t}.${rawBody}` keyed by the endpoint secret string (`whsec_...`, used
 * as is, not decoded). Any `v1` may match (Stripe sends several while a secret is being rolled);
 * `v0` entries are ignored. `t` must be within 5 minutes of `now`, either way.
 *
 * @example
 * ```ts
 * const result = verifyStripe({ rawBody, headers: req.headers, secret: process.env.STRIPE_WEBHOOK_SECRET! });
 * if (!result.ok) return reply(401);
 * const event = JSON.parse(result.body); // event.id is the key to deduplicate on
 * ```
 */
export function verifyStripe(input: VerifyInput): VerifyResult {
  const secrets = secretList('stripe', input.secret);
  const header = requireHeader(input.headers, HEADER);
  if ('reason' in header) return reject('stripe', header.reason);

  let t: string | undefined;
  const v1: string[] = [];
  for (const part of header.value.split(',')) {
    const item = part.trim();
    const eq = item.indexOf('=');
    if (eq <= 0) {
      return reject(
        'stripe',
        `${HEADER} is malformed: expected comma-separated key=value pairs like "t=1492774577,v1=5257a8..."`,
      );
    }
    const key = item.slice(0, eq);
    const value = item.slice(eq + 1);
    if (key === 't') {
      if (t !== undefined) return reject('stripe', `${HEADER} has more than one t= timestamp`);
      t = value;
    } else if (key === 'v1') {
      v1.push(value);
    }
  }
  if (t === undefined) return reject('stripe', `${HEADER} has no t= timestamp`);
  if (v1.length === 0) {
    return reject(
      'stripe',
      `${HEADER} has no v1 signature (v0 and other schemes are not accepted)`,
    );
  }
  const checked = checkTimestamp(t, `the ${HEADER} timestamp`, input.now, input.toleranceSeconds);
  if ('reason' in checked) return reject('stripe', checked.reason);

  const candidates = v1.flatMap((hex) => parseHex(hex, 32) ?? []);
  const body = toBuffer(input.rawBody);
  const prefix = Buffer.from(`${t}.`, 'utf8');
  const expected = secrets.map((s) => hmac('sha256', s, prefix, body));
  if (!anyMatch(candidates, expected)) {
    return reject(
      'stripe',
      `no v1 signature in ${HEADER} matches the body (${v1.length} checked): a wrong endpoint secret, or the body was parsed or changed before verification`,
    );
  }
  return accept('stripe', body, { timestamp: checked.seconds });
}
