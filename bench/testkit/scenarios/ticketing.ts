/** examples/ticketing-saga (seed 002, exercise 3), after test/examples/sagas/. */
import { expect } from 'vitest';
import {
  TicketIssuer,
  TicketMailer,
  TicketPayments,
  TicketSeats,
  TicketingSaga,
  ticketingSaga,
  type TicketRequest,
} from '../../../examples/ticketing-saga/index.js';
import type { Driver, Scenario } from '../driver.js';

const services = ticketingSaga;

const booking = (
  bookingId: string,
  customerId: string,
  seatIds = ['A1', 'A2'],
  eventId = 'evt-rock',
): TicketRequest => ({
  bookingId,
  eventId,
  seatIds,
  customerId,
  totalAmount: 120,
});
const book = (d: Driver, req: TicketRequest) =>
  d.engine.client(TicketingSaga, req.bookingId).run(req);
const send = (d: Driver, req: TicketRequest) =>
  d.engine.send({ service: 'TicketingSaga', handler: 'run', key: req.bookingId, input: req });
const seats = (d: Driver, eventId = 'evt-rock') => d.engine.client(TicketSeats, eventId).seats();
const payment = (d: Driver, id: string) => d.engine.client(TicketPayments, id).payment();
const stage = async (d: Driver, id: string) =>
  (await d.engine.client(TicketingSaga, id).status()).stage;

const confirms = (id: string, customer: string, seatIds: string[]): Scenario => ({
  name: `holds, charges, sells, issues and emails ${seatIds.join('+')}; the hold's expiry leaves the sale`,
  services,
  async run(d) {
    const result = await book(d, booking(id, customer, seatIds));
    expect(result).toMatchObject({ status: 'confirmed', paymentId: `pay_${id}`, emailSent: true });
    expect(result.tickets?.map((t) => t.seatId)).toEqual(seatIds);
    expect(await seats(d)).toMatchObject({
      available: 50 - seatIds.length,
      held: [],
      sold: seatIds,
    });
    expect(await payment(d, id)).toMatchObject({ status: 'captured', amount: 120 });
    expect(await d.engine.client(TicketIssuer, customer).tickets()).toHaveLength(seatIds.length);
    expect(await d.engine.client(TicketMailer, customer).outbox()).toHaveLength(1);
    await d.advance('16m');
    expect(await seats(d)).toMatchObject({ sold: seatIds });
  },
});

export const ticketingScenarios: Scenario[] = [
  confirms('bk-1', 'cust-123', ['A1', 'A2']),
  confirms('bk-1b', 'cust-9', ['C3']),
  {
    name: 'sold out: taken seats end the booking before any charge',
    services,
    async run(d) {
      await book(d, booking('bk-1', 'cust-1', ['A1']));
      expect(await book(d, booking('bk-2', 'cust-2', ['A3', 'A1']))).toMatchObject({
        status: 'sold_out',
        reason: 'sold_out',
        message: expect.stringContaining('A1'),
        compensated: [],
      });
      expect(await payment(d, 'bk-2')).toBeNull();
      expect((await seats(d)).available).toBe(49);
      expect(await book(d, booking('bk-3', 'cust-3', ['C5'], 'evt-sold-out'))).toMatchObject({
        status: 'sold_out',
        message: expect.stringContaining('is sold out'),
      });
    },
  },
  {
    name: 'sells a seat once when bookings race for it',
    services,
    async run(d) {
      const results = await Promise.all(
        ['r1', 'r2', 'r3', 'r4', 'r5'].map((id) => book(d, booking(id, `cust-${id}`, ['B7']))),
      );
      expect(results.filter((r) => r.status === 'confirmed')).toHaveLength(1);
      expect(results.filter((r) => r.status === 'sold_out')).toHaveLength(4);
      expect((await seats(d)).sold).toEqual(['B7']);
    },
  },
  {
    name: 'payment declined: the seats are released',
    services,
    async run(d) {
      expect(await book(d, booking('bk-d', 'cust-card-declined'))).toMatchObject({
        status: 'payment_failed',
        reason: 'payment_declined',
        compensated: ['hold seats'],
      });
      expect(await seats(d)).toMatchObject({ available: 50, held: [], sold: [] });
      expect((await seats(d)).bookings['bk-d']).toMatchObject({ status: 'released' });
    },
  },
  {
    name: 'a bank slower than the hold: released at 15 minutes, the late capture refused',
    services,
    async run(d) {
      const run = await send(d, booking('bk-s', 'cust-stuck-payment'));
      await d.waitFor(async () => (await stage(d, 'bk-s')) === 'payment', 'charging');
      await d.advance('14m');
      expect(await seats(d)).toMatchObject({ held: ['A1', 'A2'] });
      expect(await stage(d, 'bk-s')).toBe('payment');
      await d.advance('1m');
      expect(await d.engine.attach(run.invocationId)).toMatchObject({
        status: 'payment_timeout',
        compensated: ['hold seats'],
      });
      expect(await seats(d)).toMatchObject({ available: 50, held: [] });
      expect(await payment(d, 'bk-s')).toMatchObject({ status: 'voided' });
      await d.advance('10m'); // the bank answers at 20 minutes: too late
      expect(await payment(d, 'bk-s')).toMatchObject({ status: 'voided', amount: 0 });
      const [charge] = (await d.engine.listInvocations({ service: 'TicketPaymentGateway' }))
        .invocations;
      expect(charge).toMatchObject({ status: 'failed', error: { code: 'payment_voided' } });
    },
  },
  {
    name: 'a slow bank within the hold still confirms; a hold ended meanwhile refunds',
    services,
    async run(d) {
      const ok = await send(d, booking('bk-ok', 'cust-slow-payment', ['D1']));
      const late = await send(d, booking('bk-late', 'cust-slow-payment', ['D2']));
      await d.waitFor(async () => (await stage(d, 'bk-late')) === 'payment', 'charging');
      await d.advance('2m');
      await d.engine.client(TicketSeats, 'evt-rock').expire({ bookingId: 'bk-late' });
      await d.advance('3m');
      expect(await d.engine.attach(ok.invocationId)).toMatchObject({ status: 'confirmed' });
      expect(await d.engine.attach(late.invocationId)).toMatchObject({
        status: 'hold_expired',
        reason: 'hold_expired',
        compensated: ['charge card', 'hold seats'],
      });
      expect(await payment(d, 'bk-late')).toMatchObject({ status: 'refunded' });
      expect(await seats(d)).toMatchObject({ sold: ['D1'], held: [] });
    },
  },
  {
    name: 'holds seats for exactly 15 minutes on its own',
    services,
    async run(d) {
      await d.engine
        .client(TicketSeats, 'evt-jazz')
        .hold({ bookingId: 'walk-in', seatIds: ['E1'] });
      await d.advance('14m59s');
      expect(await seats(d, 'evt-jazz')).toMatchObject({ held: ['E1'] });
      await d.advance('1s');
      expect(await seats(d, 'evt-jazz')).toMatchObject({ held: [], available: 50 });
      expect((await seats(d, 'evt-jazz')).bookings['walk-in']).toMatchObject({ status: 'expired' });
    },
  },
  {
    name: 'issuing fails: the payment is refunded and the sold seats released',
    services,
    async run(d) {
      expect(await book(d, booking('bk-i', 'cust-fail-issuing'))).toMatchObject({
        status: 'issuing_failed',
        reason: 'issuing_failed',
        compensated: ['charge card', 'hold seats'],
      });
      expect(await payment(d, 'bk-i')).toMatchObject({ status: 'refunded' });
      expect(await seats(d)).toMatchObject({ available: 50, sold: [] });
    },
  },
  {
    name: 'email fails: the booking is confirmed, the tickets are in the wallet',
    services,
    async run(d) {
      expect(await book(d, booking('bk-e', 'cust-fail-email'))).toMatchObject({
        status: 'confirmed',
        emailSent: false,
      });
      expect(await d.engine.client(TicketIssuer, 'cust-fail-email').tickets()).toHaveLength(2);
      expect(await payment(d, 'bk-e')).toMatchObject({ status: 'captured' });
    },
  },
];
