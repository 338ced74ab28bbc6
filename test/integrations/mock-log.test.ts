import { describe, expect, it } from 'vitest';
import { env, IntegrationRuntime, integration } from '../../src/integrations/index.js';
import { FakeClock } from '../../src/testing/index.js';

/**
 * Why an integration answers from its mock is logged once at start. An app declaring 100+
 * services on one missing variable gets one summary line for them, not one line each.
 */
describe('mock-mode log lines', () => {
  const declare = (name: string, variable: string) =>
    integration({
      name,
      baseUrl: env(variable),
      operations: { ping: { path: '/ping' } },
      mock: () => ({ body: 'pong' }),
    });

  it('many integrations missing the same variable: one line naming how many', async () => {
    const logs: string[] = [];
    const runtime = new IntegrationRuntime({
      clock: new FakeClock(),
      env: {},
      log: (_level, message) => logs.push(message),
    });
    for (let i = 0; i < 120; i++) runtime.client(declare(`Service${i}`, 'PLATFORM_URL'));
    runtime.client(declare('Weather', 'WEATHER_URL'));
    await Promise.resolve();
    expect(logs).toEqual([
      '120 integrations (Service0, Service1, Service2, ...): PLATFORM_URL not set, using their mocks',
      'Weather: WEATHER_URL not set, using the mock',
    ]);
    await runtime.close();
  });
});
