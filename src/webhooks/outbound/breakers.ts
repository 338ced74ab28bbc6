/**
 * One circuit breaker per endpoint, on the pure state machine of `src/integrations/breaker.ts`.
 *
 * The state lives in the key-value space (scope `keel.webhooks.breakers`) so it survives
 * restarts and is shared by processes; it is written only when it changes (a failure, a
 * transition), never on the common path of a closed circuit and a successful delivery, and
 * with compare-and-set, so two processes cannot both let the half-open probe through. Updates
 * of one endpoint are serialized in this process, so its own writes never conflict.
 */
import { parseDuration } from '../../core/duration.js';
import type { Clock } from '../../engine/clock.js';
import {
  acquireBreaker,
  breakerStatus,
  initialBreakerState,
  parseBreakerState,
  recordBreakerFailure,
  recordBreakerSuccess,
  resetBreaker,
  type BreakerDecision,
  type BreakerOptions,
  type BreakerState,
  type BreakerStatus,
  type BreakerTicket,
} from '../../integrations/breaker.js';
import type { Store } from '../../store/types.js';
import { SCOPES, type EndpointBreakerOptions } from './types.js';

interface Entry {
  id: string;
  state: BreakerState;
  version: number;
  readAt: number;
  /** The tail of this endpoint's queue of updates, and how many are in it. */
  queue: Promise<unknown>;
  busy: number;
}

const CAS_TRIES = 5;

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
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    readonly options: BreakerOptions,
    /** How long a read state is trusted; Infinity for a store owned by this process. */
    private readonly ttlMs: number,
  ) {}

  /** May a delivery to this endpoint go out now? */
  acquire(endpointId: string): Promise<BreakerDecision> {
    return this.update(endpointId, (state, now) => acquireBreaker(state, now, this.options));
  }

  /** Records how an admitted delivery went. */
  async record(endpointId: string, ticket: BreakerTicket, ok: boolean): Promise<void> {
    await this.update(endpointId, (state, now) =>
      ok
        ? recordBreakerSuccess(state, ticket, now, this.options)
        : recordBreakerFailure(state, ticket, now, this.options),
    );
  }

  /** Closes the circuit (a manual retry succeeded: the endpoint is up). */
  async reset(endpointId: string): Promise<void> {
    await this.update(endpointId, (state, now) => resetBreaker(state, now));
  }

  /** The status as the API reports it, from what this process knows. */
  status(endpointId: string): BreakerStatus {
    const e = this.entries.get(endpointId);
    return e ? breakerStatus(e.state, this.clock.now(), this.options) : 'closed';
  }

  /** Reads the state of endpoints this process has not seen yet (for the API's health). */
  async load(endpointIds: readonly string[]): Promise<void> {
    await Promise.all(
      endpointIds.filter((id) => !this.entries.has(id)).map((id) => this.update(id, noChange)),
    );
  }

  forget(endpointId: string): void {
    this.entries.delete(endpointId);
  }

  private update<R extends { state: BreakerState }>(
    id: string,
    step: (state: BreakerState, now: number) => R,
  ): Promise<R> {
    const known = this.entries.get(id);
    // The common path: a fresh closed breaker admitting a call changes nothing and needs no I/O.
    if (known && known.busy === 0 && this.clock.now() - known.readAt < this.ttlMs) {
      const result = step(known.state, this.clock.now());
      if (result.state === known.state) return Promise.resolve(result);
    }
    const e = known ?? this.fresh(id);
    e.busy++;
    const run = e.queue.then(() => this.apply(e, step));
    const done = (): void => {
      e.busy--;
    };
    e.queue = run.then(done, done);
    return run;
  }

  private fresh(id: string): Entry {
    const e: Entry = {
      id,
      state: initialBreakerState(),
      version: 0,
      readAt: -Infinity,
      queue: Promise.resolve(),
      busy: 0,
    };
    this.entries.set(id, e);
    return e;
  }

  private async apply<R extends { state: BreakerState }>(
    e: Entry,
    step: (state: BreakerState, now: number) => R,
  ): Promise<R> {
    const id = e.id;
    for (let i = 0; i < CAS_TRIES; i++) {
      if (this.clock.now() - e.readAt >= this.ttlMs) await this.read(id, e);
      const result = step(e.state, this.clock.now());
      if (result.state === e.state) return result;
      const [r] = await this.store.write([
        {
          op: 'kv.put',
          scope: SCOPES.breakers,
          key: id,
          value: result.state,
          expectVersion: e.version,
        },
      ]);
      const written = r as { ok: boolean; version: number };
      if (written.ok) {
        e.state = result.state;
        e.version = written.version;
        return result;
      }
      e.readAt = -Infinity; // another process changed it: read it again and re-decide
    }
    // Contended beyond reason: decide on what was read last, without persisting.
    return step(e.state, this.clock.now());
  }

  private async read(id: string, e: Entry): Promise<void> {
    const row = await this.store.getKv(SCOPES.breakers, id);
    e.readAt = this.clock.now();
    if (!row) {
      e.state = initialBreakerState();
      e.version = 0;
      return;
    }
    try {
      e.state = parseBreakerState(row.value);
    } catch {
      e.state = initialBreakerState(); // a corrupted row must not stop deliveries
    }
    e.version = row.version;
  }
}

function noChange(state: BreakerState): { state: BreakerState } {
  return { state };
}
