/**
 * Applies an integration's declared auth to a request: reads its secrets from the environment
 * (now, at use time) and runs the matching signer. Pure apart from reading the environment.
 */
import { UsageError } from '../../../core/errors.js';
import { lowerCaseHeaders } from '../../policies/headers.js';
import { resolveSecret, type Env } from '../secrets.js';
import { signApiKey } from './api-key.js';
import { signBasic } from './basic.js';
import { bearerValue, signBearer } from './bearer.js';
import type { AuthConfig, OAuth2ClientCredentialsAuth } from './config.js';
import type { ClientCredentials } from './oauth2.js';
import type { RequestToSign, SignedRequest } from './request.js';
import { signAwsV4 } from './sigv4.js';

/** What signing needs besides the request. */
export interface AuthorizeContext {
  /** The integration's name, for error messages. */
  integration: string;
  /** Where secrets are read from. Default `process.env`. */
  env?: Env;
  /** OAuth2 only: the current access token, from the integration's `OAuth2TokenCache`. */
  accessToken?: string;
}

/**
 * Signs `req` as `auth` says. A missing environment variable raises `MissingSecretError` naming
 * it and the integration.
 *
 * @example
 * ```ts
 * const signed = authorize(github.auth, { method: 'GET', url, headers, now: clock.now() }, { integration: github.name });
 * await fetch(signed.url, { method: 'GET', headers: signed.headers });
 * ```
 */
export function authorize(
  auth: AuthConfig,
  req: RequestToSign,
  ctx: AuthorizeContext,
): SignedRequest {
  switch (auth.type) {
    case 'none':
      return { url: req.url, headers: lowerCaseHeaders(req.headers) };
    case 'bearer':
      return signBearer(req, secretOf(auth.token, 'token', ctx));
    case 'basic':
      return signBasic(
        req,
        secretOf(auth.username, 'username', ctx),
        secretOf(auth.password, 'password', ctx),
      );
    case 'apiKey':
      return signApiKey(req, secretOf(auth.key, 'key', ctx), {
        in: auth.in,
        name: auth.name,
        ...(auth.prefix === undefined ? {} : { prefix: auth.prefix }),
      });
    case 'oauth2':
    case 'oauth2_authorization_code':
      if (ctx.accessToken === undefined) {
        throw new UsageError(
          `integration ${ctx.integration}: OAuth2 auth needs an access token; get one from the integration's OAuth2TokenCache and pass it as accessToken`,
        );
      }
      return signBearer(req, ctx.accessToken);
    case 'awsSigV4': {
      const credentials = {
        accessKeyId: secretOf(auth.accessKeyId, 'accessKeyId', ctx),
        secretAccessKey: secretOf(auth.secretAccessKey, 'secretAccessKey', ctx),
        ...(auth.sessionToken === undefined
          ? {}
          : { sessionToken: secretOf(auth.sessionToken, 'sessionToken', ctx) }),
      };
      return signAwsV4(req, {
        credentials,
        region: secretOf(auth.region, 'region', ctx),
        service: auth.service,
        ...(auth.unsignedPayload === undefined ? {} : { unsignedPayload: auth.unsignedPayload }),
      });
    }
  }
}

/**
 * {@link authorize} for a request whose headers object belongs to the caller and has lower-case
 * names only (a built request's): bearer and OAuth2 tokens are set on it in place and `req`
 * itself is returned, with no copies; every other scheme signs as `authorize` does. The result
 * is the same either way.
 *
 * @example
 * ```ts
 * const signed = authorizeOwned(api.auth, { method: 'GET', url, headers: req.headers, now }, { integration: api.name });
 * ```
 */
export function authorizeOwned(
  auth: AuthConfig,
  req: RequestToSign & { headers: Record<string, string> },
  ctx: AuthorizeContext,
): SignedRequest {
  if (auth.type === 'bearer') {
    req.headers.authorization = bearerValue(secretOf(auth.token, 'token', ctx));
    return req;
  }
  if (
    (auth.type === 'oauth2' || auth.type === 'oauth2_authorization_code') &&
    ctx.accessToken !== undefined
  ) {
    req.headers.authorization = bearerValue(ctx.accessToken);
    return req;
  }
  return authorize(auth, req, ctx);
}

function secretOf(
  value: Parameters<typeof resolveSecret>[0],
  field: string,
  ctx: AuthorizeContext,
): string {
  return typeof value === 'string'
    ? value
    : resolveSecret(value, { integration: ctx.integration, field: `auth.${field}` }, ctx.env);
}

/**
 * The resolved client credentials of an OAuth2 declaration, for building the token request.
 *
 * @example
 * ```ts
 * const creds = resolveClientCredentials(api.auth, { integration: api.name });
 * const req = clientCredentialsRequest(creds);
 * ```
 */
export function resolveClientCredentials(
  auth: OAuth2ClientCredentialsAuth,
  ctx: Pick<AuthorizeContext, 'integration' | 'env'>,
): ClientCredentials {
  const read = (value: Parameters<typeof resolveSecret>[0], field: string): string =>
    resolveSecret(value, { integration: ctx.integration, field: `auth.${field}` }, ctx.env);
  const out: ClientCredentials = {
    tokenUrl: read(auth.tokenUrl, 'tokenUrl'),
    clientId: read(auth.clientId, 'clientId'),
    clientSecret: read(auth.clientSecret, 'clientSecret'),
  };
  if (auth.scope !== undefined) out.scope = auth.scope;
  if (auth.audience !== undefined) out.audience = auth.audience;
  if (auth.clientAuth !== undefined) out.clientAuth = auth.clientAuth;
  return out;
}
