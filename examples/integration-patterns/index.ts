/**
 * Seed 003, "Integration Patterns": seven integrations declared in `integrations.cai` (loaded by
 * the app with `integrationsFile`), the `IntegrationPatterns` service calling each of them, and
 * the events table (Slack, an outbound webhook, a log line). See README.md.
 */
import type { Definition } from '../../src/index.js';
import { createIntegrationPatterns } from './service.js';

export {
  INTEGRATIONS_FILE,
  declarations,
  patternIntegrations,
  type PatternIntegrations,
  type PatternName,
} from './declarations.js';
export { notificationMock, patternMocks } from './mocks.js';
export {
  CIRCUIT_OPENED_EVENT,
  SERVICE,
  createIntegrationPatterns,
  type IntegrationPatterns,
} from './service.js';

/** The example as the app serves it: the file's integrations with their mocks. */
export const patterns = createIntegrationPatterns();

/** The definitions the app must serve. */
export const definitions: Definition[] = patterns.definitions;

/** The integrations the handlers use (the seven of the file, plus the `OpsSlack` channel). */
export const integrations = patterns.integrations;

/** For `integrations: { subscribers }`: circuit events reach `IntegrationPatterns.onCircuitEvent`. */
export const subscribers = patterns.subscribers;

/** For `webhooks: { onDeliveryFailed }`: dead letters reach `IntegrationPatterns.onWebhookDeliveryFailed`. */
export const onDeliveryFailed = patterns.onDeliveryFailed;
