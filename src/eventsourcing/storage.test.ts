import { describe, expect, it } from 'vitest';
import { decodeKey, encodeKey, seqKey } from './storage.js';

describe('aggregate keys in the Store', () => {
  const keys = [
    'a',
    'a/b',
    'a b',
    'a%20b',
    'a%0020b',
    'a_b',
    'ä',
    '\uD800',
    'x\uDC00y',
    '',
    '%',
    '/',
  ];

  it('round-trip, contain no "/", and never collide', () => {
    for (const k of keys) {
      const e = encodeKey(k);
      expect(e).not.toContain('/');
      expect(decodeKey(e)).toBe(k);
    }
    expect(new Set(keys.map(encodeKey)).size).toBe(keys.length);
  });

  it("one aggregate's event keys never start with another's prefix", () => {
    for (const a of keys) {
      for (const b of keys) {
        if (a !== b) expect(seqKey(b, 1).startsWith(`${encodeKey(a)}/`)).toBe(false);
      }
    }
  });
});
