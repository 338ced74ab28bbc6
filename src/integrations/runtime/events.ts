/**
 * Circuit events: `IntegrationCircuitOpened`, `IntegrationCircuitHalfOpened` and
 * `IntegrationCircuitClosed`, published by the process whose compare-and-set made the
 * transition (so once per transition, however many processes share the breaker). Health events
 * (`IntegrationUnhealthy`, `IntegrationRecovered`, see `../health/monitor.ts`) are published the
 * same way, and sent again by another process when the one that made the change died before
 * its sends were accepted.
 *
 * Two ways to receive them: an `onEvent` callback (in that process, best effort), or
 * `subscribers`: handlers Keel starts with `engine.send`, durably, with an idempotency key derived
 * from the event, so a handler runs once per event and per subscriber, with retries.
 */
import type { BreakerEvent } from '../policies/breaker.js';

/** A circuit transition or a health change, as handlers receive it. */
export interface IntegrationEvent {
  type:
    | 'IntegrationCircuitOpened'
    | 'IntegrationCircuitHalfOpened'
    | 'IntegrationCircuitClosed'
    | 'IntegrationUnhealthy'
    | 'IntegrationRecovered';
  /**
   * Unique per transition: `{integration}:{type}:{at}` for circuit events,
   * `{name}:{type}:{generation}:{at}` for health events.
   */
  id: string;
  integration: string;
  /** When it happened (ISO 8601). */
  at: string;
  /** Opened: `failures` or `probe-failed`; closed: `probe-succeeded` or `reset`. */
  reason?: string;
  /** Opened: failures counted in the window. */
  failures?: number;
  /** Opened: when a probe will be let through (ISO 8601). */
  probeAt?: string;
  /** Health events: what was probed (an API integration, a database, a broker). */
  kind?: 'api' | 'database' | 'bus';
  /** Unhealthy: the failed probe's error (no secrets). */
  error?: string;
  /** Unhealthy: probes failed in a row in the process that saw it. */
  consecutiveFailures?: number;
}

/**
 * A handler Keel invokes with each event, e.g. `{ service: 'Alerts', handler: 'circuitChanged' }`.
 * For a keyed object, `key` names the instance.
 */
export interface EventSubscriber {
  service: string;
  handler: string;
  key?: string;
}

/**
 * The public form of a breaker transition.
 *
 * @example
 * ```ts
 * toIntegrationEvent('GitHubAPI', { type: 'half-opened', at: 0 }).type; // 'IntegrationCircuitHalfOpened'
 * ```
 */
export function toIntegrationEvent(integration: string, e: BreakerEvent): IntegrationEvent {
  const type =
    e.type === 'opened'
      ? 'IntegrationCircuitOpened'
      : e.type === 'closed'
        ? 'IntegrationCircuitClosed'
        : 'IntegrationCircuitHalfOpened';
  const out: IntegrationEvent = {
    type,
    id: `${integration}:${type}:${e.at}`,
    integration,
    at: new Date(e.at).toISOString(),
  };
  if (e.type === 'opened') {
    out.reason = e.reason;
    out.failures = e.failures;
    out.probeAt = new Date(e.probeAt).toISOString();
  } else if (e.type === 'closed') {
    out.reason = e.reason;
  }
  return out;
}
