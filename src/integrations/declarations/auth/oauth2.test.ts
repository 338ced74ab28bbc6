import { describe, expect, it } from 'vitest';
import {
  OAuth2Error,
  OAuth2TokenCache,
  clientCredentialsRequest,
  parseTokenResponse,
  type AccessToken,
} from './oauth2.js';

/** A token endpoint stand-in: counts calls, hands out tok-1, tok-2, ... */
function endpoint(lifetimeMs: number | undefined, clock: { t: number }) {
  let calls = 0;
  const pending: Array<() => void> = [];
  return {
    get calls() {
      return calls;
    },
    /** Resolves immediately. */
    immediate: async (): Promise<AccessToken> => {
      calls++;
      return lifetimeMs === undefined
        ? { accessToken: `tok-${calls}` }
        : { accessToken: `tok-${calls}`, expiresAt: clock.t + lifetimeMs };
    },
    /** Resolves when `release()` is called. */
    deferred: (): Promise<AccessToken> => {
      calls++;
      const n = calls;
      return new Promise((resolve) => pending.push(() => resolve({ accessToken: `tok-${n}` })));
    },
    release: () => {
      for (const r of pending.splice(0)) r();
    },
  };
}

describe('OAuth2TokenCache', () => {
  it('fetches once and reuses the token', async () => {
    const clock = { t: 0 };
    const ep = endpoint(3_600_000, clock);
    const cache = new OAuth2TokenCache({ fetchToken: ep.immediate, now: () => clock.t });
    expect(await cache.get()).toBe('tok-1');
    clock.t = 1_000_000;
    expect(await cache.get()).toBe('tok-1');
    expect(ep.calls).toBe(1);
  });

  it('runs one refresh for many concurrent callers', async () => {
    const clock = { t: 0 };
    const ep = endpoint(undefined, clock);
    const cache = new OAuth2TokenCache({ fetchToken: ep.deferred, now: () => clock.t });
    const all = Promise.all(Array.from({ length: 20 }, () => cache.get()));
    ep.release();
    expect(new Set(await all)).toEqual(new Set(['tok-1']));
    expect(ep.calls).toBe(1);
  });

  it('refreshes a margin before expiry (60s by default)', async () => {
    const clock = { t: 0 };
    const ep = endpoint(3_600_000, clock);
    const cache = new OAuth2TokenCache({ fetchToken: ep.immediate, now: () => clock.t });
    await cache.get();
    clock.t = 3_600_000 - 60_001;
    expect(await cache.get()).toBe('tok-1');
    clock.t = 3_600_000 - 60_000;
    expect(await cache.get()).toBe('tok-2');
  });

  it('never uses more than half the lifetime as margin, so short tokens are still reused', async () => {
    const clock = { t: 0 };
    const ep = endpoint(10_000, clock);
    const cache = new OAuth2TokenCache({ fetchToken: ep.immediate, now: () => clock.t });
    await cache.get();
    clock.t = 4999;
    expect(await cache.get()).toBe('tok-1');
    clock.t = 5000;
    expect(await cache.get()).toBe('tok-2');
  });

  it('invalidate after a 401 fetches a new token; a stale 401 does not discard a fresh token', async () => {
    const clock = { t: 0 };
    const ep = endpoint(undefined, clock);
    const cache = new OAuth2TokenCache({ fetchToken: ep.immediate, now: () => clock.t });
    const first = await cache.get();
    cache.invalidate(first);
    const second = await cache.get();
    expect(second).toBe('tok-2');
    cache.invalidate(first); // a late 401 for tok-1
    expect(await cache.get()).toBe('tok-2');
    expect(cache.peek()).toEqual({ accessToken: 'tok-2' });
    cache.invalidate();
    expect(cache.peek()).toBeUndefined();
    expect(await cache.get()).toBe('tok-3');
  });

  it('a failed fetch reaches every waiter, is not cached, and the next get tries again', async () => {
    let calls = 0;
    const cache = new OAuth2TokenCache({
      fetchToken: async () => {
        calls++;
        if (calls === 1) throw new OAuth2Error('the token endpoint answered 503');
        return { accessToken: 'ok' };
      },
      now: () => 0,
    });
    const results = await Promise.allSettled([cache.get(), cache.get()]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toBe(1);
    expect(await cache.get()).toBe('ok');
  });

  it('refuses an empty token from fetchToken', async () => {
    const cache = new OAuth2TokenCache({ fetchToken: async () => ({ accessToken: '' }) });
    await expect(cache.get()).rejects.toThrow(/no access token/);
  });
});

describe('client credentials request and response', () => {
  it('builds the form POST with HTTP Basic client authentication by default', () => {
    const req = clientCredentialsRequest({
      tokenUrl: 'https://auth.example.com/oauth/token',
      clientId: 'my id',
      clientSecret: 's:cret',
      scope: 'read write',
      audience: 'https://api.example.com',
    });
    expect(req).toEqual({
      method: 'POST',
      url: 'https://auth.example.com/oauth/token',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        authorization: `Basic ${Buffer.from('my+id:s%3Acret').toString('base64')}`,
      },
      body: 'grant_type=client_credentials&scope=read+write&audience=https%3A%2F%2Fapi.example.com',
    });
  });

  it('or puts the credentials in the body', () => {
    const req = clientCredentialsRequest({
      tokenUrl: 'https://a/t',
      clientId: 'id',
      clientSecret: 'sec',
      clientAuth: 'body',
    });
    expect(req.headers).not.toHaveProperty('authorization');
    expect(req.body).toBe('grant_type=client_credentials&client_id=id&client_secret=sec');
  });

  it('reads a token response', () => {
    expect(
      parseTokenResponse(
        200,
        { access_token: 'abc', token_type: 'Bearer', expires_in: 3600 },
        1000,
      ),
    ).toEqual({
      accessToken: 'abc',
      tokenType: 'Bearer',
      expiresAt: 3_601_000,
    });
    expect(parseTokenResponse(200, { access_token: 'abc', expires_in: '60' }, 0)).toEqual({
      accessToken: 'abc',
      expiresAt: 60_000,
    });
    expect(parseTokenResponse(200, { access_token: 'abc' }, 0)).toEqual({ accessToken: 'abc' });
  });

  it('turns an error answer into an OAuth2Error with the server error', () => {
    let err: unknown;
    try {
      parseTokenResponse(
        401,
        { error: 'invalid_client', error_description: 'Client authentication failed' },
        0,
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OAuth2Error);
    expect(err).toMatchObject({ code: 'oauth2_failed', error: 'invalid_client', httpStatus: 401 });
    expect((err as Error).message).toBe(
      'OAuth2: the token endpoint answered 401 invalid_client: Client authentication failed. Check the client id, secret and scope.',
    );
    expect(() => parseTokenResponse(200, { token: 'x' }, 0)).toThrow(/without an access_token/);
    expect(() => parseTokenResponse(200, 'garbage', 0)).toThrow(OAuth2Error);
  });
});
