/**
 * OAuth2 client credentials (RFC 6749 §4.4): a token cache that fetches once, shares the token,
 * refreshes shortly before it expires, lets a 401 throw the token away, and never runs two
 * refreshes at once; plus the pure pieces to build the token request and read its response.
 * The cache does no I/O itself: the HTTP call is the injected `fetchToken`.
 */
import { KeelError, registerErrorClass } from '../../../core/errors.js';

/** An access token and when it stops being valid. */
export interface AccessToken {
  accessToken: string;
  /** Epoch ms; `undefined` when the server gave no lifetime (kept until invalidated). */
  expiresAt?: number;
  /** Usually `Bearer`. */
  tokenType?: string;
}

/** Options of {@link OAuth2TokenCache}. */
export interface OAuth2TokenCacheOptions {
  /** Gets a new token (does the HTTP request); called at most once at a time. */
  fetchToken: () => Promise<AccessToken>;
  /** The clock (epoch ms). Default `Date.now`. */
  now?: () => number;
  /**
   * Refresh this long before expiry (default 60 000 ms), but never more than half the token's
   * lifetime, so a short-lived token is still used.
   */
  marginMs?: number;
}

interface Cached {
  token: AccessToken;
  fetchedAt: number;
}

/**
 * Caches an OAuth2 access token.
 *
 * @example
 * ```ts
 * const tokens = new OAuth2TokenCache({
 *   fetchToken: async () => {
 *     const req = clientCredentialsRequest({ tokenUrl, clientId, clientSecret, scope: 'read' });
 *     const res = await fetch(req.url, req);
 *     return parseTokenResponse(res.status, await res.json(), Date.now());
 *   },
 * });
 * let token = await tokens.get();
 * let res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
 * if (res.status === 401) {
 *   tokens.invalidate(token);
 *   token = await tokens.get(); // a fresh one, fetched once however many callers saw the 401
 * }
 * ```
 */
export class OAuth2TokenCache {
  private readonly fetchToken: () => Promise<AccessToken>;
  private readonly now: () => number;
  private readonly marginMs: number;
  private cached: Cached | undefined;
  private inflight: Promise<AccessToken> | undefined;

  constructor(options: OAuth2TokenCacheOptions) {
    this.fetchToken = options.fetchToken;
    this.now = options.now ?? Date.now;
    this.marginMs = options.marginMs ?? 60_000;
    if (!(this.marginMs >= 0))
      throw new RangeError(`marginMs must be at least 0, got ${this.marginMs}`);
  }

  /** A valid access token: the cached one, or a fresh one (shared with concurrent callers). */
  async get(): Promise<string> {
    const c = this.cached;
    if (c !== undefined && this.fresh(c)) return c.token.accessToken;
    return (await this.refresh()).accessToken;
  }

  /**
   * Forgets the cached token (after a 401). With `token`, only if it is still the cached one, so
   * a late 401 for an old token does not discard a token just fetched.
   */
  invalidate(token?: string): void {
    if (token === undefined || this.cached?.token.accessToken === token) this.cached = undefined;
  }

  /** The cached token, if any, without fetching. */
  peek(): AccessToken | undefined {
    return this.cached?.token;
  }

  private refresh(): Promise<AccessToken> {
    if (this.inflight !== undefined) return this.inflight;
    const p = this.fetchToken().then((token) => {
      if (typeof token?.accessToken !== 'string' || token.accessToken === '') {
        throw new OAuth2Error('fetchToken returned no access token');
      }
      this.cached = { token, fetchedAt: this.now() };
      return token;
    });
    this.inflight = p;
    // Clear the in-flight marker however it ends, so a failed fetch is retried by the next get().
    const clear = (): void => {
      if (this.inflight === p) this.inflight = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  private fresh(c: Cached): boolean {
    if (c.token.expiresAt === undefined) return true;
    const lifetime = c.token.expiresAt - c.fetchedAt;
    const margin = Math.min(this.marginMs, Math.max(0, lifetime / 2));
    return this.now() < c.token.expiresAt - margin;
  }
}

/** The token endpoint refused, or answered something that is not a token. */
export class OAuth2Error extends KeelError {
  constructor(
    message: string,
    readonly error?: string,
    readonly httpStatus?: number,
  ) {
    super(`OAuth2: ${message}`, { code: 'oauth2_failed', status: 502 });
  }
}
// A handler that catches it after a replay gets an OAuth2Error too (see registerErrorClass).
registerErrorClass(OAuth2Error, ['oauth2_failed']);

/** What the token request needs, resolved (no env references left). */
export interface ClientCredentials {
  tokenUrl: string;
  clientId: string;
  clientSecret: string;
  scope?: string;
  audience?: string;
  /** `basic` (default): credentials in an Authorization header; `body`: in the form. */
  clientAuth?: 'basic' | 'body';
}

/**
 * The token request: `POST tokenUrl` with `grant_type=client_credentials`, form-encoded.
 *
 * @example
 * ```ts
 * const req = clientCredentialsRequest({ tokenUrl, clientId: 'id', clientSecret: 'secret', scope: 'read write' });
 * const res = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body });
 * ```
 */
export function clientCredentialsRequest(c: ClientCredentials): {
  method: 'POST';
  url: string;
  headers: Record<string, string>;
  body: string;
} {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (c.scope !== undefined) form.set('scope', c.scope);
  if (c.audience !== undefined) form.set('audience', c.audience);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  if ((c.clientAuth ?? 'basic') === 'basic') {
    // RFC 6749 §2.3.1: form-encode each part before joining.
    const id = encodeURIComponent(c.clientId).replace(/%20/g, '+');
    const secret = encodeURIComponent(c.clientSecret).replace(/%20/g, '+');
    headers.authorization = `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
  } else {
    form.set('client_id', c.clientId);
    form.set('client_secret', c.clientSecret);
  }
  return { method: 'POST', url: c.tokenUrl, headers, body: form.toString() };
}

/**
 * Reads a token endpoint's answer (RFC 6749 §5.1/§5.2). An error answer, or one without
 * `access_token`, throws an {@link OAuth2Error} with the server's `error` and description.
 *
 * @example
 * ```ts
 * parseTokenResponse(200, { access_token: 'abc', token_type: 'Bearer', expires_in: 3600 }, now);
 * // { accessToken: 'abc', tokenType: 'Bearer', expiresAt: now + 3_600_000 }
 * ```
 */
export function parseTokenResponse(status: number, body: unknown, now: number): AccessToken {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (status < 200 || status >= 300 || typeof b.error === 'string') {
    const error = typeof b.error === 'string' ? b.error : undefined;
    const description = typeof b.error_description === 'string' ? `: ${b.error_description}` : '';
    throw new OAuth2Error(
      `the token endpoint answered ${status}${error === undefined ? '' : ` ${error}`}${description}. Check the client id, secret and scope.`,
      error,
      status,
    );
  }
  if (typeof b.access_token !== 'string' || b.access_token === '') {
    throw new OAuth2Error(
      `the token endpoint answered ${status} without an access_token`,
      undefined,
      status,
    );
  }
  const token: AccessToken = { accessToken: b.access_token };
  if (typeof b.token_type === 'string') token.tokenType = b.token_type;
  const expiresIn = typeof b.expires_in === 'string' ? Number(b.expires_in) : b.expires_in;
  if (typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0) {
    token.expiresAt = now + expiresIn * 1000;
  }
  return token;
}
