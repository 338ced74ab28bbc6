import { createHash } from 'node:crypto';
import { WebhookConfigError } from '../errors.js';
import {
  accept,
  anyMatch,
  hmac,
  parseBase64,
  parseHex,
  readHeader,
  reject,
  requireHeader,
  safeEqual,
  secretList,
  toBuffer,
} from '../internal.js';
import type { VerifyInput, VerifyResult } from './types.js';

const HEADER = 'X-Twilio-Signature';

/** What {@link verifyTwilio} takes: the usual input plus the URL Twilio requested. */
export interface TwilioVerifyInput extends VerifyInput {
  /**
   * The full public URL Twilio called, with its query string, exactly as configured in the Twilio
   * console (scheme, host, path and query). Behind a proxy this is NOT the URL the server sees:
   * rebuild it from the public base URL and the request path.
   */
  url: string;
}

/**
 * Verifies a Twilio webhook. `X-Twilio-Signature` is the base64 HMAC-SHA1, keyed by the account
 * auth token, of:
 *
 * - form posts (`application/x-www-form-urlencoded`): the full URL followed by every POST
 *   parameter, sorted by name, as name + value with no separators (repeated names: each distinct
 *   value, sorted);
 * - JSON bodies: the URL alone. Twilio then adds `bodySHA256=<hex SHA-256 of the body>` to the
 *   URL's query, and that hash is checked against the body too.
 *
 * As Twilio's own libraries do, the URL is tried as given, without its port, and with its port
 * (the scheme's default when it has none), because Twilio has signed both forms. Twilio signs no
 * timestamp, so there is no replay window; deduplicate on `replayKey` (the SHA-256 of the signed
 * data: the URL without its port, then the sorted parameters), not only on `id`
 * (`I-Twilio-Idempotency-Token`, not covered by the signature, so a replay can carry a fresh one).
 *
 * @example
 * ```ts
 * const result = verifyTwilio({
 *   rawBody,
 *   headers: req.headers,
 *   secret: process.env.TWILIO_AUTH_TOKEN!,
 *   url: `https://hooks.example.com${req.url}`,
 * });
 * ```
 */
export function verifyTwilio(input: TwilioVerifyInput): VerifyResult {
  const secrets = secretList('twilio', input.secret);
  let url: URL;
  try {
    url = new URL(input.url);
  } catch {
    throw new WebhookConfigError(
      'verifyTwilio needs the full public URL Twilio called (https://host/path?query); the url given is not an absolute URL',
    );
  }
  const header = requireHeader(input.headers, HEADER);
  if ('reason' in header) return reject('twilio', header.reason);
  const candidate = parseBase64(header.value);
  if (candidate === undefined || candidate.length !== 20) {
    return reject('twilio', `${HEADER} is malformed: expected the base64 of a 20-byte HMAC-SHA1`);
  }

  const body = toBuffer(input.rawBody);
  const bodyHash = url.searchParams.get('bodySHA256');
  let params = '';
  if (bodyHash !== null) {
    const claimed = parseHex(bodyHash, 32);
    if (claimed === undefined) {
      return reject('twilio', 'the bodySHA256 query parameter is not a hex SHA-256');
    }
    if (!safeEqual(createHash('sha256').update(body).digest(), claimed)) {
      return reject(
        'twilio',
        'the body does not match the bodySHA256 in the URL: the body was changed, or parsed and re-serialised, before verification',
      );
    }
  } else {
    const contentType = readHeader(input.headers, 'content-type').value?.toLowerCase() ?? '';
    if (
      body.length > 0 &&
      contentType !== '' &&
      !contentType.startsWith('application/x-www-form-urlencoded')
    ) {
      return reject(
        'twilio',
        `the body is ${contentType.split(';')[0]} but the URL has no bodySHA256 parameter, so the body is not covered by the signature`,
      );
    }
    params = sortedParams(body.toString('utf8'));
  }

  const data = urlVariants(input.url, url).map((u) => Buffer.from(u + params, 'utf8'));
  const expected = secrets.flatMap((token) => data.map((d) => hmac('sha1', token, d)));
  if (!anyMatch([candidate], expected)) {
    return reject(
      'twilio',
      `${HEADER} does not match: a wrong auth token, a url that differs from the one Twilio called (scheme, host, path or query, e.g. behind a proxy), or changed parameters`,
    );
  }
  // Canonical, so the variants that verify alike (port or not, parameters in any order or
  // repeated) are one key; a JSON body is covered by the bodySHA256 in the URL.
  const extra: { id?: string; replayKey: string } = {
    replayKey: createHash('sha256')
      .update(urlWithoutPort(url) + params)
      .digest('hex'),
  };
  const idempotency = readHeader(input.headers, 'I-Twilio-Idempotency-Token').value;
  if (idempotency) extra.id = idempotency.trim();
  return accept('twilio', body, extra);
}

/** POST parameters as Twilio signs them: sorted by name, distinct values sorted, name+value. */
function sortedParams(form: string): string {
  const byName = new Map<string, Set<string>>();
  for (const [name, value] of new URLSearchParams(form)) {
    let values = byName.get(name);
    if (!values) byName.set(name, (values = new Set()));
    values.add(value);
  }
  let out = '';
  for (const name of [...byName.keys()].sort()) {
    for (const value of [...byName.get(name)!].sort()) out += name + value;
  }
  return out;
}

function userinfoOf(url: URL): string {
  return url.username || url.password
    ? `${url.username}${url.password ? `:${url.password}` : ''}@`
    : '';
}

function urlWithoutPort(url: URL): string {
  return `${url.protocol}//${userinfoOf(url)}${url.hostname}${url.pathname}${url.search}${url.hash}`;
}

function urlVariants(raw: string, url: URL): string[] {
  const userinfo = userinfoOf(url);
  const rest = url.pathname + url.search + url.hash;
  const defaultPort = url.protocol === 'https:' ? '443' : url.protocol === 'http:' ? '80' : '';
  const withoutPort = urlWithoutPort(url);
  const port = url.port || defaultPort;
  const withPort = port
    ? `${url.protocol}//${userinfo}${url.hostname}:${port}${rest}`
    : withoutPort;
  return [...new Set([raw, url.toString(), withoutPort, withPort])];
}
