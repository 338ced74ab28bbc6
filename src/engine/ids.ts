import { randomBytes } from 'node:crypto';

const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz'; // Crockford base32, lower case

/**
 * A new invocation id: `inv_` + 10 characters of millisecond time + 16 random characters, so
 * ids sort by creation time and never collide across processes.
 */
export function newInvocationId(now: number): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  if (poolAt + 16 > pool.length) {
    pool = randomBytes(4096);
    poolAt = 0;
  }
  let rand = '';
  // 16 random bytes, 5 bits each: 80 random bits as 16 base32 characters.
  for (let i = 0; i < 16; i++) rand += ALPHABET[pool[poolAt++]! & 31]!;
  return `inv_${time}${rand}`;
}

// One getrandom() call per 256 ids instead of one per id: it was a visible share of the
// per-invocation cost.
let pool = Buffer.alloc(0);
let poolAt = 0;

/** Whether a string has the shape of an invocation id (for clear 400s at the ingress). */
export function isInvocationId(s: string): boolean {
  return /^inv_[0-9a-z]{26}$/.test(s);
}
