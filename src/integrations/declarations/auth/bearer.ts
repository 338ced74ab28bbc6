import { lowerCaseHeaders } from '../../policies/headers.js';
import { assertHeaderSafe, type RequestToSign, type SignedRequest } from './request.js';

/**
 * Adds `Authorization: Bearer <token>`, replacing any authorization header already present.
 *
 * @example
 * ```ts
 * signBearer({ method: 'GET', url: 'https://api.github.com/user' }, token);
 * // { url: 'https://api.github.com/user', headers: { authorization: 'Bearer ...' } }
 * ```
 */
export function signBearer(req: RequestToSign, token: string): SignedRequest {
  const headers = lowerCaseHeaders(req.headers);
  headers.authorization = bearerValue(token);
  return { url: req.url, headers };
}

/**
 * The last token's header value: checked once, and the same string every time, which undici
 * checks faster than a new concatenation per request.
 */
let last: { token: string; value: string } | undefined;

/**
 * `Bearer <token>`, refusing a token that would split the header.
 *
 * @example
 * ```ts
 * headers.authorization = bearerValue(token);
 * ```
 */
export function bearerValue(token: string): string {
  if (last !== undefined && last.token === token) return last.value;
  assertHeaderSafe(token, 'the bearer token');
  last = { token, value: `Bearer ${token}` };
  return last.value;
}
