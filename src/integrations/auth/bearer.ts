import { lowerCaseHeaders } from '../headers.js';
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
  assertHeaderSafe(token, 'the bearer token');
  return {
    url: req.url,
    headers: { ...lowerCaseHeaders(req.headers), authorization: `Bearer ${token}` },
  };
}
