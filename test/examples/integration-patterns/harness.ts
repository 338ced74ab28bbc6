/**
 * The integration-patterns example on an engine with a fake clock, a SQLite file, the
 * integrations and webhooks extensions wired as the app wires them, and local fake providers on
 * 127.0.0.1 (real HTTP): one fake API for the seven declarations, a Slack webhook receiver and a
 * customer's webhook endpoint.
 */
import { join } from 'node:path';
import { Engine } from '../../../src/engine/engine.js';
import {
  createIntegrations,
  type Integrations,
} from '../../../src/integrations/runtime/install.js';
import { slack } from '../../../src/integrations/connectors/slack.js';
import { openSqliteStore } from '../../../src/store/sqlite/index.js';
import { FakeClock, settle } from '../../../src/testing/index.js';
import { createWebhooks, type Webhooks } from '../../../src/webhooks/setup.js';
import { outboundFromDeclaration } from '../../../src/webhooks/outbound/options.js';
import {
  createIntegrationPatterns,
  patternIntegrations,
  type IntegrationPatterns,
} from '../../../examples/integration-patterns/index.js';
import { ProviderServer } from '../../fakes/provider-server.js';
import { tempDir } from '../../helpers.js';
import { receiver, type Receiver } from '../../webhooks/helpers.js';

export interface Patterns {
  engine: Engine;
  clock: FakeClock;
  api: ProviderServer;
  slackRx: Receiver;
  patterns: IntegrationPatterns;
  integrations: Integrations;
  hooks: Webhooks;
  /** Lines the example logged (the `IntegrationCircuitClosed` action). */
  lines: string[];
  /** What the integrations runtime logged. */
  runtimeLogs: string[];
  close(): Promise<void>;
}

/** Credentials for every declaration, so that nothing runs against a mock. */
export function keys(api: ProviderServer): Record<string, string> {
  return {
    GITHUB_TOKEN: 'ghp_test',
    OPENWEATHER_API_KEY: 'ow_test',
    STRIPE_SECRET_KEY: 'sk_test_1',
    NOTIFICATION_SERVICE_URL: api.url,
    NOTIFICATION_API_KEY: 'ntf_test',
    S3_ENDPOINT_URL: api.url,
    AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
    AWS_SECRET_ACCESS_KEY: 'secret',
    AWS_REGION: 'us-east-1',
  };
}

export async function patternsOnFakes(): Promise<Patterns> {
  const { dir, cleanup } = tempDir('keel-patterns-');
  const clock = new FakeClock();
  const api = await ProviderServer.start();
  const slackRx = await receiver();
  const lines: string[] = [];
  const runtimeLogs: string[] = [];
  const patterns = createIntegrationPatterns({
    // The file's declarations as written, with their base URLs on the local fake, no mocks.
    integrations: patternIntegrations({
      change: (c) => (typeof c.baseUrl === 'string' ? { ...c, baseUrl: api.url } : c),
      mocks: {},
    }),
    opsSlack: slack({ name: 'OpsSlack', webhookUrl: slackRx.url }),
    log: (line) => lines.push(line),
  });
  const integrations = createIntegrations({
    integrations: patterns.integrations,
    subscribers: patterns.subscribers,
    env: keys(api),
    log: (_level, message) => runtimeLogs.push(message),
  });
  const hooks = createWebhooks({
    ...outboundFromDeclaration(patterns.byName.WebhookDeliveryService),
    allow: ['127.0.0.1'],
    onDeliveryFailed: patterns.onDeliveryFailed,
  });
  const engine = new Engine({
    services: patterns.definitions,
    store: openSqliteStore({ path: join(dir, 'keel.db') }),
    clock,
    logger: () => undefined,
    extensions: [hooks, integrations],
  });
  await engine.start();
  return {
    engine,
    clock,
    api,
    slackRx,
    patterns,
    integrations,
    hooks,
    lines,
    runtimeLogs,
    async close() {
      await engine.stop().catch(() => undefined);
      await api.close();
      await slackRx.close();
      cleanup();
    },
  };
}

/**
 * Awaits `p` while moving the fake clock in `step`s, so that retry backoffs (which wait on the
 * runtime's clock) elapse. Returns the settled value or the error.
 */
export async function pumped<T>(
  clock: FakeClock,
  p: Promise<T>,
  step = '250ms',
): Promise<{ value?: T; error?: unknown }> {
  let done = false;
  const out = p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  void out.then(() => (done = true));
  for (let i = 0; !done && i < 400; i++) {
    await clock.advance(step);
    await settle(1);
  }
  return out;
}
