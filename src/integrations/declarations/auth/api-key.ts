import { lowerCaseHeaders } from '../../policies/headers.js';
import { assertHeaderSafe, type RequestToSign, type SignedRequest } from './request.js';

/** Where an API key goes. */
export interface ApiKeyPlacement {
  in: 'header' | 'query';
  /** The header or query parameter name. */
  name: string;
  /** Header only: text before the key (`'ShippoToken '`). */
  prefix?: string;
}

/**
 * Adds an API key as a header, or as a query parameter (replacing one of the same name; the
 * rest of the query is left exactly as it was).
 *
 * @example
 * ```ts
 * signApiKey({ method: 'GET', url: 'https://api.openweathermap.org/data/2.5/weather?q=Paris' }, key, { in: 'query', name: 'appid' });
 * // url: 'https://api.openweathermap.org/data/2.5/weather?q=Paris&appid=...'
 * ```
 */
export function signApiKey(
  req: RequestToSign,
  key: string,
  placement: ApiKeyPlacement,
): SignedRequest {
  const headers = lowerCaseHeaders(req.headers);
  if (placement.in === 'header') {
    assertHeaderSafe(key, 'the API key');
    const value = `${placement.prefix ?? ''}${key}`;
    return { url: req.url, headers: { ...headers, [placement.name.toLowerCase()]: value } };
  }
  return { url: setQueryParam(req.url, placement.name, key), headers };
}

function setQueryParam(url: string, name: string, value: string): string {
  const hashAt = url.indexOf('#');
  const hash = hashAt === -1 ? '' : url.slice(hashAt);
  const noHash = hashAt === -1 ? url : url.slice(0, hashAt);
  const qAt = noHash.indexOf('?');
  const base = qAt === -1 ? noHash : noHash.slice(0, qAt);
  const query = qAt === -1 ? '' : noHash.slice(qAt + 1);
  const encName = encodeURIComponent(name);
  const kept = query.split('&').filter((p) => p !== '' && decodeName(p.split('=')[0]!) !== name);
  kept.push(`${encName}=${encodeURIComponent(value)}`);
  return `${base}?${kept.join('&')}${hash}`;
}

function decodeName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return raw;
  }
}
