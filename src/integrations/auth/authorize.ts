/**
 * Applies an integration's declared auth to a request: reads its secrets from the environment
 * (now, at use time) and runs the matching signer. Pure apart from reading the environment.
 */
import { UsageError } from '../../core/errors.js';
import { lowerCaseHeaders } from '../headers.js';
import { resolveSecret, type Env } from '../secrets.js';
import { signApiKey } from './api-key.js';
import { signBasic } from './basic.js';
import { signBearer } from './bearer.js';
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
  const secret = (value: Parameters<typeof resolveSecret>[0], field: string): string =>
    resolveSecret(value, { integration: ctx.integration, field: `auth.${field}` }, ctx.env);
  switch (auth.type) {
    case 'none':
      return { url: req.url, headers: lowerCaseHeaders(req.headers) };
    case 'bearer':
      return signBearer(req, secret(auth.token, 'token'));
    case 'basic':
      return signBasic(req, secret(auth.username, 'username'), secret(auth.password, 'password'));
    case 'apiKey':
      return signApiKey(req, secret(auth.key, 'key'), {
        in: auth.in,
        name: auth.name,
        ...(auth.prefix === undefined ? {} : { prefix: auth.prefix }),
      });
    case 'oauth2':
      if (ctx.accessToken === undefined) {
        throw new UsageError(
          `integration ${ctx.integration}: OAuth2 auth needs an access token; get one from the integration's OAuth2TokenCache and pass it as accessToken`,
        );
      }
      return signBearer(req, ctx.accessToken);
    case 'awsSigV4': {
      const credentials = {
        accessKeyId: secret(auth.accessKeyId, 'accessKeyId'),
        secretAccessKey: secret(auth.secretAccessKey, 'secretAccessKey'),
        ...(auth.sessionToken === undefined
          ? {}
          : { sessionToken: secret(auth.sessionToken, 'sessionToken') }),
      };
      return signAwsV4(req, {
        credentials,
        region: secret(auth.region, 'region'),
        service: auth.service,
        ...(auth.unsignedPayload === undefined ? {} : { unsignedPayload: auth.unsignedPayload }),
      });
    }
  }
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
