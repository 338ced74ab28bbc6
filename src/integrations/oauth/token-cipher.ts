/**
 * Encryption of OAuth2 tokens at rest: AES-256-GCM (node:crypto), a fresh 96-bit IV per record,
 * and the record's identity (provider and account) as additional authenticated data, so a sealed
 * token copied onto another account's row does not open.
 *
 * Keys come from the environment: `KEEL_TOKEN_KEY` (base64 of 32 random bytes, e.g.
 * `openssl rand -base64 32`) encrypts; `KEEL_TOKEN_KEYS` (comma-separated, same format) lists
 * older keys that still decrypt, so keys rotate without a flag day. Each record names the key
 * that sealed it by key id: the first 12 hex digits of a SHA-256 of the key, which identifies it
 * without revealing it.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Env } from '../declarations/secrets.js';
import { TokenKeyError } from './errors.js';

/** A sealed value as stored: every field base64url except `kid`. */
export interface Sealed {
  /** The key id of the key that sealed it. */
  kid: string;
  iv: string;
  tag: string;
  data: string;
}

/**
 * Seals and opens token records.
 *
 * @example
 * ```ts
 * const cipher = TokenCipher.fromEnv({ KEEL_TOKEN_KEY: 'q2H...=', KEEL_TOKEN_KEYS: 'old...=' });
 * const sealed = cipher.seal('{"accessToken":"..."}', 'Calendar/user-42');
 * cipher.open(sealed, 'Calendar/user-42'); // the JSON again
 * ```
 */
export class TokenCipher {
  /** The id of the key new records are sealed with. */
  readonly keyId: string;
  private readonly keys = new Map<string, Buffer>();

  constructor(current: Buffer, old: readonly Buffer[] = []) {
    this.keyId = keyIdOf(current);
    this.keys.set(this.keyId, current);
    for (const k of old) if (!this.keys.has(keyIdOf(k))) this.keys.set(keyIdOf(k), k);
  }

  /**
   * The cipher the environment configures. Throws {@link TokenKeyError} when `KEEL_TOKEN_KEY` is
   * absent or any key is not base64 of exactly 32 bytes (the message names the variable, never
   * the value).
   */
  static fromEnv(env: Env = process.env): TokenCipher {
    const current = env.KEEL_TOKEN_KEY;
    if (current === undefined || current.trim() === '') {
      throw new TokenKeyError(
        'token_key_missing',
        'OAuth2 tokens are stored encrypted and KEEL_TOKEN_KEY is not set. Set it to 32 random bytes in base64: KEEL_TOKEN_KEY=$(openssl rand -base64 32)',
      );
    }
    const old = (env.KEEL_TOKEN_KEYS ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map((s, i) => parseKey(s, `KEEL_TOKEN_KEYS (entry ${i + 1})`));
    return new TokenCipher(parseKey(current, 'KEEL_TOKEN_KEY'), old);
  }

  /** Whether a record sealed with `kid` can be opened. */
  knows(kid: string): boolean {
    return this.keys.has(kid);
  }

  /** Encrypts `plaintext` with the current key, bound to `aad` (the record's identity). */
  seal(plaintext: string, aad: string): Sealed {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.keys.get(this.keyId)!, iv);
    c.setAAD(Buffer.from(aad, 'utf8'));
    const data = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
    return {
      kid: this.keyId,
      iv: iv.toString('base64url'),
      tag: c.getAuthTag().toString('base64url'),
      data: data.toString('base64url'),
    };
  }

  /**
   * Decrypts a sealed value with the key it names. An unknown key id, a wrong `aad` or a
   * tampered value throw {@link TokenKeyError}.
   */
  open(sealed: Sealed, aad: string): string {
    const key = this.keys.get(sealed.kid);
    if (key === undefined) {
      throw new TokenKeyError(
        'token_key_unknown',
        `a token record was encrypted with key ${sealed.kid}, which is neither KEEL_TOKEN_KEY (${this.keyId}) nor in KEEL_TOKEN_KEYS. Add the old key to KEEL_TOKEN_KEYS`,
      );
    }
    try {
      const d = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64url'));
      d.setAAD(Buffer.from(aad, 'utf8'));
      d.setAuthTag(Buffer.from(sealed.tag, 'base64url'));
      return Buffer.concat([d.update(Buffer.from(sealed.data, 'base64url')), d.final()]).toString(
        'utf8',
      );
    } catch {
      throw new TokenKeyError(
        'token_key_invalid',
        `a token record (key ${sealed.kid}) does not decrypt: it was changed or belongs to another account`,
      );
    }
  }
}

/**
 * The id of a key: 12 hex digits of SHA-256 over a fixed label and the key.
 *
 * @example
 * ```ts
 * keyIdOf(randomBytes(32)); // 'a1b2c3d4e5f6'
 * ```
 */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update('keel-token-key\0').update(key).digest('hex').slice(0, 12);
}

function parseKey(text: string, what: string): Buffer {
  const ok = /^[A-Za-z0-9+/_-]+={0,2}$/.test(text);
  const key = ok ? Buffer.from(text, 'base64') : Buffer.alloc(0);
  if (key.length !== 32) {
    throw new TokenKeyError(
      'token_key_invalid',
      `${what} must be 32 bytes in base64 (openssl rand -base64 32); it ${ok ? `decodes to ${key.length} bytes` : 'is not base64'}`,
    );
  }
  return key;
}
