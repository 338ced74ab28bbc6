import { describe, expect, it } from 'vitest';
import { Prng } from './prng.js';

describe('Prng', () => {
  it('draws the same sequence for the same seed and a different one for another seed', () => {
    const a = new Prng('inv_1');
    const b = new Prng('inv_1');
    const c = new Prng('inv_2');
    const seqA = [a.next(), a.next(), a.uuid()];
    expect([b.next(), b.next(), b.uuid()]).toEqual(seqA);
    expect([c.next(), c.next(), c.uuid()]).not.toEqual(seqA);
  });

  it('makes version-4 UUIDs and numbers in [0, 1)', () => {
    const p = new Prng('seed');
    for (let i = 0; i < 1000; i++) {
      const x = p.next();
      expect(x).toBeGreaterThanOrEqual(0);
      expect(x).toBeLessThan(1);
    }
    expect(p.uuid()).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
  });
});
