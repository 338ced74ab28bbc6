import { lowerCaseHeaders } from '../../policies/headers.js';
import type { RequestToSign, SignedRequest } from './request.js';

/**
 * Adds `Authorization: Basic base64(username:password)` (RFC 7617, UTF-8).
 *
 * @example
 * ```ts
 * signBasic({ method: 'POST', url: 'https://api.twilio.com/...' }, accountSid, authToken);
 * ```
 */
export function signBasic(req: RequestToSign, username: string, password: string): SignedRequest {
  if (username.includes(':')) {
    throw new TypeError('a Basic auth user name cannot contain ":" (RFC 7617)');
  }
  const credentials = Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
  return {
    url: req.url,
    headers: { ...lowerCaseHeaders(req.headers), authorization: `Basic ${credentials}` },
  };
}
