/** PaymentService of the food delivery exercise: the shared card processor, one key per order. */
import { paymentsObject } from '../orchestration-kit/payments.js';

/** Charges and refunds per order id; see `paymentsObject`. */
export const DeliveryPayments = paymentsObject('DeliveryPayments');
