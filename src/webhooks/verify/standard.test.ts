import { describe, expect, it } from 'vitest';
import { assertVerified, WebhookVerificationError } from '../errors.js';
import { verifyStandardWebhook } from './standard.js';

const headers = {
  'webhook-id': 'msg_p5jXN8AQM9LWM0D4loKWxJek',
  'webhook-timestamp': '1614265330',
  'webhook-signature': 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
};
const input = {
  rawBody: Buffer.from('{"test": 2432232314}'),
  headers,
  secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
  now: new Date(1614265330 * 1000),
};

describe('verifyStandardWebhook', () => {
  it('verifies the published vector through the common verifier shape', () => {
    expect(verifyStandardWebhook(input)).toMatchObject({
      ok: true,
      id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    });
  });

  it('passes the tolerance through', () => {
    const later = { ...input, now: new Date((1614265330 + 3600) * 1000) };
    expect(verifyStandardWebhook(later).ok).toBe(false);
    expect(verifyStandardWebhook({ ...later, toleranceSeconds: 3600 }).ok).toBe(true);
  });
});

describe('assertVerified', () => {
  it('returns a verified result and throws a 401 invalid_signature error for a rejected one', () => {
    expect(assertVerified(verifyStandardWebhook(input)).id).toBe('msg_p5jXN8AQM9LWM0D4loKWxJek');
    let thrown: unknown;
    try {
      assertVerified(verifyStandardWebhook({ ...input, rawBody: '{}' }));
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(WebhookVerificationError);
    expect(thrown).toMatchObject({
      code: 'invalid_signature',
      status: 401,
      provider: 'standard-webhooks',
    });
    expect((thrown as Error).message).toMatch(
      /^standard-webhooks webhook rejected: no v1 signature/,
    );
  });
});
