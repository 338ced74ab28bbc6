import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WebhookConfigError } from '../errors.js';
import { verifyShippo } from './shippo.js';

// Shippo publishes no signed example; these vectors are computed here with node:crypto.
const BODY =
  '{"event":"track_updated","test":false,"data":{"tracking_number":"9205590164917312751089","tracking_status":{"status":"DELIVERED"}}}';
const TOKEN = 'tok_6f1d2c9a0b8e4f7a';
const HMAC_SECRET = 'shippo-hmac-secret';
const URL_ = `https://hooks.example.com/shippo?token=${TOKEN}`;
const T = 1_700_000_000;
const NOW = T * 1000;

const authSignature = (t: number, body = BODY, secret = HMAC_SECRET) =>
  `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
const bodySignature = (body = BODY, secret = HMAC_SECRET) =>
  createHmac('sha256', secret).update(body).digest('hex');

describe('verifyShippo: URL token', () => {
  it('accepts the token in the query string', () => {
    expect(
      verifyShippo({ rawBody: BODY, headers: {}, url: URL_, secret: { token: TOKEN } }),
    ).toEqual({
      ok: true,
      provider: 'shippo',
      body: BODY,
    });
    // A path with a query, as a server sees it, is enough.
    expect(
      verifyShippo({
        rawBody: BODY,
        headers: {},
        url: `/shippo?token=${TOKEN}`,
        secret: { token: TOKEN },
      }).ok,
    ).toBe(true);
  });

  it('accepts the token in a configured header, or under another parameter name', () => {
    expect(
      verifyShippo({
        rawBody: BODY,
        headers: { 'X-Webhook-Token': TOKEN },
        tokenHeader: 'x-webhook-token',
        secret: { token: TOKEN },
      }).ok,
    ).toBe(true);
    expect(
      verifyShippo({
        rawBody: BODY,
        headers: {},
        url: `https://h/x?key=${TOKEN}`,
        tokenParam: 'key',
        secret: { token: TOKEN },
      }).ok,
    ).toBe(true);
  });

  it('rejects a wrong or missing token without leaking the expected one', () => {
    const wrong = verifyShippo({
      rawBody: BODY,
      headers: {},
      url: 'https://h/shippo?token=guess',
      secret: { token: TOKEN },
    });
    expect(wrong).toMatchObject({
      ok: false,
      code: 'invalid_signature',
      reason: 'the webhook token does not match',
    });
    expect(
      verifyShippo({
        rawBody: BODY,
        headers: {},
        url: 'https://h/shippo',
        secret: { token: TOKEN },
      }),
    ).toMatchObject({
      ok: false,
      reason: 'no webhook token in the token query parameter',
    });
    expect(
      verifyShippo({
        rawBody: BODY,
        headers: {},
        url: `https://h/shippo?token=${TOKEN}&token=x`,
        secret: { token: TOKEN },
      }),
    ).toMatchObject({ ok: false, reason: expect.stringMatching(/more than once/) });
    expect(
      verifyShippo({
        rawBody: BODY,
        headers: {},
        url: `https://h/shippo?token=${TOKEN}x`,
        secret: { token: TOKEN },
      }).ok,
    ).toBe(false);
  });

  it('does not protect the body: a token-only check accepts a changed body (documented)', () => {
    expect(
      verifyShippo({ rawBody: '{"forged":true}', headers: {}, url: URL_, secret: { token: TOKEN } })
        .ok,
    ).toBe(true);
  });
});

describe('verifyShippo: HMAC', () => {
  it('accepts Shippo-Auth-Signature (t=,v1=) and returns the timestamp', () => {
    const result = verifyShippo({
      rawBody: BODY,
      headers: { 'Shippo-Auth-Signature': authSignature(T) },
      secret: { hmacSecret: HMAC_SECRET },
      now: NOW,
    });
    expect(result).toEqual({ ok: true, provider: 'shippo', body: BODY, timestamp: T });
  });

  it('accepts X-Shippo-Signature (hex HMAC of the body), bare or sha256=-prefixed', () => {
    for (const value of [bodySignature(), `sha256=${bodySignature()}`]) {
      expect(
        verifyShippo({
          rawBody: BODY,
          headers: { 'X-Shippo-Signature': value },
          secret: { hmacSecret: HMAC_SECRET },
        }).ok,
      ).toBe(true);
    }
  });

  it('rejects a tampered body and a wrong secret', () => {
    const h = { 'Shippo-Auth-Signature': authSignature(T) };
    expect(
      verifyShippo({
        rawBody: `${BODY} `,
        headers: h,
        secret: { hmacSecret: HMAC_SECRET },
        now: NOW,
      }),
    ).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/does not match the body/),
    });
    expect(
      verifyShippo({ rawBody: BODY, headers: h, secret: { hmacSecret: 'other' }, now: NOW }).ok,
    ).toBe(false);
    expect(
      verifyShippo({
        rawBody: `${BODY} `,
        headers: { 'X-Shippo-Signature': bodySignature() },
        secret: { hmacSecret: HMAC_SECRET },
      }).ok,
    ).toBe(false);
  });

  it('rejects a stale Shippo-Auth-Signature timestamp', () => {
    const result = verifyShippo({
      rawBody: BODY,
      headers: { 'Shippo-Auth-Signature': authSignature(T - 301) },
      secret: { hmacSecret: HMAC_SECRET },
      now: NOW,
    });
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/301 s old/) });
  });

  it('says what is malformed or missing', () => {
    const check = (h: Record<string, string>) =>
      verifyShippo({ rawBody: BODY, headers: h, secret: { hmacSecret: HMAC_SECRET }, now: NOW });
    expect(check({})).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/neither Shippo-Auth-Signature nor X-Shippo-Signature/),
    });
    expect(check({ 'Shippo-Auth-Signature': 'v1=abc' })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/malformed/),
    });
    expect(check({ 'X-Shippo-Signature': 'xyz' })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/malformed/),
    });
  });

  it('requires every configured protection', () => {
    const both = { token: TOKEN, hmacSecret: HMAC_SECRET };
    const h = { 'Shippo-Auth-Signature': authSignature(T) };
    expect(verifyShippo({ rawBody: BODY, headers: h, url: URL_, secret: both, now: NOW }).ok).toBe(
      true,
    );
    expect(verifyShippo({ rawBody: BODY, headers: {}, url: URL_, secret: both, now: NOW }).ok).toBe(
      false,
    );
    expect(
      verifyShippo({ rawBody: BODY, headers: h, url: 'https://h/shippo', secret: both, now: NOW })
        .ok,
    ).toBe(false);
  });
});

describe('verifyShippo: configuration', () => {
  it('throws when nothing is configured, or the token has nowhere to come from', () => {
    expect(() => verifyShippo({ rawBody: BODY, headers: {}, url: URL_, secret: {} })).toThrow(
      WebhookConfigError,
    );
    expect(() =>
      verifyShippo({ rawBody: BODY, headers: {}, url: URL_, secret: { token: '' } }),
    ).toThrow(WebhookConfigError);
    expect(() => verifyShippo({ rawBody: BODY, headers: {}, secret: { token: TOKEN } })).toThrow(
      WebhookConfigError,
    );
  });
});
