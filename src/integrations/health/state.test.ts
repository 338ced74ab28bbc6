import { describe, expect, it } from 'vitest';
import { ProbeRegistry, probeRegistry } from './registry.js';
import {
  afterRun,
  initialRecord,
  initialVerdict,
  markNotified,
  parseVerdict,
  proposeVerdict,
} from './state.js';

describe('probe records', () => {
  it('unhealthy only after `threshold` failures in a row; a success resets the count', () => {
    let r = afterRun(initialRecord(), 1, 5, undefined, 3);
    expect(r).toMatchObject({
      result: 'healthy',
      consecutiveFailures: 0,
      lastSuccessAt: 1,
      runs: 1,
    });
    r = afterRun(r, 2, 5, 'boom', 3);
    r = afterRun(r, 3, 5, 'boom', 3);
    expect(r).toMatchObject({ result: 'healthy', consecutiveFailures: 2 });
    r = afterRun(r, 4, 5, 'boom again', 3);
    expect(r).toMatchObject({
      result: 'unhealthy',
      consecutiveFailures: 3,
      lastError: { at: 4, message: 'boom again' },
    });
    r = afterRun(r, 5, 5, undefined, 3);
    expect(r).toMatchObject({ result: 'healthy', consecutiveFailures: 0, lastSuccessAt: 5 });
    expect(r.lastError?.message).toBe('boom again');
  });

  it('stays pending while failures are under the threshold before any result', () => {
    const r = afterRun(initialRecord(), 1, 5, 'boom', 2);
    expect(r.result).toBe('pending');
  });
});

describe('shared verdicts', () => {
  it('a change is written (and returned) once; the same verdict again writes nothing', () => {
    const v0 = initialVerdict();
    expect(proposeVerdict(true, 10)(v0).value).toBe(v0);
    const down = proposeVerdict(false, 10, { error: 'x', failures: 1 })(v0);
    expect(down.result).toEqual({
      healthy: false,
      since: 10,
      generation: 1,
      notified: false,
      error: 'x',
      failures: 1,
    });
    expect(proposeVerdict(false, 20)(down.value).result).toBeUndefined();
    const up = proposeVerdict(true, 30)(down.value);
    expect(up.result).toEqual({ healthy: true, since: 30, generation: 2, notified: false });
  });

  it('marks only the generation it was asked to', () => {
    const v = { healthy: false, since: 1, generation: 2, notified: false };
    expect(markNotified(1)(v).value).toBe(v);
    expect(markNotified(2)(v).value).toEqual({ ...v, notified: true });
  });

  it('parses stored verdicts and refuses corrupt ones', () => {
    expect(parseVerdict({ healthy: false, since: 1, generation: 1 })).toEqual({
      healthy: false,
      since: 1,
      generation: 1,
      notified: true,
    });
    expect(() => parseVerdict({ healthy: 'no' })).toThrow();
    expect(() => parseVerdict(null)).toThrow();
  });
});

describe('probe registry', () => {
  const probe = (name: string, intervalMs = 1000) => ({
    name,
    kind: 'bus' as const,
    type: 'nats',
    intervalMs,
    check: () => Promise.resolve(),
  });

  it('refuses a second probe of the same name, bad names and intervals under 1s', () => {
    const r = new ProbeRegistry();
    const p = probe('nats');
    r.add(p);
    r.add(p);
    expect(r.list()).toEqual([p]);
    expect(() => r.add(probe('nats'))).toThrow(/two things are named nats/);
    expect(() => r.add(probe('9lives'))).toThrow(/must start with a letter/);
    expect(() => r.add(probe('fast', 10))).toThrow(/at least 1000 ms/);
  });

  it('is one per engine object, and tells listeners about later additions', () => {
    const engine = {};
    expect(probeRegistry(engine)).toBe(probeRegistry(engine));
    expect(probeRegistry({})).not.toBe(probeRegistry(engine));
    const seen: string[] = [];
    const off = probeRegistry(engine).onAdd((p) => seen.push(p.name));
    probeRegistry(engine).add(probe('a'));
    off();
    probeRegistry(engine).add(probe('b'));
    expect(seen).toEqual(['a']);
  });
});
