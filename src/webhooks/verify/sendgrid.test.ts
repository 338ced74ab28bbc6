import { generateKeyPairSync, sign } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WebhookConfigError } from '../errors.js';
import { verifySendGrid } from './sendgrid.js';

// The vector of SendGrid's own library (sendgrid/sendgrid-nodejs,
// packages/eventwebhook/src/eventwebhook.spec.js).
const PUBLIC_KEY =
  'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==';
const OTHER_PUBLIC_KEY =
  'MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo7aNDthvj+y7GjUuFDb/R1NGe1OPzpA==';
const SIGNATURE =
  'MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=';
const TIMESTAMP = '1588788367';
const PAYLOAD = '{"category":"example_payload","event":"test_event","message_id":"message_id"}';
const NOW = Number(TIMESTAMP) * 1000;

const headers = (signature = SIGNATURE, timestamp = TIMESTAMP) => ({
  'X-Twilio-Email-Event-Webhook-Signature': signature,
  'X-Twilio-Email-Event-Webhook-Timestamp': timestamp,
});

/** A key pair of our own, signed with node:crypto as SendGrid signs: ECDSA P-256, SHA-256, DER. */
function ownKeys() {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const base64Der = publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
  const pem = publicKey.export({ format: 'pem', type: 'spki' }).toString();
  const signFor = (timestamp: string, body: string) =>
    sign('sha256', Buffer.from(timestamp + body), { key: privateKey, dsaEncoding: 'der' }).toString(
      'base64',
    );
  return { publicKey, base64Der, pem, signFor };
}

describe('verifySendGrid', () => {
  it("accepts the SendGrid library's published vector", () => {
    expect(
      verifySendGrid({ rawBody: PAYLOAD, headers: headers(), secret: PUBLIC_KEY, now: NOW }),
    ).toEqual({
      ok: true,
      provider: 'sendgrid',
      body: PAYLOAD,
      timestamp: 1588788367,
    });
  });

  it('accepts a request signed with a generated key, given as base64 DER, PEM or KeyObject', () => {
    const keys = ownKeys();
    const body = JSON.stringify([
      { email: 'a@example.com', event: 'delivered', sg_event_id: 'e1' },
    ]);
    const ts = '1700000000';
    const h = headers(keys.signFor(ts, body), ts);
    for (const secret of [keys.base64Der, keys.pem, keys.publicKey]) {
      expect(
        verifySendGrid({ rawBody: Buffer.from(body), headers: h, secret, now: 1_700_000_000_000 })
          .ok,
      ).toBe(true);
    }
    // During a key rotation, either key.
    expect(
      verifySendGrid({
        rawBody: body,
        headers: h,
        secret: [PUBLIC_KEY, keys.base64Der],
        now: 1_700_000_000_000,
      }).ok,
    ).toBe(true);
  });

  it('rejects a tampered body or a changed timestamp', () => {
    expect(
      verifySendGrid({ rawBody: 'payload', headers: headers(), secret: PUBLIC_KEY, now: NOW }),
    ).toMatchObject({
      ok: false,
      code: 'invalid_signature',
      reason: expect.stringMatching(/does not verify/),
    });
    expect(
      verifySendGrid({
        rawBody: PAYLOAD,
        headers: headers(SIGNATURE, '1588788368'),
        secret: PUBLIC_KEY,
        now: NOW,
      }).ok,
    ).toBe(false);
  });

  it('rejects the wrong key', () => {
    expect(
      verifySendGrid({ rawBody: PAYLOAD, headers: headers(), secret: OTHER_PUBLIC_KEY, now: NOW })
        .ok,
    ).toBe(false);
  });

  it('rejects a signature with one changed byte, and one that is not DER', () => {
    const changed =
      'MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0=';
    expect(
      verifySendGrid({ rawBody: PAYLOAD, headers: headers(changed), secret: PUBLIC_KEY, now: NOW })
        .ok,
    ).toBe(false);
    expect(
      verifySendGrid({ rawBody: PAYLOAD, headers: headers('AAAA'), secret: PUBLIC_KEY, now: NOW })
        .ok,
    ).toBe(false);
  });

  it('rejects a stale or future timestamp beyond the tolerance', () => {
    const stale = verifySendGrid({
      rawBody: PAYLOAD,
      headers: headers(),
      secret: PUBLIC_KEY,
      now: NOW + 301_000,
    });
    expect(stale).toMatchObject({ ok: false, reason: expect.stringMatching(/301 s old/) });
    expect(
      verifySendGrid({
        rawBody: PAYLOAD,
        headers: headers(),
        secret: PUBLIC_KEY,
        now: NOW - 301_000,
      }).ok,
    ).toBe(false);
    expect(
      verifySendGrid({
        rawBody: PAYLOAD,
        headers: headers(),
        secret: PUBLIC_KEY,
        now: NOW + 3_600_000,
        toleranceSeconds: 7200,
      }).ok,
    ).toBe(true);
  });

  it('says what is malformed or missing', () => {
    const check = (h: Record<string, string>) =>
      verifySendGrid({ rawBody: PAYLOAD, headers: h, secret: PUBLIC_KEY, now: NOW });
    expect(check({ 'X-Twilio-Email-Event-Webhook-Timestamp': TIMESTAMP })).toMatchObject({
      ok: false,
      reason: 'the X-Twilio-Email-Event-Webhook-Signature header is missing',
    });
    expect(check({ 'X-Twilio-Email-Event-Webhook-Signature': SIGNATURE })).toMatchObject({
      ok: false,
      reason: 'the X-Twilio-Email-Event-Webhook-Timestamp header is missing',
    });
    expect(check(headers('not base64!'))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/malformed/),
    });
    expect(check(headers(SIGNATURE, 'timestamp'))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not a Unix timestamp/),
    });
  });

  it('throws for a key that is not a P-256 public key', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
    for (const secret of ['', 'not a key', rsa, p384]) {
      expect(() =>
        verifySendGrid({ rawBody: PAYLOAD, headers: headers(), secret, now: NOW }),
      ).toThrow(WebhookConfigError);
    }
  });
});
