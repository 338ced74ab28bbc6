/**
 * The circuit breaker of one integration, shared by every process through the Store: the pure
 * state machine of `policies/breaker.ts` advanced in a {@link SharedCell}. A transition is written by
 * exactly one process (the one whose compare-and-set won), which is also the one that reports its
 * event, so an `IntegrationCircuitOpened` is published once per opening, not once per process.
 */
import {
  acquireBreaker,
  breakerFailureCount,
  breakerStatus,
  initialBreakerState,
  parseBreakerState,
  recordBreakerFailure,
  recordBreakerSuccess,
  resetBreaker,
  successCloses,
  type BreakerDecision,
  type BreakerEvent,
  type BreakerOptions,
  type BreakerState,
  type BreakerStatus,
  type BreakerTicket,
} from '../policies/breaker.js';
import { SharedCell, type KvStore } from './shared-cell.js';

/** The Store scope breaker states live in (key: the integration's name). */
export const BREAKER_SCOPE = 'keel.integrations.breaker';

/**
 * A store-backed breaker.
 *
 * @example
 * ```ts
 * const breaker = new SharedBreaker(store, 'GitHubAPI', options, { maxAgeMs: 1000, now: clock.now, onEvents });
 * const d = await breaker.acquire();
 * if (d.allowed) await breaker.record(d.ticket, ok);
 * ```
 */
export class SharedBreaker {
  private readonly cell: SharedCell<BreakerState>;
  /** The decision for the last closed state seen: the same for every call admitted under it. */
  private closed: { state: BreakerState; decision: BreakerDecision } | undefined;

  constructor(
    store: KvStore | undefined,
    readonly integration: string,
    readonly options: BreakerOptions,
    private readonly env: {
      maxAgeMs: number;
      now: () => number;
      onEvents: (events: BreakerEvent[]) => void;
      /** The Store scope of the state (key: `integration`). Default {@link BREAKER_SCOPE}. */
      scope?: string;
    },
  ) {
    this.cell = new SharedCell(
      store,
      env.scope ?? BREAKER_SCOPE,
      integration,
      parseBreakerState,
      initialBreakerState,
      env.maxAgeMs,
      env.now,
    );
  }

  /**
   * May a call go out now? Admits the half-open probe in exactly one process. Answers
   * synchronously when nothing needs reading or writing (a closed circuit, a young cache).
   * `now` defaults to the clock's.
   */
  acquire(now: number = this.env.now()): BreakerDecision | Promise<BreakerDecision> {
    const s = this.cell.current(now);
    if (s !== undefined) {
      // The hot path: a closed circuit admits every call with the same (immutable) decision.
      if (s === this.closed?.state) return this.closed.decision;
      const d = acquireBreaker(s, now, this.options);
      if (d.state === s) {
        if (s.status === 'closed') this.closed = { state: s, decision: freezeDecision(d) };
        this.publish(d.events);
        return d;
      }
    }
    const d = this.cell.updateSoon((s) => {
      const decision = acquireBreaker(s, now, this.options);
      return { value: decision.state, result: decision };
    });
    if (d instanceof Promise) {
      return d.then((x) => {
        this.publish(x.events);
        return x;
      });
    }
    this.publish(d.events);
    return d;
  }

  /**
   * Reports a call's outcome: `failure` when the classifier counts it against the dependency.
   * Synchronous (undefined) when it changes nothing, as a success in a closed circuit.
   */
  record(
    ticket: BreakerTicket,
    failure: boolean,
    now: number = this.env.now(),
  ): Promise<void> | undefined {
    // Only the probe's success changes anything, whatever the state is now: no read needed.
    if (!failure && !ticket.probe) return undefined;
    const s = this.cell.current(now);
    if (s !== undefined) {
      if (!failure && !successCloses(s, ticket)) return undefined;
      const u = failure
        ? recordBreakerFailure(s, ticket, now, this.options)
        : recordBreakerSuccess(s, ticket, now, this.options);
      if (u.state === s) {
        this.publish(u.events);
        return undefined;
      }
    }
    const events = this.cell.updateSoon((s) => {
      const u = failure
        ? recordBreakerFailure(s, ticket, now, this.options)
        : recordBreakerSuccess(s, ticket, now, this.options);
      return { value: u.state, result: u.events };
    });
    if (events instanceof Promise) return events.then((e) => this.publish(e));
    this.publish(events);
    return undefined;
  }

  /** Closes the circuit at once (the admin API's reset). */
  async reset(): Promise<{ previous: BreakerStatus }> {
    const now = this.env.now();
    this.cell.invalidate();
    const out = await this.cell.update((s) => {
      const u = resetBreaker(s, now);
      return {
        value: u.state,
        result: { events: u.events, previous: breakerStatus(s, now, this.options) },
      };
    });
    this.publish(out.events);
    return { previous: out.previous };
  }

  /** The state for the health API, read from the store (not the cache). */
  async status(): Promise<{ state: BreakerStatus; failures: number; retryInMs?: number }> {
    const s = await this.cell.read(true);
    const now = this.env.now();
    const state = breakerStatus(s, now, this.options);
    const out: { state: BreakerStatus; failures: number; retryInMs?: number } = {
      state,
      failures: breakerFailureCount(s, now, this.options),
    };
    if (s.status === 'open') out.retryInMs = Math.max(0, s.openedAt + this.options.resetMs - now);
    return out;
  }

  /** The last known status without I/O (for the status list), if any is known. */
  cachedStatus(): BreakerStatus | undefined {
    const s = this.cell.peek();
    return s === undefined ? undefined : breakerStatus(s, this.env.now(), this.options);
  }

  private publish(events: BreakerEvent[]): void {
    if (events.length > 0) this.env.onEvents(events);
  }
}

/** A decision shared by many calls: frozen, so that none can change it for the others. */
function freezeDecision(d: BreakerDecision): BreakerDecision {
  if (d.allowed) Object.freeze(d.ticket);
  Object.freeze(d.events);
  return Object.freeze(d);
}
