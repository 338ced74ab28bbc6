import { z } from 'zod';
import { handler, object, shared, TerminalError, type ObjectContext } from '../../src/index.js';

/** The customer whose tickets cannot be generated: the payment is refunded, the seats released. */
export const UNTICKETABLE_CUSTOMER = 'cust-fail-issuing';
/** The customer whose mailbox bounces: the booking is confirmed without the email. */
export const BOUNCING_CUSTOMER = 'cust-fail-email';

/** One admission ticket. */
export interface Ticket {
  ticketId: string;
  eventId: string;
  seatId: string;
  bookingId: string;
  status: 'valid' | 'revoked';
}

/**
 * The ticket wallet of one customer (object keyed by customer id): `issue` generates a ticket
 * per seat, idempotent by booking; `revoke` cancels a booking's tickets.
 *
 * Fails for {@link UNTICKETABLE_CUSTOMER} (503 `issuing_failed`).
 */
export const TicketIssuer = object({
  name: 'TicketIssuer',
  handlers: {
    /** Issues one ticket per seat of a booking. */
    issue: handler(
      {
        input: z.object({
          bookingId: z.string().min(1),
          eventId: z.string().min(1),
          seatIds: z.array(z.string().min(1)),
        }),
      },
      async (ctx: ObjectContext, req) => {
        if (ctx.key === UNTICKETABLE_CUSTOMER) {
          throw new TerminalError('the ticket generator is down', {
            code: 'issuing_failed',
            status: 503,
          });
        }
        const wallet = (await ctx.get<Ticket[]>('tickets')) ?? [];
        let issued = wallet.filter((t) => t.bookingId === req.bookingId);
        if (issued.length === 0) {
          issued = req.seatIds.map((seatId) => ({
            ticketId: `TKT-${req.eventId}-${seatId}-${req.bookingId}`,
            eventId: req.eventId,
            seatId,
            bookingId: req.bookingId,
            status: 'valid',
          }));
          ctx.set('tickets', [...wallet, ...issued]);
        }
        return issued;
      },
    ),

    /** Revokes a booking's tickets (only a cancelled booking needs it). */
    revoke: handler(
      { input: z.object({ bookingId: z.string().min(1) }) },
      async (ctx: ObjectContext, req) => {
        const wallet = (await ctx.get<Ticket[]>('tickets')) ?? [];
        for (const t of wallet) if (t.bookingId === req.bookingId) t.status = 'revoked';
        ctx.set('tickets', wallet);
        return { bookingId: req.bookingId, revoked: true };
      },
    ),

    /** Every ticket of this customer. */
    tickets: shared(async (ctx) => (await ctx.get<Ticket[]>('tickets')) ?? []),
  },
});

/**
 * The mail provider (object keyed by customer id, its state is the outbox): sends the tickets.
 *
 * Fails for {@link BOUNCING_CUSTOMER} (502 `mailbox_unavailable`).
 */
export const TicketMailer = object({
  name: 'TicketMailer',
  handlers: {
    /** Emails the tickets of a booking. Sending twice sends once. */
    sendTickets: handler(
      {
        input: z.object({
          bookingId: z.string().min(1),
          tickets: z.array(
            z.object({
              ticketId: z.string().min(1),
              eventId: z.string().min(1),
              seatId: z.string().min(1),
              bookingId: z.string().min(1),
              status: z.enum(['valid', 'revoked']),
            }),
          ),
        }),
      },
      async (ctx: ObjectContext, req) => {
        if (ctx.key === BOUNCING_CUSTOMER) {
          throw new TerminalError(`the mailbox of ${ctx.key} does not accept mail`, {
            code: 'mailbox_unavailable',
            status: 502,
          });
        }
        const outbox =
          (await ctx.get<Array<{ bookingId: string; ticketIds: string[] }>>('outbox')) ?? [];
        if (!outbox.some((m) => m.bookingId === req.bookingId)) {
          outbox.push({ bookingId: req.bookingId, ticketIds: req.tickets.map((t) => t.ticketId) });
          ctx.set('outbox', outbox);
        }
        return { sent: true };
      },
    ),

    /** Every email sent to this customer. */
    outbox: shared(async (ctx) => (await ctx.get<unknown[]>('outbox')) ?? []),
  },
});
