import { describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_SCHEDULE, parseSchedule, RetrySchedule } from './schedule.js';
import { parseHttpDate, parseRetryAfter } from '../http/retry-after.js';

const NOW = Date.parse('2015-10-21T07:00:00Z');

function schedule(options: Partial<ConstructorParameters<typeof RetrySchedule>[0]> = {}) {
  return new RetrySchedule({ now: () => NOW, random: () => 0.5, ...options });
}

describe('parseSchedule', () => {
  it('parses the default schedule into milliseconds', () => {
    expect(parseSchedule(DEFAULT_RETRY_SCHEDULE)).toEqual([
      60_000, 300_000, 1_800_000, 7_200_000, 28_800_000,
    ]);
  });

  it('parses the string forms used in configuration and environment variables', () => {
    expect(parseSchedule('[1m, 5m, 30m, 2h, 8h]')).toEqual(parseSchedule(DEFAULT_RETRY_SCHEDULE));
    expect(parseSchedule('10s,PT1M, 1500')).toEqual([10_000, 60_000, 1_500]);
    expect(parseSchedule('["1m", "5m"]')).toEqual([60_000, 300_000]);
    expect(parseSchedule('[]')).toEqual([]);
    expect(parseSchedule([500, '1h30m'])).toEqual([500, 5_400_000]);
  });

  it('names bad entries', () => {
    expect(() => parseSchedule('1m,,5m')).toThrow(/empty entry/);
    expect(() => parseSchedule(['1m', 'soon'])).toThrow(/"soon" is not a duration/);
  });
});

describe('Retry-After', () => {
  it('parses delay-seconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', NOW)).toBe(0);
  });

  it('parses the three HTTP-date forms, as GMT, relative to now', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', NOW)).toBe(28 * 60_000);
    expect(parseRetryAfter('Wednesday, 21-Oct-15 07:28:00 GMT', NOW)).toBe(28 * 60_000);
    expect(parseRetryAfter('Wed Oct 21 07:28:00 2015', NOW)).toBe(28 * 60_000);
    expect(parseHttpDate('Sun Nov  6 08:49:37 1994')).toBe(Date.parse('1994-11-06T08:49:37Z'));
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW)).toBe(
      Date.parse('1994-11-06T08:49:37Z'),
    );
  });

  it('treats a date in the past as no wait', () => {
    expect(parseRetryAfter('Wed, 21 Oct 2015 06:00:00 GMT', NOW)).toBe(0);
  });

  it('ignores what it cannot parse', () => {
    for (const value of [
      undefined,
      null,
      '',
      'soon',
      '-5',
      '1.5',
      'Wed, 31 Feb 2015 07:28:00 GMT',
      '2015-10-21T07:28:00Z',
    ]) {
      expect(parseRetryAfter(value, NOW)).toBeUndefined();
    }
  });
});

describe('RetrySchedule', () => {
  it('allows one attempt plus one per delay', () => {
    expect(schedule().policy.maxAttempts).toBe(6);
    expect(schedule({ retry: { schedule: [] } }).policy.maxAttempts).toBe(1);
    expect(schedule({ retry: { schedule: ['10s', '1m'] } }).policy.maxAttempts).toBe(3);
  });

  it('retries on the schedule, with jitter from the injected random source', () => {
    const s = schedule({ retry: { jitter: 0 } });
    expect(
      [1, 2, 3, 4, 5].map((a) => s.nextAttemptAt(a, { status: 500 })!.getTime() - NOW),
    ).toEqual([60_000, 300_000, 1_800_000, 7_200_000, 28_800_000]);
    const low = schedule({ random: () => 0 });
    expect(low.decide(1, { status: 500 })).toEqual({
      action: 'retry',
      at: new Date(NOW + 54_000),
      delayMs: 54_000,
    });
    const high = schedule({ retry: { jitter: 0.2 }, random: () => 0.75 });
    expect(high.decide(2, { status: 500 })).toMatchObject({ delayMs: 330_000 });
  });

  it('retries when no response came (timeout, refused connection)', () => {
    expect(schedule().decide(1)).toMatchObject({ action: 'retry', delayMs: 60_000 });
    expect(schedule().decide(1, {})).toMatchObject({ action: 'retry' });
  });

  it('dead-letters after the last attempt', () => {
    expect(schedule().decide(6, { status: 500 })).toEqual({ action: 'dead_letter', attempts: 6 });
    expect(schedule().nextAttemptAt(6, { status: 500 })).toBeNull();
    expect(schedule({ retry: { schedule: [] } }).decide(1, { status: 503 })).toEqual({
      action: 'dead_letter',
      attempts: 1,
    });
  });

  it('stops on 2xx and disables on 410 Gone', () => {
    expect(schedule().decide(3, { status: 204 })).toEqual({ action: 'delivered' });
    expect(schedule().decide(1, { status: 410 })).toMatchObject({ action: 'disable' });
    expect(schedule().nextAttemptAt(1, { status: 200 })).toBeNull();
    expect(schedule().decide(1, { status: 301 })).toMatchObject({ action: 'retry' });
  });

  it('honours a longer Retry-After, from the headers or given directly, but never shortens the schedule', () => {
    const s = schedule({ retry: { jitter: 0 } });
    expect(s.decide(1, { status: 429, headers: { 'Retry-After': '600' } })).toEqual({
      action: 'retry',
      at: new Date(NOW + 600_000),
      delayMs: 600_000,
      retryAfterMs: 600_000,
    });
    expect(
      s.decide(1, {
        status: 503,
        headers: new Headers({ 'retry-after': 'Wed, 21 Oct 2015 08:00:00 GMT' }),
      }),
    ).toMatchObject({
      delayMs: 3_600_000,
    });
    expect(s.decide(1, { status: 503, retryAfter: '5' })).toEqual({
      action: 'retry',
      at: new Date(NOW + 60_000),
      delayMs: 60_000,
    });
    expect(s.decide(1, { status: 503, retryAfter: 'garbage' })).toMatchObject({ delayMs: 60_000 });
  });

  it('caps Retry-After at maxRetryAfter', () => {
    expect(schedule().decide(1, { status: 429, retryAfter: String(30 * 86_400) })).toMatchObject({
      delayMs: 86_400_000,
    });
    expect(
      schedule({ retry: { maxRetryAfter: '1h' } }).decide(1, { status: 429, retryAfter: '7200' }),
    ).toMatchObject({ delayMs: 3_600_000 });
  });

  it('calls random once per retry decision, so replays stay deterministic', () => {
    let calls = 0;
    const s = schedule({ random: () => (calls++, 0.3) });
    s.decide(1, { status: 500 });
    s.decide(1, { status: 200 });
    s.decide(6, { status: 500 });
    expect(calls).toBe(1);
  });

  it('takes the core RetryPolicy: an own schedule is exact, maxAttempts alone keeps the default one', () => {
    const own = schedule({ retry: { schedule: ['10s', '1m'] }, random: () => 0 });
    expect(own.decide(1, { status: 500 })).toMatchObject({ delayMs: 10_000 });
    expect(own.decide(3, { status: 500 })).toEqual({ action: 'dead_letter', attempts: 3 });
    const longer = schedule({ retry: { maxAttempts: 8, jitter: 0 } });
    expect(longer.decide(7, { status: 500 })).toMatchObject({ delayMs: 28_800_000 });
    const exp = schedule({ retry: { initialInterval: '10s', maxAttempts: 3, jitter: 0 } });
    expect([1, 2].map((a) => exp.decide(a, { status: 500 }))).toMatchObject([
      { delayMs: 10_000 },
      { delayMs: 20_000 },
    ]);
    expect(
      schedule({ retry: { respectRetryAfter: false, jitter: 0 } }).decide(1, {
        status: 429,
        retryAfter: '600',
      }),
    ).toEqual({ action: 'retry', at: new Date(NOW + 60_000), delayMs: 60_000 });
  });

  it('refuses bad options and attempt numbers', () => {
    expect(() => schedule({ retry: { jitter: 1.5 } })).toThrow(/jitter/);
    expect(() => schedule({ retry: { schedule: ['1m', 'soon'] } })).toThrow(/not a duration/);
    expect(() => schedule().decide(0)).toThrow(RangeError);
    expect(() => schedule().decide(1.5)).toThrow(RangeError);
  });
});
