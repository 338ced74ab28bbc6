import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifySlack } from './slack.js';

// Slack's published example ("Verifying requests from Slack", api.slack.com / docs.slack.dev):
// a slash-command form body.
const SECRET = '8f742231b10e8888abcd99yyyzzz85a5';
const TIMESTAMP = '1531420618';
const BODY =
  'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c';
const SIGNATURE = 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503';
const NOW = Number(TIMESTAMP) * 1000 + 20_000;

const headers = (signature = SIGNATURE, timestamp = TIMESTAMP) => ({
  'X-Slack-Signature': signature,
  'X-Slack-Request-Timestamp': timestamp,
});

describe('verifySlack', () => {
  it("accepts Slack's published example", () => {
    expect(verifySlack({ rawBody: BODY, headers: headers(), secret: SECRET, now: NOW })).toEqual({
      ok: true,
      provider: 'slack',
      body: BODY,
      timestamp: 1531420618,
    });
  });

  it('agrees with an independent HMAC on a JSON event body', () => {
    const body = '{"type":"url_verification","challenge":"abc"}';
    const sig = `v0=${createHmac('sha256', SECRET).update(`v0:${TIMESTAMP}:${body}`).digest('hex')}`;
    expect(verifySlack({ rawBody: body, headers: headers(sig), secret: SECRET, now: NOW }).ok).toBe(
      true,
    );
  });

  it('rejects a tampered body', () => {
    expect(
      verifySlack({
        rawBody: BODY.replace('roadrunner', 'coyote'),
        headers: headers(),
        secret: SECRET,
        now: NOW,
      }),
    ).toMatchObject({ ok: false, code: 'invalid_signature' });
  });

  it('rejects a wrong secret', () => {
    expect(
      verifySlack({ rawBody: BODY, headers: headers(), secret: 'not-the-secret', now: NOW }).ok,
    ).toBe(false);
  });

  it('rejects a stale or future timestamp beyond 5 minutes', () => {
    const stale = verifySlack({
      rawBody: BODY,
      headers: headers(),
      secret: SECRET,
      now: (1531420618 + 301) * 1000,
    });
    expect(stale).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/X-Slack-Request-Timestamp is 301 s old/),
    });
    const future = verifySlack({
      rawBody: BODY,
      headers: headers(),
      secret: SECRET,
      now: (1531420618 - 301) * 1000,
    });
    expect(future).toMatchObject({ ok: false, reason: expect.stringMatching(/in the future/) });
  });

  it('rejects a replay with a fresh timestamp (the timestamp is signed)', () => {
    expect(
      verifySlack({
        rawBody: BODY,
        headers: headers(SIGNATURE, '1531420700'),
        secret: SECRET,
        now: NOW,
      }).ok,
    ).toBe(false);
  });

  it('says what is malformed or missing', () => {
    const check = (h: Record<string, string>) =>
      verifySlack({ rawBody: BODY, headers: h, secret: SECRET, now: NOW });
    expect(check({ 'X-Slack-Request-Timestamp': TIMESTAMP })).toMatchObject({
      ok: false,
      reason: 'the X-Slack-Signature header is missing',
    });
    expect(check({ 'X-Slack-Signature': SIGNATURE })).toMatchObject({
      ok: false,
      reason: 'the X-Slack-Request-Timestamp header is missing',
    });
    expect(check(headers(SIGNATURE.replace('v0=', 'v1=')))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/malformed/),
    });
    expect(check(headers(SIGNATURE, 'yesterday'))).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/not a Unix timestamp/),
    });
  });
});
