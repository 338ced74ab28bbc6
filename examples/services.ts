import type { Definition } from '../src/index.js';
import { Counter } from './basics/counter.js';
import { Greeter } from './basics/greeter.js';
import { OrderWorkflow } from './basics/order-workflow.js';
import * as fulfillment from './fulfillment/index.js';
import * as githubDeployment from './github-deployment/index.js';
import * as patterns from './integration-patterns/index.js';
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
];
