import type { EngineExtension } from '../src/engine/extension.js';
import type { Definition } from '../src/index.js';
import { Counter } from './basics/counter.js';
import { Greeter } from './basics/greeter.js';
import { OrderWorkflow } from './basics/order-workflow.js';
import { createFlows } from '../src/flows/index.js';
import * as declarativeSaga from './declarative-saga/index.js';
import * as eventSourcing from './event-sourcing/index.js';
import * as flowControl from './flow-control/index.js';
import * as fulfillment from './fulfillment/index.js';
import * as githubDeployment from './github-deployment/index.js';
import * as patterns from './integration-patterns/index.js';
import * as platform from './integration-platform/index.js';
import * as multiService from './multi-service/index.js';
import * as oauthConnect from './oauth-connect/index.js';
import { orchestrators } from './orchestrators.js';
import * as orderNotifications from './order-notifications/index.js';
import { sagas } from './sagas.js';
import * as webhookAggregator from './webhook-aggregator/index.js';

/** Every definition the example app serves. Later examples add theirs here. */
export const services: Definition[] = [
  Greeter,
  Counter,
  OrderWorkflow,
  ...sagas,
  ...orchestrators,
  // Seed 000: the external-integration exercises.
  ...orderNotifications.definitions,
  ...webhookAggregator.definitions,
  ...githubDeployment.definitions,
  ...fulfillment.definitions,
  // Seed 003: the integration patterns.
  ...patterns.definitions,
  // Seed 004: exercise 1.1 (multi-service orchestration), exercise 2.1 (event sourcing).
  ...multiService.definitions,
  ...eventSourcing.definitions,
  // Seed 004, exercise 1.2: OAuth2 connected accounts (two providers).
  ...oauthConnect.definitions,
  // Seed 004's capstone: the integration platform behind the gateway (/gateway/v1/...).
  ...platform.definitions,
  // Flow control: a queue per tenant, a debounced rebuild, a cron schedule (issue 16).
  ...flowControl.definitions,
];

/** The example app's cron schedules (docs/schedules.md). */
export const schedules = flowControl.schedules;

/** The extensions the example definitions need besides integrations and webhooks. */
export const extensions: EngineExtension[] = [
  // Seed 004, exercise 2.1: gives the event-sourced aggregates the Store.
  ...eventSourcing.extensions(),
  // Seed 004, exercise 1.2: the /oauth connect routes (ingress) and accounts (admin API).
  ...oauthConnect.extensions(),
  // Seed 004, exercise 2.2: the declarative order saga (POST /flows/order-saga/run). One flows
  // extension per engine: add other flows here (dir, definitions), not with a second one.
  // The capstone's order-intake flow is registered here too.
  createFlows({ dir: declarativeSaga.FLOWS_DIR, definitions: platform.flowDefinitions }),
  // Seed 004's capstone: the gateway (API keys from KEEL_GATEWAY_KEYS or POST /gateway/keys).
  platform.platformGateway(),
];
