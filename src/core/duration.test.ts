import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.js';
import { InvalidDelayError } from './errors.js';

describe('parseDuration', () => {
  it.each([
    [1500, 1500],
    ['1500', 1500],
    ['500ms', 500],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['2d', 172_800_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
    ['PT1M', 60_000],
    ['PT1.5S', 1500],
    ['P30D', 2_592_000_000],
    ['P1DT2H', 93_600_000],
    ['pt10s', 10_000],
  ])('%s → %d ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  it.each(['', 'abc', '10x', '-5s', 'P', 'PT', 'P1H', '5 minutes'])(
    'rejects %j with a message naming the accepted forms',
    (input) => {
      expect(() => parseDuration(input)).toThrow(/not a duration: use milliseconds/);
    },
  );

  it('rejects negative and non-finite numbers', () => {
    expect(() => parseDuration(-1)).toThrow(InvalidDelayError);
    expect(() => parseDuration(Number.NaN)).toThrow(InvalidDelayError);
    expect(() => parseDuration('soon')).toThrow(InvalidDelayError);
  });
});
