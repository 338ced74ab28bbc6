/**
 * Plays the warehouse or the carrier by hand: posts a signed Standard Webhook for an order to
 * the running app (`npm start`), as their systems would.
 *
 * @example
 * ```sh
 * npx tsx examples/fulfillment/webhook.ts packed order-1         # warehouse: pick_ticket.packed
 * npx tsx examples/fulfillment/webhook.ts exception order-1 "damaged item"
 * npx tsx examples/fulfillment/webhook.ts picked-up order-1      # carrier: pickup.completed
 * npx tsx examples/fulfillment/webhook.ts pickup-failed order-1 "dock closed"
 * ```
 *
 * `KEEL_INGRESS_URL` (default `http://localhost:9080`) says where the app is; the secrets are
 * `FULFILLMENT_WAREHOUSE_WEBHOOK_SECRET` / `FULFILLMENT_CARRIER_WEBHOOK_SECRET` or the demo ones.
 */
import { randomUUID } from 'node:crypto';
import { standardWebhooks } from '../../src/webhooks/index.js';
import { pickTicketIdOf, pickupIdOf } from './orchestrator.js';
import { CARRIER_RECEIVER, WAREHOUSE_RECEIVER, webhookSecrets } from './receivers.js';

const EVENTS = {
  packed: { from: 'warehouse', type: 'pick_ticket.packed' },
  exception: { from: 'warehouse', type: 'pick_ticket.exception' },
  'picked-up': { from: 'carrier', type: 'pickup.completed' },
  'pickup-failed': { from: 'carrier', type: 'pickup.failed' },
} as const;

const [name, orderId, reason] = process.argv.slice(2);
const event = EVENTS[name as keyof typeof EVENTS] as
  (typeof EVENTS)[keyof typeof EVENTS] | undefined;
if (!event || !orderId) {
  console.error(`usage: webhook.ts <${Object.keys(EVENTS).join('|')}> <orderId> [reason]`);
  process.exit(2);
}
const data =
  event.from === 'warehouse'
    ? { pick_ticket_id: pickTicketIdOf(orderId), packages: [{ weightGrams: 1200 }], reason }
    : { pickup_id: pickupIdOf(orderId), reason };
const body = JSON.stringify({ type: event.type, timestamp: new Date().toISOString(), data });
const headers = standardWebhooks.signedHeaders({
  id: `msg_${randomUUID().replace(/-/g, '')}`,
  timestamp: new Date(),
  body,
  secret: webhookSecrets()[event.from],
});
const receiver = event.from === 'warehouse' ? WAREHOUSE_RECEIVER : CARRIER_RECEIVER;
const base = process.env.KEEL_INGRESS_URL ?? 'http://localhost:9080';
const res = await fetch(`${base}/webhooks/${receiver}`, {
  method: 'POST',
  headers: { ...headers, 'content-type': 'application/json' },
  body,
});
console.log(res.status, await res.text());
