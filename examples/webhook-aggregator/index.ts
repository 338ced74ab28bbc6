/**
 * Seed 000, exercise 4: the multi-webhook aggregator. Stripe, Shippo and SendGrid webhooks,
 * verified and deduplicated by Keel's receivers, update one `AggregatedOrder` per order id.
 */
import type { Definition } from '../../src/index.js';
import type { ReceiverOptions } from '../../src/webhooks/index.js';
import { AggregatedOrder } from './order.js';
import { aggregatorReceivers } from './receivers.js';

export * from './order.js';
export * from './receivers.js';

/** The definitions the app serves for the aggregator. */
export const definitions: Definition[] = [AggregatedOrder];

/**
 * The receivers to merge into the app's `webhooks.receivers` (`stripe`, `shippo`, `sendgrid`),
 * with secrets from the environment at import time, demo secrets for unset ones.
 */
export const receivers: Record<string, ReceiverOptions> = aggregatorReceivers(process.env);
