import { z } from 'zod';
import {
  handler,
  saga,
  TerminalError,
  TimeoutError,
  workflow,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '../../src/index.js';
import { body, idMatchingKey, keyId, positive, text } from '../saga-kit/input.js';
import { TicketPaymentGateway, TicketPayments } from './payments.js';
import { HOLD_DURATION, TicketSeats } from './seats.js';
import { TicketIssuer, TicketMailer, type Ticket } from './tickets.js';

/** The body of `POST /TicketingSaga/{bookingId}/run`: the seed's `TicketRequest`. */
export const TicketInput = body(
  {
    /** May repeat the URL key; defaults to it. */
    bookingId: keyId(),
    eventId: text(),
    seatIds: z
      .array(text(), { error: 'must be a non-empty array of seat ids, e.g. ["A1","A2"]' })
      .min(1, 'must be a non-empty array of seat ids, e.g. ["A1","A2"]')
      .refine((ids) => new Set(ids).size === ids.length, 'lists a seat twice'),
    customerId: text(),
    totalAmount: positive(),
  },
  '{"eventId":"evt-rock","seatIds":["A1"],"customerId":"cust-123","totalAmount":60}',
);
export type TicketInput = z.infer<typeof TicketInput>;

/** The seed's `TicketRequest`, as the saga runs it (the id resolved from the URL key). */
export interface TicketRequest {
  bookingId: string;
  eventId: string;
  seatIds: string[];
  customerId: string;
  totalAmount: number;
}

/** How a booking ended. */
export interface TicketResult {
  status:
    | 'confirmed'
    | 'sold_out'
    | 'payment_failed'
    | 'payment_timeout'
    | 'hold_expired'
    | 'issuing_failed'
    | 'failed'
    | 'compensation_failed';
  paymentId?: string;
  tickets?: Ticket[];
  /** False when the (non-critical) email with the tickets could not be sent. */
  emailSent?: boolean;
  reason?: string;
  message?: string;
  /** The steps undone, in the order they were undone. */
  compensated?: string[];
}

type Stage = 'hold' | 'payment' | 'confirm' | 'issue' | 'email' | 'done';

/**
 * How a compensated booking is reported: by the step that failed, or by the error where it
 * says more (a hold refused for another reason than taken seats, a payment that timed out).
 */
function failureStatus(stage: Stage, code: string): TicketResult['status'] {
  if (code === 'payment_timeout') return 'payment_timeout';
  switch (stage) {
    case 'hold':
      return code === 'sold_out' ? 'sold_out' : 'failed';
    case 'payment':
      return 'payment_failed';
    case 'confirm':
      return 'hold_expired';
    case 'issue':
      return 'issuing_failed';
    default:
      return 'failed';
  }
}

/**
 * Exercise 3: event ticketing. Hold the seats (15 minutes) → charge the card within the hold →
 * sell the seats → issue the tickets → email them. Seats that are taken end the booking as
 * `sold_out` before anything is charged; a declined card, or a bank that does not answer
 * before the hold ends, releases the seats; a failure after the charge also refunds it.
 *
 * @example
 * ```sh
 * curl -X POST http://localhost:9080/TicketingSaga/bk-001/run -H 'Content-Type: application/json' \
 *   -d '{"bookingId":"bk-001","eventId":"evt-rock","seatIds":["A1","A2"],"customerId":"cust-123","totalAmount":120}'
 * ```
 */
export const TicketingSaga = workflow({
  name: 'TicketingSaga',
  run: handler(
    { input: TicketInput },
    async (ctx: WorkflowContext, input): Promise<TicketResult> => {
      // Before the first step: a contradicting id fails the run with nothing done (key released).
      const req: TicketRequest = {
        ...input,
        bookingId: idMatchingKey(input.bookingId, 'bookingId', ctx.key),
      };
      const seats = ctx.objectClient(TicketSeats, req.eventId);
      const payments = ctx.objectClient(TicketPayments, req.bookingId);
      const issuer = ctx.objectClient(TicketIssuer, req.customerId);

      // Which step the saga is in (an object, so the step set inside the saga is seen after it):
      // a failed saga is reported by the step that failed.
      const at: { stage: Stage } = { stage: 'hold' };
      const enter = (next: Stage): void => {
        at.stage = next;
        ctx.set('stage', next);
      };

      const outcome = await saga(ctx, async (s) => {
        enter('hold');
        // The undo frees the booking's seats whether they are still held or already sold, so
        // it also undoes the `confirm` step below.
        const hold = await s.invoke(
          'hold seats',
          () => seats.hold({ bookingId: req.bookingId, seatIds: req.seatIds }),
          { undo: () => seats.release({ bookingId: req.bookingId }) },
        );

        enter('payment');
        // The card must be charged while the seats are held: race the charge against what is
        // left of the hold.
        const remaining = Math.max(0, hold.expiresAt - (await ctx.now()));
        const { paymentId } = await s.invoke(
          'charge card',
          async () => {
            try {
              return await ctx
                .serviceClient(TicketPaymentGateway)
                .charge({
                  bookingId: req.bookingId,
                  customerId: req.customerId,
                  amount: req.totalAmount,
                })
                .orTimeout(remaining);
            } catch (err) {
              if (!(err instanceof TimeoutError)) throw err;
              // The bank may still answer after we gave up: void the booking's payment so that
              // a late capture is refused rather than charging for seats we released.
              await payments.cancel();
              throw new TerminalError(
                `the payment did not complete within the ${HOLD_DURATION} hold`,
                {
                  code: 'payment_timeout',
                  status: 408,
                },
              );
            }
          },
          { undo: () => payments.cancel() },
        );

        enter('confirm');
        await s.invoke('sell seats', () => seats.confirm({ bookingId: req.bookingId }));

        enter('issue');
        const tickets = await s.invoke(
          'issue tickets',
          () =>
            issuer.issue({ bookingId: req.bookingId, eventId: req.eventId, seatIds: req.seatIds }),
          { undo: () => issuer.revoke({ bookingId: req.bookingId }) },
        );

        enter('email');
        // Not critical: the tickets are in the customer's wallet even if the email bounces.
        const sent = await s.invoke(
          'email tickets',
          () =>
            ctx
              .objectClient(TicketMailer, req.customerId)
              .sendTickets({ bookingId: req.bookingId, tickets }),
          { critical: false },
        );

        enter('done');
        return { paymentId, tickets, emailSent: sent !== undefined };
      });

      ctx.set('outcome', outcome.status);
      if (outcome.status === 'completed') return { status: 'confirmed', ...outcome.value };
      const { code, message } = outcome.error;
      return {
        status:
          outcome.status === 'compensated' ? failureStatus(at.stage, code) : 'compensation_failed',
        reason: code,
        message,
        compensated: outcome.compensated,
      };
    },
  ),

  handlers: {
    /** Where the booking is: `hold`, `payment`, `confirm`, `issue`, `email` or `done`. */
    status: async (ctx: WorkflowSharedContext) => ({
      bookingId: ctx.key,
      stage: (await ctx.get<Stage>('stage')) ?? 'not started',
      outcome: (await ctx.get<string>('outcome')) ?? null,
    }),
  },
});
