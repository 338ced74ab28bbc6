/**
 * Seed 000, exercises 1–3 (Twilio SMS, Slack notifications, inventory) as one runnable order
 * service: `NotifiedOrder` with its `OrderInventory` and `OrderShipments`, and the connectors it
 * calls. The app serves `definitions` and declares `integrations`; no webhook receivers.
 */
import type { Definition } from '../../src/index.js';
import type { Integration } from '../../src/integrations/index.js';
import {
  DEFAULT_CHANNELS,
  orderConnectors,
  type OrderChannels,
  type OrderConnectorOptions,
  type OrderConnectors,
} from './connectors.js';
import { OrderInventory } from './inventory.js';
import { notifiedOrder } from './order.js';
import { OrderShipments } from './shipping.js';

export {
  allMocked,
  DEFAULT_CHANNELS,
  orderConnectors,
  seedSmsMock,
  type OrderBaseUrls,
  type OrderChannels,
  type OrderConnectors,
  type OrderMocks,
} from './connectors.js';
export {
  DEMO_STOCK,
  ORDER_WAREHOUSE,
  OrderInventory,
  type InventoryCheck,
  type OrderItem,
  type Reservation,
} from './inventory.js';
export { NotifiedOrderInput, notifiedOrder, type OrderRecord, type OrderStatus } from './order.js';
export { OrderShipments, UNSHIPPABLE_CUSTOMER, type Shipment } from './shipping.js';
export {
  SlackClient,
  TwilioClient,
  type SlackDelivery,
  type SlackField,
  type SlackMessage,
  type SMSRequest,
  type SMSResponse,
} from './notify.js';

/** Options of {@link createOrderNotifications}. */
export interface OrderNotificationsOptions extends OrderConnectorOptions {
  /** The Slack channel of each event. Default {@link DEFAULT_CHANNELS}. */
  channels?: Partial<OrderChannels>;
}

/** One instance of the system: what an engine serves, and the connectors with their mocks. */
export interface OrderNotifications {
  NotifiedOrder: ReturnType<typeof notifiedOrder>;
  definitions: Definition[];
  integrations: Integration[];
  connectors: OrderConnectors;
}

/**
 * Builds the system over connectors read from `options.env` (default `process.env`): a test
 * builds its own, with fresh mocks it can inspect.
 *
 * @example
 * ```ts
 * const system = createOrderNotifications({ env: {} }); // all mocked
 * const engine = new Engine({
 *   services: system.definitions,
 *   store,
 *   extensions: [createIntegrations({ integrations: system.integrations })],
 * });
 * ```
 */
export function createOrderNotifications(
  options: OrderNotificationsOptions = {},
): OrderNotifications {
  const connectors = orderConnectors(options);
  const NotifiedOrder = notifiedOrder(connectors, { ...DEFAULT_CHANNELS, ...options.channels });
  return {
    NotifiedOrder,
    definitions: [NotifiedOrder, OrderInventory, OrderShipments],
    integrations: [
      connectors.payments,
      connectors.email,
      connectors.sms,
      connectors.slack.orders,
      connectors.slack.payments,
      connectors.slack.confirmations,
    ],
    connectors,
  };
}

const app = createOrderNotifications();

/** What the app serves: `NotifiedOrder`, `OrderInventory`, `OrderShipments`. */
export const definitions: Definition[] = app.definitions;

/** The connectors the handlers call (declare them in the app's integrations). */
export const integrations: Integration[] = app.integrations;
