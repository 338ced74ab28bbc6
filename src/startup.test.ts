import { describe, expect, it } from 'vitest';
import { startWhileUnavailable } from './startup.js';
import { StoreError } from './store/errors.js';

/** A fake time that the pauses advance, and the log lines. */
function seams(maxWaitMs: number) {
  let t = 0;
  const pauses: number[] = [];
  const logs: string[] = [];
  return {
    pauses,
    logs,
    options: {
      maxWaitMs,
      hint: 'Check the database',
      logger: (level: string, message: string) => logs.push(`${level} ${message}`),
      now: () => t,
      sleep: async (ms: number) => {
        pauses.push(ms);
        t += ms;
      },
    },
  };
}

const down = () => new StoreError('store_unavailable', 'PostgreSQL is unavailable (ECONNREFUSED).');

describe('startWhileUnavailable', () => {
  it('tries again while the store is unavailable, with growing capped pauses, then succeeds', async () => {
    const s = seams(Infinity);
    let attempts = 0;
    const value = await startWhileUnavailable(async () => {
      if (++attempts <= 8) throw down();
      return 'started';
    }, s.options);
    expect(value).toBe('started');
    expect(attempts).toBe(9);
    expect(s.logs).toHaveLength(8);
    expect(s.logs[0]).toMatch(
      /^warn cannot start yet \(attempt 1.*ECONNREFUSED.*Check the database/,
    );
    expect(s.pauses[1]!).toBeGreaterThan(s.pauses[0]!);
    expect(Math.max(...s.pauses)).toBeLessThanOrEqual(12_000);
    expect(Math.max(...s.pauses)).toBeGreaterThanOrEqual(8_000);
  });

  it('gives up after the maximum wait with what to do', async () => {
    const s = seams(5_000);
    const failing = startWhileUnavailable(async () => {
      throw down();
    }, s.options);
    await expect(failing).rejects.toMatchObject({
      code: 'store_unavailable',
      message: expect.stringMatching(/gave up starting after \d+ attempt.*KEEL_STORE_WAIT/),
    });
    expect(s.pauses.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(5_000);
  });

  it('fails at once on an error that waiting cannot fix', async () => {
    const s = seams(Infinity);
    let attempts = 0;
    const failing = startWhileUnavailable(async () => {
      attempts++;
      throw new StoreError('schema_too_new', 'the schema was migrated by a newer Keel');
    }, s.options);
    await expect(failing).rejects.toMatchObject({ code: 'schema_too_new' });
    expect(attempts).toBe(1);
    expect(s.logs).toEqual([]);
  });
});
