/**
 * The errors of event-sourced aggregates. Each says what was wrong and what to do; the codes
 * are stable strings (see docs/eventsourcing.md).
 */
import { registerErrorClass, TerminalError } from '../core/errors.js';

/** The codes an {@link EventSourcingError} is raised with. */
export type EventSourcingErrorCode =
  /** 409: the command named an `expectedVersion` other than the aggregate's version. */
  | 'version_conflict'
  /** 500: a command returned something that is not an event (`{ type, data }`). */
  | 'invalid_event'
  /** 400: a replay query (`stateAt`, `events`, a projection's `view`) was malformed. */
  | 'invalid_event_query'
  /** 500: a handler ran on an engine without the `eventSourcing()` extension. */
  | 'eventsourcing_not_installed'
  /** 500: `eventSourced(...)` was given a configuration it cannot use. */
  | 'invalid_aggregate';

const STATUS: Record<EventSourcingErrorCode, number> = {
  version_conflict: 409,
  invalid_event: 500,
  invalid_event_query: 400,
  eventsourcing_not_installed: 500,
  invalid_aggregate: 500,
};

/**
 * An event-sourcing error: a terminal error (never retried) with a string `code` and its HTTP
 * status. After a replay or across a call it comes back as this class (registered codes).
 *
 * @example
 * ```ts
 * try {
 *   await engine.client(Account, 'acc-1').withdraw({ amount: 5, expectedVersion: 3 });
 * } catch (err) {
 *   if (err instanceof EventSourcingError && err.code === 'version_conflict') reloadAndRetry();
 * }
 * ```
 */
export class EventSourcingError extends TerminalError {
  declare readonly code: EventSourcingErrorCode;
  constructor(code: EventSourcingErrorCode, message: string) {
    super(message, { code, status: STATUS[code] });
  }
}

registerErrorClass(EventSourcingError, Object.keys(STATUS));
