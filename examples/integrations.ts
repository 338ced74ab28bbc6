/**
 * The integrations and webhooks of the example systems (seeds 000 and 003), as `npm start`
 * wires them: every connector and declared integration runs against its in-process mock until
 * its keys are set in the environment (`KEEL_MOCK=1` forces the mocks, `KEEL_MOCK=0` real
 * calls), and each system's inbound receivers are served at `POST /webhooks/{name}`.
 */
import type { AppOptions } from '../src/app.js';
import * as declarativeSaga from './declarative-saga/index.js';
import * as fulfillment from './fulfillment/index.js';
import * as githubDeployment from './github-deployment/index.js';
import * as patterns from './integration-patterns/index.js';
import * as platform from './integration-platform/index.js';
import * as multiService from './multi-service/index.js';
import * as oauthConnect from './oauth-connect/index.js';
import * as orderNotifications from './order-notifications/index.js';
import * as webhookAggregator from './webhook-aggregator/index.js';

/** The integration-related options of the example app. */
export const integrationOptions: Pick<
  AppOptions,
  'integrations' | 'integrationsFile' | 'webhooks'
> = {
  // Seed 003's seven integrations, declared in its syntax; KEEL_INTEGRATIONS_FILE overrides it.
  integrationsFile: patterns.INTEGRATIONS_FILE,
  integrations: {
    integrations: [
      ...orderNotifications.integrations,
      ...githubDeployment.integrations,
      ...fulfillment.integrations,
      ...patterns.integrations,
      // Seed 004, exercise 1.1: the four travel providers.
      ...multiService.integrations,
      // Seed 004, exercise 1.2: the two OAuth2 providers (per-account tokens).
      ...oauthConnect.integrations,
      // Seed 004, exercise 2.2: the declarative saga's inventory, payments and shipping.
      ...declarativeSaga.integrations,
      // Seed 004's capstone: 120 external services (mocks until PLATFORM_SERVICES_URL is set).
      ...platform.integrations,
    ],
    // Circuit events (seed 003's events table).
    subscribers: [...patterns.subscribers],
  },
  webhooks: {
    // stripe, shippo, sendgrid (the aggregator), github (deployments), and fulfillment's.
    receivers: {
      ...webhookAggregator.receivers,
      ...githubDeployment.receivers,
      ...fulfillment.receivers,
    },
    // Dead letters (seed 003's events table: WebhookDeliveryFailed → Slack).
    onDeliveryFailed: [patterns.onDeliveryFailed],
  },
};
