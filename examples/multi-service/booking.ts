/**
 * Seed 004, exercise 1.1, the write side: `TripBooking` (a workflow, one per trip id) books the
 * flight, the hotel and the car at the same time (three journaled calls, each with its own
 * Idempotency-Key). The car is optional: a car provider that is down leaves the trip booked
 * without one (`partial`). The flight and the hotel are required: when either fails, the
 * bookings that did succeed are cancelled (compensation), in reverse order, each cancel a
 * journaled call retried durably until the provider takes it. A crash anywhere resumes from the
 * journal: a booking already confirmed is never requested again.
 */
import {
  TerminalError,
  workflow,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '../../src/index.js';
import { IntegrationCallError, use } from '../../src/integrations/index.js';
import { travel } from './planner.js';
import type { Booking, Kind } from './providers.js';

/** The booking request: the offers picked from a quote. */
export interface TripRequest {
  flightId: string;
  hotelId: string;
  /** Optional: no car is booked without it. */
  carId?: string;
}

/** One provider's part of the trip. */
export type Leg =
  | { status: 'confirmed'; bookingId: string; offerId: string }
  | { status: 'failed'; code: string; message: string }
  | { status: 'cancelled'; bookingId: string; offerId: string }
  | { status: 'cancel_failed'; bookingId: string; offerId: string; message: string };

/** What `run` answers and `status` shows. */
export interface TripStatus {
  trip: string;
  status: 'booking' | 'booked' | 'compensating' | 'cancelled';
  /** Booked, but an optional leg (the car) is missing. */
  partial: boolean;
  legs: Partial<Record<Kind, Leg>>;
  /** The legs that were booked and then cancelled because the trip failed, in cancel order. */
  compensated: Kind[];
  /** Why the trip was cancelled. */
  reason?: string;
}

const REQUIRED: readonly Kind[] = ['flights', 'hotels'];

/** Attempts of each cancel (a journaled call each, 30 s apart) before it is left for an operator. */
const CANCEL_ATTEMPTS = 5;

function checkTrip(req: TripRequest): TripRequest {
  const ok = (v: unknown) => typeof v === 'string' && v !== '';
  if (!ok(req?.flightId) || !ok(req?.hotelId) || (req.carId !== undefined && !ok(req.carId))) {
    throw new TerminalError(
      'run takes {"flightId": "FL-...", "hotelId": "HT-...", "carId"?: "CR-..."}',
      {
        code: 'invalid_trip',
        status: 400,
      },
    );
  }
  return req;
}

const failure = (err: unknown) =>
  err instanceof IntegrationCallError
    ? { code: err.code, message: err.message }
    : { code: 'failed', message: String((err as Error)?.message ?? err) };

/** Cancels one booking; a 404 means it is gone already. Durable retries with a sleep between. */
async function cancel(
  ctx: WorkflowContext,
  kind: Kind,
  leg: { bookingId: string; offerId: string },
): Promise<Leg> {
  for (let attempt = 1; ; attempt++) {
    try {
      await use(ctx, travel[kind]).cancel({ bookingId: leg.bookingId });
      return { ...leg, status: 'cancelled' };
    } catch (err) {
      if (err instanceof IntegrationCallError && err.failure.status === 404)
        return { ...leg, status: 'cancelled' };
      if (attempt >= CANCEL_ATTEMPTS)
        return { ...leg, status: 'cancel_failed', message: failure(err).message };
      await ctx.sleep('30s');
    }
  }
}

/**
 * Books a trip across three providers, all or nothing for the flight and the hotel.
 *
 * @example
 * ```sh
 * curl -X POST localhost:9080/TripBooking/trip-1/run -H 'Content-Type: application/json' -d '{"flightId":"FL-LIS-1","hotelId":"HT-LIS-1","carId":"CR-LIS-1"}'
 * ```
 */
export const TripBooking = workflow({
  name: 'TripBooking',
  run: async (ctx: WorkflowContext, input: TripRequest): Promise<TripStatus> => {
    const req = checkTrip(input);
    const status: TripStatus = {
      trip: ctx.key,
      status: 'booking',
      partial: false,
      legs: {},
      compensated: [],
    };
    ctx.set('status', status);
    const offers: Array<[Kind, string]> = [
      ['flights', req.flightId],
      ['hotels', req.hotelId],
      ...(req.carId ? [['cars', req.carId] as [Kind, string]] : []),
    ];
    // Started together: the three requests are in flight at the same time.
    const settled = await ctx.allSettled(
      offers.map(([kind, offerId]) =>
        use(ctx, travel[kind]).book<Booking>({ offerId, trip: ctx.key }),
      ),
    );
    settled.forEach((s, i) => {
      const [kind, offerId] = offers[i]!;
      status.legs[kind] =
        s.status === 'fulfilled'
          ? { status: 'confirmed', bookingId: s.value.bookingId, offerId }
          : { status: 'failed', ...failure(s.reason) };
    });
    const missing = REQUIRED.filter((k) => status.legs[k]?.status !== 'confirmed');
    if (missing.length === 0) {
      status.status = 'booked';
      status.partial = offers.some(([k]) => status.legs[k]?.status !== 'confirmed');
      ctx.set('status', status);
      return status;
    }
    // A required leg failed: undo the legs that succeeded, last booked first.
    const failed = status.legs[missing[0]!] as { code: string; message: string };
    status.status = 'compensating';
    status.reason = `${missing.join(' and ')} could not be booked (${failed.code}): ${failed.message}`;
    ctx.set('status', status);
    for (const [kind] of [...offers].reverse()) {
      const leg = status.legs[kind];
      if (leg?.status !== 'confirmed') continue;
      status.legs[kind] = await cancel(ctx, kind, leg);
      status.compensated.push(kind);
      ctx.set('status', status);
    }
    status.status = 'cancelled';
    ctx.set('status', status);
    return status;
  },
  handlers: {
    /** Where the booking stands (null before `run` started). */
    status: async (ctx: WorkflowSharedContext): Promise<TripStatus | null> =>
      (await ctx.get<TripStatus>('status')) ?? null,
  },
});
