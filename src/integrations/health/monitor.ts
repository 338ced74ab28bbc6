/**
 * Runs the probes of a {@link ProbeRegistry} on their intervals (on the engine's clock), keeps
 * each one's latest results in memory (so `/integrations/status` never probes and stays fast
 * with hundreds of integrations), and reports changes as `IntegrationUnhealthy` /
 * `IntegrationRecovered` events.
 *
 * Every process probes on its own; the verdict that events report is shared through the Store:
 * after a run whose outcome differs from the verdict, the process compare-and-sets the verdict,
 * and only the process whose write won publishes the event. So one change is one event in a
 * cluster, and a process that starts (or recovers) later sees the verdict the others left.
 */
import { errorMessage } from '../../core/errors.js';
import type { Clock } from '../../engine/clock.js';
import type { IntegrationEvent } from '../runtime/events.js';
import { SharedCell, type KvStore } from '../shared/shared-cell.js';
import type { Probe, ProbeRegistry } from './registry.js';
import {
  afterRun,
  initialRecord,
  initialVerdict,
  markNotified,
  parseVerdict,
  proposeVerdict,
  type ProbeRecord,
  type Verdict,
} from './state.js';

/** The store scope of the shared verdicts (key: the probe's name). */
export const HEALTH_SCOPE = 'keel.health';

/** Probes that do not time out on their own (a hung `ping`) are given up after this long. */
const MAX_PROBE_MS = 10_000;
/** The first runs are spread over this long after the start, so 100 probes do not fire at once. */
const FIRST_RUN_SPREAD_MS = 5_000;
/**
 * A change whose event is still not marked delivered this long after it happened is sent again
 * by whichever process runs the probe next (the one that made the change crashed, or its sends
 * failed).
 */
export const REDELIVER_AFTER_MS = 30_000;

/** Options of {@link HealthMonitor}. */
export interface HealthMonitorOptions {
  registry: ProbeRegistry;
  clock: Clock;
  /** Where verdicts are shared; without one, this process decides alone. */
  store?: KvStore;
  /** Failed runs in a row before a probe is unhealthy. Default 1. */
  failureThreshold?: number;
  /**
   * Delivers an event: logs it, calls `onEvent`, and resolves once every durable subscriber's
   * invocation was accepted (rejects when one could not be).
   */
  publish(event: IntegrationEvent, level: 'info' | 'warn', line: string): Promise<void>;
  /** Sends an event again to the durable subscribers only (same id: deduplicated). */
  redeliver(event: IntegrationEvent): Promise<void>;
  log(level: 'info' | 'warn' | 'error', message: string): void;
}

interface Entry {
  probe: Probe;
  record: ProbeRecord;
  verdict: SharedCell<Verdict>;
  /** The run in flight, if any (runs of one probe never overlap). */
  running: Promise<ProbeRecord> | undefined;
  cancel: (() => void) | undefined;
}

/** A probe's state as the admin API shows it. */
export interface ProbeStatus extends ProbeRecord {
  name: string;
  kind: Probe['kind'];
  type: string;
  intervalMs: number;
  /** The cluster-wide verdict as this process last read it (`undefined`: not read yet). */
  clusterHealthy: boolean | undefined;
  details: Record<string, unknown> | undefined;
}

/**
 * The health monitor of a runtime.
 *
 * @example
 * ```ts
 * const monitor = new HealthMonitor({ registry, clock, store, publish: (e) => console.log(e.type), log: console.warn });
 * monitor.start();
 * await monitor.probeNow('GitHubAPI'); // { result: 'healthy', latencyMs: 12, ... }
 * monitor.status('GitHubAPI')?.consecutiveFailures; // 0
 * ```
 */
export class HealthMonitor {
  private readonly entries = new Map<string, Entry>();
  private started = false;
  private stopped = false;
  private readonly threshold: number;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly options: HealthMonitorOptions) {
    this.threshold = Math.max(1, options.failureThreshold ?? 1);
  }

  /** Starts probing every registered probe, and those registered later. Idempotent. */
  start(): void {
    if (this.started || this.stopped) return;
    this.started = true;
    const { registry } = this.options;
    for (const p of registry.list()) this.arm(this.entry(p), this.firstDelay(p));
    this.unsubscribe = registry.onAdd((p) => this.arm(this.entry(p), this.firstDelay(p)));
  }

  /** Stops the timers (runs in flight finish). */
  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    for (const e of this.entries.values()) e.cancel?.();
  }

  /**
   * Runs `name`'s probe now (or waits for the run in flight and runs again) and resolves with
   * its record; undefined for an unknown name.
   */
  async probeNow(name: string): Promise<ProbeRecord | undefined> {
    const p = this.options.registry.get(name);
    if (p === undefined) return undefined;
    const e = this.entry(p);
    if (e.running !== undefined) await e.running.catch(() => undefined);
    return this.run(e);
  }

  /** Runs every probe once, concurrently. */
  async probeAll(): Promise<void> {
    await Promise.all(this.options.registry.list().map((p) => this.probeNow(p.name)));
  }

  /** What this process knows of `name`, from memory. */
  status(name: string): ProbeStatus | undefined {
    const p = this.options.registry.get(name);
    if (p === undefined) return undefined;
    return this.view(p, this.entries.get(name));
  }

  /** Every probe, in registration order, from memory. */
  list(): ProbeStatus[] {
    return this.options.registry.list().map((p) => this.view(p, this.entries.get(p.name)));
  }

  private view(p: Probe, e: Entry | undefined): ProbeStatus {
    let details: Record<string, unknown> | undefined;
    try {
      details = p.details?.();
    } catch (err) {
      details = { error: errorMessage(err) };
    }
    return {
      name: p.name,
      kind: p.kind,
      type: p.type,
      intervalMs: p.intervalMs,
      ...(e?.record ?? initialRecord()),
      clusterHealthy: e?.verdict.peek()?.healthy,
      details,
    };
  }

  private entry(p: Probe): Entry {
    let e = this.entries.get(p.name);
    if (e === undefined || e.probe !== p) {
      e?.cancel?.();
      e = {
        probe: p,
        record: initialRecord(),
        // maxAge 0: every change is decided on a fresh read of the stored verdict.
        verdict: new SharedCell(
          this.options.store,
          HEALTH_SCOPE,
          p.name,
          parseVerdict,
          initialVerdict,
          0,
          () => this.options.clock.now(),
        ),
        running: undefined,
        cancel: undefined,
      };
      this.entries.set(p.name, e);
    }
    return e;
  }

  private firstDelay(p: Probe): number {
    // Deterministic per name (tests on a fake clock know when it runs): within the first
    // `min(interval, 5s)`.
    let h = 0;
    for (let i = 0; i < p.name.length; i++) h = (h * 31 + p.name.charCodeAt(i)) >>> 0;
    return h % Math.min(p.intervalMs, FIRST_RUN_SPREAD_MS);
  }

  private arm(e: Entry, delayMs: number): void {
    if (this.stopped) return;
    e.cancel?.();
    e.cancel = this.options.clock.setTimer(delayMs, () => {
      e.cancel = undefined;
      if (this.stopped || this.options.registry.get(e.probe.name) !== e.probe) return;
      const run = e.running ?? this.run(e);
      void run
        .catch((err: unknown) =>
          this.options.log('error', `health of ${e.probe.name}: ${errorMessage(err)}`),
        )
        .finally(() => this.arm(e, e.probe.intervalMs));
    });
  }

  private run(e: Entry): Promise<ProbeRecord> {
    const run = this.runOnce(e).finally(() => {
      if (e.running === run) e.running = undefined;
    });
    e.running = run;
    return run;
  }

  private async runOnce(e: Entry): Promise<ProbeRecord> {
    const { clock } = this.options;
    const at = clock.now();
    const t0 = performance.now();
    let error: string | undefined;
    try {
      const outcome = await withDeadline(
        e.probe.check(),
        Math.min(MAX_PROBE_MS, e.probe.intervalMs),
      );
      if (outcome === 'pending') return e.record;
    } catch (err) {
      error = errorMessage(err) || 'the probe failed';
    }
    const latencyMs = Math.round((performance.now() - t0) * 10) / 10;
    const before = e.record.result;
    e.record = afterRun(e.record, at, latencyMs, error, this.threshold);
    const now = e.record.result;
    if (
      now !== 'pending' &&
      (now !== before || e.verdict.peek()?.healthy !== (now === 'healthy'))
    ) {
      await this.decide(e, now === 'healthy', clock.now());
    } else if (now !== 'pending' && e.record.runs % 10 === 0) {
      // Now and then, read the shared verdict again even when nothing changed here: another
      // process may have marked it otherwise and then stopped.
      e.verdict.invalidate();
      await this.decide(e, now === 'healthy', clock.now());
    }
    const v = e.verdict.peek();
    if (v !== undefined && !v.notified && clock.now() - v.since >= REDELIVER_AFTER_MS) {
      await this.redeliver(e);
    }
    return e.record;
  }

  /** Sends a change's event again if it is still not marked delivered (see {@link Verdict}). */
  private async redeliver(e: Entry): Promise<void> {
    try {
      const v = await e.verdict.read(true);
      if (v.notified || this.options.clock.now() - v.since < REDELIVER_AFTER_MS) return;
      await this.options.redeliver(this.eventOf(e.probe, v));
      await e.verdict.update(markNotified(v.generation));
    } catch (err) {
      this.options.log(
        'warn',
        `health of ${e.probe.name}: could not deliver its last change's event again (${errorMessage(err)}); will try at the next probe`,
      );
    }
  }

  private eventOf(p: Probe, v: Verdict): IntegrationEvent {
    const type = v.healthy ? 'IntegrationRecovered' : 'IntegrationUnhealthy';
    const event: IntegrationEvent = {
      type,
      id: `${p.name}:${type}:${v.generation}:${v.since}`,
      integration: p.name,
      kind: p.kind,
      at: new Date(v.since).toISOString(),
    };
    if (!v.healthy) {
      event.error = v.error ?? 'the probe failed';
      if (v.failures !== undefined) event.consecutiveFailures = v.failures;
    }
    return event;
  }

  /** Compare-and-sets the shared verdict; the winner of a change publishes its event. */
  private async decide(e: Entry, healthy: boolean, now: number): Promise<void> {
    let changed: Verdict | undefined;
    const failure = healthy
      ? undefined
      : {
          error: e.record.lastError?.message ?? 'the probe failed',
          failures: e.record.consecutiveFailures,
        };
    try {
      changed = await e.verdict.update(proposeVerdict(healthy, now, failure));
    } catch (err) {
      this.options.log(
        'warn',
        `health of ${e.probe.name}: could not share the verdict (${errorMessage(err)}); will try at the next probe`,
      );
      e.verdict.invalidate();
      return;
    }
    if (changed === undefined) return;
    const event = this.eventOf(e.probe, changed);
    const generation = changed.generation;
    // Not awaited: a slow subscriber send does not hold the probe loop. Once every send was
    // accepted the change is marked delivered; until then another process may send it again.
    void this.options
      .publish(
        event,
        changed.healthy ? 'info' : 'warn',
        `${event.type}: ${e.probe.name}${changed.healthy ? '' : ` (${event.error})`}`,
      )
      .then(() => e.verdict.update(markNotified(generation)))
      .catch((err: unknown) =>
        this.options.log(
          'warn',
          `health of ${e.probe.name}: ${event.type} not delivered to every subscriber (${errorMessage(err)}); it is sent again within ${REDELIVER_AFTER_MS / 1000}s of the next probe`,
        ),
      );
  }
}

/** `p`, or a rejection once `ms` passed (a real timer: a probe's wait is real I/O). */
function withDeadline<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}
