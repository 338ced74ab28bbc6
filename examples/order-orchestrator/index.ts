/** Seed 001, exercise 1: the order fulfillment orchestrator and the services it coordinates. */
import type { Definition } from '../../src/index.js';
import { FulfillmentEmail } from './email.js';
import { FulfillmentInventory } from './inventory.js';
import { OrderOrchestrator } from './orchestrator.js';
import { FulfillmentPayments } from './payments.js';
import { FulfillmentShipping } from './shipping.js';
import { FulfillmentWarehouse } from './warehouse.js';

export {
  FulfillmentEmail,
  FulfillmentInventory,
  FulfillmentPayments,
  FulfillmentShipping,
  FulfillmentWarehouse,
  OrderOrchestrator,
};

/** Every definition of the order fulfillment example. */
export const orderFulfillment: Definition[] = [
  OrderOrchestrator,
  FulfillmentInventory,
  FulfillmentPayments,
  FulfillmentWarehouse,
  FulfillmentShipping,
  FulfillmentEmail,
];
