/**
 * The inbound webhooks of the fulfillment exercise: the warehouse and the carrier post signed
 * Standard Webhooks to `POST /webhooks/fulfillment-warehouse` and
 * `POST /webhooks/fulfillment-carrier` on the ingress. Keel verifies the signature, drops
 * redeliveries (same `webhook-id`), and routes each event to the pick ticket or pickup it names;
 * that object completes the awakeable the orchestrator waits on.
 */
import type { ReceiverOptions } from '../../src/webhooks/index.js';
import { FulfillmentCarrier, type CarrierEventBody } from './carrier.js';
import { FulfillmentPacking, type WarehouseEventBody } from './warehouse.js';

/**
 * Demo signing secrets, used when `FULFILLMENT_WAREHOUSE_WEBHOOK_SECRET` /
 * `FULFILLMENT_CARRIER_WEBHOOK_SECRET` are not set. Public, so for local runs only.
 */
export const DEMO_WAREHOUSE_SECRET = 'whsec_ZnVsZmlsbG1lbnQtd2FyZWhvdXNlLWRlbW8tc2VjcmV0';
export const DEMO_CARRIER_SECRET = 'whsec_ZnVsZmlsbG1lbnQtY2Fycmllci1kZW1vLXNlY3JldCEh';

/** The receiver names, i.e. the paths `POST /webhooks/{name}`. */
export const WAREHOUSE_RECEIVER = 'fulfillment-warehouse';
export const CARRIER_RECEIVER = 'fulfillment-carrier';

/** The secrets in force: the environment's, or the demo ones. */
export function webhookSecrets(env: Record<string, string | undefined> = process.env) {
  return {
    warehouse: env.FULFILLMENT_WAREHOUSE_WEBHOOK_SECRET || DEMO_WAREHOUSE_SECRET,
    carrier: env.FULFILLMENT_CARRIER_WEBHOOK_SECRET || DEMO_CARRIER_SECRET,
  };
}

const idOf = (value: unknown): string | undefined =>
  typeof value === 'string' && value.length > 0 ? value : undefined;

/**
 * The two receivers, to merge into the app's `webhooks.receivers`.
 *
 * @example
 * ```ts
 * await startApp({ services: definitions, webhooks: { receivers: fulfillmentReceivers() } });
 * ```
 */
export function fulfillmentReceivers(secrets = webhookSecrets()): Record<string, ReceiverOptions> {
  return {
    [WAREHOUSE_RECEIVER]: {
      provider: 'standard-webhooks',
      secret: secrets.warehouse,
      route: (e) => {
        const ticket = idOf((e.data as Partial<WarehouseEventBody>)?.data?.pick_ticket_id);
        // Nothing names a ticket: acknowledged and ignored (an error would only make the
        // warehouse retry the same unusable event).
        return ticket ? { target: FulfillmentPacking, key: ticket, handler: 'onEvent' } : null;
      },
    },
    [CARRIER_RECEIVER]: {
      provider: 'standard-webhooks',
      secret: secrets.carrier,
      route: (e) => {
        const pickup = idOf((e.data as Partial<CarrierEventBody>)?.data?.pickup_id);
        return pickup ? { target: FulfillmentCarrier, key: pickup, handler: 'onEvent' } : null;
      },
    },
  };
}
