import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyGitHub } from './github.js';

// GitHub's published example ("Validating webhook deliveries", docs.github.com).
const SECRET = "It's a Secret to Everybody";
const BODY = 'Hello, World!';
const SIGNATURE = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';

describe('verifyGitHub', () => {
  it("accepts GitHub's published example and returns the delivery id and event", () => {
    const result = verifyGitHub({
      rawBody: BODY,
      headers: {
        'x-hub-signature-256': SIGNATURE,
        'x-github-delivery': '72d3162e-cc78-11e3-81ab-4c9367dc0958',
        'x-github-event': 'ping',
      },
      secret: SECRET,
    });
    expect(result).toEqual({
      ok: true,
      provider: 'github',
      body: BODY,
      id: '72d3162e-cc78-11e3-81ab-4c9367dc0958',
      eventType: 'ping',
      // The signature covers only the body: a replay under a fresh delivery id has this key.
      replayKey: createHash('sha256').update(BODY).digest('hex'),
    });
  });

  it('agrees with an independent HMAC on a JSON body', () => {
    const body = Buffer.from(JSON.stringify({ action: 'created', deployment: { id: 1 } }));
    const sig = `sha256=${createHmac('sha256', 's3cr3t').update(body).digest('hex')}`;
    expect(
      verifyGitHub({
        rawBody: body,
        headers: new Headers({ 'X-Hub-Signature-256': sig }),
        secret: 's3cr3t',
      }).ok,
    ).toBe(true);
  });

  it('rejects a tampered body', () => {
    expect(
      verifyGitHub({
        rawBody: 'Hello, World?',
        headers: { 'x-hub-signature-256': SIGNATURE },
        secret: SECRET,
      }),
    ).toMatchObject({
      ok: false,
      code: 'invalid_signature',
      reason: expect.stringMatching(/does not match the body/),
    });
  });

  it('rejects a wrong secret without leaking either signature', () => {
    const result = verifyGitHub({
      rawBody: BODY,
      headers: { 'x-hub-signature-256': SIGNATURE },
      secret: 'wrong',
    });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).not.toContain('757107ea');
      expect(result.reason).not.toContain(
        createHmac('sha256', 'wrong').update(BODY).digest('hex').slice(0, 12),
      );
    }
  });

  it('says what is malformed or missing', () => {
    const check = (headers: Record<string, string>) =>
      verifyGitHub({ rawBody: BODY, headers, secret: SECRET });
    expect(check({})).toMatchObject({
      ok: false,
      reason: 'the X-Hub-Signature-256 header is missing',
    });
    expect(check({ 'x-hub-signature': 'sha1=abc' })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/legacy SHA-1/),
    });
    expect(check({ 'x-hub-signature-256': SIGNATURE.slice(7) })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/malformed/),
    });
    expect(check({ 'x-hub-signature-256': 'sha256=zz' })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/malformed/),
    });
  });
});
