/**
 * Broker connections as health probes: one per bus an engine's `createBuses` uses (a bus a
 * subscription consumes from, or one given options), named after the bus (`rabbitmq`, `nats`).
 * A connection reconnects on its own and knows its state, so the probe reads that state (no
 * extra traffic to the broker): `up` is healthy; `down`, `closed`, or `connecting` after a failed
 * attempt is not, with the connection's last error (its URL without a password) as the reason. A bus declared for
 * publishing only is connected by its first probe, so a broker that cannot be reached shows
 * before the first publish needs it.
 */
import type { BusKind, BusesOptions, ConnectionStatus } from '../../buses/types.js';
import { probeRegistry, type Probe } from './registry.js';

/** How often a broker connection's state is checked when not said otherwise. */
export const BUS_PROBE_INTERVAL_MS = 10_000;

/**
 * Adds a probe per bus `options` uses to the engine's registry. Called by `createBuses` when it
 * is installed.
 *
 * @example
 * ```ts
 * install(host) {
 *   runtime = new BusesRuntime(host, options);
 *   addBusProbes(host.engine, options, (kind) => runtime?.connection(kind).status());
 * }
 * ```
 */
export function addBusProbes(
  engine: object,
  options: BusesOptions,
  status: (kind: BusKind) => ConnectionStatus | undefined,
  intervalMs = BUS_PROBE_INTERVAL_MS,
): void {
  const registry = probeRegistry(engine);
  for (const kind of busKinds(options)) registry.add(busProbe(kind, status, intervalMs));
}

/** The buses `options` uses: each subscription's, and each given options. */
export function busKinds(options: BusesOptions): BusKind[] {
  const kinds = new Set<BusKind>((options.subscriptions ?? []).map((s) => s.bus));
  const given = options as Record<string, unknown>;
  for (const k of ['rabbitmq', 'nats', 'mqtt']) if (given[k] !== undefined) kinds.add(k as BusKind);
  return [...kinds];
}

/**
 * The probe of one bus.
 *
 * @example
 * ```ts
 * const probe = busProbe('rabbitmq', (kind) => runtime.connection(kind).status(), 10_000);
 * await probe.check(); // rejects while the connection is down
 * ```
 */
export function busProbe(
  kind: BusKind,
  status: (kind: BusKind) => ConnectionStatus | undefined,
  intervalMs: number,
): Probe {
  return {
    name: kind,
    kind: 'bus',
    type: kind,
    intervalMs,
    check() {
      let s: ConnectionStatus | undefined;
      try {
        s = status(kind);
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      if (s === undefined || s.state === 'up') return Promise.resolve();
      // Still making its first connection, no attempt failed yet: not known.
      if (s.state === 'connecting' && s.lastError === undefined) return Promise.resolve('pending');
      return Promise.reject(
        new Error(
          `${kind} connection ${s.state}${s.lastError === undefined ? '' : `: ${s.lastError}`}`,
        ),
      );
    },
    details() {
      const s = status(kind);
      if (s === undefined) return { state: 'not started' };
      return {
        url: s.url,
        state: s.state,
        since: s.since,
        connects: s.connects,
        subscriptions: s.subscriptions,
      };
    },
  };
}
