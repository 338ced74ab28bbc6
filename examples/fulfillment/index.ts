/**
 * Seed 000, exercise 6: distributed order fulfillment. What the app must serve: the
 * `definitions`, the inbound webhook `receivers` (merge into `webhooks.receivers`) and the
 * `integrations` the handlers call (the Twilio connector, mock mode without credentials).
 */
import type { Definition } from '../../src/index.js';
import type { Integration } from '../../src/integrations/index.js';
import type { ReceiverOptions } from '../../src/webhooks/index.js';
import { FulfillmentCarrier } from './carrier.js';
import { FulfillmentStock } from './inventory.js';
import { FulfillmentNotifications, fulfillmentSms } from './notifications.js';
import { FulfillmentOrchestrator } from './orchestrator.js';
import { fulfillmentReceivers } from './receivers.js';
import { FulfillmentPacking } from './warehouse.js';

export {
  FulfillmentCarrier,
  FulfillmentStock,
  FulfillmentNotifications,
  FulfillmentOrchestrator,
  FulfillmentPacking,
  fulfillmentSms,
};
export { fulfillmentReceivers, webhookSecrets } from './receivers.js';

/** Every definition of the fulfillment example. */
export const definitions: Definition[] = [
  FulfillmentOrchestrator,
  FulfillmentStock,
  FulfillmentPacking,
  FulfillmentCarrier,
  FulfillmentNotifications,
];

/**
 * The warehouse and carrier webhook receivers (`POST /webhooks/fulfillment-warehouse`,
 * `POST /webhooks/fulfillment-carrier`), signed with `FULFILLMENT_WAREHOUSE_WEBHOOK_SECRET` and
 * `FULFILLMENT_CARRIER_WEBHOOK_SECRET`, or the demo secrets when those are unset.
 */
export const receivers: Record<string, ReceiverOptions> = fulfillmentReceivers();

/** The integrations the handlers call with `use(ctx, ...)`. */
export const integrations: Integration[] = [fulfillmentSms];
