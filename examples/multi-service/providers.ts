/**
 * The four travel providers of the multi-service example, declared as integrations: flights,
 * hotels and car rental (search, book, cancel) and a weather forecast. Each reads its base URL
 * and API key from the environment and answers from its in-process mock until both are set
 * (`KEEL_MOCK=1` forces the mocks, `KEEL_MOCK=0` the real APIs).
 *
 * Fallbacks, from the declarations: a hotel search that cannot be made answers the last good
 * (cached) result for that destination (`fallback: 'cache'`); a forecast answers a fixed
 * default (`fallback: { default }`).
 */
import { createHash } from 'node:crypto';
import { bearer, env, integration } from '../../src/integrations/index.js';
import type { MockHandler, MockRequest } from '../../src/integrations/mocks.js';

/** An offer from a search. */
export interface Offer {
  id: string;
  provider: string;
  /** In whole currency units: per trip (flights), per night (hotels), per day (cars). */
  price: number;
  description: string;
}

/** A booking a provider confirmed. */
export interface Booking {
  bookingId: string;
  offerId: string;
  status: 'confirmed' | 'cancelled';
}

/** A forecast. */
export interface Forecast {
  city: string;
  summary: string;
  /** `provider` from the API, `default` from the declared fallback. */
  source: 'provider' | 'default';
}

/** The forecast the declared fallback answers when the weather API cannot be reached. */
export const DEFAULT_FORECAST: Forecast = {
  city: '',
  summary: 'forecast unavailable',
  source: 'default',
};

/** The kinds of bookable provider. */
export type Kind = 'flights' | 'hotels' | 'cars';

/** Retries inside the call: 3 attempts, 100 ms then 200 ms apart (short, so a provider that is down is reported quickly). */
const RETRY = { maxAttempts: 3, initialInterval: '100ms', factor: 2 } as const;

const bookable = (kind: Kind, name: string, search: { cache?: '10m'; fallback?: 'cache' } = {}) =>
  ({
    name,
    baseUrl: env(`TRAVEL_${kind.toUpperCase()}_URL`),
    auth: bearer(env(`TRAVEL_${kind.toUpperCase()}_KEY`)),
    timeout: '5s',
    retry: RETRY,
    idempotency: true,
    operations: {
      search: {
        method: 'GET',
        path: `/${kind}`,
        query: { destination: '{destination}' },
        ...search,
      },
      book: { method: 'POST', path: '/bookings' },
      cancel: { method: 'DELETE', path: '/bookings/{bookingId}' },
    },
  }) as const;

/** Magic values of the mocks, so every outcome can be shown with curl. */
export const MAGIC = {
  /** Hotels are down for this destination: a quote is partial (or served from the cache). */
  hotelsDownFor: 'Atlantis',
  /** The weather API is down for this destination: the forecast is the declared default. */
  weatherDownFor: 'Atlantis',
  /** This hotel offer cannot be booked (409): the flight and car bookings are cancelled. */
  soldOutHotel: 'HT-SOLDOUT',
  /** This car offer hits a car provider that is down: the trip is booked without a car. */
  carDown: 'CR-DOWN',
} as const;

const digest = (s: string) => createHash('sha256').update(s).digest('hex').slice(0, 8);

/** A deterministic mock of a bookable provider (same request, same answer). */
export function providerMock(kind: Kind): MockHandler {
  const prefix = { flights: 'FL', hotels: 'HT', cars: 'CR' }[kind];
  return (req: MockRequest) => {
    if (req.operation === 'search') {
      const destination = req.query.destination ?? '';
      if (kind === 'hotels' && destination === MAGIC.hotelsDownFor) {
        return { status: 503, body: { error: 'hotels unavailable' } };
      }
      const base = { flights: 300, hotels: 90, cars: 40 }[kind] + (destination.length % 7) * 10;
      return {
        body: [0, 1].map((i) => ({
          id: `${prefix}-${destination.toUpperCase().slice(0, 3)}-${i + 1}`,
          provider: `mock-${kind}`,
          price: base + i * 35,
          description: `${kind} offer ${i + 1} for ${destination}`,
        })),
      };
    }
    if (req.operation === 'book') {
      const raw = (req.body as { offerId?: unknown } | undefined)?.offerId;
      const offerId = typeof raw === 'string' ? raw : '';
      if (offerId === MAGIC.soldOutHotel) return { status: 409, body: { error: 'sold_out' } };
      if (offerId === MAGIC.carDown) return { status: 503, body: { error: 'cars unavailable' } };
      const key = req.headers['idempotency-key'] ?? offerId;
      return {
        status: 201,
        body: { bookingId: `${prefix}B-${digest(key)}`, offerId, status: 'confirmed' },
      };
    }
    // cancel
    return { body: { bookingId: req.path.split('/').pop(), status: 'cancelled' } };
  };
}

/** A deterministic weather mock. */
export const weatherMock: MockHandler = (req) => {
  const city = decodeURIComponent(req.path.split('/').pop() ?? '');
  if (city === MAGIC.weatherDownFor) return { status: 503, body: { error: 'weather unavailable' } };
  const summaries = ['sunny', 'cloudy', 'light rain', 'windy'];
  return { body: { city, summary: summaries[city.length % summaries.length], source: 'provider' } };
};

/** The declarations, without mocks (tests point them at local fake servers). */
export const declarations = {
  flights: bookable('flights', 'TravelFlights'),
  // A search that cannot be made answers the last good result for that destination.
  hotels: bookable('hotels', 'TravelHotels', { cache: '10m', fallback: 'cache' }),
  cars: bookable('cars', 'TravelCars'),
  weather: {
    name: 'TravelWeather',
    baseUrl: env('TRAVEL_WEATHER_URL'),
    auth: bearer(env('TRAVEL_WEATHER_KEY')),
    timeout: '5s',
    retry: RETRY,
    fallback: { default: DEFAULT_FORECAST },
    operations: { forecast: { method: 'GET', path: '/forecast/{city}' } },
  },
} as const;

/** The integrations as the example app uses them: each with its mock. */
export function travelIntegrations(options: { mocks?: boolean } = {}) {
  const withMock = options.mocks ?? true;
  return {
    flights: integration({
      ...declarations.flights,
      ...(withMock ? { mock: providerMock('flights') } : {}),
    }),
    hotels: integration({
      ...declarations.hotels,
      ...(withMock ? { mock: providerMock('hotels') } : {}),
    }),
    cars: integration({
      ...declarations.cars,
      ...(withMock ? { mock: providerMock('cars') } : {}),
    }),
    weather: integration({ ...declarations.weather, ...(withMock ? { mock: weatherMock } : {}) }),
  };
}

/** The integrations of {@link travelIntegrations}. */
export type TravelIntegrations = ReturnType<typeof travelIntegrations>;
