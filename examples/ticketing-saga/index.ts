import type { Definition } from '../../src/index.js';
import { TicketPaymentGateway, TicketPayments } from './payments.js';
import { TicketingSaga } from './saga.js';
import { TicketSeats } from './seats.js';
import { TicketIssuer, TicketMailer } from './tickets.js';

export { TicketingSaga, type TicketRequest, type TicketResult } from './saga.js';
export { TicketSeats, HOLD_DURATION, SEAT_IDS, SOLD_OUT_EVENT } from './seats.js';
export {
  TicketPaymentGateway,
  TicketPayments,
  DECLINED_CUSTOMER,
  SLOW_PAYMENT_CUSTOMER,
  SLOW_PAYMENT_DELAY,
  STUCK_PAYMENT_CUSTOMER,
  STUCK_PAYMENT_DELAY,
} from './payments.js';
export {
  TicketIssuer,
  TicketMailer,
  BOUNCING_CUSTOMER,
  UNTICKETABLE_CUSTOMER,
  type Ticket,
} from './tickets.js';

/** Exercise 3: the ticketing saga, the seat map, payments, tickets and mail. */
export const ticketingSaga: Definition[] = [
  TicketingSaga,
  TicketSeats,
  TicketPaymentGateway,
  TicketPayments,
  TicketIssuer,
  TicketMailer,
];
