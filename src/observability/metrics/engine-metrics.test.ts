import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../store/sqlite/index.js';
import type { Store } from '../../store/types.js';
import { appOptionsFromEnv, startApp } from '../../app.js';
import { EngineMetrics, metricsEnabled } from './engine-metrics.js';

const dir = mkdtempSync(join(tmpdir(), 'keel-engine-metrics-'));
let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The value of one sample line of the text format, or undefined when absent. */
function sample(text: string, line: string): number | undefined {
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? undefined : Number(found.slice(line.length + 1));
}

describe('EngineMetrics.step', () => {
  it('counts steps in their own handler series when handlers alternate, and leaves the row alone', async () => {
    store = openSqliteStore({ path: join(dir, 'step.db') });
    const metrics = new EngineMetrics(store, () => 0);
    const a = { id: 'inv_a', service: 'Orders', handler: 'place' };
    const b = { id: 'inv_b', service: 'Orders', handler: 'cancel' };
    const c = { id: 'inv_c', service: 'Billing', handler: 'place' };
    for (const [row, ms] of [
      [a, 0],
      [a, 3],
      [b, 2000],
      [a, 1],
      [c, 7],
      [b, 0],
    ] as const)
      metrics.step(row, ms);

    const text = await metrics.text();
    const count = (service: string, handler: string): number | undefined =>
      sample(text, `keel_step_duration_seconds_count{service="${service}",handler="${handler}"}`);
    expect(count('Orders', 'place')).toBe(3);
    expect(count('Orders', 'cancel')).toBe(2);
    expect(count('Billing', 'place')).toBe(1);
    expect(
      sample(text, 'keel_step_duration_seconds_sum{service="Orders",handler="cancel"}'),
    ).toBeCloseTo(2);
    // The engine's rows keep the shape they were made with: metrics add nothing to them.
    for (const row of [a, b, c]) {
      expect(Object.getOwnPropertySymbols(row)).toEqual([]);
      expect(Object.keys(row)).toEqual(['id', 'service', 'handler']);
    }
  });
});

describe('KEEL_METRICS', () => {
  it('maps onto the metrics option through appOptionsFromEnv, as the engine reads it', () => {
    for (const off of ['0', 'false', 'OFF', ' no ']) {
      expect(appOptionsFromEnv({ KEEL_METRICS: off }).metrics, off).toBe(false);
      expect(metricsEnabled(undefined, { KEEL_METRICS: off }), off).toBe(false);
    }
    for (const on of ['1', 'true', 'on'])
      expect(appOptionsFromEnv({ KEEL_METRICS: on }).metrics, on).toBe(true);
    // Unset or empty: the option is left alone (metrics on by default).
    expect('metrics' in appOptionsFromEnv({})).toBe(false);
    expect('metrics' in appOptionsFromEnv({ KEEL_METRICS: '' })).toBe(false);
    // The option wins over the environment the engine would read.
    expect(metricsEnabled(true, { KEEL_METRICS: '0' })).toBe(true);
    // Anything else is refused, saying what would do, rather than read as "on".
    for (const bad of ['disabled', 'nope', '2']) {
      expect(() => appOptionsFromEnv({ KEEL_METRICS: bad }), bad).toThrow(/KEEL_METRICS="/);
      expect(() => metricsEnabled(undefined, { KEEL_METRICS: bad }), bad).toThrow(
        /neither on \(1, true, on, yes\) nor off \(0, false, off, no\)/,
      );
    }
  });

  it('spread after the options, it turns GET /metrics off', async () => {
    const app = await startApp({
      services: [],
      db: join(dir, 'env.db'),
      port: 0,
      adminPort: 0,
      metrics: true,
      logger: () => undefined,
      ...appOptionsFromEnv({ KEEL_METRICS: '0' }),
    });
    try {
      const res = await fetch(`${app.admin.url}/metrics`);
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ code: 'metrics_disabled' });
    } finally {
      await app.close();
    }
  });
});
