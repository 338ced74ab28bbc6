import { describe, expect, it } from 'vitest';
import { signApiKey } from '../declarations/auth/api-key.js';
import { authorize } from '../declarations/auth/authorize.js';
import { apiKey } from '../declarations/auth/config.js';
import { integration } from '../declarations/config.js';
import { env } from '../declarations/secrets.js';
import { withOverrides } from './common.js';
import {
  githubGraphQL,
  github,
  openWeather,
  s3,
  sendgrid,
  shippo,
  slack,
  stripe,
  twilio,
} from './index.js';

describe('the declared policies', () => {
  it('every factory declares a valid integration with a mock and a breaker', () => {
    for (const c of [
      stripe(),
      twilio({ env: {} }),
      slack(),
      sendgrid(),
      github(),
      githubGraphQL(),
      shippo(),
      openWeather(),
      s3(),
    ]) {
      expect(typeof c.mock, c.name).toBe('function');
      expect(c.circuitBreaker, c.name).toMatchObject({
        failures: 5,
        windowMs: 60_000,
        resetMs: 30_000,
      });
      expect(c.mockMode, c.name).toBe(false);
    }
  });

  it('stripe sends an idempotency key on POSTs only, form-encoded, and retries 409', () => {
    const s = stripe();
    expect(s.auth).toEqual({ type: 'bearer', token: { env: 'STRIPE_SECRET_KEY' } });
    expect(s.operations.create_charge).toMatchObject({
      sendIdempotencyKey: true,
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    expect(s.operations.create_refund.sendIdempotencyKey).toBe(true);
    expect(s.operations.retrieve_charge.sendIdempotencyKey).toBe(false);
    expect(s.errors.retryable).toContain(409);
  });

  it('providers without idempotency keys do not retry ambiguous 5xx on their sends', () => {
    expect(twilio({ env: {} }).operations.send_sms.errors.terminal).toEqual([500, 502, 504]);
    expect(sendgrid().operations.send_mail.errors.terminal).toEqual([500, 502, 504]);
    expect(shippo().operations.create_transaction.errors.terminal).toEqual([500, 502, 504]);
    expect(twilio({ env: {} }).operations.fetch_message.errors.terminal ?? []).toEqual([]);
  });

  it('github caches reads but not the polled ones; openweather caches 15m with a cache fallback', () => {
    const g = github();
    expect(g.operations.get_user.cacheTtlMs).toBe(300_000);
    expect(g.operations.get_deployment.cacheTtlMs).toBe(60_000);
    expect(g.operations.list_deployment_statuses.cacheTtlMs).toBeUndefined();
    expect(g.operations.create_issue.cacheTtlMs).toBeUndefined();
    const w = openWeather();
    expect(w.operations.get_current.cacheTtlMs).toBe(600_000);
    expect(w.operations.get_forecast.cacheTtlMs).toBe(900_000);
    expect(w.fallback).toEqual({ kind: 'cache' });
    expect(w.auth).toEqual({
      type: 'apiKey',
      key: { env: 'OPENWEATHER_API_KEY' },
      in: 'query',
      name: 'appid',
    });
  });

  it('shippo authenticates with ShippoToken; s3 signs with SigV4 from the environment', () => {
    expect(shippo({ apiToken: env('T') }).auth).toEqual({
      type: 'apiKey',
      key: { env: 'T' },
      in: 'header',
      name: 'Authorization',
      prefix: 'ShippoToken ',
    });
    expect(s3().auth).toMatchObject({
      type: 'awsSigV4',
      service: 's3',
      region: { env: 'AWS_REGION' },
    });
    expect(s3().operations.put_object).toMatchObject({
      method: 'PUT',
      pathParams: ['bucket', 'key'],
      idempotent: true,
    });
  });

  it('options override policies: false removes one, headers merge, names change', () => {
    const g = github({
      name: 'GH2',
      rateLimit: false,
      cache: false,
      headers: { 'User-Agent': 'my-app' },
    });
    expect(g.name).toBe('GH2');
    expect(g.rateLimit).toBeUndefined();
    expect(g.cache.defaultTtlMs).toBeUndefined();
    expect(g.headers).toMatchObject({
      'User-Agent': 'my-app',
      'X-GitHub-Api-Version': '2022-11-28',
    });
    expect(stripe({ retry: false }).retry.maxAttempts).toBe(1);
    expect(withOverrides({ name: 'A', timeout: '1s' }, { timeout: '2s' })).toEqual({
      name: 'A',
      timeout: '2s',
    });
  });

  it('github GraphQL takes extra documents next to its own', () => {
    const q = githubGraphQL({
      operations: {
        get_stars: { query: 'query { viewer { starredRepositories { totalCount } } }' },
      },
    });
    expect(Object.keys(q.operations).sort()).toEqual(['get_stars', 'get_user_repos', 'get_viewer']);
    expect(q.operations.get_user_repos).toMatchObject({ kind: 'graphql', cacheTtlMs: 60_000 });
  });
});

describe('what the connectors added to declarations', () => {
  it("a REST path may be '' (the base URL itself), but not a relative path", () => {
    expect(
      integration({
        name: 'Hook',
        baseUrl: 'https://hooks.example.com/x',
        operations: { post: { method: 'POST', path: '' } },
      }).operations.post,
    ).toMatchObject({ path: '', pathParams: [] });
    expect(() => integration({ name: 'Bad', operations: { get: { path: 'users' } } })).toThrow(
      /must be a path starting with \//,
    );
  });

  it('an API key in a header may have a prefix; not in the query, and not with a line break', () => {
    const signed = signApiKey({ method: 'GET', url: 'https://api.goshippo.com/x' }, 'tok', {
      in: 'header',
      name: 'Authorization',
      prefix: 'ShippoToken ',
    });
    expect(signed.headers.authorization).toBe('ShippoToken tok');
    expect(
      authorize(
        apiKey('tok', { header: 'Authorization', prefix: 'ShippoToken ' }),
        { method: 'GET', url: 'https://a.example.com/' },
        { integration: 'S' },
      ).headers.authorization,
    ).toBe('ShippoToken tok');
    expect(() =>
      integration({
        name: 'Q',
        auth: { type: 'apiKey', key: 'k', in: 'query', name: 'appid', prefix: 'x' },
      }),
    ).toThrow(/auth.prefix is for an API key in a header/);
    expect(() =>
      integration({
        name: 'H',
        auth: { type: 'apiKey', key: 'k', in: 'header', name: 'Authorization', prefix: 'a\nb' },
      }),
    ).toThrow(/auth.prefix must be a string without line breaks/);
  });
});
