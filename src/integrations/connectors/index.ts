/**
 * Typed connectors for the providers in the seeds, each a declared integration with production
 * policies and an in-process mock (`KEEL_MOCK=1`, or `mockMode: true`). Only the factories and
 * their types are public here; the mocks are exported by `keel/integrations/mocks`.
 */
export type {
  Connector,
  ConnectorClient,
  ConnectorOptions,
  ConnectorParams,
  ConnectorResult,
  OperationTypes,
  TypedOperationMethod,
} from './common.js';
export { stripe } from './stripe.js';
export type { StripeOperations, StripeOptions } from './stripe.js';
export type * from './stripe.types.js';
export { twilio } from './twilio.js';
export type { TwilioOperations, TwilioOptions } from './twilio.js';
export type * from './twilio.types.js';
export { slack } from './slack.js';
export type { SlackOperations, SlackOptions } from './slack.js';
export type * from './slack.types.js';
export { sendgrid } from './sendgrid.js';
export type { SendGridOperations, SendGridOptions } from './sendgrid.js';
export type * from './sendgrid.types.js';
export { github } from './github.js';
export type { GitHubOperations, GitHubOptions } from './github.js';
export type * from './github.types.js';
export { githubGraphQL } from './github-graphql.js';
export type { GitHubGraphQLOperations, GitHubGraphQLOptions } from './github-graphql.js';
export { shippo } from './shippo.js';
export type { ShippoOperations, ShippoOptions } from './shippo.js';
export type * from './shippo.types.js';
export { openWeather } from './openweather.js';
export type { OpenWeatherOperations, OpenWeatherOptions } from './openweather.js';
export type * from './openweather.types.js';
export { s3 } from './s3.js';
export type { S3Operations, S3Options } from './s3.js';
export type * from './s3.types.js';
