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

const SIGNATURE = 'X-Slack-Signature';
const TIMESTAMP = 'X-Slack-Request-Timestamp';

/**
 * Verifies a Slack request (Events API, interactivity, slash commands):
 * `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:" + timestamp + ":" + raw body>`, keyed by the
 * app's signing secret string, with `X-Slack-Request-Timestamp` within 5 minutes of `now`.
 *
 * @example
 * ```ts
 * const result = verifySlack({ rawBody, headers: req.headers, secret: process.env.SLACK_SIGNING_SECRET! });
 * if (!result.ok) return reply(401);
 * ```
 */
export function verifySlack(input: VerifyInput): VerifyResult {
  const secrets = secretList('slack', input.secret);
  const signature = requireHeader(input.headers, SIGNATURE);
  if ('reason' in signature) return reject('slack', signature.reason);
  const timestamp = requireHeader(input.headers, TIMESTAMP);
  if ('reason' in timestamp) return reject('slack', timestamp.reason);

  if (!signature.value.startsWith('v0=')) {
    return reject('slack', `${SIGNATURE} is malformed: expected "v0=<64 hex digits>"`);
  }
  const candidate = parseHex(signature.value.slice(3), 32);
  if (candidate === undefined) {
    return reject('slack', `${SIGNATURE} is malformed: expected "v0=<64 hex digits>"`);
  }
  const checked = checkTimestamp(timestamp.value, TIMESTAMP, input.now, input.toleranceSeconds);
  if ('reason' in checked) return reject('slack', checked.reason);

  const body = toBuffer(input.rawBody);
  const prefix = Buffer.from(`v0:${timestamp.value}:`, 'utf8');
  const expected = secrets.map((s) => hmac('sha256', s, prefix, body));
  if (!anyMatch([candidate], expected)) {
    return reject(
      'slack',
      `${SIGNATURE} does not match the body: a wrong signing secret, or the body was parsed or changed before verification`,
    );
  }
  return accept('slack', body, { timestamp: checked.seconds });
}
