/**
 * Typed connectors for the providers in the seeds, each a declared integration with production
 * policies and an in-process mock (`KEEL_MOCK=1`, or `mockMode: true`).
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
export type { ConnectorMock } from './mock-kit.js';
export * from './stripe.js';
export * from './twilio.js';
export * from './slack.js';
export * from './sendgrid.js';
export * from './github.js';
export * from './github-graphql.js';
export * from './shippo.js';
export * from './openweather.js';
export * from './s3.js';
