/**
 * Seed 004, exercise 1.1: multi-service orchestration. What the app must serve: the
 * `definitions` (`TripPlanner` for quotes, `TripBooking` for bookings) and the `integrations`
 * they call (four travel providers, on their mocks until their keys are set). See README.md.
 */
import type { Definition } from '../../src/index.js';
import type { Integration } from '../../src/integrations/index.js';
import { TripBooking } from './booking.js';
import { travel, TripPlanner } from './planner.js';

export { TripBooking, type Leg, type TripRequest, type TripStatus } from './booking.js';
export { TripPlanner, travel, type Quote, type QuoteRequest, type Section } from './planner.js';
export {
  DEFAULT_FORECAST,
  MAGIC,
  declarations,
  providerMock,
  travelIntegrations,
  weatherMock,
  type Booking,
  type Forecast,
  type Kind,
  type Offer,
} from './providers.js';

/** Every definition of the example. */
export const definitions: Definition[] = [TripPlanner, TripBooking];

/** The integrations the handlers call with `use(ctx, ...)`. */
export const integrations: Integration[] = Object.values(travel);
