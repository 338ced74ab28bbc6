/**
 * Event sourcing (`keel/eventsourcing`): aggregates whose state is the fold of append-only
 * events, stored one value per event in the Store's key-value space, with snapshots, replay to
 * any point and projections applied exactly once. See docs/eventsourcing.md.
 *
 * @example
 * ```ts
 * import { eventSourced, eventSourcing } from 'keel/eventsourcing';
 * const Account = eventSourced({ name: 'Account', initial: { balance: 0 }, apply, commands });
 * const app = await startApp({ services: Account.definitions, extensions: [eventSourcing()] });
 * ```
 */
export { eventSourced } from './aggregate.js';
export type {
  Aggregate,
  AggregateConfig,
  AggregateHandlers,
  EventsQuery,
  StateAtQuery,
} from './aggregate.js';
export { eventSourcing } from './extension.js';
export { EventSourcingError } from './errors.js';
export type { EventSourcingErrorCode } from './errors.js';
export type { DeliveryReport, ProjectionView, RebuildReport } from './projector.js';
export type {
  CommandMeta,
  CommandResult,
  Decide,
  EventPage,
  NewEvent,
  ProjectionConfig,
  StateView,
  StoredEvent,
} from './types.js';
