import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WebhookConfigError } from '../errors.js';
import { verifyStripe } from './stripe.js';

const SECRET = 'whsec_test_secret';
const T = 1492774577;
const NOW = T * 1000;
const BODY = '{"id":"evt_test_webhook","object":"event"}';
// Computed independently with the OpenSSL command line:
//   printf '%s' '1492774577.{"id":"evt_test_webhook","object":"event"}' | openssl dgst -sha256 -hmac 'whsec_test_secret'
const V1 = '88a022085c6bdb887b02cb26ff76dd681234d9675c0f22844059f55552a8883a';

function reference(secret: string, t: number, body: string): string {
  return createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
}

const headers = (value: string) => ({ 'stripe-signature': value });

describe('verifyStripe', () => {
  it('accepts the precomputed vector', () => {
    expect(reference(SECRET, T, BODY)).toBe(V1);
    const result = verifyStripe({
      rawBody: BODY,
      headers: headers(`t=${T},v1=${V1}`),
      secret: SECRET,
      now: NOW,
    });
    expect(result).toEqual({ ok: true, provider: 'stripe', body: BODY, timestamp: T });
  });

  it('accepts a Buffer body and the header in any case', () => {
    const result = verifyStripe({
      rawBody: Buffer.from(BODY),
      headers: { 'Stripe-Signature': `t=${T},v1=${V1}` },
      secret: SECRET,
      now: NOW,
    });
    expect(result.ok).toBe(true);
  });

  it('accepts any of several v1 signatures and ignores v0 (the documented header format)', () => {
    // The shape of the example in Stripe's "verify manually" docs: t, v1, v0.
    const docs =
      't=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39';
    const parsed = verifyStripe({
      rawBody: BODY,
      headers: headers(docs),
      secret: SECRET,
      now: NOW,
    });
    expect(parsed).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/no v1 signature .* matches the body \(1 checked\)/),
    });
    expect(
      verifyStripe({
        rawBody: BODY,
        headers: headers(`${docs},v1=${V1}`),
        secret: SECRET,
        now: NOW,
      }).ok,
    ).toBe(true);
  });

  it('accepts either secret during a roll', () => {
    expect(
      verifyStripe({
        rawBody: BODY,
        headers: headers(`t=${T},v1=${V1}`),
        secret: ['whsec_new', SECRET],
        now: NOW,
      }).ok,
    ).toBe(true);
  });

  it('rejects a tampered body', () => {
    const result = verifyStripe({
      rawBody: BODY.replace('evt_test', 'evt_evil'),
      headers: headers(`t=${T},v1=${V1}`),
      secret: SECRET,
      now: NOW,
    });
    expect(result).toMatchObject({ ok: false, code: 'invalid_signature', provider: 'stripe' });
  });

  it('rejects a wrong secret without leaking it or the expected signature', () => {
    const result = verifyStripe({
      rawBody: BODY,
      headers: headers(`t=${T},v1=${V1}`),
      secret: 'whsec_wrong',
      now: NOW,
    });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).not.toContain('whsec_wrong');
      expect(result.reason).not.toContain(reference('whsec_wrong', T, BODY).slice(0, 16));
    }
  });

  it('rejects a v0-only header (the v1 scheme is required)', () => {
    const v0 = createHmac('sha256', SECRET).update(`${T}.${BODY}`).digest('hex');
    expect(
      verifyStripe({
        rawBody: BODY,
        headers: headers(`t=${T},v0=${v0}`),
        secret: SECRET,
        now: NOW,
      }),
    ).toMatchObject({
      ok: false,
      reason: 'Stripe-Signature has no v1 signature (v0 and other schemes are not accepted)',
    });
  });

  it('rejects a stale or future timestamp beyond 5 minutes, even with a valid signature', () => {
    const at = (offset: number) => {
      const t = T - offset;
      return verifyStripe({
        rawBody: BODY,
        headers: headers(`t=${t},v1=${reference(SECRET, t, BODY)}`),
        secret: SECRET,
        now: NOW,
      });
    };
    expect(at(300).ok).toBe(true);
    expect(at(301)).toMatchObject({ ok: false, reason: expect.stringMatching(/301 s old/) });
    expect(at(-301)).toMatchObject({ ok: false, reason: expect.stringMatching(/in the future/) });
  });

  it('rejects a changed timestamp (it is signed)', () => {
    expect(
      verifyStripe({
        rawBody: BODY,
        headers: headers(`t=${T + 1},v1=${V1}`),
        secret: SECRET,
        now: NOW,
      }).ok,
    ).toBe(false);
  });

  it('says what is malformed', () => {
    const check = (value: Record<string, string>) =>
      verifyStripe({ rawBody: BODY, headers: value, secret: SECRET, now: NOW });
    expect(check({})).toMatchObject({
      ok: false,
      reason: 'the Stripe-Signature header is missing',
    });
    expect(check(headers(`v1=${V1}`))).toMatchObject({
      ok: false,
      reason: 'Stripe-Signature has no t= timestamp',
    });
    expect(check(headers('nonsense'))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/malformed/),
    });
    expect(check(headers(`t=soon,v1=${V1}`))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not a Unix timestamp/),
    });
    expect(check(headers(`t=${T},t=${T},v1=${V1}`))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/more than one t=/),
    });
    expect(check(headers(`t=${T},v1=${V1.slice(0, 40)}`))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/no v1 signature/),
    });
  });

  it('throws on a missing secret: that is a configuration bug, not a bad request', () => {
    expect(() =>
      verifyStripe({ rawBody: BODY, headers: headers(`t=${T},v1=${V1}`), secret: '' }),
    ).toThrow(WebhookConfigError);
  });
});
