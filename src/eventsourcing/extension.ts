/**
 * The `eventSourcing()` extension: gives aggregates' handlers the engine's Store and clock
 * (events live in the Store's key-value space, written atomically with the step that decides
 * them, see `runWithWrites`).
 */
import type { Context } from '../core/context.js';
import type { Clock } from '../engine/clock.js';
import { contextKey, type EngineExtension } from '../engine/extension.js';
import type { Store } from '../store/types.js';
import { EventSourcingError } from './errors.js';

/** What aggregates' handlers reach through the context. */
export interface EventSourcingRuntime {
  store: Store;
  clock: Clock;
}

const RUNTIME = contextKey<EventSourcingRuntime>('keel.eventsourcing');

/** The runtime of the engine running `ctx`; a clear error when the extension is missing. */
export function runtimeOf(ctx: Context): EventSourcingRuntime {
  const rt = RUNTIME.of(ctx);
  if (!rt) {
    throw new EventSourcingError(
      'eventsourcing_not_installed',
      'event-sourced aggregates need the eventSourcing() extension: ' +
        'pass extensions: [eventSourcing()] to new Engine(...) or startApp(...)',
    );
  }
  return rt;
}

/**
 * The extension every engine serving event-sourced aggregates needs (one per engine, however
 * many aggregates). The aggregates' definitions go in `services` as usual.
 *
 * @example
 * ```ts
 * import { eventSourced, eventSourcing } from 'keel/eventsourcing';
 * const Account = eventSourced({ name: 'Account', initial: { balance: 0 }, apply, commands });
 * const app = await startApp({ services: Account.definitions, extensions: [eventSourcing()] });
 * ```
 */
export function eventSourcing(): EngineExtension {
  return {
    name: 'eventsourcing',
    install(host) {
      host.provide(RUNTIME, { store: host.store, clock: host.clock });
    },
  };
}
