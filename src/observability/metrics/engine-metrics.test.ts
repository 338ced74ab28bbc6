import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../../store/sqlite/index.js';
import type { Store } from '../../store/types.js';
import { EngineMetrics } from './engine-metrics.js';

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
