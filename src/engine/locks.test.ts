import { describe, expect, it } from 'vitest';
import { KeyLocks } from './locks.js';

describe('KeyLocks', () => {
  it('hands a key to waiters in arrival order', () => {
    const locks = new KeyLocks<string>();
    expect(locks.acquire('k', 'a', 'a')).toBe(true);
    expect(locks.acquire('k', 'b', 'b')).toBe(false);
    expect(locks.acquire('k', 'c', 'c')).toBe(false);
    expect(locks.acquire('other', 'd', 'd')).toBe(true);
    expect(locks.release('k', 'a', (x) => x)).toBe('b');
    expect(locks.holder('k')).toBe('b');
    expect(locks.release('k', 'b', (x) => x)).toBe('c');
    expect(locks.release('k', 'c', (x) => x)).toBeUndefined();
    expect(locks.holder('k')).toBeUndefined();
  });

  it('ignores a release by something that does not hold the key', () => {
    const locks = new KeyLocks<string>();
    locks.acquire('k', 'a', 'a');
    locks.acquire('k', 'b', 'b');
    expect(locks.release('k', 'b', (x) => x)).toBeUndefined();
    expect(locks.holder('k')).toBe('a');
  });

  it('lets the holder re-acquire its own key (a replay after a restart)', () => {
    const locks = new KeyLocks<string>();
    locks.acquire('k', 'a', 'a');
    expect(locks.acquire('k', 'a', 'a')).toBe(true);
    expect(locks.queued('k')).toBe(0);
  });
});
