/**
 * Seed 004, exercise 1.1 (multi-service orchestration), one `describe` per bullet of the seed:
 * calls multiple APIs in parallel, aggregates responses, handles partial failures, implements
 * compensation logic, provides fallback responses. The integrations call local fake providers
 * over real HTTP; the last `describe` runs the example as `npm start` does, on its mocks.
 * (The crash mid-way is crash.test.ts.)
 */
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_FORECAST,
  MAGIC,
  type Quote,
  type TripStatus,
} from '../../../examples/multi-service/index.js';
import { until } from '../../helpers.js';
import { useRig } from './support.js';

const rig = useRig();

describe('calls multiple APIs in parallel', () => {
  it('a quote has all four providers in flight at once', async () => {
    const r = await rig();
    const all = [r.fakes.flights, r.fakes.hotels, r.fakes.cars, r.fakes.weather];
    for (const f of all) f.hold();
    const quote = r.post<Quote>('/TripPlanner/quote', { destination: 'Lisbon' });
    // Every provider has its request while none has answered: they run concurrently.
    await until(() => all.every((f) => f.seen.length === 1), 'four requests in flight');
    for (const f of all) f.release();
    expect((await quote).json.partial).toBe(false);
  });

  it('a booking has the three providers in flight at once, each with its own idempotency key', async () => {
    const r = await rig();
    const all = [r.fakes.flights, r.fakes.hotels, r.fakes.cars];
    for (const f of all) f.hold();
    const booking = r.post<TripStatus>('/TripBooking/t-par/run', {
      flightId: 'F1',
      hotelId: 'H1',
      carId: 'C1',
    });
    await until(() => all.every((f) => f.seen.length === 1), 'three bookings in flight');
    const keys = all.map((f) => f.bookingKeys()[0]);
    expect(new Set(keys).size).toBe(3);
    for (const f of all) f.release();
    expect((await booking).json.status).toBe('booked');
  });
});

describe('aggregates responses', () => {
  it('picks the cheapest offer of each provider and totals the trip', async () => {
    const r = await rig();
    const { status, json } = await r.post<Quote>('/TripPlanner/quote', {
      destination: 'Lisbon',
      nights: 3,
    });
    expect(status).toBe(200);
    expect(json).toMatchObject({
      destination: 'Lisbon',
      nights: 3,
      flight: { status: 'ok', source: 'provider', value: { id: 'flights-Lisbon-1', price: 100 } },
      hotel: { status: 'ok', source: 'provider', value: { id: 'hotels-Lisbon-1', price: 100 } },
      car: { status: 'ok', source: 'provider', value: { id: 'cars-Lisbon-1', price: 100 } },
      weather: { status: 'ok', source: 'provider', value: { city: 'Lisbon', summary: 'sunny' } },
      total: 100 + 100 * 3 + 100 * 3,
      partial: false,
      unavailable: [],
      fallbacks: [],
    });
  });

  it('refuses a malformed request with 400 invalid_trip', async () => {
    const r = await rig();
    for (const body of [{}, { destination: '' }, { destination: 'X', nights: 0 }, 'Lisbon']) {
      expect((await r.post('/TripPlanner/quote', body)).json.code).toBe('invalid_trip');
    }
    expect((await r.post('/TripBooking/t-bad/run', { flightId: 'F1' })).json).toMatchObject({
      code: 'invalid_trip',
    });
  });
});

describe('handles partial failures', () => {
  it('a provider that is down leaves a partial quote, clearly marked', async () => {
    const r = await rig();
    r.fakes.cars.down = true;
    const { status, json } = await r.post<Quote>('/TripPlanner/quote', {
      destination: 'Porto',
      nights: 2,
    });
    expect(status).toBe(200);
    expect(json.car).toMatchObject({ status: 'unavailable', code: 'integration_unavailable' });
    expect(json).toMatchObject({ partial: true, unavailable: ['car'], total: 100 + 100 * 2 });
    expect(json.flight.status).toBe('ok');
    // The call was retried (3 attempts) before it was reported unavailable.
    expect(r.fakes.cars.count('GET', '/cars')).toBe(3);
  });

  it('an optional leg that fails leaves the trip booked without it', async () => {
    const r = await rig();
    r.fakes.cars.down = true;
    const { json } = await r.post<TripStatus>('/TripBooking/t-partial/run', {
      flightId: 'F1',
      hotelId: 'H1',
      carId: 'C1',
    });
    expect(json).toMatchObject({
      status: 'booked',
      partial: true,
      legs: {
        flights: { status: 'confirmed' },
        hotels: { status: 'confirmed' },
        cars: { status: 'failed', code: 'integration_unavailable' },
      },
      compensated: [],
    });
    expect(r.fakes.flights.cancelled).toEqual([]);
  });
});

describe('implements compensation logic', () => {
  it('a required leg refused: the legs already booked are cancelled, last first', async () => {
    const r = await rig();
    r.fakes.hotels.reject.add('H-FULL');
    const { json } = await r.post<TripStatus>('/TripBooking/t-comp/run', {
      flightId: 'F1',
      hotelId: 'H-FULL',
      carId: 'C1',
    });
    expect(json).toMatchObject({
      status: 'cancelled',
      legs: {
        flights: { status: 'cancelled', bookingId: 'flights-B1' },
        hotels: { status: 'failed', code: 'integration_rejected' },
        cars: { status: 'cancelled', bookingId: 'cars-B1' },
      },
      compensated: ['cars', 'flights'],
    });
    expect(json.reason).toContain('hotels could not be booked (integration_rejected)');
    expect(r.fakes.flights.cancelled).toEqual(['flights-B1']);
    expect(r.fakes.cars.cancelled).toEqual(['cars-B1']);
    // The status handler shows the same outcome.
    expect((await r.post('/TripBooking/t-comp/status')).json.status).toBe('cancelled');
  });

  it('a cancel that fails is retried durably until the provider takes it', async () => {
    const r = await rig();
    r.fakes.hotels.reject.add('H-FULL');
    r.fakes.flights.hold();
    const run = r.post<TripStatus>('/TripBooking/t-retry/run', {
      flightId: 'F1',
      hotelId: 'H-FULL',
    });
    await until(() => r.fakes.flights.seen.length === 1, 'flight booking in flight');
    // The flight is booked; then its provider goes down before the cancel arrives.
    r.fakes.flights.release();
    await until(() => r.fakes.flights.bookings.size === 1, 'flight booked');
    r.fakes.flights.down = true;
    await until(() => r.fakes.flights.count('DELETE', '/bookings') >= 3, 'a cancel attempted');
    r.fakes.flights.down = false;
    const { json } = await run;
    expect(json).toMatchObject({ status: 'cancelled', compensated: ['flights'] });
    expect(json.legs.flights).toMatchObject({ status: 'cancelled' });
    expect(r.fakes.flights.cancelled).toEqual(['flights-B1']);
  });
});

describe('provides fallback responses', () => {
  it('the weather API down: the declared default forecast, marked as a fallback', async () => {
    const r = await rig();
    r.fakes.weather.down = true;
    const { json } = await r.post<Quote>('/TripPlanner/quote', { destination: 'Rome' });
    expect(json.weather).toEqual({
      status: 'ok',
      source: 'fallback-default',
      value: { ...DEFAULT_FORECAST, city: 'Rome' },
    });
    expect(json).toMatchObject({ partial: false, fallbacks: ['weather'] });
  });

  it('hotels down: the last good search for that destination, from the cache', async () => {
    const r = await rig();
    const first = (await r.post<Quote>('/TripPlanner/quote', { destination: 'Oslo' })).json;
    expect(first.hotel).toMatchObject({ status: 'ok', source: 'provider' });
    r.fakes.hotels.down = true;
    await r.h.clock.advance('11m'); // past the 10-minute cache TTL: the API is asked, and fails
    const second = (await r.post<Quote>('/TripPlanner/quote', { destination: 'Oslo' })).json;
    expect(second.hotel).toEqual({
      status: 'ok',
      source: 'fallback-cache',
      value: (first.hotel as { value: unknown }).value,
    });
    expect(second).toMatchObject({ partial: false, fallbacks: ['hotel'] });
    // A destination never searched has nothing cached: that section is unavailable.
    const third = (await r.post<Quote>('/TripPlanner/quote', { destination: 'Bergen' })).json;
    expect(third).toMatchObject({ partial: true, unavailable: ['hotel'] });
  });
});

describe('the example on its mocks (npm start without keys)', () => {
  it('answers the README requests: quote, partial quote with fallback, booking, compensation', async () => {
    const r = await rig({ mocks: true });
    const quote = (await r.post<Quote>('/TripPlanner/quote', { destination: 'Lisbon', nights: 3 }))
      .json;
    expect(quote).toMatchObject({
      partial: false,
      flight: { source: 'mock', value: { id: 'FL-LIS-1' } },
    });
    const atlantis = (
      await r.post<Quote>('/TripPlanner/quote', { destination: MAGIC.hotelsDownFor })
    ).json;
    expect(atlantis).toMatchObject({
      partial: true,
      unavailable: ['hotel'],
      fallbacks: ['weather'],
    });
    const booked = (
      await r.post<TripStatus>('/TripBooking/trip-1/run', {
        flightId: 'FL-LIS-1',
        hotelId: 'HT-LIS-1',
        carId: 'CR-LIS-1',
      })
    ).json;
    expect(booked).toMatchObject({ status: 'booked', partial: false });
    const noCar = (
      await r.post<TripStatus>('/TripBooking/trip-2/run', {
        flightId: 'FL-LIS-1',
        hotelId: 'HT-LIS-1',
        carId: MAGIC.carDown,
      })
    ).json;
    expect(noCar).toMatchObject({ status: 'booked', partial: true });
    const soldOut = (
      await r.post<TripStatus>('/TripBooking/trip-3/run', {
        flightId: 'FL-LIS-1',
        hotelId: MAGIC.soldOutHotel,
        carId: 'CR-LIS-1',
      })
    ).json;
    expect(soldOut).toMatchObject({ status: 'cancelled', compensated: ['cars', 'flights'] });
  });
});
