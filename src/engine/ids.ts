import { createHmac, randomBytes } from 'node:crypto';

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

/**
 * The id of the awakeable at journal entry `index` of an invocation: `awk_` + 26 base32
 * characters (130 bits) of HMAC-SHA256 under the store's secret (see `loadAwakeableSecret`).
 * Without the secret, an id says nothing about its invocation and one id tells nothing about
 * any other; with it, every process sharing the store derives the same id for the same entry,
 * so an attempt that crashed before its awakeable was durable hands out the same id again when
 * it is retried (the party it already sent the id to may never ask for a new one).
 */
export function awakeableIdFor(secret: Buffer, invocationId: string, index: number): string {
  // Invocation ids contain no ':', so no two (id, index) pairs hash the same text.
  const mac = createHmac('sha256', secret).update(`${invocationId}:${index}`).digest();
  let out = 'awk_';
  for (let i = 0; i < 26; i++) out += ALPHABET[mac[i]! & 31]!;
  return out;
}
