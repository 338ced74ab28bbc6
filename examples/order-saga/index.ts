import type { Definition } from '../../src/index.js';
import { OrderSagaEmail } from './email.js';
import { OrderSagaInventory } from './inventory.js';
import { OrderSagaPayments } from './payments.js';
import { OrderSaga } from './saga.js';
import { OrderSagaShipping } from './shipping.js';

export { OrderSaga, type OrderRequest, type OrderResult } from './saga.js';
export { OrderSagaPayments, DECLINED_CUSTOMER } from './payments.js';
export { OrderSagaInventory, OPENING_STOCK, WAREHOUSE, type OrderItem } from './inventory.js';
export {
  OrderSagaShipping,
  SLOW_CARRIER_DELAY,
  SLOW_SHIPPING_CUSTOMER,
  UNSHIPPABLE_CUSTOMER,
} from './shipping.js';
export { OrderSagaEmail, BOUNCING_CUSTOMER } from './email.js';

/** Exercise 1: the order saga and the services it orchestrates. */
export const orderSaga: Definition[] = [
  OrderSaga,
  OrderSagaPayments,
  OrderSagaInventory,
  OrderSagaShipping,
  OrderSagaEmail,
];
