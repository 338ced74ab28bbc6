/**
 * The circuit breaker as a pure state machine: "open after N failures within a window W; after R,
 * let one probe through (half-open); the probe's success closes the circuit, its failure opens it
 * again". No timers, no clock, no I/O: every function takes the state and `now` (epoch ms) and
 * returns the next state plus the transitions that happened, so the state can live in a shared
 * store and be advanced by any process (read, apply, compare-and-swap).
 *
 * Calls are matched to the state they were admitted under by a {@link BreakerTicket}. The state's
 * `generation` changes on every transition, so the late result of a call admitted before the
 * circuit opened (or of a probe presumed lost) is ignored instead of corrupting the new state.
 */

/** The breaker's policy: N failures within `windowMs` open it for `resetMs`. */
export interface BreakerOptions {
  /** Failures within the window that open the circuit (N ≥ 1). */
  failures: number;
  /** The sliding window failures are counted in, in ms (W). A failure counts while `now - at < W`. */
  windowMs: number;
  /** How long the circuit stays open before one probe is let through, in ms (R). */
  resetMs: number;
  /**
   * How long a half-open probe may take before it is presumed lost (its process crashed) and
   * another probe is let through. Default: `resetMs`. Set it to the call timeout.
   */
  probeTimeoutMs?: number;
}

/**
 * The breaker's state: small plain JSON, safe to store and to share between processes.
 * `failures` (closed only) are the timestamps of the most recent failures inside the window,
 * oldest first, at most `options.failures` of them.
 */
export type BreakerState =
  | { status: 'closed'; generation: number; failures: number[] }
  | { status: 'open'; generation: number; openedAt: number }
  | { status: 'half-open'; generation: number; probeAt: number };

/** The status names, as the health API reports them. */
export type BreakerStatus = BreakerState['status'];

/** Proof of admission: hand it back with the call's outcome. Plain JSON, so it can be journaled. */
export interface BreakerTicket {
  generation: number;
  /** True for the single probe of a half-open circuit. */
  probe: boolean;
}

/** A transition, returned (never emitted) so the caller can journal or publish it. */
export type BreakerEvent =
  | {
      type: 'opened';
      at: number;
      /** Why: too many failures, the half-open probe failed, or an operator opened it. */
      reason: 'failures' | 'probe-failed';
      /** Failures counted in the window when it opened (1 for a failed probe). */
      failures: number;
      /** When a probe will be let through. */
      probeAt: number;
    }
  | { type: 'half-opened'; at: number }
  | { type: 'closed'; at: number; reason: 'probe-succeeded' | 'reset' };

/** The answer to "may this call go out?". */
export type BreakerDecision =
  | { allowed: true; ticket: BreakerTicket; state: BreakerState; events: BreakerEvent[] }
  | {
      allowed: false;
      /** How long until the breaker might admit a call again (a probe). */
      retryInMs: number;
      state: BreakerState;
      events: BreakerEvent[];
    };

/** The next state and the transitions that led to it. */
export interface BreakerUpdate {
  state: BreakerState;
  events: BreakerEvent[];
}

/**
 * A closed breaker with no failures recorded.
 *
 * @example
 * ```ts
 * let state = initialBreakerState();
 * ```
 */
export function initialBreakerState(): BreakerState {
  return { status: 'closed', generation: 0, failures: [] };
}

/**
 * Asks the breaker whether a call may go out now. A closed circuit admits every call; an open one
 * refuses until `resetMs` has passed, then admits exactly one probe (and turns half-open); a
 * half-open one refuses everything but that probe. The state is returned unchanged (the same
 * object) when nothing changed, so a caller can skip the write.
 *
 * @example
 * ```ts
 * const d = acquireBreaker(state, clock.now(), options);
 * if (!d.allowed) throw new CircuitOpenError(name, d.retryInMs);
 * state = d.state; // persist if changed, publish d.events
 * const outcome = await call();
 * ({ state } = outcome.ok
 *   ? recordBreakerSuccess(state, d.ticket, clock.now(), options)
 *   : recordBreakerFailure(state, d.ticket, clock.now(), options));
 * ```
 */
export function acquireBreaker(
  state: BreakerState,
  now: number,
  options: BreakerOptions,
): BreakerDecision {
  switch (state.status) {
    case 'closed':
      return {
        allowed: true,
        ticket: { generation: state.generation, probe: false },
        state,
        events: [],
      };
    case 'open': {
      const probeAt = state.openedAt + options.resetMs;
      if (now < probeAt) return { allowed: false, retryInMs: probeAt - now, state, events: [] };
      const next: BreakerState = {
        status: 'half-open',
        generation: state.generation + 1,
        probeAt: now,
      };
      return {
        allowed: true,
        ticket: { generation: next.generation, probe: true },
        state: next,
        events: [{ type: 'half-opened', at: now }],
      };
    }
    case 'half-open': {
      const lostAt = state.probeAt + probeTimeout(options);
      if (now < lostAt) return { allowed: false, retryInMs: lostAt - now, state, events: [] };
      // The probe never reported back (its process died): let another one through, in a new
      // generation so the lost one's late answer is ignored.
      const next: BreakerState = {
        status: 'half-open',
        generation: state.generation + 1,
        probeAt: now,
      };
      return {
        allowed: true,
        ticket: { generation: next.generation, probe: true },
        state: next,
        events: [],
      };
    }
  }
}

/**
 * Records a successful call. Only the half-open probe changes anything: it closes the circuit.
 * Successes do not erase failures of a closed circuit: "5 failures in 1 minute" counts failures,
 * not a failure streak.
 *
 * @example
 * ```ts
 * const { state: next, events } = recordBreakerSuccess(state, ticket, clock.now(), options);
 * ```
 */
export function recordBreakerSuccess(
  state: BreakerState,
  ticket: BreakerTicket,
  now: number,
  _options: BreakerOptions,
): BreakerUpdate {
  if (successCloses(state, ticket)) {
    return {
      state: { status: 'closed', generation: state.generation + 1, failures: [] },
      events: [{ type: 'closed', at: now, reason: 'probe-succeeded' }],
    };
  }
  return { state, events: [] };
}

/**
 * Whether a success changes the state: only the half-open probe's does (it closes the circuit);
 * {@link recordBreakerSuccess} returns every other state as it is.
 */
export function successCloses(state: BreakerState, ticket: BreakerTicket): boolean {
  return ticket.generation === state.generation && state.status === 'half-open' && ticket.probe;
}

/**
 * Records a failed call (one the classifier counts against the dependency). In a closed circuit
 * the failure is added to the window and the circuit opens when the window holds N; a failed
 * probe re-opens the circuit for another `resetMs`. Results of calls admitted under an earlier
 * generation are ignored.
 *
 * @example
 * ```ts
 * const { state: next, events } = recordBreakerFailure(state, ticket, clock.now(), options);
 * for (const e of events) if (e.type === 'opened') publish('IntegrationCircuitOpened', e);
 * ```
 */
export function recordBreakerFailure(
  state: BreakerState,
  ticket: BreakerTicket,
  now: number,
  options: BreakerOptions,
): BreakerUpdate {
  if (ticket.generation !== state.generation) return { state, events: [] };
  if (state.status === 'closed') {
    const failures = [...inWindow(state.failures, now, options), now].slice(-options.failures);
    if (failures.length >= options.failures) {
      return {
        state: { status: 'open', generation: state.generation + 1, openedAt: now },
        events: [
          {
            type: 'opened',
            at: now,
            reason: 'failures',
            failures: failures.length,
            probeAt: now + options.resetMs,
          },
        ],
      };
    }
    return { state: { ...state, failures }, events: [] };
  }
  if (state.status === 'half-open' && ticket.probe) {
    return {
      state: { status: 'open', generation: state.generation + 1, openedAt: now },
      events: [
        {
          type: 'opened',
          at: now,
          reason: 'probe-failed',
          failures: 1,
          probeAt: now + options.resetMs,
        },
      ],
    };
  }
  return { state, events: [] };
}

/**
 * Closes the circuit at once and forgets recorded failures (the admin API's
 * `POST /integrations/{name}/circuit/reset`). Calls in flight from before are ignored when they
 * report back.
 *
 * @example
 * ```ts
 * const { state: next, events } = resetBreaker(state, clock.now()); // events: [{ type: 'closed', reason: 'reset' }]
 * ```
 */
export function resetBreaker(state: BreakerState, now: number): BreakerUpdate {
  const next: BreakerState = { status: 'closed', generation: state.generation + 1, failures: [] };
  return {
    state: next,
    events: state.status === 'closed' ? [] : [{ type: 'closed', at: now, reason: 'reset' }],
  };
}

/**
 * The status to report at `now`: an open circuit whose reset time has passed reports
 * `half-open`, since the next call will be its probe.
 *
 * @example
 * ```ts
 * breakerStatus(state, clock.now(), options); // 'closed' | 'open' | 'half-open'
 * ```
 */
export function breakerStatus(
  state: BreakerState,
  now: number,
  options: BreakerOptions,
): BreakerStatus {
  if (state.status === 'open' && now >= state.openedAt + options.resetMs) return 'half-open';
  return state.status;
}

/**
 * Failures currently counted in the window (0 unless closed).
 *
 * @example
 * ```ts
 * breakerFailureCount(state, clock.now(), options); // e.g. 3 of 5
 * ```
 */
export function breakerFailureCount(
  state: BreakerState,
  now: number,
  options: BreakerOptions,
): number {
  return state.status === 'closed' ? inWindow(state.failures, now, options).length : 0;
}

/**
 * Validates a state read back from storage; throws a `TypeError` saying what is wrong, so a
 * corrupted or foreign row is not silently treated as a closed circuit.
 *
 * @example
 * ```ts
 * const state = parseBreakerState(JSON.parse(row.value));
 * ```
 */
export function parseBreakerState(value: unknown): BreakerState {
  const bad = (why: string): never => {
    throw new TypeError(`not a circuit breaker state (${why}): ${JSON.stringify(value)}`);
  };
  if (typeof value !== 'object' || value === null) return bad('not an object');
  const v = value as Record<string, unknown>;
  if (!Number.isInteger(v.generation)) return bad('generation must be an integer');
  const generation = v.generation as number;
  switch (v.status) {
    case 'closed':
      if (!Array.isArray(v.failures) || !v.failures.every((t) => Number.isFinite(t))) {
        return bad('failures must be an array of timestamps');
      }
      return { status: 'closed', generation, failures: [...(v.failures as number[])] };
    case 'open':
      if (!Number.isFinite(v.openedAt)) return bad('openedAt must be a timestamp');
      return { status: 'open', generation, openedAt: v.openedAt as number };
    case 'half-open':
      if (!Number.isFinite(v.probeAt)) return bad('probeAt must be a timestamp');
      return { status: 'half-open', generation, probeAt: v.probeAt as number };
    default:
      return bad('status must be closed, open or half-open');
  }
}

function inWindow(failures: readonly number[], now: number, options: BreakerOptions): number[] {
  return failures.filter((at) => now - at < options.windowMs);
}

function probeTimeout(options: BreakerOptions): number {
  return options.probeTimeoutMs ?? options.resetMs;
}
