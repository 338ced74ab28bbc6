import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { appOptionsFromEnv, startApp, type App } from '../../../src/app.js';
import { integration } from '../../../src/integrations/declarations/config.js';
import { IntegrationRuntime } from '../../../src/integrations/runtime/runtime.js';
import { mockDecision } from '../../../src/integrations/declarations/mock.js';
import {
  INTEGRATIONS_FILE,
  declarations,
  definitions,
  integrations,
  onDeliveryFailed,
  patternIntegrations,
  subscribers,
} from '../../../examples/integration-patterns/index.js';
import { ProviderServer } from '../../fakes/provider-server.js';
import { tempDir } from '../../helpers.js';
import { keys } from './harness.js';

/**
 * The file loaded by the app (`integrationsFile` / `KEEL_INTEGRATIONS_FILE`), mock mode by
 * default, and the handlers answering over HTTP as the README's curl lines call them.
 */
const tmp = tempDir('keel-patterns-app-');
afterAll(() => tmp.cleanup());
let app: App | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
});
let n = 0;
const base = () => ({ db: join(tmp.dir, `app-${n++}.db`), port: 0, adminPort: 0 });

describe('the integrations file', () => {
  it('KEEL_INTEGRATIONS_FILE sets integrationsFile', () => {
    expect(appOptionsFromEnv({ KEEL_INTEGRATIONS_FILE: INTEGRATIONS_FILE })).toEqual({
      integrationsFile: INTEGRATIONS_FILE,
    });
    expect(appOptionsFromEnv({}).integrationsFile).toBeUndefined();
  });

  it('declares the seven integrations of seed 003 with their policies', () => {
    const byName = Object.fromEntries(declarations.map((c) => [c.name, integration(c)]));
    expect(Object.keys(byName)).toEqual([
      'GitHubAPI',
      'WeatherAPI',
      'StripeAPI',
      'GitHubGraphQL',
      'WebhookDeliveryService',
      'NotificationService',
      'StorageService',
    ]);
    const gh = byName.GitHubAPI!;
    expect(gh.headers).toMatchObject({ 'X-GitHub-Api-Version': '2022-11-28' });
    expect(gh.timeoutMs).toBe(30_000);
    expect(gh.retry).toMatchObject({ maxAttempts: 4, factor: 2, scheduleMs: [] });
    expect(gh.circuitBreaker).toMatchObject({ failures: 5, windowMs: 60_000, resetMs: 30_000 });
    expect(gh.rateLimit).toMatchObject({ requests: 5000, windowMs: 3_600_000 });
    expect(gh.operations.get_user).toMatchObject({ cacheTtlMs: 300_000 });
    expect(Object.keys(gh.operations)).toEqual([
      'get_user',
      'list_repos',
      'create_issue',
      'get_rate_limit',
    ]);
    expect(byName.WeatherAPI!.auth).toMatchObject({ type: 'apiKey', in: 'query', name: 'appid' });
    expect(byName.WeatherAPI!.cache.defaultTtlMs).toBe(900_000);
    expect(byName.WeatherAPI!.fallback).toEqual({ kind: 'cache' });
    expect(byName.StripeAPI!.idempotency).toEqual({ enabled: true, header: 'Idempotency-Key' });
    expect(byName.GitHubGraphQL!.operations.get_user_repos).toMatchObject({
      variables: { login: { required: true }, first: { default: 10 } },
    });
    expect(byName.NotificationService!.batching).toEqual({ maxBatchSize: 100, maxDelayMs: 5000 });
    expect(byName.StorageService!.auth).toMatchObject({ type: 'awsSigV4', service: 's3' });
  });

  it('startApp({ integrationsFile }) serves its integrations and configures webhook delivery', async () => {
    app = await startApp({
      ...base(),
      services: [],
      integrationsFile: INTEGRATIONS_FILE,
      integrations: { log: () => undefined },
    });
    expect(app.integrations!.list().map((h) => h.integration.name)).toEqual(
      declarations.map((c) => c.name),
    );
    // No `webhooks` option: the type: webhook declaration enables delivery, as declared.
    expect(app.webhooks!.runtime.options).toMatchObject({
      signature: { algorithm: 'sha256', header: 'X-Webhook-Signature' },
      retry: {
        maxAttempts: 6,
        scheduleMs: [60_000, 300_000, 1_800_000, 7_200_000, 28_800_000],
        jitter: 0,
      },
      retentionMs: 7 * 86_400_000,
    });
    const status = await fetch(`${app.admin.url}/integrations/status`);
    expect(status.status).toBe(200);
    expect(JSON.stringify(await status.json())).toContain('StorageService');
  });

  it('the app options win over the declaration, field by field', async () => {
    app = await startApp({
      ...base(),
      services: [],
      integrationsFile: INTEGRATIONS_FILE,
      integrations: { log: () => undefined },
      webhooks: { retry: { schedule: ['1s'] }, allow: ['127.0.0.1'] },
    });
    expect(app.webhooks!.runtime.options).toMatchObject({
      signature: { header: 'X-Webhook-Signature' },
      retry: { maxAttempts: 2, scheduleMs: [1000], jitter: 0 },
      retentionMs: 7 * 86_400_000,
    });
  });

  it('refuses an integration declared differently in code and in the file', async () => {
    const other = integration({ ...declarations[0]!, timeout: '5s' });
    await expect(
      startApp({
        ...base(),
        services: [],
        integrationsFile: INTEGRATIONS_FILE,
        integrations: [other],
      }),
    ).rejects.toThrow(/GitHubAPI is declared in .*integrations\.cai and, differently/);
  });
});

describe('mock mode by default', () => {
  let api: ProviderServer;
  beforeAll(async () => {
    api = await ProviderServer.start();
  });
  afterAll(async () => {
    await api.close();
  });

  it('without keys the handlers answer from the mocks, logged once per integration', async () => {
    const logs: string[] = [];
    app = await startApp({
      ...base(),
      services: definitions,
      integrationsFile: INTEGRATIONS_FILE,
      integrations: {
        integrations,
        subscribers,
        env: {},
        log: (_level, message) => logs.push(message),
      },
      webhooks: { onDeliveryFailed },
    });
    expect(logs).toEqual(
      expect.arrayContaining([
        'GitHubAPI: GITHUB_TOKEN not set, using the mock',
        'WeatherAPI: OPENWEATHER_API_KEY not set, using the mock',
        'StripeAPI: STRIPE_SECRET_KEY not set, using the mock',
        'StorageService: S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION not set, using the mock',
      ]),
    );
    expect(logs.filter((l) => l.startsWith('GitHubAPI:'))).toHaveLength(1);
    const call = async (handler: string, input: unknown): Promise<any> => {
      const res = await fetch(`${app!.ingress.url}/IntegrationPatterns/${handler}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(input),
      });
      expect(res.status, `${handler}: ${res.status}`).toBe(200);
      return res.json();
    };
    expect(await call('githubUser', 'octocat')).toMatchObject({ login: 'octocat' });
    expect(await call('weather', 'London')).toMatchObject({ name: 'London' });
    expect(await call('charge', { amount: 1200 })).toMatchObject({
      object: 'charge',
      amount: 1200,
    });
    expect(await call('userRepos', { login: 'octocat' })).toMatchObject({
      user: { repositories: { nodes: expect.any(Array) } },
    });
    // A full batch leaves at once (one notification alone waits max_delay, 5 s, for company).
    expect(await call('notifyMany', { count: 100 })).toEqual({ sent: 100, results: 100 });
    await call('putObject', { bucket: 'docs', key: 'a/b.txt', body: 'hello' });
    expect(await call('getObject', { bucket: 'docs', key: 'a/b.txt' })).toBe('hello');
    expect(await call('createIssue', { owner: 'acme', repo: 'api', title: 'Bug' })).toMatchObject({
      title: 'Bug',
    });
    expect(await call('githubRateLimit', {})).toMatchObject({ resources: expect.any(Object) });
  });

  it('with the keys set the call goes to the real API; KEEL_MOCK=1 and KEEL_MOCK=0 force', async () => {
    const local = patternIntegrations({
      change: (c) => (typeof c.baseUrl === 'string' ? { ...c, baseUrl: api.url } : c),
    });
    const gh = local.GitHubAPI;
    expect(mockDecision(gh, {})).toEqual({
      on: true,
      reason: 'missing-env',
      missing: ['GITHUB_TOKEN'],
    });
    expect(mockDecision(gh, { GITHUB_TOKEN: 't' }).on).toBe(false);
    expect(mockDecision(gh, { GITHUB_TOKEN: 't', KEEL_MOCK: '1' }).on).toBe(true);
    expect(mockDecision(gh, { KEEL_MOCK: '0' }).on).toBe(false);

    const before = api.count('/users/grace');
    const real = new IntegrationRuntime({ env: keys(api), log: () => undefined });
    expect(await real.client(gh).get_user({ username: 'grace' })).toMatchObject({
      login: 'grace',
    });
    expect(api.count('/users/grace')).toBe(before + 1);
    expect(api.requests.at(-1)!.headers.authorization).toBe('Bearer ghp_test');
    await real.close();

    const forced = new IntegrationRuntime({
      env: { ...keys(api), KEEL_MOCK: '1' },
      log: () => undefined,
    });
    await forced.client(gh).get_user({ username: 'grace' });
    expect(api.count('/users/grace')).toBe(before + 1);
    await forced.close();

    const noMocks = new IntegrationRuntime({ env: { KEEL_MOCK: '0' }, log: () => undefined });
    await expect(noMocks.client(gh).get_user({ username: 'grace' })).rejects.toThrow(
      /GITHUB_TOKEN/,
    );
    expect(api.count('/users/grace')).toBe(before + 1);
    await noMocks.close();
  });
});
