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
  const bytes = randomBytes(10);
  let rand = '';
  for (let i = 0; i < 16; i++) {
    // 80 random bits → 16 base32 characters.
    const bit = i * 5;
    const byte = bit >> 3;
    const shift = bit & 7;
    const v = ((bytes[byte]! << 8) | (bytes[byte + 1] ?? 0)) >> (11 - shift);
    rand += ALPHABET[v & 31]!;
  }
  return `inv_${time}${rand}`;
}

/** Whether a string has the shape of an invocation id (for clear 400s at the ingress). */
export function isInvocationId(s: string): boolean {
  return /^inv_[0-9a-z]{26}$/.test(s);
}
