/**
 * The probe registry: one list of "things to health-check" per engine, fed by every part that
 * talks to the outside (declared API integrations with a `healthCheckPath`, database
 * connections, broker connections) and run by the integrations runtime's health monitor (see
 * `monitor.ts`), which serves the results on `/integrations/status`.
 *
 * A probe is deliberately tiny (`check()` resolves when healthy, rejects with the reason), so a
 * new kind of connection joins by adding one object; it needs to know nothing about scheduling,
 * events or the admin API.
 */
import { UsageError } from '../../core/errors.js';

/** What a probe checks: an API integration, a database connection, or a message broker. */
export type ProbeKind = 'api' | 'database' | 'bus';

/** One health check. */
export interface Probe {
  /** Unique per engine; the `{name}` of `/integrations/{name}/health`. */
  readonly name: string;
  readonly kind: ProbeKind;
  /** What it is, as `/integrations/status` shows it: `rest`, `postgres`, `rabbitmq`, ... */
  readonly type: string;
  /** How often it runs, in milliseconds. */
  readonly intervalMs: number;
  /**
   * Resolves when healthy, rejects with why not. The rejection's message is shown on the admin
   * API and in events: it must not hold secrets (no URLs with passwords, no tokens). Resolving
   * with `'pending'` says "not known yet" (a first connection still being made): the run is not
   * counted either way.
   */
  check(): Promise<void | 'pending'>;
  /** Live facts for `/integrations/{name}/health` (a broker's connection state); no secrets. */
  details?(): Record<string, unknown>;
}

const NAME = /^[A-Za-z][\w.-]*$/;

/**
 * The probes of one engine (see {@link probeRegistry}), or a standalone runtime's.
 *
 * @example
 * ```ts
 * const probes = probeRegistry(host.engine);
 * probes.add({ name: 'orders-db', kind: 'database', type: 'postgres', intervalMs: 30_000, check: () => db.ping() });
 * ```
 */
export class ProbeRegistry {
  private readonly probes = new Map<string, Probe>();
  private readonly listeners = new Set<(p: Probe) => void>();

  /** Adds a probe; adding the same object again is a no-op, another one of the same name an error. */
  add(probe: Probe): void {
    const existing = this.probes.get(probe.name);
    if (existing === probe) return;
    if (typeof probe.name !== 'string' || !NAME.test(probe.name)) {
      throw new UsageError(
        `health probe: the name must start with a letter and hold only letters, digits, _, - and . (it appears in /integrations/{name}/health), got ${JSON.stringify(probe.name)}`,
      );
    }
    if (existing !== undefined) {
      throw new UsageError(
        `health probe: two things are named ${probe.name} (a ${existing.kind} and a ${probe.kind}); names must be unique across integrations, databases and buses`,
      );
    }
    if (!(probe.intervalMs >= 1000)) {
      throw new UsageError(
        `health probe ${probe.name}: the interval must be at least 1000 ms, got ${probe.intervalMs}`,
      );
    }
    this.probes.set(probe.name, probe);
    for (const fn of this.listeners) fn(probe);
  }

  /** Stops probing `name` (a connection closed for good). */
  remove(name: string): void {
    this.probes.delete(name);
  }

  get(name: string): Probe | undefined {
    return this.probes.get(name);
  }

  /** In the order they were added. */
  list(): Probe[] {
    return [...this.probes.values()];
  }

  /** Calls `fn` with each probe added from now on; returns the unsubscribe function. */
  onAdd(fn: (p: Probe) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

const registries = new WeakMap<object, ProbeRegistry>();

/**
 * The probe registry of an engine (made on first use), so extensions installed in any order
 * meet in one list: pass `host.engine` from `EngineExtension.install`.
 *
 * @example
 * ```ts
 * install(host) {
 *   probeRegistry(host.engine).add({ name: 'cache', kind: 'database', type: 'redis', intervalMs: 10_000, check: () => redis.ping() });
 * }
 * ```
 */
export function probeRegistry(engine: object): ProbeRegistry {
  let r = registries.get(engine);
  if (r === undefined) {
    r = new ProbeRegistry();
    registries.set(engine, r);
  }
  return r;
}
