import { describe, expect, expectTypeOf, it } from 'vitest';
import { apiKey, awsSigV4, basic, bearer, oauth2 } from './auth/config.js';
import { INTEGRATION_DEFAULTS, integration, type IntegrationConfig } from './config.js';
import { IntegrationConfigError } from '../errors.js';
import { env } from './secrets.js';

const BASE = { name: 'GitHub', baseUrl: 'https://api.github.com' } as const;

function refusal(config: unknown): IntegrationConfigError {
  try {
    integration(config as IntegrationConfig);
  } catch (err) {
    if (err instanceof IntegrationConfigError) return err;
    throw err;
  }
  throw new Error('expected the config to be refused');
}

describe('integration(): resolution', () => {
  it('applies the documented defaults', () => {
    const api = integration(BASE);
    expect(api).toMatchObject({
      name: 'GitHub',
      type: 'rest',
      baseUrl: 'https://api.github.com',
      auth: { type: 'none' },
      headers: {},
      timeoutMs: 30_000,
      retry: INTEGRATION_DEFAULTS.retry,
      circuitBreaker: undefined,
      rateLimit: undefined,
      cache: { defaultTtlMs: undefined },
      fallback: undefined,
      idempotency: { enabled: false, header: 'Idempotency-Key' },
      batching: undefined,
      errors: {},
      operations: {},
    });
    expect(api.retry).toEqual({
      maxAttempts: 4,
      initialIntervalMs: 100,
      maxIntervalMs: 30_000,
      factor: 2,
      scheduleMs: [],
      jitter: 0.25,
      respectRetryAfter: true,
      maxRetryAfterMs: 86_400_000,
    });
    expect(Object.isFrozen(api)).toBe(true);
  });

  it('resolves every policy to milliseconds', () => {
    const api = integration({
      ...BASE,
      auth: bearer(env('GITHUB_TOKEN')),
      timeout: '10s',
      retry: { maxAttempts: 6, initialInterval: '1s', maxInterval: '1m', factor: 3, jitter: 0.1 },
      circuitBreaker: { failures: 5, window: '1m', reset: '30s' },
      rateLimit: { requests: 5000, per: '1h', remainingHeader: 'X-RateLimit-Remaining' },
      cache: { defaultTtl: '5m' },
      fallback: 'cache',
      idempotency: true,
      batching: { maxBatchSize: 100, maxDelay: '5s' },
    });
    expect(api.timeoutMs).toBe(10_000);
    expect(api.retry).toEqual({
      maxAttempts: 6,
      initialIntervalMs: 1000,
      maxIntervalMs: 60_000,
      factor: 3,
      scheduleMs: [],
      jitter: 0.1,
      respectRetryAfter: true,
      maxRetryAfterMs: 86_400_000,
    });
    // The probe may take as long as a call.
    expect(api.circuitBreaker).toEqual({
      failures: 5,
      windowMs: 60_000,
      resetMs: 30_000,
      probeTimeoutMs: 10_000,
    });
    expect(api.rateLimit).toEqual({
      requests: 5000,
      windowMs: 3_600_000,
      remainingHeader: 'X-RateLimit-Remaining',
    });
    expect(api.cache).toEqual({ defaultTtlMs: 300_000 });
    expect(api.fallback).toEqual({ kind: 'cache' });
    expect(api.idempotency).toEqual({ enabled: true, header: 'Idempotency-Key' });
    expect(api.batching).toEqual({ maxBatchSize: 100, maxDelayMs: 5000 });
  });

  it('a schedule: retries from its length, no jitter unless asked', () => {
    const api = integration({ ...BASE, retry: { schedule: ['1m', '5m', '30m', '2h', '8h'] } });
    expect(api.retry).toMatchObject({
      maxAttempts: 6,
      scheduleMs: [60_000, 300_000, 1_800_000, 7_200_000, 28_800_000],
      jitter: 0,
    });
    expect(integration({ ...BASE, retry: false }).retry.maxAttempts).toBe(1);
    // An operation refining "no retries" starts from the defaults.
    const none = integration({
      ...BASE,
      retry: false,
      operations: { a: { path: '/a', retry: { initialInterval: '1s' } } },
    });
    expect(none.operations.a.retry).toMatchObject({ maxAttempts: 4, initialIntervalMs: 1000 });
  });

  it('operations inherit the integration policies and refine them', () => {
    const api = integration({
      ...BASE,
      headers: { Accept: 'application/vnd.github+json' },
      timeout: '10s',
      retry: { maxAttempts: 5, factor: 1, initialInterval: '2s' },
      cache: { defaultTtl: '5m' },
      fallback: { default: { ok: false } },
      idempotency: { header: 'X-Idempotency-Key' },
      errors: { retryable: [409], terminal: [501] },
      batching: { maxBatchSize: 10, maxDelay: '100ms' },
      operations: {
        get_user: { method: 'get', path: '/users/{username}' },
        get_fresh: { path: '/meta', cache: false, fallback: false },
        put_thing: { method: 'PUT', path: '/things/{id}', body: { name: '{name}' } },
        create_issue: {
          method: 'POST',
          path: '/repos/{owner}/{repo}/issues',
          query: { draft: '{draft}' },
          headers: { 'X-Extra': env('EXTRA') },
          timeout: '1m',
          retry: { maxAttempts: 2 },
          errors: { retryable: [501], terminal: [409, 422] },
          batch: true,
        },
        charge: { method: 'POST', path: '/charges', idempotent: true, cache: '1m' },
      },
    });
    const ops = api.operations;
    expect(ops.get_user).toMatchObject({
      kind: 'rest',
      method: 'GET',
      pathParams: ['username'],
      headers: { Accept: 'application/vnd.github+json' },
      cacheTtlMs: 300_000,
      idempotent: true,
      sendIdempotencyKey: false,
      fallback: { kind: 'default', value: { ok: false } },
      timeoutMs: 10_000,
      batch: undefined,
    });
    expect(ops.get_user.retry).toMatchObject({
      maxAttempts: 5,
      factor: 1,
      initialIntervalMs: 2000,
    });
    expect(ops.get_fresh).toMatchObject({ cacheTtlMs: undefined, fallback: undefined });
    // Writes are not cached by default, and PUT is idempotent.
    expect(ops.put_thing).toMatchObject({
      cacheTtlMs: undefined,
      idempotent: true,
      sendIdempotencyKey: false,
    });
    expect(ops.create_issue).toMatchObject({
      method: 'POST',
      pathParams: ['owner', 'repo'],
      query: { draft: '{draft}' },
      headers: { Accept: 'application/vnd.github+json', 'X-Extra': { env: 'EXTRA' } },
      cacheTtlMs: undefined,
      idempotent: false,
      sendIdempotencyKey: true,
      timeoutMs: 60_000,
      batch: { maxBatchSize: 10, maxDelayMs: 100 },
      errors: { retryable: [501], terminal: [409, 422] },
    });
    // The operation's retry refines the integration's: only the count changes.
    expect(ops.create_issue.retry).toMatchObject({
      maxAttempts: 2,
      factor: 1,
      initialIntervalMs: 2000,
    });
    expect(ops.charge).toMatchObject({
      idempotent: true,
      sendIdempotencyKey: false,
      cacheTtlMs: 60_000,
    });
    expect(Object.isFrozen(ops.charge)).toBe(true);
  });

  it('GraphQL: queries are cacheable and idempotent, mutations are not', () => {
    const api = integration({
      name: 'GitHubGraphQL',
      type: 'graphql',
      baseUrl: 'https://api.github.com/graphql',
      cache: { defaultTtl: '1m' },
      idempotency: true,
      operations: {
        repos: {
          query: 'query Repos($login: String!) { user(login: $login) { name } }',
          variables: { login: { type: 'string', required: true } },
        },
        shorthand: { query: '{ viewer { login } }' },
        star: {
          query:
            '# star it\nmutation Star($id: ID!) { addStar(input: { starrableId: $id }) { clientMutationId } }',
        },
      },
    });
    expect(api.operations.repos).toMatchObject({
      kind: 'graphql',
      method: 'POST',
      cacheTtlMs: 60_000,
      idempotent: true,
    });
    expect(api.operations.shorthand).toMatchObject({ cacheTtlMs: 60_000, idempotent: true });
    expect(api.operations.star).toMatchObject({
      cacheTtlMs: undefined,
      idempotent: false,
      sendIdempotencyKey: true,
    });
  });

  it('a webhook integration: signature and dead letter', () => {
    const hooks = integration({
      name: 'WebhookDeliveryService',
      type: 'webhook',
      signature: {
        algorithm: 'sha256',
        header: 'X-Webhook-Signature',
        secretFrom: 'endpoint.secret',
      },
      retry: { schedule: ['1m', '5m', '30m', '2h', '8h'] },
      deadLetter: { retention: '7d' },
    });
    expect(hooks.deadLetter).toEqual({ enabled: true, retentionMs: 604_800_000 });
    expect(hooks.signature).toEqual({
      algorithm: 'sha256',
      header: 'X-Webhook-Signature',
      secretFrom: 'endpoint.secret',
    });
  });

  it('accepts every auth kind built by the helpers', () => {
    for (const auth of [
      bearer(env('T')),
      basic('user', env('PASSWORD')),
      apiKey(env('K'), { query: 'appid' }),
      apiKey(env('K'), { header: 'X-Api-Key' }),
      oauth2({
        tokenUrl: 'https://auth.example.com/token',
        clientId: 'id',
        clientSecret: env('S'),
        scope: 'read',
      }),
      awsSigV4({
        accessKeyId: env('A'),
        secretAccessKey: env('S'),
        region: env('R'),
        service: 's3',
        unsignedPayload: true,
      }),
    ]) {
      expect(integration({ ...BASE, auth }).auth).toEqual(auth);
    }
  });

  it('keeps operation names in the type', () => {
    const api = integration({
      ...BASE,
      operations: { get_user: { path: '/users/{u}' }, list_repos: { path: '/repos' } },
    });
    expectTypeOf(api.operations).toEqualTypeOf<
      Readonly<Record<'get_user' | 'list_repos', (typeof api.operations)['get_user']>>
    >();
  });
});

describe('integration(): refusals name the integration, the field and what is accepted', () => {
  it.each([
    [{ name: '' }, '(unnamed)', 'name'],
    [{ name: 'has space' }, 'has space', 'name'],
    [{ ...BASE, type: 'soap' }, 'GitHub', 'type'],
    [{ ...BASE, baseUrl: 'api.github.com' }, 'GitHub', 'baseUrl'],
    [{ ...BASE, baseUrl: 'ftp://x.example.com' }, 'GitHub', 'baseUrl'],
    [{ ...BASE, timeout: '0s' }, 'GitHub', 'timeout'],
    [{ ...BASE, timeout: 'soon' }, 'GitHub', 'timeout'],
    [{ ...BASE, headers: { 'Bad Header': 'x' } }, 'GitHub', 'headers'],
    [{ ...BASE, headers: { 'X-A': 'a\r\nb' } }, 'GitHub', 'headers.X-A'],
    [{ ...BASE, auth: { type: 'digest' } }, 'GitHub', 'auth.type'],
    [{ ...BASE, auth: { type: 'bearer' } }, 'GitHub', 'auth.token'],
    [{ ...BASE, auth: { type: 'bearer', token: { env: 'not valid' } } }, 'GitHub', 'auth.token'],
    [
      { ...BASE, auth: { type: 'apiKey', key: env('K'), in: 'cookie', name: 'k' } },
      'GitHub',
      'auth.in',
    ],
    [
      {
        ...BASE,
        auth: {
          ...awsSigV4({
            accessKeyId: env('A'),
            secretAccessKey: env('S'),
            region: 'us-east-1',
            service: 'sqs',
          }),
          unsignedPayload: true,
        },
      },
      'GitHub',
      'auth.unsignedPayload',
    ],
    [{ ...BASE, retry: { maxAttempts: 0 } }, 'GitHub', 'retry.maxAttempts'],
    [{ ...BASE, retry: { maxAttempts: 2.5 } }, 'GitHub', 'retry.maxAttempts'],
    [{ ...BASE, retry: { retries: 3 } }, 'GitHub', 'retry.retries'],
    [{ ...BASE, retry: { initialDelay: '1s' } }, 'GitHub', 'retry.initialDelay'],
    [{ ...BASE, retry: { maxAtempts: 3 } }, 'GitHub', 'retry.maxAtempts'],
    [{ ...BASE, retry: { respectRetryAfter: 'yes' } }, 'GitHub', 'retry.respectRetryAfter'],
    [{ ...BASE, retry: { maxRetryAfter: 'soon' } }, 'GitHub', 'retry.maxRetryAfter'],
    [{ ...BASE, retry: { jitter: 2 } }, 'GitHub', 'retry.jitter'],
    [{ ...BASE, retry: { factor: 0.5 } }, 'GitHub', 'retry.factor'],
    [
      { ...BASE, retry: { initialInterval: '10s', maxInterval: '1s' } },
      'GitHub',
      'retry.maxInterval',
    ],
    [{ ...BASE, retry: { schedule: [] } }, 'GitHub', 'retry.schedule'],
    [{ ...BASE, retry: { schedule: ['1m'], backoff: 'exponential' } }, 'GitHub', 'retry.backoff'],
    [{ ...BASE, retry: { schedule: ['1m', 'x'] } }, 'GitHub', 'retry.schedule[1]'],
    [{ ...BASE, retry: { maxAttempts: 4, schedule: ['1m', '5m'] } }, 'GitHub', 'retry.maxAttempts'],
    [
      { ...BASE, circuitBreaker: { failures: 0, window: '1m', reset: '30s' } },
      'GitHub',
      'circuitBreaker.failures',
    ],
    [
      { ...BASE, circuitBreaker: { failures: 5, window: '0s', reset: '30s' } },
      'GitHub',
      'circuitBreaker.window',
    ],
    [{ ...BASE, circuitBreaker: { failures: 5, window: '1m' } }, 'GitHub', 'circuitBreaker.reset'],
    [{ ...BASE, rateLimit: { requests: 1.5, per: '1s' } }, 'GitHub', 'rateLimit.requests'],
    [{ ...BASE, rateLimit: { requests: 10 } }, 'GitHub', 'rateLimit.per'],
    [{ ...BASE, cache: { defaultTtl: 0 } }, 'GitHub', 'cache.defaultTtl'],
    [{ ...BASE, fallback: 'stale' }, 'GitHub', 'fallback'],
    [{ ...BASE, idempotency: { header: 'Idempotency Key' } }, 'GitHub', 'idempotency.header'],
    [{ ...BASE, batching: { maxBatchSize: 0, maxDelay: '1s' } }, 'GitHub', 'batching.maxBatchSize'],
    [{ ...BASE, errors: { retryable: [999] } }, 'GitHub', 'errors.retryable'],
    [{ ...BASE, errors: { retryable: [409], terminal: [409] } }, 'GitHub', 'errors'],
    [{ ...BASE, signature: { algorithm: 'sha256', header: 'X-Sig' } }, 'GitHub', 'signature'],
    [
      { name: 'Hooks', type: 'webhook', signature: { algorithm: 'md5', header: 'X-Sig' } },
      'Hooks',
      'signature.algorithm',
    ],
    [{ name: 'Hooks', type: 'webhook', operations: { a: { path: '/' } } }, 'Hooks', 'operations'],
    [{ ...BASE, operations: { 'get-user': { path: '/u' } } }, 'GitHub', 'operations.get-user'],
    [{ ...BASE, operations: { a: { path: 'users' } } }, 'GitHub', 'operations.a.path'],
    [{ ...BASE, operations: { a: { path: '/users/{id' } } }, 'GitHub', 'operations.a.path'],
    [
      { ...BASE, operations: { a: { method: 'FETCH', path: '/' } } },
      'GitHub',
      'operations.a.method',
    ],
    [
      { ...BASE, operations: { a: { path: '/', query: { q: 7 } } } },
      'GitHub',
      'operations.a.query.q',
    ],
    [{ ...BASE, operations: { a: { path: '/', body: { x: 1 } } } }, 'GitHub', 'operations.a.body'],
    [{ ...BASE, operations: { a: { path: '/', batch: true } } }, 'GitHub', 'operations.a.batch'],
    [
      { ...BASE, operations: { a: { query: '{ viewer { login } }' } } },
      'GitHub',
      'operations.a.query',
    ],
    [
      { ...BASE, type: 'graphql', operations: { a: { path: '/x' } } },
      'GitHub',
      'operations.a.query',
    ],
    [
      { ...BASE, type: 'graphql', operations: { a: { query: '{ a }', path: '/x' } } },
      'GitHub',
      'operations.a.path',
    ],
    [
      {
        ...BASE,
        type: 'graphql',
        operations: { a: { query: '{ a }', variables: { v: { type: 'date' } } } },
      },
      'GitHub',
      'operations.a.variables.v.type',
    ],
  ])('%j', (config, name, path) => {
    const err = refusal(config);
    expect(err.integration).toBe(name);
    expect(err.path).toBe(path);
    expect(err.code).toBe('invalid_integration');
    expect(err.message.startsWith(`integration ${name}: ${path} `)).toBe(true);
  });

  it('says what is accepted', () => {
    expect(
      refusal({ ...BASE, circuitBreaker: { failures: 0, window: '1m', reset: '30s' } }).message,
    ).toBe(
      'integration GitHub: circuitBreaker.failures must be a whole number of at least 1 (failures within the window that open the circuit), got 0',
    );
    expect(refusal({ ...BASE, type: 'soap' }).message).toBe(
      `integration GitHub: type must be one of 'rest', 'graphql', 'webhook', got "soap"`,
    );
    expect(refusal({ ...BASE, auth: { type: 'bearer', token: 42 } }).message).toBe(
      "integration GitHub: auth.token must be a string or env('NAME'); the token; use env('NAME')",
    );
  });

  it('never repeats a secret in a message', () => {
    const err = refusal({ ...BASE, auth: { type: 'basic', username: 'u', password: ['hunter2'] } });
    expect(err.message).not.toContain('hunter2');
  });
});

describe('integration(): mock mode', () => {
  it('keeps the mock and mockMode, and refuses a mock that is not a function', () => {
    const mock = (): { body: unknown } => ({ body: { ok: true } });
    const i = integration({ ...BASE, mock, mockMode: true });
    expect(i.mock).toBe(mock);
    expect(i.mockMode).toBe(true);
    expect(integration(BASE).mockMode).toBe(false);
    expect(refusal({ ...BASE, mock: 'yes' as never }).message).toMatch(/mock must be a function/);
    expect(refusal({ ...BASE, mockMode: true }).message).toMatch(
      /mockMode is true but there is no mock/,
    );
  });
});
