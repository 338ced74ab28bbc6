import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WebhookConfigError } from './errors.js';
import { decodeSecret, generateSecret, sign, signedHeaders, verify } from './standard.js';

// The published test vector of the Standard Webhooks reference libraries
// (standard-webhooks/standard-webhooks, libraries/javascript/src/webhook.test.ts, "sign function
// works"; the same vector is in the PHP, Python, Go... suites and Svix's docs).
const SPEC = {
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};
const SPEC_NOW = SPEC.timestamp * 1000;

/** An independent implementation of the spec, written from its text, not from our code. */
function referenceSign(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const mac = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  return `v1,${mac}`;
}

function specHeaders(signature = SPEC.signature) {
  return {
    'webhook-id': SPEC.id,
    'webhook-timestamp': String(SPEC.timestamp),
    'webhook-signature': signature,
  };
}

describe('Standard Webhooks: signing', () => {
  it('reproduces the published test vector', () => {
    expect(
      sign({ id: SPEC.id, timestamp: SPEC.timestamp, body: SPEC.body, secret: SPEC.secret }),
    ).toBe(SPEC.signature);
    expect(referenceSign(SPEC.secret, SPEC.id, SPEC.timestamp, SPEC.body)).toBe(SPEC.signature);
  });

  it('agrees with the independent implementation on random input, with or without whsec_', () => {
    for (let i = 0; i < 20; i++) {
      const secret = generateSecret();
      const body = JSON.stringify({ n: i, text: 'héllo ✓', nested: { a: [1, 2, 3] } });
      const ts = 1_700_000_000 + i;
      const expected = referenceSign(secret, `msg_${i}`, ts, body);
      expect(sign({ id: `msg_${i}`, timestamp: ts, body, secret })).toBe(expected);
      expect(
        sign({ id: `msg_${i}`, timestamp: ts, body: Buffer.from(body), secret: secret.slice(6) }),
      ).toBe(expected);
    }
  });

  it('accepts a Date timestamp and produces the three headers', () => {
    const headers = signedHeaders({
      id: SPEC.id,
      timestamp: new Date(SPEC_NOW + 999),
      body: SPEC.body,
      secret: SPEC.secret,
    });
    expect(headers).toEqual(specHeaders());
  });

  it('signs with every secret during a rotation', () => {
    const other = generateSecret();
    const value = sign({
      id: SPEC.id,
      timestamp: SPEC.timestamp,
      body: SPEC.body,
      secret: [SPEC.secret, other],
    });
    expect(value.split(' ')).toEqual([
      SPEC.signature,
      referenceSign(other, SPEC.id, SPEC.timestamp, SPEC.body),
    ]);
  });

  it('generates whsec_ secrets of 24 to 64 random bytes', () => {
    const a = generateSecret();
    expect(a).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(decodeSecret(a)).toHaveLength(32);
    expect(decodeSecret(generateSecret(24))).toHaveLength(24);
    expect(generateSecret()).not.toBe(a);
    expect(() => generateSecret(16)).toThrow(RangeError);
  });

  it('refuses a secret that is not base64, and ids that would be ambiguous', () => {
    expect(() => sign({ id: 'x', timestamp: 1, body: '', secret: 'whsec_not base64!' })).toThrow(
      WebhookConfigError,
    );
    expect(() => sign({ id: 'a.b', timestamp: 1, body: '', secret: SPEC.secret })).toThrow(
      RangeError,
    );
    expect(() => sign({ id: 'x', timestamp: 1.5, body: '', secret: SPEC.secret })).toThrow(
      RangeError,
    );
  });
});

describe('Standard Webhooks: verification', () => {
  const base = { body: SPEC.body, secret: SPEC.secret, now: SPEC_NOW };

  it('accepts the published vector and returns the id and timestamp', () => {
    const result = verify({ ...base, headers: specHeaders() });
    expect(result).toEqual({
      ok: true,
      provider: 'standard-webhooks',
      body: SPEC.body,
      id: SPEC.id,
      timestamp: SPEC.timestamp,
    });
  });

  it('accepts svix- headers, a fetch Headers object, and mixed-case names', () => {
    const svix = {
      'Svix-Id': SPEC.id,
      'Svix-Timestamp': String(SPEC.timestamp),
      'Svix-Signature': SPEC.signature,
    };
    expect(verify({ ...base, headers: svix }).ok).toBe(true);
    expect(verify({ ...base, headers: new Headers(specHeaders()) }).ok).toBe(true);
  });

  it('accepts any matching entry among several signatures, skipping other versions', () => {
    const header = [
      'v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=',
      'v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=',
      'v1a,abc',
      SPEC.signature,
    ].join(' ');
    expect(verify({ ...base, headers: specHeaders(header) }).ok).toBe(true);
  });

  it('accepts a request signed with either secret during a rotation', () => {
    const other = generateSecret();
    expect(verify({ ...base, secret: [other, SPEC.secret], headers: specHeaders() }).ok).toBe(true);
  });

  it('rejects a tampered body', () => {
    const result = verify({ ...base, body: '{"test": 2432232315}', headers: specHeaders() });
    expect(result).toMatchObject({ ok: false, code: 'invalid_signature' });
    if (!result.ok) expect(result.reason).toMatch(/no v1 signature .* matches/);
  });

  it('rejects a wrong secret without leaking it or the expected signature', () => {
    const wrong = generateSecret();
    const result = verify({ ...base, secret: wrong, headers: specHeaders() });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).not.toContain(wrong.slice(6, 20));
      expect(result.reason).not.toContain(
        referenceSign(wrong, SPEC.id, SPEC.timestamp, SPEC.body).slice(3, 20),
      );
      expect(result.reason).not.toContain(SPEC.signature.slice(3));
    }
  });

  it('rejects a changed id or timestamp (both are signed)', () => {
    expect(verify({ ...base, headers: { ...specHeaders(), 'webhook-id': 'msg_other' } }).ok).toBe(
      false,
    );
    expect(
      verify({
        ...base,
        headers: { ...specHeaders(), 'webhook-timestamp': String(SPEC.timestamp + 1) },
      }).ok,
    ).toBe(false);
  });

  it('rejects stale and future timestamps beyond the tolerance, and accepts the edges', () => {
    const at = (seconds: number, toleranceSeconds?: number) =>
      verify({
        ...base,
        now: (SPEC.timestamp + seconds) * 1000,
        headers: specHeaders(),
        toleranceSeconds,
      });
    expect(at(300).ok).toBe(true);
    expect(at(-300).ok).toBe(true);
    const stale = at(301);
    expect(stale.ok).toBe(false);
    if (!stale.ok) expect(stale.reason).toMatch(/301 s old, outside the 300 s tolerance/);
    const future = at(-301);
    expect(future.ok).toBe(false);
    if (!future.ok) expect(future.reason).toMatch(/in the future/);
    expect(at(3600, 7200).ok).toBe(true);
  });

  it('says which header is missing or malformed', () => {
    const without = (name: string) => {
      const h: Record<string, string> = specHeaders();
      delete h[name];
      return verify({ ...base, headers: h });
    };
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      expect(without(name)).toMatchObject({ ok: false, reason: `the ${name} header is missing` });
    }
    expect(
      verify({ ...base, headers: { ...specHeaders(), 'webhook-timestamp': 'hello' } }),
    ).toMatchObject({ ok: false, reason: 'webhook-timestamp is not a Unix timestamp in seconds' });
    expect(verify({ ...base, headers: specHeaders('v1,') })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/has no v1 signature/),
    });
    expect(verify({ ...base, headers: specHeaders(SPEC.signature.slice(0, 8)) }).ok).toBe(false);
    expect(verify({ ...base, headers: specHeaders('garbage') }).ok).toBe(false);
    expect(
      verify({ ...base, headers: { ...specHeaders(), 'webhook-id': [SPEC.id, 'msg_2'] } }),
    ).toMatchObject({ ok: false, reason: 'the webhook-id header appears more than once' });
  });
});
