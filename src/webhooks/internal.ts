/**
 * Helpers shared by the verifiers, the signer and the retry schedule. Internal: not exported from
 * `src/webhooks/index.ts`.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { WebhookConfigError } from './errors.js';
import type {
  RawBody,
  RejectedWebhook,
  VerifiedWebhook,
  WebhookHeaders,
  WebhookProvider,
} from './verify/types.js';

export const DEFAULT_TOLERANCE_SECONDS = 300;

/** A header read case-insensitively; `repeated` when it arrived more than once. */
export interface HeaderRead {
  value: string | undefined;
  repeated: boolean;
}

export function readHeader(headers: WebhookHeaders, name: string): HeaderRead {
  if (!isPlainRecord(headers) && typeof (headers as Headers).get === 'function') {
    const value = (headers as Headers).get(name);
    return { value: value ?? undefined, repeated: false };
  }
  const wanted = name.toLowerCase();
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  let found: string | undefined;
  let count = 0;
  for (const key of Object.keys(record)) {
    if (key.toLowerCase() !== wanted) continue;
    const raw = record[key];
    if (raw === undefined) continue;
    if (typeof raw === 'string') {
      found ??= raw;
      count += 1;
    } else {
      for (const v of raw) {
        found ??= v;
        count += 1;
      }
    }
  }
  return { value: found, repeated: count > 1 };
}

function isPlainRecord(headers: WebhookHeaders): boolean {
  const proto = Object.getPrototypeOf(headers) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * Reads a header that must be present exactly once. Returns the value, or the reason it cannot
 * be used.
 */
export function requireHeader(
  headers: WebhookHeaders,
  name: string,
): { value: string } | { reason: string } {
  const read = readHeader(headers, name);
  if (read.repeated) return { reason: `the ${name} header appears more than once` };
  if (read.value === undefined || read.value.trim() === '') {
    return { reason: `the ${name} header is missing` };
  }
  return { value: read.value.trim() };
}

export function toBuffer(body: RawBody): Buffer {
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  if (Buffer.isBuffer(body)) return body;
  return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/**
 * Constant-time equality. Unequal lengths return false after a comparison of the same cost, so
 * the time taken does not depend on where the inputs differ; only the length, which for a digest
 * is public, can be told apart.
 */
export function safeEqual(a: Buffer, b: Buffer): boolean {
  if (a.length !== b.length) {
    timingSafeEqual(b, b);
    return false;
  }
  return timingSafeEqual(a, b);
}

/**
 * Constant-time equality for secrets of any length (tokens): compares SHA-256 digests so that
 * not even the length of the expected value shows in the timing.
 */
export function safeEqualText(a: string, b: string): boolean {
  const da = createHash('sha256').update(a, 'utf8').digest();
  const db = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(da, db);
}

export function hmac(
  algorithm: 'sha256' | 'sha1',
  key: string | Buffer,
  ...parts: Buffer[]
): Buffer {
  const h = createHmac(algorithm, key);
  for (const part of parts) h.update(part);
  return h.digest();
}

/** Decodes exactly `bytes` bytes of hex, or undefined for anything else. */
export function parseHex(text: string, bytes: number): Buffer | undefined {
  if (text.length !== bytes * 2 || !/^[0-9a-fA-F]+$/.test(text)) return undefined;
  return Buffer.from(text, 'hex');
}

/** Decodes standard (padded) base64, or undefined when the text is not base64. */
export function parseBase64(text: string): Buffer | undefined {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) {
    return undefined;
  }
  return Buffer.from(text, 'base64');
}

/** The secrets to try, validated: a rotation may list several. */
export function secretList(
  provider: WebhookProvider,
  secret: string | readonly string[],
): readonly string[] {
  const list = typeof secret === 'string' ? [secret] : secret;
  if (list.length === 0 || list.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new WebhookConfigError(
      `${provider} webhook verification needs a non-empty secret; configure the signing secret from the provider's dashboard`,
    );
  }
  return list;
}

export function nowMs(now: Date | number | undefined): number {
  if (now === undefined) return Date.now();
  return typeof now === 'number' ? now : now.getTime();
}

/**
 * Parses a Unix-seconds timestamp header and checks it against the tolerance, both ways (a
 * timestamp from the future is as suspect as a stale one). Returns the seconds or the reason.
 */
export function checkTimestamp(
  text: string,
  headerName: string,
  now: Date | number | undefined,
  toleranceSeconds: number | undefined,
): { seconds: number } | { reason: string } {
  if (!/^\d{1,12}$/.test(text)) {
    return { reason: `${headerName} is not a Unix timestamp in seconds` };
  }
  const seconds = Number(text);
  const tolerance = toleranceSeconds ?? DEFAULT_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor(nowMs(now) / 1000);
  const age = nowSeconds - seconds;
  if (age > tolerance) {
    return {
      reason: `${headerName} is ${age} s old, outside the ${tolerance} s tolerance (a replayed or long-delayed request, or a skewed clock)`,
    };
  }
  if (-age > tolerance) {
    return {
      reason: `${headerName} is ${-age} s in the future, outside the ${tolerance} s tolerance (a skewed clock?)`,
    };
  }
  return { seconds };
}

export function reject(provider: WebhookProvider, reason: string): RejectedWebhook {
  return { ok: false, provider, code: 'invalid_signature', reason };
}

export function accept(
  provider: WebhookProvider,
  body: Buffer,
  extra: Omit<VerifiedWebhook, 'ok' | 'provider' | 'body'> = {},
): VerifiedWebhook {
  const result: VerifiedWebhook = { ok: true, provider, body: body.toString('utf8') };
  if (extra.id !== undefined) result.id = extra.id;
  if (extra.timestamp !== undefined) result.timestamp = extra.timestamp;
  if (extra.eventType !== undefined) result.eventType = extra.eventType;
  if (extra.replayKey !== undefined) result.replayKey = extra.replayKey;
  return result;
}

/** True when any candidate equals any expected digest; never stops early. */
export function anyMatch(candidates: readonly Buffer[], expected: readonly Buffer[]): boolean {
  let matched = false;
  for (const c of candidates) {
    for (const e of expected) {
      if (safeEqual(c, e)) matched = true;
    }
  }
  return matched;
}
