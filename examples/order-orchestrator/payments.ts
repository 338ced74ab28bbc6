/** PaymentService of the order exercise: the shared card processor, one key per order. */
import { paymentsObject } from '../orchestration-kit/payments.js';

/** Charges and refunds per order id; see `paymentsObject`. */
export const FulfillmentPayments = paymentsObject('FulfillmentPayments');
