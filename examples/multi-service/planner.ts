/**
 * Seed 004, exercise 1.1, the read side: `TripPlanner.quote` asks the flight, hotel, car and
 * weather providers at the same time (four journaled calls started together and awaited with
 * `ctx.allSettled`), and aggregates their answers into one quote. A provider that is down does
 * not fail the quote: its section says `unavailable` with the reason and the quote is marked
 * `partial`; a section answered by a declared fallback (the cached hotel list, the default
 * forecast) says so (`source: 'fallback-cache'` / `'fallback-default'`).
 */
import { service, TerminalError, type Context } from '../../src/index.js';
import {
  IntegrationCallError,
  use,
  type IntegrationResponse,
} from '../../src/integrations/index.js';
import { travelIntegrations, type Forecast, type Offer } from './providers.js';

/** The integrations the handlers call (mocks until their keys are set). */
export const travel = travelIntegrations();

/** Where a section of the quote came from. */
export type SectionSource = 'provider' | 'mock' | 'cache' | 'fallback-cache' | 'fallback-default';

/** One provider's part of a quote. */
export type Section<T> =
  | { status: 'ok'; source: SectionSource; value: T }
  | { status: 'unavailable'; code: string; message: string };

/** What `quote` answers. */
export interface Quote {
  destination: string;
  nights: number;
  flight: Section<Offer>;
  hotel: Section<Offer>;
  car: Section<Offer>;
  weather: Section<Forecast>;
  /** Flight + hotel × nights + car × nights, over the sections that answered. */
  total: number;
  /** True when a section is unavailable: `total` leaves it out. */
  partial: boolean;
  /** The sections that are unavailable. */
  unavailable: string[];
  /** The sections answered by a declared fallback instead of the provider. */
  fallbacks: string[];
}

/** The quote request. */
export interface QuoteRequest {
  destination: string;
  /** Default 3. */
  nights?: number;
}

function checkQuote(req: QuoteRequest): { destination: string; nights: number } {
  const nights = req?.nights ?? 3;
  if (
    typeof req?.destination !== 'string' ||
    req.destination.trim() === '' ||
    !Number.isInteger(nights) ||
    nights < 1 ||
    nights > 60
  ) {
    throw new TerminalError('quote takes {"destination": "Lisbon", "nights"?: 1..60}', {
      code: 'invalid_trip',
      status: 400,
    });
  }
  return { destination: req.destination.trim(), nights };
}

const sourceOf = (r: IntegrationResponse<unknown>): SectionSource =>
  r.source === 'network' ? 'provider' : r.source;

function section<T>(
  settled:
    | { status: 'fulfilled'; value: IntegrationResponse<unknown> }
    | { status: 'rejected'; reason: unknown },
  pick: (data: unknown) => T | undefined,
): Section<T> {
  if (settled.status === 'rejected') {
    const err = settled.reason;
    return err instanceof IntegrationCallError
      ? { status: 'unavailable', code: err.code, message: err.message }
      : { status: 'unavailable', code: 'failed', message: String((err as Error)?.message ?? err) };
  }
  const value = pick(settled.value.data);
  return value === undefined
    ? { status: 'unavailable', code: 'no_offer', message: 'the provider had no offer' }
    : { status: 'ok', source: sourceOf(settled.value), value };
}

const cheapest = (data: unknown): Offer | undefined =>
  Array.isArray(data) ? [...(data as Offer[])].sort((a, b) => a.price - b.price)[0] : undefined;

/**
 * Quotes a trip from four providers at once.
 *
 * @example
 * ```sh
 * curl -X POST localhost:9080/TripPlanner/quote -H 'Content-Type: application/json' -d '{"destination":"Lisbon","nights":3}'
 * ```
 */
export const TripPlanner = service({
  name: 'TripPlanner',
  handlers: {
    quote: async (ctx: Context, req: QuoteRequest): Promise<Quote> => {
      const { destination, nights } = checkQuote(req);
      // Started together: the four requests are in flight at the same time.
      const [flights, hotels, cars, weather] = await ctx.allSettled([
        use(ctx, travel.flights).search.withResponse({ destination }),
        use(ctx, travel.hotels).search.withResponse({ destination }),
        use(ctx, travel.cars).search.withResponse({ destination }),
        use(ctx, travel.weather).forecast.withResponse({ city: destination }),
      ]);
      const quote = {
        destination,
        nights,
        flight: section(flights, cheapest),
        hotel: section(hotels, cheapest),
        car: section(cars, cheapest),
        weather: section(weather, (d) => {
          const f = d as Forecast;
          return { ...f, city: f.city || destination };
        }),
      };
      const price = (s: Section<Offer>, times: number) =>
        s.status === 'ok' ? s.value.price * times : 0;
      const sections = Object.entries({
        flight: quote.flight,
        hotel: quote.hotel,
        car: quote.car,
        weather: quote.weather,
      });
      const unavailable = sections.filter(([, s]) => s.status === 'unavailable').map(([n]) => n);
      return {
        ...quote,
        total: price(quote.flight, 1) + price(quote.hotel, nights) + price(quote.car, nights),
        partial: unavailable.length > 0,
        unavailable,
        fallbacks: sections
          .filter(([, s]) => s.status === 'ok' && s.source.startsWith('fallback'))
          .map(([n]) => n),
      };
    },
  },
});
