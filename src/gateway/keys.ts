/**
 * API keys. A key is presented as `Authorization: Bearer <key>`; the gateway never keeps a key
 * itself, only its SHA-256: keys from the environment (`KEEL_GATEWAY_KEYS`) are hashed at start,
 * keys made through the admin API are stored hashed in the Store with an id, a name and an
 * optional rate limit, and shown once when made.
 *
 * Timing: the presented key is hashed first and everything after works on the hash, so how long
 * a lookup takes says nothing about how much of a guess was right. Environment keys are compared
 * with `timingSafeEqual`, all of them, without stopping at a match; a stored key is found by its
 * hash and its hash compared again with `timingSafeEqual`.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { parseDuration, type Duration } from '../core/duration.js';
import type { Store } from '../store/types.js';
import { GatewayAuthError, GatewayConfigError, GatewayRequestError } from './errors.js';

/** The Store scope of stored keys by hash, and of the same records by id (for listing, revoking). */
export const KEYS_BY_HASH = 'keel.gateway.keys';
export const KEYS_BY_ID = 'keel.gateway.key-ids';

/** A per-key rate limit: `requests` per `window`. */
export interface KeyRateLimit {
  readonly requests: number;
  readonly window: Duration;
}

/** A key declared in code or in the environment. */
export interface GatewayKey {
  /** Letters, digits, `_`, `-`, `.`, at most 64. */
  readonly name: string;
  /** The secret a client sends; at least 16 characters. */
  readonly key: string;
  readonly rateLimit?: KeyRateLimit;
}

/** What the gateway knows of a key (never the key itself). */
export interface ApiKeyInfo {
  readonly id: string;
  readonly name: string;
  readonly source: 'env' | 'store';
  /** The key's own limit, in ms; the gateway's default applies when absent. */
  readonly rateLimit?: { readonly requests: number; readonly windowMs: number };
  readonly createdAt?: string;
  readonly revokedAt?: string;
}

interface Stored extends ApiKeyInfo {
  readonly hash: string;
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const MAX_KEY = 256;
const CACHE_MAX = 10_000;

/** SHA-256 of a key, hex. */
export function hashKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

function checkLimit(limit: KeyRateLimit | undefined, where: string): ApiKeyInfo['rateLimit'] {
  if (limit === undefined) return undefined;
  const windowMs = (() => {
    try {
      return parseDuration(limit.window);
    } catch {
      return NaN;
    }
  })();
  if (!Number.isInteger(limit.requests) || limit.requests < 1 || !(windowMs > 0))
    throw new GatewayConfigError(
      `${where}: rateLimit must be { requests: a whole number ≥ 1, window: a duration such as '1m' }`,
    );
  return { requests: limit.requests, windowMs };
}

/**
 * Parses `KEEL_GATEWAY_KEYS`: comma-separated `name:key`, optionally `name:key:requests/window`
 * (`partner:sk_test_0123456789abcdef:600/1m`).
 *
 * @example
 * ```ts
 * parseKeysEnv('demo:demo-key-0123456789:100/1m'); // [{ name: 'demo', key: 'demo-key-0123456789', rateLimit: { requests: 100, window: '1m' } }]
 * ```
 */
export function parseKeysEnv(text: string | undefined): GatewayKey[] {
  if (text === undefined || text.trim() === '') return [];
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((entry, i) => {
      const [name, key, limit, ...rest] = entry.split(':');
      if (!name || !key || rest.length > 0)
        throw new GatewayConfigError(
          `KEEL_GATEWAY_KEYS entry ${i + 1} must be name:key or name:key:requests/window (e.g. demo:my-secret-key-123:100/1m)`,
        );
      if (limit === undefined) return { name, key };
      const [requests, window] = limit.split('/');
      return { name, key, rateLimit: { requests: Number(requests), window: window ?? '' } };
    });
}

/**
 * The keys a gateway accepts: declared ones (hashed at start) and stored ones.
 *
 * @example
 * ```ts
 * const ring = new KeyRing(store, parseKeysEnv(process.env.KEEL_GATEWAY_KEYS), Date.now);
 * const who = await ring.authenticate(req.headers.authorization); // throws GatewayAuthError
 * ```
 */
export class KeyRing {
  private readonly declared: Array<{ info: ApiKeyInfo; hash: Buffer }>;
  private readonly cache = new Map<string, { info: Stored | null; at: number }>();

  constructor(
    private readonly store: Pick<Store, 'getKv' | 'listKv' | 'write'>,
    keys: readonly GatewayKey[],
    private readonly now: () => number,
    /** How long a stored key's lookup is reused (a revocation elsewhere takes effect within it). */
    private readonly cacheMs = 1000,
  ) {
    const names = new Set<string>();
    this.declared = keys.map((k) => {
      const where = `gateway key "${String(k.name)}"`;
      if (typeof k.name !== 'string' || !NAME.test(k.name))
        throw new GatewayConfigError(`${where}: the name must be 1-64 letters, digits, _, - or .`);
      if (names.has(k.name)) throw new GatewayConfigError(`${where} is declared twice`);
      names.add(k.name);
      if (
        typeof k.key !== 'string' ||
        k.key.length < 16 ||
        k.key.length > MAX_KEY ||
        /\s/.test(k.key)
      )
        throw new GatewayConfigError(
          `${where}: the key must be 16 to ${MAX_KEY} characters, no spaces`,
        );
      const rateLimit = checkLimit(k.rateLimit, where);
      return {
        info: {
          id: `env-${k.name}`,
          name: k.name,
          source: 'env',
          ...(rateLimit ? { rateLimit } : {}),
        },
        hash: Buffer.from(hashKey(k.key), 'hex'),
      };
    });
  }

  /**
   * The key an `Authorization` header presents, or a {@link GatewayAuthError}: none, malformed,
   * unknown or revoked.
   */
  async authenticate(header: string | undefined): Promise<ApiKeyInfo> {
    const key = bearerOf(header);
    const hex = hashKey(key);
    const presented = Buffer.from(hex, 'hex');
    const found = matchDeclared(this.declared, presented);
    if (found) return found.info;
    const stored = await this.lookup(hex);
    if (stored === null || !timingSafeEqual(Buffer.from(stored.hash, 'hex'), presented))
      throw new GatewayAuthError(
        'invalid',
        'the API key is not valid: check the key you send in Authorization: Bearer <key>',
      );
    if (stored.revokedAt !== undefined)
      throw new GatewayAuthError('revoked', 'this API key was revoked; ask for a new one');
    const { hash: _hash, ...info } = stored;
    return info;
  }

  private async lookup(hex: string): Promise<Stored | null> {
    const now = this.now();
    const hit = this.cache.get(hex);
    if (hit && now - hit.at >= 0 && now - hit.at < this.cacheMs) return hit.info;
    const row = await this.store.getKv(KEYS_BY_HASH, hex);
    const info = row === undefined ? null : parseStored(row.value);
    // Unknown keys are cached too (a flood of wrong keys costs memory, so the cache is bounded).
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(hex, { info, at: now });
    return info;
  }

  /**
   * Makes a key, stores its hash, and returns the key: the only time it is shown.
   *
   * @example
   * ```ts
   * const { key, info } = await ring.create('partner-a', { requests: 600, window: '1m' });
   * ```
   */
  async create(name: unknown, rateLimit?: unknown): Promise<{ key: string; info: ApiKeyInfo }> {
    if (typeof name !== 'string' || !NAME.test(name))
      throw new GatewayRequestError('name must be 1-64 letters, digits, _, - or .');
    if (this.declared.some((d) => d.info.name === name))
      throw new GatewayRequestError(`"${name}" is the name of a key from the environment`);
    let limit: ApiKeyInfo['rateLimit'];
    if (rateLimit !== undefined) {
      const r = rateLimit as Partial<KeyRateLimit>;
      if (
        typeof r !== 'object' ||
        r === null ||
        (typeof r.window !== 'string' && typeof r.window !== 'number')
      )
        throw new GatewayRequestError(
          "rateLimit must be { requests, window } (window such as '1m')",
        );
      try {
        limit = checkLimit({ requests: r.requests as number, window: r.window }, `key "${name}"`);
      } catch (err) {
        throw new GatewayRequestError((err as Error).message);
      }
    }
    const id = `key_${randomBytes(8).toString('hex')}`;
    const key = `kgw_${randomBytes(24).toString('base64url')}`;
    const hash = hashKey(key);
    const stored: Stored = {
      id,
      name,
      source: 'store',
      hash,
      createdAt: new Date(this.now()).toISOString(),
      ...(limit ? { rateLimit: limit } : {}),
    };
    await this.store.write([
      { op: 'kv.put', scope: KEYS_BY_HASH, key: hash, value: stored },
      { op: 'kv.put', scope: KEYS_BY_ID, key: id, value: stored },
    ]);
    this.cache.delete(hash);
    const { hash: _h, ...info } = stored;
    return { key, info };
  }

  /**
   * Revokes a stored key: it answers 401 from now on in this process, within the cache time
   * (default 1 s) in the others. Undefined when no stored key has this id.
   */
  async revoke(id: string): Promise<ApiKeyInfo | undefined> {
    const row = await this.store.getKv(KEYS_BY_ID, id);
    const stored = row === undefined ? null : parseStored(row.value);
    if (stored === null) return undefined;
    const revoked: Stored =
      stored.revokedAt === undefined
        ? { ...stored, revokedAt: new Date(this.now()).toISOString() }
        : stored;
    await this.store.write([
      { op: 'kv.put', scope: KEYS_BY_HASH, key: stored.hash, value: revoked },
      { op: 'kv.put', scope: KEYS_BY_ID, key: id, value: revoked },
    ]);
    this.cache.delete(stored.hash);
    const { hash: _h, ...info } = revoked;
    return info;
  }

  /** Every key: declared ones, then stored ones (revoked included), without hashes. */
  async list(): Promise<ApiKeyInfo[]> {
    const out: ApiKeyInfo[] = this.declared.map((d) => d.info);
    let after: string | undefined;
    for (;;) {
      const rows = await this.store.listKv(KEYS_BY_ID, { limit: 100, ...(after ? { after } : {}) });
      for (const r of rows) {
        const s = parseStored(r.value);
        if (s) {
          const { hash: _h, ...info } = s;
          out.push(info);
        }
      }
      if (rows.length < 100) return out;
      after = rows[rows.length - 1]!.key;
    }
  }
}

function parseStored(value: unknown): Stored | null {
  const v = value as Partial<Stored> | null;
  return v !== null &&
    typeof v === 'object' &&
    typeof v.id === 'string' &&
    typeof v.name === 'string' &&
    typeof v.hash === 'string' &&
    /^[0-9a-f]{64}$/.test(v.hash)
    ? (v as Stored)
    : null;
}

/**
 * The declared key whose hash is `presented`: every one is compared with `equal` (constant
 * time), whichever matches and wherever it is in the list, so the time taken does not say which
 * key (if any) matched.
 *
 * @example
 * ```ts
 * matchDeclared([{ hash: Buffer.from(hashKey(k), 'hex'), info }], Buffer.from(hashKey(k), 'hex')); // { hash, info }
 * ```
 */
export function matchDeclared<T extends { hash: Buffer }>(
  declared: readonly T[],
  presented: Buffer,
  equal: (a: Buffer, b: Buffer) => boolean = timingSafeEqual,
): T | undefined {
  let found: T | undefined;
  for (const d of declared) {
    const same = equal(d.hash, presented);
    if (same && found === undefined) found = d;
  }
  return found;
}

/** The key of `Authorization: Bearer <key>`, or a 401 saying what is wrong with the header. */
export function bearerOf(header: string | undefined): string {
  if (header === undefined || header.trim() === '')
    throw new GatewayAuthError(
      'missing',
      'this route needs an API key: send Authorization: Bearer <your API key>',
    );
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(header);
  if (!m || m[1]!.length > MAX_KEY)
    throw new GatewayAuthError(
      'malformed',
      'the Authorization header must be "Bearer <your API key>" (one key, at most 256 characters)',
    );
  return m[1]!;
}
