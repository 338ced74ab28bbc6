/**
 * AWS Signature Version 4 checked the way an S3 server does it, written from AWS's description
 * ("Authenticating Requests: Using the Authorization Header") and deliberately not sharing code
 * with src/integrations/declarations/auth/sigv4.ts: the server decodes the request path it received and
 * re-encodes it, rebuilds the canonical request from what actually arrived, hashes the body it
 * received, and compares signatures. A client that signed something other than what it sent
 * fails here.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { WireRecord } from './server.js';

/** What the server knows: the credentials it accepts and its region. */
export interface SigV4Verifier {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  service: string;
  /** When set, requests must carry this `x-amz-security-token`, signed. */
  sessionToken?: string;
}

/** The reason a request is refused, or undefined when its signature is valid. */
export function verifySigV4(req: WireRecord, v: SigV4Verifier): string | undefined {
  const auth = req.headers.authorization ?? '';
  const m =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/.exec(
      auth,
    );
  if (m === null) return 'AuthorizationHeaderMalformed';
  const [, keyId, date, region, service, signedHeaders, signature] = m as unknown as string[];
  if (keyId !== v.accessKeyId) return 'InvalidAccessKeyId';
  if (region !== v.region || service !== v.service) return 'AuthorizationHeaderMalformed';
  const amzDate = req.headers['x-amz-date'] ?? '';
  if (!/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== date) return 'AccessDenied';

  const declared = req.headers['x-amz-content-sha256'];
  if (declared === undefined) return 'MissingContentSha256';
  const actual = createHash('sha256').update(req.body).digest('hex');
  if (declared !== 'UNSIGNED-PAYLOAD' && declared !== actual) return 'XAmzContentSHA256Mismatch';

  const names = signedHeaders!.split(';');
  for (const required of ['host', 'x-amz-date', 'x-amz-content-sha256']) {
    if (!names.includes(required)) return 'AccessDenied';
  }
  if (v.sessionToken !== undefined) {
    if (req.headers['x-amz-security-token'] !== v.sessionToken) return 'InvalidToken';
    if (!names.includes('x-amz-security-token')) return 'AccessDenied';
  }
  for (const n of names) if (req.headers[n] === undefined) return 'AccessDenied';

  const canonicalRequest = [
    req.method,
    canonicalPath(req.rawPath),
    canonicalQueryString(req.rawQuery),
    names.map((n) => `${n}:${req.headers[n]!.trim().replace(/ +/g, ' ')}\n`).join(''),
    signedHeaders,
    declared,
  ].join('\n');
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    amzDate,
    `${date}/${region}/${service}/aws4_request`,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  let key: Buffer = Buffer.from(`AWS4${v.secretAccessKey}`);
  for (const part of [date, region, service, 'aws4_request']) {
    key = createHmac('sha256', key).update(part).digest();
  }
  const expected = createHmac('sha256', key).update(stringToSign).digest();
  const given = Buffer.from(signature!, 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected)
    ? undefined
    : 'SignatureDoesNotMatch';
}

/** RFC 3986 unreserved characters stay; every other byte is %XX, upper case. */
function strictEncode(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9\-._~]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** As MinIO does: the path is decoded as a whole, then each `/`-separated segment re-encoded. */
function canonicalPath(rawPath: string): string {
  return decodeURIComponent(rawPath).split('/').map(strictEncode).join('/');
}

function canonicalQueryString(rawQuery: string): string {
  if (rawQuery === '') return '';
  const pairs = rawQuery
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const i = p.indexOf('=');
      const decode = (x: string): string => decodeURIComponent(x.replace(/\+/g, ' '));
      return [
        strictEncode(decode(i === -1 ? p : p.slice(0, i))),
        strictEncode(decode(i === -1 ? '' : p.slice(i + 1))),
      ];
    });
  pairs.sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : a[1]! < b[1]! ? -1 : 1));
  return pairs.map(([k, x]) => `${k}=${x}`).join('&');
}
