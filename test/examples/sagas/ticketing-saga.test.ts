import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  TicketIssuer,
  TicketMailer,
  TicketPayments,
  TicketSeats,
  TicketingSaga,
  ticketingSaga,
  type TicketRequest,
} from '../../../examples/ticketing-saga/index.js';
import { testApp, type TestApp } from '../../../src/testing/index.js';

/**
 * Exercise 3 (Event Ticketing Saga): seats held for 15 minutes while the card is charged,
 * sold out, release on payment failure, tickets issued and emailed. The 15-minute hold and
 * the slow banks run on the fake clock.
 */
let t: TestApp;
beforeEach(async () => {
  t = await testApp({ services: ticketingSaga });
});
afterEach(() => t.close());

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

const book = (req: TicketRequest) => t.workflow(TicketingSaga, req.bookingId).run(req);
const send = (req: TicketRequest) => t.workflowSend(TicketingSaga, req.bookingId).run(req);
const seats = (eventId = 'evt-rock') => t.object(TicketSeats, eventId).seats();
const payment = (bookingId: string) => t.object(TicketPayments, bookingId).payment();
const stage = async (bookingId: string) =>
  (await t.workflow(TicketingSaga, bookingId).status()).stage;

describe('TicketingSaga (seed 002, exercise 3)', () => {
  it('holds, charges, sells, issues and emails the tickets', async () => {
    const result = await book(booking('bk-1', 'cust-123'));
    expect(result).toMatchObject({ status: 'confirmed', paymentId: 'pay_bk-1', emailSent: true });
    expect(result.tickets?.map((t) => t.seatId)).toEqual(['A1', 'A2']);
    expect(await seats()).toMatchObject({ available: 48, held: [], sold: ['A1', 'A2'] });
    expect(await payment('bk-1')).toMatchObject({ status: 'captured', amount: 120 });
    expect(await t.object(TicketIssuer, 'cust-123').tickets()).toHaveLength(2);
    expect(await t.object(TicketMailer, 'cust-123').outbox()).toHaveLength(1);
    // The hold's own 15-minute expiry fires later and leaves a sale alone.
    await t.advance('16m');
    expect(await seats()).toMatchObject({ sold: ['A1', 'A2'] });
  });

  it('sold out: taken seats end the booking before any charge, and take no other seat', async () => {
    await book(booking('bk-1', 'cust-1', ['A1']));
    expect(await book(booking('bk-2', 'cust-2', ['A3', 'A1']))).toMatchObject({
      status: 'sold_out',
      reason: 'sold_out',
      message: expect.stringContaining('A1'),
      compensated: [],
    });
    expect(await payment('bk-2')).toBeNull();
    expect((await seats()).available).toBe(49); // A3 was not held either
    expect(await book(booking('bk-3', 'cust-3', ['C5'], 'evt-sold-out'))).toMatchObject({
      status: 'sold_out',
      message: expect.stringContaining('is sold out'),
    });
  });

  it('sells a seat once when bookings race for it', async () => {
    const results = await Promise.all(
      ['r1', 'r2', 'r3', 'r4', 'r5'].map((id) => book(booking(id, `cust-${id}`, ['B7']))),
    );
    expect(results.filter((r) => r.status === 'confirmed')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'sold_out')).toHaveLength(4);
    expect((await seats()).sold).toEqual(['B7']);
  });

  it('payment declined: the seats are released', async () => {
    expect(await book(booking('bk-d', 'cust-card-declined'))).toMatchObject({
      status: 'payment_failed',
      reason: 'payment_declined',
      compensated: ['hold seats'],
    });
    expect(await seats()).toMatchObject({ available: 50, held: [], sold: [] });
    expect((await seats()).bookings['bk-d']).toMatchObject({ status: 'released' });
  });

  it('a bank slower than the hold: released at 15 minutes, the late capture refused', async () => {
    const run = await send(booking('bk-s', 'cust-stuck-payment'));
    await t.idle();
    expect(await stage('bk-s')).toBe('payment');
    await t.advance('14m');
    expect(await seats()).toMatchObject({ held: ['A1', 'A2'] });
    expect(await stage('bk-s')).toBe('payment');
    await t.advance('1m');
    expect(await t.attach(run)).toMatchObject({
      status: 'payment_timeout',
      compensated: ['hold seats'],
    });
    expect(await seats()).toMatchObject({ available: 50, held: [] });
    expect(await payment('bk-s')).toMatchObject({ status: 'voided' });
    await t.advance('10m'); // the bank answers at 20 minutes: too late
    expect(await payment('bk-s')).toMatchObject({ status: 'voided', amount: 0 });
    const [charge] = await t.invocations({ service: 'TicketPaymentGateway' });
    expect(charge).toMatchObject({ status: 'failed', error: { code: 'payment_voided' } });
  });

  it('a slow bank within the hold still confirms; a hold ended meanwhile refunds', async () => {
    const ok = await send(booking('bk-ok', 'cust-slow-payment', ['D1']));
    const late = await send(booking('bk-late', 'cust-slow-payment', ['D2']));
    await t.idle();
    expect(await stage('bk-late')).toBe('payment');
    await t.advance('2m');
    await t.object(TicketSeats, 'evt-rock').expire({ bookingId: 'bk-late' }); // ended early
    await t.advance('3m');
    expect(await t.attach(ok)).toMatchObject({ status: 'confirmed' });
    expect(await t.attach(late)).toMatchObject({
      status: 'hold_expired',
      reason: 'hold_expired',
      compensated: ['charge card', 'hold seats'],
    });
    expect(await payment('bk-late')).toMatchObject({ status: 'refunded' });
    expect(await seats()).toMatchObject({ sold: ['D1'], held: [] });
  });

  it('holds seats for exactly 15 minutes on its own', async () => {
    await t.object(TicketSeats, 'evt-jazz').hold({ bookingId: 'walk-in', seatIds: ['E1'] });
    await t.advance('14m59s');
    expect(await seats('evt-jazz')).toMatchObject({ held: ['E1'] });
    await t.advance('1s');
    expect(await seats('evt-jazz')).toMatchObject({ held: [], available: 50 });
    expect((await seats('evt-jazz')).bookings['walk-in']).toMatchObject({ status: 'expired' });
  });

  it('issuing fails: the payment is refunded and the sold seats released', async () => {
    expect(await book(booking('bk-i', 'cust-fail-issuing'))).toMatchObject({
      status: 'issuing_failed',
      reason: 'issuing_failed',
      compensated: ['charge card', 'hold seats'],
    });
    expect(await payment('bk-i')).toMatchObject({ status: 'refunded' });
    expect(await seats()).toMatchObject({ available: 50, sold: [] });
  });

  it('email fails: the booking is confirmed, the tickets are in the wallet', async () => {
    expect(await book(booking('bk-e', 'cust-fail-email'))).toMatchObject({
      status: 'confirmed',
      emailSent: false,
    });
    expect(await t.object(TicketIssuer, 'cust-fail-email').tickets()).toHaveLength(2);
    expect(await payment('bk-e')).toMatchObject({ status: 'captured' });
  });
});
