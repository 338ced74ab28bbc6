import { describe, expect, it } from 'vitest';
import { toIntegrationEvent } from './events.js';
import { IntegrationStats } from './stats.js';

describe('IntegrationStats', () => {
  it('reports percentiles and rates over the window only, and the last error', () => {
    const s = new IntegrationStats(60_000);
    for (let i = 1; i <= 100; i++) s.attempt({ at: 100_000, ok: i % 10 !== 0, latencyMs: i });
    s.attempt({ at: 0, ok: false, latencyMs: 9999 }); // outside the window
    s.error(100_000, 'GET answered 503', 503);
    const snap = s.snapshot(120_000);
    expect(snap).toMatchObject({
      attempts: 100,
      failures: 10,
      errorRate: 0.1,
      successRate: 0.9,
      latencyP50: 50,
      latencyP99: 99,
      lastError: { message: 'GET answered 503', status: 503 },
    });
    expect(new IntegrationStats().snapshot(0)).toMatchObject({ latencyP50: null, successRate: 1 });
  });
});

describe('circuit events', () => {
  it('name each transition as the seed does and give it a unique id', () => {
    const opened = toIntegrationEvent('GitHubAPI', {
      type: 'opened',
      at: 0,
      reason: 'failures',
      failures: 5,
      probeAt: 30_000,
    });
    expect(opened).toEqual({
      type: 'IntegrationCircuitOpened',
      id: 'GitHubAPI:IntegrationCircuitOpened:0',
      integration: 'GitHubAPI',
      at: '1970-01-01T00:00:00.000Z',
      reason: 'failures',
      failures: 5,
      probeAt: '1970-01-01T00:00:30.000Z',
    });
    expect(toIntegrationEvent('X', { type: 'closed', at: 1, reason: 'reset' })).toMatchObject({
      type: 'IntegrationCircuitClosed',
      reason: 'reset',
    });
    expect(toIntegrationEvent('X', { type: 'half-opened', at: 1 }).type).toBe(
      'IntegrationCircuitHalfOpened',
    );
  });
});
