/**
 * The pure pieces of the authorization-code flow with PKCE (RFC 6749 §4.1, RFC 7636 S256): the
 * verifier and its challenge, the `state`, the authorization URL, the token requests (code
 * exchange, refresh, revocation) and the reading of a token answer. No I/O here.
 */
import { createHash, randomBytes } from 'node:crypto';
import { parseDuration } from '../../core/duration.js';
import { OAuth2Error } from '../declarations/auth/oauth2.js';
import type { OAuth2AuthorizationCodeAuth } from '../declarations/auth/config.js';
import type { Integration } from '../declarations/config.js';
import { resolveSecret, type Env } from '../declarations/secrets.js';

/** A provider's declaration with every `env(...)` resolved. */
export interface ProviderConfig {
  /** The integration's name: the provider's name in routes and account records. */
  name: string;
  authorizeUrl: string;
  tokenUrl: string;
  revokeUrl?: string;
  clientId: string;
  clientSecret?: string;
  scopes: readonly string[];
  redirectUri: string;
  clientAuth: 'basic' | 'body';
  authorizeParams: Readonly<Record<string, string>>;
  operationScopes: Readonly<Record<string, readonly string[]>>;
  refreshMarginMs: number;
}

/** A token endpoint's answer, read. */
export interface Grant {
  accessToken: string;
  refreshToken?: string;
  /** Epoch ms; undefined when the provider gave no lifetime. */
  expiresAt?: number;
  /** The granted scopes when the provider said (RFC 6749 §5.1: else the requested ones). */
  scopes?: string[];
}

/** A form POST to send. */
export interface FormRequest {
  method: 'POST';
  url: string;
  headers: Record<string, string>;
  body: string;
}

/**
 * Resolves an integration's `oauth2_authorization_code` auth. Throws `MissingSecretError`
 * naming the variable when one is not set.
 *
 * @example
 * ```ts
 * const provider = providerConfig(calendar, process.env);
 * ```
 */
export function providerConfig(integration: Integration, env?: Env): ProviderConfig {
  const auth = integration.auth as OAuth2AuthorizationCodeAuth;
  const read = (v: Parameters<typeof resolveSecret>[0], field: string): string =>
    typeof v === 'string'
      ? v
      : resolveSecret(v, { integration: integration.name, field: `auth.${field}` }, env);
  const out: ProviderConfig = {
    name: integration.name,
    authorizeUrl: read(auth.authorizeUrl, 'authorizeUrl'),
    tokenUrl: read(auth.tokenUrl, 'tokenUrl'),
    clientId: read(auth.clientId, 'clientId'),
    scopes: auth.scopes,
    redirectUri: read(auth.redirectUri, 'redirectUri'),
    clientAuth: auth.clientAuth ?? 'basic',
    authorizeParams: auth.authorizeParams ?? {},
    operationScopes: auth.operationScopes ?? {},
    refreshMarginMs: auth.refreshMargin === undefined ? 60_000 : parseDuration(auth.refreshMargin),
  };
  if (auth.revokeUrl !== undefined) out.revokeUrl = read(auth.revokeUrl, 'revokeUrl');
  if (auth.clientSecret !== undefined) out.clientSecret = read(auth.clientSecret, 'clientSecret');
  return out;
}

/**
 * 32 random bytes, base64url: a PKCE code verifier (43 characters) or a `state`.
 *
 * @example
 * ```ts
 * const verifier = randomToken();
 * ```
 */
export function randomToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * The S256 code challenge of a verifier: base64url(SHA-256(verifier)).
 *
 * @example
 * ```ts
 * codeChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk'); // 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
 * ```
 */
export function codeChallenge(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/**
 * Where a state is kept: its SHA-256, so the stored rows do not hold a usable state.
 *
 * @example
 * ```ts
 * await store.getKv(STATE_SCOPE, stateKey(state));
 * ```
 */
export function stateKey(state: string): string {
  return createHash('sha256').update(state, 'utf8').digest('base64url');
}

/**
 * The authorization URL the browser is sent to.
 *
 * @example
 * ```ts
 * authorizationUrl(provider, { state, challenge: codeChallenge(verifier) });
 * ```
 */
export function authorizationUrl(
  p: ProviderConfig,
  o: { state: string; challenge: string; scopes?: readonly string[] },
): string {
  const url = new URL(p.authorizeUrl);
  for (const [k, v] of Object.entries(p.authorizeParams)) url.searchParams.set(k, v);
  url.searchParams.set('response_type', 'code');
  url.searchParams.set('client_id', p.clientId);
  url.searchParams.set('redirect_uri', p.redirectUri);
  url.searchParams.set('scope', (o.scopes ?? p.scopes).join(' '));
  url.searchParams.set('state', o.state);
  url.searchParams.set('code_challenge', o.challenge);
  url.searchParams.set('code_challenge_method', 'S256');
  return url.toString();
}

/**
 * The code exchange: `grant_type=authorization_code` with the PKCE verifier.
 *
 * @example
 * ```ts
 * const req = codeExchangeRequest(provider, code, verifier);
 * const res = await fetch(req.url, req);
 * ```
 */
export function codeExchangeRequest(
  p: ProviderConfig,
  code: string,
  verifier: string,
): FormRequest {
  return formRequest(p, p.tokenUrl, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: p.redirectUri,
    code_verifier: verifier,
  });
}

/**
 * The refresh: `grant_type=refresh_token`.
 *
 * @example
 * ```ts
 * const req = refreshRequest(provider, refreshToken);
 * ```
 */
export function refreshRequest(p: ProviderConfig, refreshToken: string): FormRequest {
  return formRequest(p, p.tokenUrl, { grant_type: 'refresh_token', refresh_token: refreshToken });
}

/**
 * A revocation (RFC 7009), or undefined when the provider declares no `revokeUrl`.
 *
 * @example
 * ```ts
 * const req = revokeRequest(provider, refreshToken, 'refresh_token');
 * ```
 */
export function revokeRequest(
  p: ProviderConfig,
  token: string,
  hint: 'access_token' | 'refresh_token',
): FormRequest | undefined {
  if (p.revokeUrl === undefined) return undefined;
  return formRequest(p, p.revokeUrl, { token, token_type_hint: hint });
}

function formRequest(p: ProviderConfig, url: string, fields: Record<string, string>): FormRequest {
  const form = new URLSearchParams(fields);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  if (p.clientSecret !== undefined && p.clientAuth === 'basic') {
    // RFC 6749 §2.3.1: form-encode each part before joining.
    const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
    headers.authorization = `Basic ${Buffer.from(`${enc(p.clientId)}:${enc(p.clientSecret)}`).toString('base64')}`;
  } else {
    form.set('client_id', p.clientId);
    if (p.clientSecret !== undefined) form.set('client_secret', p.clientSecret);
  }
  return { method: 'POST', url, headers, body: form.toString() };
}

/**
 * Reads a token endpoint's answer. An error answer throws `OAuth2Error` whose `error` is the
 * provider's code (`invalid_grant`: the code or refresh token is revoked, expired or used).
 *
 * @example
 * ```ts
 * parseGrant(200, { access_token: 'a', refresh_token: 'r', expires_in: 3600, scope: 'read' }, now);
 * ```
 */
export function parseGrant(status: number, body: unknown, now: number): Grant {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (status < 200 || status >= 300 || typeof b.error === 'string') {
    const error = typeof b.error === 'string' ? b.error : undefined;
    const description =
      typeof b.error_description === 'string' ? `: ${b.error_description.slice(0, 200)}` : '';
    throw new OAuth2Error(
      `the token endpoint answered ${status}${error === undefined ? '' : ` ${error}`}${description}`,
      error,
      status,
    );
  }
  if (typeof b.access_token !== 'string' || b.access_token === '') {
    throw new OAuth2Error(`the token endpoint answered ${status} without an access_token`);
  }
  const grant: Grant = { accessToken: b.access_token };
  if (typeof b.refresh_token === 'string' && b.refresh_token !== '')
    grant.refreshToken = b.refresh_token;
  const expiresIn = typeof b.expires_in === 'string' ? Number(b.expires_in) : b.expires_in;
  if (typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0)
    grant.expiresAt = now + expiresIn * 1000;
  if (typeof b.scope === 'string') grant.scopes = b.scope.split(' ').filter((s) => s !== '');
  return grant;
}

/** Account names: what a URL, a log line and a Store key can carry without escaping. */
export const ACCOUNT_NAME = /^[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}$/;
