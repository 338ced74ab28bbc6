/**
 * AWS Signature Version 4, for AWS APIs and S3-compatible storage (MinIO, R2, ...): the
 * canonical request, the string to sign, the derived signing key and the signature, in the
 * `Authorization` header or (presigned URLs) in the query string.
 *
 * Follows the published algorithm, including the two places where S3 differs from every other
 * service: S3 paths are encoded once and not normalized (object keys are opaque), other services'
 * paths are normalized and encoded twice; and S3 wants `x-amz-content-sha256`, which may be
 * `UNSIGNED-PAYLOAD`. Checked against AWS's own examples (see sigv4.test.ts).
 */
import { createHash, createHmac } from 'node:crypto';
import { lowerCaseHeaders } from '../../policies/headers.js';
import { assertHeaderSafe, type RequestToSign, type SignedRequest } from './request.js';

/** AWS credentials, resolved. */
export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** For temporary credentials from STS. */
  sessionToken?: string;
}

/** What to sign with. */
export interface SigV4Options {
  credentials: AwsCredentials;
  region: string;
  /** The signing name: `s3`, `iam`, `execute-api`, ... */
  service: string;
  /** S3: send `UNSIGNED-PAYLOAD` instead of the body's hash (large or streamed uploads). */
  unsignedPayload?: boolean;
  /** The hex SHA-256 of the body, when the caller has it (e.g. a stream hashed on the way). */
  payloadHash?: string;
}

/** A signed request, with the intermediate values (for debugging a signature mismatch). */
export interface SigV4Signed extends SignedRequest {
  signature: string;
  canonicalRequest: string;
  stringToSign: string;
  signedHeaders: string;
}

/** The SHA-256 of an empty body, which S3 wants for every GET. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** S3's marker for a payload that is not signed. */
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';

const ALGORITHM = 'AWS4-HMAC-SHA256';
// Headers proxies and clients rewrite; signing them would break the signature in transit.
const UNSIGNABLE = new Set([
  'authorization',
  'cache-control',
  'connection',
  'expect',
  'from',
  'keep-alive',
  'max-forwards',
  'pragma',
  'referer',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'user-agent',
  'x-amzn-trace-id',
]);

/**
 * Signs a request with an `Authorization` header. Returns the URL to send (its path and query in
 * the exact encoding that was signed) and every header in lower case (`host` is signed but not
 * returned unless it was given, since the HTTP client derives it from the URL).
 *
 * @example
 * ```ts
 * const signed = signAwsV4(
 *   { method: 'GET', url: 'https://examplebucket.s3.amazonaws.com/test.txt', headers: { Range: 'bytes=0-9' }, now: clock.now() },
 *   { credentials: { accessKeyId, secretAccessKey }, region: 'us-east-1', service: 's3' },
 * );
 * await fetch(signed.url, { headers: signed.headers });
 * ```
 */
export function signAwsV4(req: RequestToSign, options: SigV4Options): SigV4Signed {
  const now = requireNow(req);
  const { amzDate, dateStamp } = amzDates(now);
  const url = new URL(req.url);
  const s3 = isS3(options.service);
  const given = lowerCaseHeaders(req.headers);
  delete given.authorization;

  const payloadHash =
    options.payloadHash ??
    given['x-amz-content-sha256'] ??
    (options.unsignedPayload === true ? UNSIGNED_PAYLOAD : sha256Hex(req.body ?? ''));
  const headers: Record<string, string> = { ...given, 'x-amz-date': amzDate };
  if (s3) headers['x-amz-content-sha256'] = payloadHash;
  if (options.credentials.sessionToken !== undefined) {
    headers['x-amz-security-token'] = options.credentials.sessionToken;
  }
  for (const [k, v] of Object.entries(headers)) assertHeaderSafe(v, `header ${k}`);
  const toSign: Record<string, string> = { host: given.host ?? url.host, ...headers };

  const path = paths(url.pathname, s3);
  const query = canonicalQuery(url.search);
  const scope = credentialScope(dateStamp, options.region, options.service);
  const { canonicalHeaders, signedHeaders } = canonicalizeHeaders(toSign);
  const canonicalRequest = [
    req.method.toUpperCase(),
    path.canonical,
    query,
    canonicalHeaders,
    signedHeaders,
    payloadHash,
  ].join('\n');
  const stringToSign = [ALGORITHM, amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const signature = hmacHex(
    deriveSigningKey(
      options.credentials.secretAccessKey,
      dateStamp,
      options.region,
      options.service,
    ),
    stringToSign,
  );
  headers.authorization =
    `${ALGORITHM} Credential=${options.credentials.accessKeyId}/${scope}, ` +
    `SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return {
    url: `${url.protocol}//${url.host}${path.wire}${query === '' ? '' : `?${query}`}`,
    headers,
    signature,
    canonicalRequest,
    stringToSign,
    signedHeaders,
  };
}

/**
 * A presigned URL (authentication in the query string), valid for `expiresIn` seconds (1 to
 * 604800): for handing a download or upload link to someone without credentials. Headers passed
 * in are signed and must be sent as they are; for S3 the payload is `UNSIGNED-PAYLOAD`.
 *
 * @example
 * ```ts
 * const link = presignAwsV4(
 *   { method: 'GET', url: 'https://examplebucket.s3.amazonaws.com/test.txt', now: clock.now() },
 *   { credentials, region: 'us-east-1', service: 's3', expiresIn: 86400 },
 * );
 * ```
 */
export function presignAwsV4(
  req: RequestToSign,
  options: SigV4Options & { expiresIn: number },
): SigV4Signed {
  const now = requireNow(req);
  if (
    !Number.isInteger(options.expiresIn) ||
    options.expiresIn < 1 ||
    options.expiresIn > 604_800
  ) {
    throw new RangeError(
      `presignAwsV4: expiresIn must be 1 to 604800 seconds (7 days), got ${options.expiresIn}`,
    );
  }
  const { amzDate, dateStamp } = amzDates(now);
  const url = new URL(req.url);
  const s3 = isS3(options.service);
  const given = lowerCaseHeaders(req.headers);
  delete given.authorization;
  const toSign: Record<string, string> = { host: given.host ?? url.host, ...given };
  const { canonicalHeaders, signedHeaders } = canonicalizeHeaders(toSign);
  const scope = credentialScope(dateStamp, options.region, options.service);

  const auth: [string, string][] = [
    ['X-Amz-Algorithm', ALGORITHM],
    ['X-Amz-Credential', `${options.credentials.accessKeyId}/${scope}`],
    ['X-Amz-Date', amzDate],
    ['X-Amz-Expires', String(options.expiresIn)],
    ['X-Amz-SignedHeaders', signedHeaders],
  ];
  if (options.credentials.sessionToken !== undefined) {
    auth.push(['X-Amz-Security-Token', options.credentials.sessionToken]);
  }
  const extra = auth.map(([k, v]) => `${uriEncode(k)}=${uriEncode(v)}`).join('&');
  const search = url.search === '' || url.search === '?' ? `?${extra}` : `${url.search}&${extra}`;
  const query = canonicalQuery(search);
  const payloadHash =
    options.payloadHash ??
    (s3 || options.unsignedPayload === true ? UNSIGNED_PAYLOAD : sha256Hex(req.body ?? ''));
  const path = paths(url.pathname, s3);
  const canonicalRequest = [
    req.method.toUpperCase(),
    path.canonical,
    query,
    canonicalHeaders,
    signedHeaders,
    payloadHash,
  ].join('\n');
  const stringToSign = [ALGORITHM, amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const signature = hmacHex(
    deriveSigningKey(
      options.credentials.secretAccessKey,
      dateStamp,
      options.region,
      options.service,
    ),
    stringToSign,
  );
  delete given.host;
  return {
    url: `${url.protocol}//${url.host}${path.wire}?${query}&X-Amz-Signature=${signature}`,
    headers: given,
    signature,
    canonicalRequest,
    stringToSign,
    signedHeaders,
  };
}

/**
 * The SigV4 signing key: HMAC chain over the date, region, service and `aws4_request`.
 *
 * @example
 * ```ts
 * deriveSigningKey('wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY', '20150830', 'us-east-1', 'iam').toString('hex');
 * // 'c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9'
 * ```
 */
export function deriveSigningKey(
  secretAccessKey: string,
  dateStamp: string,
  region: string,
  service: string,
): Buffer {
  const kDate = hmac(`AWS4${secretAccessKey}`, dateStamp);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  return hmac(kService, 'aws4_request');
}

/**
 * Percent-encodes as SigV4 requires: every byte except `A-Z a-z 0-9 - . _ ~`, hex in upper case
 * (so also `!'()*`, which `encodeURIComponent` leaves alone).
 *
 * @example
 * ```ts
 * uriEncode("a b!*"); // 'a%20b%21%2A'
 * ```
 */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** The hex SHA-256 of a string (UTF-8) or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `20130524T000000Z` and `20130524` for an epoch-ms instant. */
export function amzDates(now: number): { amzDate: string; dateStamp: string } {
  const iso = new Date(now).toISOString(); // 2013-05-24T00:00:00.000Z
  const amzDate = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
  return { amzDate, dateStamp: amzDate.slice(0, 8) };
}

/**
 * The canonical query string: every parameter name and value decoded (a `+` is a space, as in
 * forms), SigV4-encoded, and sorted by name then value; a bare `?lifecycle` becomes
 * `lifecycle=`.
 */
export function canonicalQuery(search: string): string {
  const raw = search.startsWith('?') ? search.slice(1) : search;
  if (raw === '') return '';
  const pairs = raw
    .split('&')
    .filter((p) => p !== '')
    .map((p): [string, string] => {
      const eq = p.indexOf('=');
      const name = eq === -1 ? p : p.slice(0, eq);
      const value = eq === -1 ? '' : p.slice(eq + 1);
      return [uriEncode(decodeQueryPart(name)), uriEncode(decodeQueryPart(value))];
    });
  pairs.sort(([an, av], [bn, bv]) => (an < bn ? -1 : an > bn ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

function canonicalizeHeaders(headers: Record<string, string>): {
  canonicalHeaders: string;
  signedHeaders: string;
} {
  const names = Object.keys(headers)
    .filter((n) => !UNSIGNABLE.has(n))
    .sort();
  const canonicalHeaders = names
    .map((n) => `${n}:${headers[n]!.trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  return { canonicalHeaders, signedHeaders: names.join(';') };
}

/**
 * The path to send (each segment encoded once, strictly) and the path to sign: the same for S3;
 * for other services normalized (no empty segments) and encoded a second time.
 */
function paths(pathname: string, s3: boolean): { wire: string; canonical: string } {
  const segments = (pathname === '' ? '/' : pathname)
    .split('/')
    .map((s) => uriEncode(decodePathPart(s)));
  const wire = segments.join('/');
  if (s3) return { wire, canonical: wire };
  const kept = segments.filter((s) => s !== '');
  const trailing = kept.length > 0 && wire.endsWith('/') ? '/' : '';
  return { wire, canonical: `/${kept.map(uriEncode).join('/')}${trailing}` };
}

function credentialScope(dateStamp: string, region: string, service: string): string {
  return `${dateStamp}/${region}/${service}/aws4_request`;
}

function isS3(service: string): boolean {
  return service === 's3';
}

function requireNow(req: RequestToSign): number {
  if (req.now === undefined || !Number.isFinite(req.now)) {
    throw new TypeError('AWS SigV4 signs the request time: pass now (epoch ms) in the request');
  }
  return req.now;
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function hmacHex(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data, 'utf8').digest('hex');
}

function decodePathPart(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function decodeQueryPart(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}
