import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { integration, type IntegrationConfig } from '../config.js';
import { parseIntegrations, readIntegrationsFile } from './parse.js';
import { IntegrationDeclarationError } from '../../errors.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const parseFixture = (name: string): IntegrationConfig[] =>
  parseIntegrations(fixture(name), { file: name });

/** The error a source raises, for asserting its position and message. */
function errorOf(source: string): IntegrationDeclarationError {
  try {
    parseIntegrations(source);
  } catch (err) {
    if (err instanceof IntegrationDeclarationError) return err;
    throw err;
  }
  throw new Error('expected the source to be refused');
}

const SEED: Record<string, IntegrationConfig> = {
  'seed-003-github-api.keel': {
    name: 'GitHubAPI',
    type: 'rest',
    baseUrl: 'https://api.github.com',
    auth: { type: 'bearer', token: { env: 'GITHUB_TOKEN' } },
    timeout: 30_000,
    retry: { maxAttempts: 4 },
    circuitBreaker: { failures: 5, window: 60_000, reset: 30_000 },
    rateLimit: { requests: 5000, per: 3_600_000 },
  },
  'seed-003-weather-api.keel': {
    name: 'WeatherAPI',
    type: 'rest',
    auth: { type: 'apiKey', key: { env: 'OPENWEATHER_API_KEY' }, in: 'query', name: 'appid' },
    cache: { defaultTtl: 900_000 },
    fallback: 'cache',
  },
  'seed-003-stripe-api.keel': {
    name: 'StripeAPI',
    type: 'rest',
    idempotency: { header: 'Idempotency-Key', enabled: true },
  },
  'seed-003-github-graphql.keel': {
    name: 'GitHubGraphQL',
    type: 'graphql',
    baseUrl: 'https://api.github.com/graphql',
    operations: {
      get_user_repos: {
        query: [
          'query GetUserRepos($login: String!, $first: Int!) {',
          '    user(login: $login) {',
          '        repositories(first: $first) {',
          '            nodes { name, stargazerCount }',
          '        }',
          '    }',
          '}',
        ].join('\n'),
        variables: {
          login: { type: 'string', required: true },
          first: { type: 'integer', default: 10 },
        },
      },
    },
  },
  'seed-003-webhook-delivery.keel': {
    name: 'WebhookDeliveryService',
    type: 'webhook',
    signature: { algorithm: 'sha256', header: 'X-Webhook-Signature' },
    retry: { maxAttempts: 6, schedule: [60_000, 300_000, 1_800_000, 7_200_000, 28_800_000] },
    deadLetter: { enabled: true, retention: 604_800_000 },
  },
  'seed-003-notification-service.keel': {
    name: 'NotificationService',
    batching: { enabled: true, maxBatchSize: 100, maxDelay: 5000 },
  },
  'seed-003-storage-service.keel': {
    name: 'StorageService',
    type: 'rest',
    auth: {
      type: 'awsSigV4',
      accessKeyId: { env: 'AWS_ACCESS_KEY_ID' },
      secretAccessKey: { env: 'AWS_SECRET_ACCESS_KEY' },
      region: { env: 'AWS_REGION' },
      service: 's3',
    },
  },
};

describe('parseIntegrations: the seed 003 declarations, verbatim', () => {
  it.each(Object.entries(SEED))('%s', (file, expected) => {
    expect(parseFixture(file)).toEqual([expected]);
  });

  it('every integration fixture is covered', () => {
    const seedFiles = readdirSync(FIXTURES).filter(
      (f) => /^seed-003-.*\.keel$/.test(f) && f !== 'seed-003-key-concepts.keel',
    );
    expect(seedFiles.sort()).toEqual(Object.keys(SEED).sort());
  });

  it('resolves them: the webhook schedule is followed exactly, the GraphQL query is cacheable', () => {
    const webhook = integration(parseFixture('seed-003-webhook-delivery.keel')[0]!);
    expect(webhook.retry).toMatchObject({
      maxAttempts: 6,
      scheduleMs: [60_000, 300_000, 1_800_000, 7_200_000, 28_800_000],
      jitter: 0,
    });
    expect(webhook.deadLetter).toEqual({ enabled: true, retentionMs: 604_800_000 });
    const gql = integration(parseFixture('seed-003-github-graphql.keel')[0]!);
    expect(gql.operations.get_user_repos).toMatchObject({
      kind: 'graphql',
      method: 'POST',
      idempotent: true,
    });
    const github = integration(parseFixture('seed-003-github-api.keel')[0]!);
    expect(github.circuitBreaker).toEqual({
      failures: 5,
      windowMs: 60_000,
      resetMs: 30_000,
      probeTimeoutMs: 30_000,
    });
    expect(github.rateLimit).toEqual({ requests: 5000, windowMs: 3_600_000 });
  });

  it('the "Key Concepts" snippets', () => {
    const byName = Object.fromEntries(
      parseFixture('seed-003-key-concepts.keel').map((c) => [c.name, c]),
    );
    expect(byName.ConceptCircuitBreaker!.circuitBreaker).toEqual({
      failures: 5,
      window: 60_000,
      reset: 30_000,
    });
    expect(byName.ConceptRetry!.retry).toEqual({ maxAttempts: 4 });
    expect(byName.ConceptRetryDelays!.retry).toEqual({
      schedule: [60_000, 300_000, 1_800_000, 7_200_000, 28_800_000],
    });
    expect(byName.ConceptRateLimit!.rateLimit).toEqual({
      requests: 5000,
      per: 3_600_000,
      remainingHeader: 'X-RateLimit-Remaining',
    });
    expect(byName.ConceptCaching).toMatchObject({
      cache: { defaultTtl: 900_000 },
      operations: { get_current: { path: '/data/2.5/weather', cache: 600_000 } },
    });
    expect(byName.ConceptFallbackCache!.fallback).toBe('cache');
    expect(byName.ConceptFallbackDefault!.fallback).toEqual({ default: { status: 'unavailable' } });
    expect(byName.ConceptSignature!.signature).toEqual({
      algorithm: 'sha256',
      header: 'X-Webhook-Signature',
      secretFrom: 'endpoint.secret',
    });
    expect(byName.ConceptBatching!.batching).toEqual({
      enabled: true,
      maxBatchSize: 100,
      maxDelay: 5000,
    });
    expect(byName.ConceptIdempotency!.idempotency).toEqual({
      header: 'Idempotency-Key',
      enabled: true,
    });
  });
});

describe('parseIntegrations: JSON', () => {
  it('the JSON form of the seed declarations gives the same configs', () => {
    const fromJson = parseFixture('seed-003.json');
    expect(fromJson).toEqual(Object.values(SEED));
  });

  it('accepts a bare list, camelCase keys and millisecond numbers', () => {
    const [c] = parseIntegrations(
      JSON.stringify([
        { name: 'A', baseUrl: 'https://a.example.com', timeout: 2500, rateLimit: '10 per second' },
      ]),
    );
    expect(c).toEqual({
      name: 'A',
      baseUrl: 'https://a.example.com',
      timeout: 2500,
      rateLimit: { requests: 10, per: 1000 },
    });
  });

  it('reports JSON mistakes with their line and column', () => {
    const text = '{\n  "integrations": [\n    { "name": "A", "timeout": "soon" }\n  ]\n}';
    const err = errorOf(text);
    expect([err.line, err.column]).toEqual([3, 31]);
    expect(err.message).toBe(
      'line 3, column 31: integration A, timeout: expected a duration like 30s, got "soon"',
    );
  });

  it('refuses a literal secret in JSON too', () => {
    const err = errorOf('[{ "name": "A", "auth": { "type": "bearer", "token": "ghp_abc123" } }]');
    expect(err.message).toMatch(/a literal secret in the file is refused: write env\(NAME\)/);
    expect(err.message).not.toContain('ghp_abc123');
  });
});

describe('parseIntegrations: every field', () => {
  const configs = parseFixture('full.keel');
  const byName = Object.fromEntries(configs.map((c) => [c.name, c]));

  it('GitHub: shorthand policies, headers, operations', () => {
    expect(byName.GitHub).toEqual({
      name: 'GitHub',
      type: 'rest',
      baseUrl: { env: 'GITHUB_API_URL' },
      auth: { type: 'bearer', token: { env: 'GITHUB_TOKEN' } },
      headers: { Accept: 'application/vnd.github+json', 'X-GitHub-Api-Version': '2022-11-28' },
      timeout: 10_000,
      healthCheckPath: '/zen',
      healthCheckInterval: 60_000,
      retry: {
        maxAttempts: 5,
        initialInterval: 200,
        maxInterval: 10_000,
        jitter: 0.2,
      },
      circuitBreaker: { failures: 5, window: 60_000, reset: 30_000 },
      rateLimit: { requests: 5000, per: 3_600_000 },
      errors: { retryable: [409] },
      operations: {
        get_user: { method: 'GET', path: '/users/{username}', cache: 300_000, fallback: 'cache' },
        list_repos: {
          path: '/user/repos',
          query: { per_page: '{per_page}', sort: 'updated' },
          cache: false,
        },
        create_issue: {
          method: 'POST',
          path: '/repos/{owner}/{repo}/issues',
          body: { title: '{title}', body: '{body}', labels: ['triage'] },
          retry: false,
        },
        create_deployment: {
          method: 'POST',
          path: '/repos/{owner}/{repo}/deployments',
          timeout: 60_000,
          retry: { maxAttempts: 3, factor: 1, initialInterval: 1000 },
          errors: { terminal: [409], retryable: [422] },
        },
      },
    });
  });

  it('Payments: basic auth, idempotency, a default fallback, a rate limit block', () => {
    expect(byName.Payments).toEqual({
      name: 'Payments',
      baseUrl: 'https://api.stripe.com/v1',
      auth: {
        type: 'basic',
        username: { env: 'STRIPE_SECRET_KEY' },
        password: { env: 'STRIPE_PASSWORD' },
      },
      idempotency: { header: 'Idempotency-Key', enabled: true },
      fallback: { default: { status: 'unavailable', retry: true, code: 503 } },
      rateLimit: {
        requests: 100,
        per: 1000,
        remainingHeader: 'X-RateLimit-Remaining',
        resetHeader: 'X-RateLimit-Reset',
      },
      operations: {
        create_charge: {
          method: 'POST',
          path: '/charges',
          body: { amount: '{amount}', currency: 'usd' },
        },
        refund: { method: 'POST', path: '/refunds', idempotent: true },
      },
    });
    const api = integration(byName.Payments!);
    expect(api.operations.create_charge!.sendIdempotencyKey).toBe(true);
    expect(api.operations.refund!.sendIdempotencyKey).toBe(false);
  });

  it('Warehouse: oauth2 block, a schedule replacing the backoff, batching', () => {
    expect(byName.Warehouse).toEqual({
      name: 'Warehouse',
      baseUrl: 'https://warehouse.example.com/api',
      auth: {
        type: 'oauth2',
        tokenUrl: 'https://auth.example.com/oauth/token',
        clientId: 'keel-warehouse',
        clientSecret: { env: 'WAREHOUSE_CLIENT_SECRET' },
        scope: 'inventory:read inventory:write',
        refreshMargin: 120_000,
      },
      retry: { maxAttempts: 4, schedule: [1000, 10_000, 60_000] },
      batching: { maxBatchSize: 50, maxDelay: 200 },
      operations: { reserve: { method: 'POST', path: '/reservations', batch: true } },
    });
    expect(integration(byName.Warehouse!).operations.reserve!.batch).toEqual({
      maxBatchSize: 50,
      maxDelayMs: 200,
    });
  });

  it('Sms: an API key in a header', () => {
    expect(byName.Sms!.auth).toEqual({
      type: 'apiKey',
      key: { env: 'SMS_KEY' },
      in: 'header',
      name: 'X-Api-Key',
    });
  });

  it('readIntegrationsFile reads a file and names it in errors', async () => {
    const configs = await readIntegrationsFile(join(FIXTURES, 'full.keel'));
    expect(configs.map((c) => c.name)).toEqual(['GitHub', 'Payments', 'Warehouse', 'Sms']);
    const dir = mkdtempSync(join(tmpdir(), 'keel-integrations-'));
    try {
      const file = join(dir, 'broken.keel');
      writeFileSync(file, 'integration A {\n  timeout: 30\n}\n');
      await expect(readIntegrationsFile(file)).rejects.toThrow(`${file}, line 2, column 12: `);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('parseIntegrations: errors say where and what', () => {
  it.each([
    [
      'a missing duration after "reset after"',
      'integration A {\n  circuit_breaker: 5 failures in 1m, reset after\n}',
      "line 2, column 49: integration A, circuit_breaker: expected a duration like 30s after 'reset after'",
    ],
    [
      'a word where a duration goes',
      'integration A {\n  circuit_breaker: 5 failures in 1m, reset after soon\n}',
      "line 2, column 50: integration A, circuit_breaker: expected a duration like 30s after 'reset after', found 'soon'",
    ],
    [
      'a missing "in"',
      'integration A {\n  circuit_breaker: 5 failures 1m, reset after 30s\n}',
      "line 2, column 31: integration A, circuit_breaker: expected 'in' after 'failures', found '1m'",
    ],
    [
      'a literal bearer token',
      'integration A {\n  auth: bearer("ghp_secret")\n}',
      'line 2, column 16: integration A, auth.token: a literal secret in the file is refused: write env(NAME) and set the environment variable NAME where Keel runs',
    ],
    [
      'a literal credential header',
      'integration A {\n  headers: { Authorization: "Bearer x" }\n}',
      'line 2, column 29: integration A, headers.Authorization: a literal secret in the file is refused: write env(NAME) and set the environment variable NAME where Keel runs',
    ],
    [
      'a bare word as a secret',
      'integration A {\n  auth: bearer(GITHUB_TOKEN)\n}',
      'line 2, column 16: integration A, auth.token: expected env(NAME), the environment variable that holds this secret',
    ],
    [
      'a misspelt field',
      'integration A {\n  retires: 3 times\n}',
      "line 2, column 3: integration A: unknown field 'retires'; did you mean 'retry'?",
    ],
    [
      'a duration without a unit',
      'integration A {\n  timeout: 30\n}',
      'line 2, column 12: integration A, timeout: a duration needs a unit: write 30ms, 30s or 30m',
    ],
    [
      'a malformed duration',
      'integration A {\n  timeout: 30x\n}',
      'line 2, column 12: "30x" is neither a number nor a duration (durations look like 500ms, 30s, 5m, 1h, 7d or 1h30m)',
    ],
    [
      'an unclosed block',
      'integration A {\n  retry: 3 times\n',
      "line 3, column 1: the '{' at line 1, column 15 is never closed with '}'",
    ],
    [
      'two fields on one line',
      'integration A {\n  circuit_breaker: {\n    threshold: 5 failures in 1m reset_after: 30s\n  }\n}',
      "line 3, column 33: 'reset_after' looks like the next field: put it on a new line or after a ','",
    ],
    [
      'a missing colon',
      'integration A {\n  timeout 30s\n}',
      "line 2, column 11: expected ':' after 'timeout', found '30s'",
    ],
    [
      'an unterminated string',
      'integration A {\n  base_url: "https://x\n}',
      'line 2, column 13: this string is never closed: add the closing " on the same line (use """ for text over several lines)',
    ],
    [
      'a stray character',
      'integration A {\n  timeout: 30s!\n}',
      'line 2, column 15: unexpected character "!"',
    ],
    [
      'the same integration twice',
      'integration A {\n}\nintegration A {\n}',
      'line 3, column 13: integration A is declared twice (first at line 1, column 13)',
    ],
    [
      'something other than an integration at the top',
      'retry: 3 times',
      "line 1, column 1: expected 'integration Name { ... }' at the top level, found 'retry'",
    ],
    [
      'an unknown backoff',
      'integration A {\n  retry: 3 times with linear_backoff\n}',
      "line 2, column 23: integration A, retry: unknown backoff 'linear_backoff': use exponential_backoff or constant_backoff",
    ],
    [
      'an unknown auth kind',
      'integration A {\n  auth: digest(env(X))\n}',
      "line 2, column 9: integration A, auth: unknown auth 'digest': use bearer, basic, api_key, oauth2 or aws_signature_v4",
    ],
    [
      'a rate limit with an unknown unit',
      'integration A {\n  rate_limit: 100 per fortnight\n}',
      "line 2, column 23: integration A, rate_limit: expected a duration like 30s after 'per' (or a unit: second, minute, hour, day), found 'fortnight'",
    ],
  ])('%s', (_what, source, message) => {
    expect(errorOf(source).message).toBe(message);
  });

  it('errors found by integration() point at the field they are about', () => {
    const zero = errorOf(
      'integration A {\n  circuit_breaker: 0 failures in 1m, reset after 30s\n}',
    );
    expect(zero.message).toBe(
      'line 2, column 20: integration A, circuit_breaker: must be a whole number of at least 1 (failures within the window that open the circuit), got 0',
    );
    const mismatch = errorOf('integration A {\n  retry: 3 times\n  retry_delays: [1m, 5m]\n}');
    expect(mismatch.message).toBe(
      'line 2, column 10: integration A, retry: is 4 (3 retries) but the schedule lists 2 delays; they must agree (maxAttempts = delays + 1, or leave it out)',
    );
    const path = errorOf('integration A {\n  operation get_user {\n    path: "users/{id}"\n  }\n}');
    expect(path.message).toBe(
      'line 3, column 11: integration A, operation get_user, path: must be a path starting with / (placeholders look like {name}), got "users/{id}"',
    );
    const placeholder = errorOf(
      'integration A {\n  operation get_user {\n    path: "/users/{user-id}"\n  }\n}',
    );
    expect(placeholder.message).toMatch(
      /^line 3, column 11: .*\{user-id\} is not a valid placeholder/,
    );
    const gql = errorOf(
      'integration A {\n  type: rest\n  operation q {\n    query: """{ viewer { login } }"""\n  }\n}',
    );
    expect(gql.message).toMatch(
      /^line 4, column 12: integration A, operation q, query: is a GraphQL document, but A is a rest integration/,
    );
    const type = errorOf('integration A {\n  type: soap\n}');
    expect(type.message).toBe(
      "line 2, column 9: integration A, type: must be one of 'rest', 'graphql', 'webhook', got \"soap\"",
    );
    const sig = errorOf(
      'integration A {\n  signature: { algorithm: "sha256", header: "X-Sig" }\n}',
    );
    expect(sig.message).toBe(
      "line 2, column 14: integration A, signature: is for webhook integrations only; set type: 'webhook' or remove it",
    );
  });

  it('lists the accepted fields when nothing is close', () => {
    expect(errorOf('integration A {\n  colour: red\n}').message).toBe(
      "line 2, column 3: integration A: unknown field 'colour' (accepted: name, type, base_url, auth, headers, timeout, retry, retry_delays, circuit_breaker, rate_limit, default_cache_ttl, cache, fallback, idempotency, batching, errors, signature, dead_letter, health_check, health_check_path, health_check_interval, operation, operations)",
    );
  });

  it('carries the file name and the position as fields', () => {
    let caught: unknown;
    try {
      parseIntegrations('integration A {\n  timeout: 30\n}', { file: 'integrations.keel' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(IntegrationDeclarationError);
    const err = caught as IntegrationDeclarationError;
    expect([err.file, err.line, err.column, err.code]).toEqual([
      'integrations.keel',
      2,
      12,
      'invalid_declaration',
    ]);
    expect(err.message.startsWith('integrations.keel, line 2, column 12: ')).toBe(true);
  });
});

describe('parseIntegrations: syntax details', () => {
  it('comments of three kinds, semicolons and commas as separators, a trailing comma', () => {
    const [c] = parseIntegrations(`
      # a comment
      integration A { /* block
        comment */ timeout: 5s; retry: none,
        base_url: "https://a.example.com", // trailing
      }
    `);
    expect(c).toEqual({ name: 'A', timeout: 5000, retry: false, baseUrl: 'https://a.example.com' });
  });

  it("a retry block in the core RetryPolicy's own words", () => {
    const [c] = parseIntegrations(
      'integration A {\n retry: { max_attempts: 5, initial_interval: 1s, max_interval: 1m, backoff: constant, max_retry_after: 1h }\n}',
    );
    expect(c!.retry).toEqual({
      maxAttempts: 5,
      initialInterval: 1000,
      maxInterval: 60_000,
      factor: 1,
      maxRetryAfter: 3_600_000,
    });
  });

  it('compound durations, percentages, escapes, string keys', () => {
    const [c] = parseIntegrations(
      'integration A {\n timeout: 1m30s\n retry: { times: 2, jitter: 10% }\n headers: { "X-Note": "tab\\there \\u0041" }\n}',
    );
    expect(c).toEqual({
      name: 'A',
      timeout: 90_000,
      retry: { maxAttempts: 3, jitter: 0.1 },
      headers: { 'X-Note': 'tab\there A' },
    });
  });

  it('a """ block is dedented', () => {
    const [c] = parseIntegrations(
      'integration G {\n  type: graphql\n  operation me {\n    query: """\n      query {\n        viewer { login }\n      }\n    """\n  }\n}',
    );
    expect(c!.operations!.me).toEqual({ query: 'query {\n  viewer { login }\n}' });
  });

  it('the short forms: "3 with exponential_backoff", "5 failures in 1m, reset after 30s", "5000 per hour"', () => {
    const [c] = parseIntegrations(`integration GitHub {
      auth: bearer(env(GITHUB_TOKEN))
      retry: 3 with exponential_backoff
      circuit_breaker: 5 failures in 1m, reset after 30s
      rate_limit: 5000 per hour
    }`);
    expect(c).toEqual({
      name: 'GitHub',
      auth: { type: 'bearer', token: { env: 'GITHUB_TOKEN' } },
      retry: { maxAttempts: 4 },
      circuitBreaker: { failures: 5, window: 60_000, reset: 30_000 },
      rateLimit: { requests: 5000, per: 3_600_000 },
    });
  });

  it('rate limit phrases', () => {
    const limits = [
      '100 per second',
      '100 requests per minute',
      '100 per 15m',
      '100 calls every day',
    ].map((p) => parseIntegrations(`integration A { rate_limit: ${p} }`)[0]!.rateLimit);
    expect(limits).toEqual([
      { requests: 100, per: 1000 },
      { requests: 100, per: 60_000 },
      { requests: 100, per: 900_000 },
      { requests: 100, per: 86_400_000 },
    ]);
  });

  it('the breaker block with a plain threshold and a window', () => {
    const [c] = parseIntegrations(
      'integration A { circuit_breaker: { threshold: 3, window: 10s, reset: 5s, probe_timeout: 2s } }',
    );
    expect(c!.circuitBreaker).toEqual({
      failures: 3,
      window: 10_000,
      reset: 5000,
      probeTimeout: 2000,
    });
  });

  it('an empty file declares nothing', () => {
    expect(parseIntegrations('// nothing yet\n')).toEqual([]);
  });
});
