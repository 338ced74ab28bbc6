import { z } from 'zod';
import {
  handler,
  object,
  parseDuration,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';

/** How long seats stay held for a booking while the customer pays. */
export const HOLD_DURATION = '15m';
/** An event whose every seat is already sold: book it to try the "sold out" path. */
export const SOLD_OUT_EVENT = 'evt-sold-out';

/** Every event has rows A-E of seats 1-10 (A1 ... E10). */
export const SEAT_IDS: readonly string[] = ['A', 'B', 'C', 'D', 'E'].flatMap((row) =>
  Array.from({ length: 10 }, (_, i) => `${row}${i + 1}`),
);

type Seat =
  | { status: 'available' }
  | { status: 'held'; bookingId: string }
  | { status: 'sold'; bookingId: string };

interface Booking {
  seatIds: string[];
  status: 'held' | 'sold' | 'released' | 'expired';
  /** Epoch ms after which the hold is released. */
  expiresAt: number;
}

interface EventState {
  seats: Record<string, Seat>;
  bookings: Record<string, Booking>;
}

const load = async (ctx: ObjectSharedContext): Promise<EventState> => {
  const stored = await ctx.get<EventState>('state');
  if (stored) return stored;
  const seat: Seat =
    ctx.key === SOLD_OUT_EVENT
      ? { status: 'sold', bookingId: 'box-office' }
      : { status: 'available' };
  return { seats: Object.fromEntries(SEAT_IDS.map((id) => [id, seat])), bookings: {} };
};

/** Puts a booking's seats back on sale (held or sold) and marks the booking. */
const freeSeats = (state: EventState, bookingId: string, status: 'released' | 'expired'): void => {
  const booking = state.bookings[bookingId];
  if (!booking) return;
  for (const id of booking.seatIds) {
    const seat = state.seats[id];
    if (seat && seat.status !== 'available' && seat.bookingId === bookingId) {
      state.seats[id] = { status: 'available' };
    }
  }
  booking.status = status;
};

const release = async (ctx: ObjectContext, bookingId: string, status: 'released' | 'expired') => {
  const state = await load(ctx);
  const booking = state.bookings[bookingId];
  // Only a hold expires; a sold booking is released only by its saga's compensation.
  if (booking && (status === 'released' || booking.status === 'held')) {
    freeSeats(state, bookingId, status);
    ctx.set('state', state);
  }
  return { bookingId, status: booking?.status ?? 'unknown' };
};

/**
 * The seat map of one event. `hold` takes all the requested seats or none, for
 * {@link HOLD_DURATION}: the event sends itself a delayed `expire`, so a hold ends even if
 * the booking saga never comes back. `confirm` turns a live hold into a sale.
 *
 * Fails: seats taken by another booking (409 `sold_out`; every seat of {@link SOLD_OUT_EVENT}
 * is), an unknown seat (400 `unknown_seat`), confirming a hold that ended (409
 * `hold_expired`; end one early with `expire`).
 */
export const TicketSeats = object({
  name: 'TicketSeats',
  handlers: {
    /** Holds seats for a booking. Holding the same booking again answers the same hold. */
    hold: handler(
      { input: z.object({ bookingId: z.string().min(1), seatIds: z.array(z.string().min(1)) }) },
      async (ctx: ObjectContext, req) => {
        const state = await load(ctx);
        const existing = state.bookings[req.bookingId];
        if (existing?.status === 'held') return { bookingId: req.bookingId, ...existing };
        const unknown = req.seatIds.filter((id) => !state.seats[id]);
        if (unknown.length > 0) {
          throw new TerminalError(`event ${ctx.key} has no seat ${unknown.join(', ')}`, {
            code: 'unknown_seat',
            status: 400,
          });
        }
        const taken = req.seatIds.filter((id) => state.seats[id]!.status !== 'available');
        if (taken.length > 0) {
          const left = Object.values(state.seats).filter((s) => s.status === 'available').length;
          throw new TerminalError(
            left === 0
              ? `event ${ctx.key} is sold out`
              : `seats ${taken.join(', ')} of event ${ctx.key} are taken (${left} seats left)`,
            { code: 'sold_out', status: 409 },
          );
        }
        const booking: Booking = {
          seatIds: req.seatIds,
          status: 'held',
          expiresAt: (await ctx.now()) + parseDuration(HOLD_DURATION),
        };
        for (const id of req.seatIds)
          state.seats[id] = { status: 'held', bookingId: req.bookingId };
        state.bookings[req.bookingId] = booking;
        ctx.set('state', state);
        // The inventory owns the deadline: the hold ends even if nobody comes back for it.
        ctx
          .objectSendClient(TicketSeats, ctx.key, { delay: HOLD_DURATION })
          .expire({ bookingId: req.bookingId });
        return { bookingId: req.bookingId, ...booking };
      },
    ),

    /** Sells the held seats. Confirming twice is fine; confirming an ended hold is not. */
    confirm: handler(
      { input: z.object({ bookingId: z.string().min(1) }) },
      async (ctx: ObjectContext, req) => {
        const state = await load(ctx);
        const booking = state.bookings[req.bookingId];
        if (booking?.status === 'sold')
          return { bookingId: req.bookingId, seatIds: booking.seatIds };
        if (booking?.status !== 'held') {
          throw new TerminalError(
            `the hold of booking ${req.bookingId} ended (${booking?.status ?? 'never held'})`,
            { code: 'hold_expired', status: 409 },
          );
        }
        for (const id of booking.seatIds)
          state.seats[id] = { status: 'sold', bookingId: req.bookingId };
        booking.status = 'sold';
        ctx.set('state', state);
        return { bookingId: req.bookingId, seatIds: booking.seatIds };
      },
    ),

    /** Puts a booking's seats back on sale, held or sold (the saga's compensation). Idempotent. */
    release: handler(
      { input: z.object({ bookingId: z.string().min(1) }) },
      async (ctx: ObjectContext, req) => release(ctx, req.bookingId, 'released'),
    ),

    /** Ends a hold that was not confirmed (sent by `hold` after 15 minutes; an admin may call it early). */
    expire: handler(
      { input: z.object({ bookingId: z.string().min(1) }) },
      async (ctx: ObjectContext, req) => release(ctx, req.bookingId, 'expired'),
    ),

    /** Seats per status, and each booking. */
    seats: shared(async (ctx) => {
      const state = await load(ctx);
      const ids = (status: Seat['status']): string[] =>
        SEAT_IDS.filter((id) => state.seats[id]?.status === status);
      return {
        eventId: ctx.key,
        available: ids('available').length,
        held: ids('held'),
        sold: ids('sold'),
        bookings: state.bookings,
      };
    }),
  },
});
