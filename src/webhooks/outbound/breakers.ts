/**
 * One circuit breaker per endpoint: the integrations' store-backed breaker
 * (`src/integrations/shared/shared-breaker.ts`), keyed by endpoint id in the scope
 * `keel.webhooks.breakers`. So the state survives restarts and is shared by processes; it is
 * written only when it changes (a failure, a transition), never on the common path of a closed
 * circuit and a successful delivery, and with compare-and-set, so two processes cannot both
 * let the half-open probe through.
 */
import { parseDuration } from '../../core/duration.js';
import type { Clock } from '../../engine/clock.js';
import type {
  BreakerDecision,
  BreakerOptions,
  BreakerStatus,
  BreakerTicket,
} from '../../integrations/policies/breaker.js';
import { SharedBreaker } from '../../integrations/shared/shared-breaker.js';
import type { Store } from '../../store/types.js';
import { SCOPES, type EndpointBreakerOptions } from './types.js';

export function breakerOptions(o: EndpointBreakerOptions = {}): BreakerOptions {
  const failures = o.failures ?? 5;
  if (!Number.isInteger(failures) || failures < 1)
    throw new RangeError(`breaker.failures must be a whole number ≥ 1, not ${failures}`);
  return {
    failures,
    windowMs: parseDuration(o.window ?? '1m'),
    resetMs: parseDuration(o.reset ?? '30s'),
  };
}

export class EndpointBreakers {
  private readonly breakers = new Map<string, SharedBreaker>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    readonly options: BreakerOptions,
    /** How long a read state is trusted; Infinity for a store owned by this process. */
    private readonly ttlMs: number,
  ) {}

  /** May a delivery to this endpoint go out now? */
  async acquire(endpointId: string): Promise<BreakerDecision> {
    return this.of(endpointId).acquire();
  }

  /** Records how an admitted delivery went. */
  async record(endpointId: string, ticket: BreakerTicket, ok: boolean): Promise<void> {
    await this.of(endpointId).record(ticket, !ok);
  }

  /** Closes the circuit (a manual retry succeeded: the endpoint is up). */
  async reset(endpointId: string): Promise<void> {
    await this.of(endpointId).reset();
  }

  /** The status as the API reports it, from what this process knows. */
  status(endpointId: string): BreakerStatus {
    return this.breakers.get(endpointId)?.cachedStatus() ?? 'closed';
  }

  /** Reads the state of endpoints this process has not seen yet (for the API's health). */
  async load(endpointIds: readonly string[]): Promise<void> {
    await Promise.all(
      endpointIds.filter((id) => !this.breakers.has(id)).map((id) => this.of(id).status()),
    );
  }

  forget(endpointId: string): void {
    this.breakers.delete(endpointId);
  }

  private of(endpointId: string): SharedBreaker {
    let b = this.breakers.get(endpointId);
    if (!b) {
      b = new SharedBreaker(this.store, endpointId, this.options, {
        maxAgeMs: this.ttlMs,
        now: () => this.clock.now(),
        onEvents: () => undefined, // endpoint health is read from the state, not from events
        scope: SCOPES.breakers,
      });
      this.breakers.set(endpointId, b);
    }
    return b;
  }
}
