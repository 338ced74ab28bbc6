/**
 * How an integration authenticates, as declared. Credentials are {@link Secret}s: in a
 * declaration they are `env('NAME')` references, read when a request is signed.
 */
import type { Duration } from '../../../core/duration.js';
import type { Configurable, Secret } from '../secrets.js';

/** `Authorization: Bearer <token>`. */
export interface BearerAuth {
  type: 'bearer';
  token: Secret;
}

/** `Authorization: Basic base64(username:password)`. */
export interface BasicAuth {
  type: 'basic';
  username: Configurable;
  password: Secret;
}

/** An API key sent in a header (`X-Api-Key: ...`) or a query parameter (`?appid=...`). */
export interface ApiKeyAuth {
  type: 'apiKey';
  key: Secret;
  in: 'header' | 'query';
  /** The header or query parameter name. */
  name: string;
  /** Header only: text before the key, e.g. `'ShippoToken '` for `Authorization: ShippoToken <key>`. */
  prefix?: string;
}

/** OAuth2 client credentials: a token from `tokenUrl`, cached until shortly before it expires. */
export interface OAuth2ClientCredentialsAuth {
  type: 'oauth2';
  tokenUrl: Configurable;
  clientId: Configurable;
  clientSecret: Secret;
  scope?: string;
  audience?: string;
  /** Send the client credentials as HTTP Basic (default, RFC 6749 §2.3.1) or in the form body. */
  clientAuth?: 'basic' | 'body';
  /** Refresh this long before the token expires (default 60s). */
  refreshMargin?: Duration;
}

/**
 * OAuth2 authorization code with PKCE (RFC 6749 §4.1, RFC 7636): every call acts for one user's
 * connected account (`{ account: 'user-42' }` in the call options). Users connect through the
 * `oauth` extension's routes (`createOAuthConnect`); tokens are kept encrypted in the Store and
 * refreshed once across processes (see docs/integrations.md, "OAuth2 authorization code").
 */
export interface OAuth2AuthorizationCodeAuth {
  type: 'oauth2_authorization_code';
  /** The provider's authorization endpoint (the browser is sent there). */
  authorizeUrl: Configurable;
  /** The provider's token endpoint (code exchange and refresh). */
  tokenUrl: Configurable;
  /** The provider's revocation endpoint (RFC 7009), used when an account is disconnected. */
  revokeUrl?: Configurable;
  clientId: Configurable;
  /** Absent for a public client (PKCE alone authenticates the exchange). */
  clientSecret?: Secret;
  /** The scopes requested when a user connects. */
  scopes: readonly string[];
  /** This app's callback, as registered with the provider: `https://app.example.com/oauth/{name}/callback`. */
  redirectUri: Configurable;
  /** Scopes an operation needs, by operation name: a call without them fails before sending. */
  operationScopes?: Readonly<Record<string, readonly string[]>>;
  /** Extra authorization request parameters (`{ access_type: 'offline', prompt: 'consent' }`). */
  authorizeParams?: Readonly<Record<string, string>>;
  /** Client credentials as HTTP Basic (default) or in the form body. */
  clientAuth?: 'basic' | 'body';
  /** Refresh this long before the access token expires (default 60s, at most half its lifetime). */
  refreshMargin?: Duration;
}

/** AWS Signature Version 4, for AWS services and S3-compatible storage. */
export interface AwsSigV4Auth {
  type: 'awsSigV4';
  accessKeyId: Secret;
  secretAccessKey: Secret;
  /** For temporary credentials (STS). */
  sessionToken?: Secret;
  region: Configurable;
  /** The signing name: `s3`, `execute-api`, `iam`, ... */
  service: string;
  /** S3 only: sign `UNSIGNED-PAYLOAD` instead of hashing the body (for large uploads). */
  unsignedPayload?: boolean;
}

/** No authentication. */
export interface NoAuth {
  type: 'none';
}

/** Every kind of authentication an integration can declare. */
export type AuthConfig =
  | NoAuth
  | BearerAuth
  | BasicAuth
  | ApiKeyAuth
  | OAuth2ClientCredentialsAuth
  | OAuth2AuthorizationCodeAuth
  | AwsSigV4Auth;

/**
 * Bearer token authentication.
 *
 * @example
 * ```ts
 * integration({ name: 'GitHubAPI', baseUrl: 'https://api.github.com', auth: bearer(env('GITHUB_TOKEN')) });
 * ```
 */
export function bearer(token: Secret): BearerAuth {
  return { type: 'bearer', token };
}

/**
 * HTTP Basic authentication.
 *
 * @example
 * ```ts
 * auth: basic(env('TWILIO_ACCOUNT_SID'), env('TWILIO_AUTH_TOKEN'))
 * ```
 */
export function basic(username: Configurable, password: Secret): BasicAuth {
  return { type: 'basic', username, password };
}

/**
 * An API key in a query parameter (the default, as OpenWeather's `appid`) or a header.
 *
 * @example
 * ```ts
 * auth: apiKey(env('OPENWEATHER_API_KEY'), { query: 'appid' })
 * auth: apiKey(env('SENDGRID_KEY'), { header: 'X-Api-Key' })
 * auth: apiKey(env('SHIPPO_API_TOKEN'), { header: 'Authorization', prefix: 'ShippoToken ' })
 * ```
 */
export function apiKey(
  key: Secret,
  where: { query: string } | { header: string; prefix?: string },
): ApiKeyAuth {
  if (!('header' in where)) return { type: 'apiKey', key, in: 'query', name: where.query };
  const auth: ApiKeyAuth = { type: 'apiKey', key, in: 'header', name: where.header };
  if (where.prefix !== undefined) auth.prefix = where.prefix;
  return auth;
}

/**
 * OAuth2 client credentials.
 *
 * @example
 * ```ts
 * auth: oauth2({ tokenUrl: 'https://auth.example.com/oauth/token', clientId: env('CLIENT_ID'), clientSecret: env('CLIENT_SECRET'), scope: 'read' })
 * ```
 */
export function oauth2(
  options: Omit<OAuth2ClientCredentialsAuth, 'type'>,
): OAuth2ClientCredentialsAuth {
  return { type: 'oauth2', ...options };
}

/**
 * OAuth2 authorization code with PKCE: calls act for a user's connected account.
 *
 * @example
 * ```ts
 * const calendar = integration({
 *   name: 'Calendar',
 *   baseUrl: 'https://calendar.example.com',
 *   auth: oauth2AuthorizationCode({
 *     authorizeUrl: 'https://auth.example.com/authorize',
 *     tokenUrl: 'https://auth.example.com/token',
 *     clientId: env('CALENDAR_CLIENT_ID'),
 *     clientSecret: env('CALENDAR_CLIENT_SECRET'),
 *     scopes: ['events.read', 'events.write'],
 *     redirectUri: 'https://app.example.com/oauth/Calendar/callback',
 *     operationScopes: { create_event: ['events.write'] },
 *   }),
 *   operations: { list_events: { path: '/events' } },
 * });
 * // in a handler: await use(ctx, calendar).list_events({}, { account: 'user-42' });
 * ```
 */
export function oauth2AuthorizationCode(
  options: Omit<OAuth2AuthorizationCodeAuth, 'type'>,
): OAuth2AuthorizationCodeAuth {
  return { type: 'oauth2_authorization_code', ...options };
}

/**
 * AWS Signature Version 4.
 *
 * @example
 * ```ts
 * auth: awsSigV4({
 *   accessKeyId: env('AWS_ACCESS_KEY_ID'),
 *   secretAccessKey: env('AWS_SECRET_ACCESS_KEY'),
 *   region: env('AWS_REGION'),
 *   service: 's3',
 * })
 * ```
 */
export function awsSigV4(options: Omit<AwsSigV4Auth, 'type'>): AwsSigV4Auth {
  return { type: 'awsSigV4', ...options };
}
