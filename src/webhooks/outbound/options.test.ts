import { describe, expect, it } from 'vitest';
import { integration } from '../../integrations/declarations/config.js';
import { parseIntegrations } from '../../integrations/declarations/dsl/parse.js';
import { outboundFromDeclaration, resolveOutbound } from './options.js';

/** The resolved webhook retry policy a `type: webhook` declaration stands for. */
function declaredRetry(body: string) {
  const [decl] = parseIntegrations(`integration Hooks {\n  type: webhook\n${body}\n}`);
  return resolveOutbound(outboundFromDeclaration(integration(decl!))).retry;
}

describe('outboundFromDeclaration: the declared retry is the same RetryPolicy', () => {
  it("seed 003's retry_delays: six attempts on the declared delays, exactly", () => {
    expect(
      declaredRetry(
        '  retry: 5 times with exponential_backoff\n  retry_delays: [1m, 5m, 30m, 2h, 8h]',
      ),
    ).toMatchObject({
      maxAttempts: 6,
      scheduleMs: [60_000, 300_000, 1_800_000, 7_200_000, 28_800_000],
      jitter: 0,
    });
  });

  it('a backoff without delays backs off exponentially, without jitter unless declared', () => {
    expect(
      declaredRetry('  retry: 3 times with exponential_backoff, starting at 10s'),
    ).toMatchObject({
      maxAttempts: 4,
      initialIntervalMs: 10_000,
      factor: 2,
      scheduleMs: [],
      jitter: 0,
    });
    expect(declaredRetry('  retry: 2 times with constant_backoff, jitter 5%')).toMatchObject({
      maxAttempts: 3,
      factor: 1,
      jitter: 0.05,
    });
  });

  it('retry: none is a single attempt; no retry keeps the webhook defaults', () => {
    expect(declaredRetry('  retry: none').maxAttempts).toBe(1);
    expect(declaredRetry('')).toMatchObject({ maxAttempts: 6, jitter: 0.1 });
  });
});
