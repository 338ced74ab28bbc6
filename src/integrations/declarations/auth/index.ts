export { bearer, basic, apiKey, oauth2, oauth2AuthorizationCode, awsSigV4 } from './config.js';
export type {
  AuthConfig,
  NoAuth,
  BearerAuth,
  BasicAuth,
  ApiKeyAuth,
  OAuth2ClientCredentialsAuth,
  OAuth2AuthorizationCodeAuth,
  AwsSigV4Auth,
} from './config.js';
export type { RequestToSign, SignedRequest } from './request.js';
export { signBearer } from './bearer.js';
export { signBasic } from './basic.js';
export { signApiKey } from './api-key.js';
export type { ApiKeyPlacement } from './api-key.js';
export {
  signAwsV4,
  presignAwsV4,
  deriveSigningKey,
  uriEncode,
  sha256Hex,
  EMPTY_SHA256,
  UNSIGNED_PAYLOAD,
} from './sigv4.js';
export type { AwsCredentials, SigV4Options, SigV4Signed } from './sigv4.js';
export {
  OAuth2TokenCache,
  OAuth2Error,
  clientCredentialsRequest,
  parseTokenResponse,
} from './oauth2.js';
export type { AccessToken, OAuth2TokenCacheOptions, ClientCredentials } from './oauth2.js';
export { authorize, resolveClientCredentials } from './authorize.js';
export type { AuthorizeContext } from './authorize.js';
