/**
 * Seed 004, exercise 1.1, a crash mid-way: the app runs in a child process and is killed with
 * SIGKILL while a trip's hotel booking is in flight, after the flight and the car bookings were
 * confirmed and journaled. Restarted on the same SQLite file, the booking resumes: the flight
 * and the car are not requested again, the hotel request is sent again with the same
 * Idempotency-Key, and the trip ends booked. A second trip killed in the same place, whose hotel
 * then refuses, is compensated: each confirmed leg cancelled exactly once.
 */
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { TripStatus } from '../../../examples/multi-service/index.js';
import { killHard, spawnApp, tempDir } from '../../helpers.js';
import { startFakes } from './fakes.js';

const tmp = tempDir('keel-multi-crash-');
const children: ChildProcess[] = [];
let fakes: Awaited<ReturnType<typeof startFakes>>;
beforeAll(async () => {
  fakes = await startFakes();
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await fakes.close();
  tmp.cleanup();
});

async function start() {
  const { child, url } = await spawnApp(
    join(import.meta.dirname, 'fixtures/app.ts'),
    { KEEL_DB: join(tmp.dir, 'keel.db'), ...fakes.env },
    children,
  );
  const [ingress, admin] = url.split('|') as [string, string];
  return { child, ingress, admin };
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function poll(what: string, cond: () => Promise<boolean> | boolean, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await pause(25);
  }
}

const json = async (res: Response) => (await res.json()) as any;
const post = (url: string, body?: unknown) =>
  fetch(url, {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

/** Waits until the trip's journal holds the flight and car bookings as done steps. */
async function untilJournaled(admin: string, trip: string): Promise<void> {
  await poll(`flight and car of ${trip} journaled`, async () => {
    const list = await json(await fetch(`${admin}/invocations?service=TripBooking&key=${trip}`));
    const id = list.invocations?.[0]?.id;
    if (!id) return false;
    const { entries } = await json(await fetch(`${admin}/invocations/${id}/journal`));
    const done = (name: string) => entries.some((e: any) => e.name === name && e.done);
    return done('TravelFlights.book') && done('TravelCars.book');
  });
}

it('a booking killed mid-way resumes without repeating completed calls', async () => {
  fakes.hotels.hold();
  let app = await start();
  const trip = { flightId: 'F1', hotelId: 'H1', carId: 'C1' };
  post(`${app.ingress}/TripBooking/crash-1/run`, trip).catch(() => undefined);
  await poll('hotel request in flight', () => fakes.hotels.seen.length === 1);
  await untilJournaled(app.admin, 'crash-1');
  await killHard(app.child);
  fakes.hotels.release();

  app = await start();
  // Attach to the same workflow run (the key's `run` executes once): its result.
  const result = (await json(
    await post(`${app.ingress}/TripBooking/crash-1/run`, trip),
  )) as TripStatus;
  expect(result).toMatchObject({ status: 'booked', partial: false });
  expect(fakes.flights.count('POST', '/bookings')).toBe(1);
  expect(fakes.cars.count('POST', '/bookings')).toBe(1);
  // The hotel request in flight at the crash was sent again, with the same key: one booking.
  const hotelKeys = fakes.hotels.bookingKeys();
  expect(hotelKeys.length).toBe(2);
  expect(new Set(hotelKeys).size).toBe(1);
  expect(fakes.hotels.bookings.size).toBe(1);

  // The same crash, then the hotel refuses: the confirmed legs are cancelled once each.
  fakes.hotels.hold();
  fakes.hotels.reject.add('H-FULL');
  post(`${app.ingress}/TripBooking/crash-2/run`, { ...trip, hotelId: 'H-FULL' }).catch(
    () => undefined,
  );
  await poll('hotel request in flight', () => fakes.hotels.seen.length === 3);
  await untilJournaled(app.admin, 'crash-2');
  await killHard(app.child);
  fakes.hotels.release();
  app = await start();
  const failed = (await json(
    await post(`${app.ingress}/TripBooking/crash-2/run`, { ...trip, hotelId: 'H-FULL' }),
  )) as TripStatus;
  expect(failed).toMatchObject({ status: 'cancelled', compensated: ['cars', 'flights'] });
  expect(fakes.flights.count('POST', '/bookings')).toBe(2);
  expect(fakes.cars.count('POST', '/bookings')).toBe(2);
  expect(fakes.flights.cancelled).toEqual(['flights-B2']);
  expect(fakes.cars.cancelled).toEqual(['cars-B2']);
  expect(fakes.flights.count('DELETE', '/bookings')).toBe(1);
  await killHard(app.child);
}, 120_000);
