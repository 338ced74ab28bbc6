/**
 * The pure part of health checking: what one process remembers of a probe's runs
 * ({@link ProbeRecord}), and the cluster-wide verdict ({@link Verdict}) kept in a shared cell,
 * whose compare-and-set decides which process reports a change (so one change is one event,
 * however many processes probe), and which records that the event was delivered.
 */

/** What this process knows of one probe's runs. */
export interface ProbeRecord {
  /** `pending` until the first run finished. */
  result: 'healthy' | 'unhealthy' | 'pending';
  lastProbeAt: number | undefined;
  latencyMs: number | undefined;
  consecutiveFailures: number;
  lastError: { at: number; message: string } | undefined;
  lastSuccessAt: number | undefined;
  /** Runs finished in this process. */
  runs: number;
}

/** A probe that has not run yet. */
export function initialRecord(): ProbeRecord {
  return {
    result: 'pending',
    lastProbeAt: undefined,
    latencyMs: undefined,
    consecutiveFailures: 0,
    lastError: undefined,
    lastSuccessAt: undefined,
    runs: 0,
  };
}

/**
 * The record after a run that started at `at`, took `latencyMs` and failed with `error` (or
 * succeeded: `undefined`). A probe is unhealthy once `threshold` runs failed in a row.
 *
 * @example
 * ```ts
 * const r = afterRun(initialRecord(), 1000, 12, 'GET /health answered 503', 1);
 * r.result; // 'unhealthy'
 * ```
 */
export function afterRun(
  r: ProbeRecord,
  at: number,
  latencyMs: number,
  error: string | undefined,
  threshold: number,
): ProbeRecord {
  if (error === undefined) {
    return {
      ...r,
      result: 'healthy',
      lastProbeAt: at,
      latencyMs,
      consecutiveFailures: 0,
      lastSuccessAt: at,
      runs: r.runs + 1,
    };
  }
  const failures = r.consecutiveFailures + 1;
  return {
    ...r,
    result: failures >= threshold ? 'unhealthy' : r.result === 'pending' ? 'pending' : r.result,
    lastProbeAt: at,
    latencyMs,
    consecutiveFailures: failures,
    lastError: { at, message: error },
    runs: r.runs + 1,
  };
}

/** The cluster-wide verdict of one probe, as stored. */
export interface Verdict {
  healthy: boolean;
  /** When it last changed (epoch ms; 0: never). */
  since: number;
  /** Changes so far: part of the event id, so each change has its own. */
  generation: number;
  /**
   * The change's event was durably handed to every subscriber. False from the change's write
   * until then: a process that finds it false long after the change (the one that made it
   * crashed in between) sends it again, with the same id, which the engine deduplicates.
   */
  notified: boolean;
  /** Unhealthy: the failed probe's error and the failures in a row, as the event said. */
  error?: string;
  failures?: number;
}

/** Nothing stored yet: healthy, so a first failure is a change and a first success is not. */
export function initialVerdict(): Verdict {
  return { healthy: true, since: 0, generation: 0, notified: true };
}

/** A stored verdict, checked (a corrupt one is replaced by the initial one). */
export function parseVerdict(raw: unknown): Verdict {
  const v = raw as Partial<Verdict> | null;
  if (
    v === null ||
    typeof v !== 'object' ||
    typeof v.healthy !== 'boolean' ||
    typeof v.since !== 'number' ||
    typeof v.generation !== 'number'
  ) {
    throw new TypeError('not a health verdict');
  }
  const out: Verdict = {
    healthy: v.healthy,
    since: v.since,
    generation: v.generation,
    notified: v.notified !== false,
  };
  if (typeof v.error === 'string') out.error = v.error;
  if (typeof v.failures === 'number') out.failures = v.failures;
  return out;
}

/**
 * The transition for a run's outcome: the same object when the verdict holds already (nothing
 * is written), else the next verdict, also returned as the result so the caller knows it made
 * the change.
 *
 * @example
 * ```ts
 * const t = proposeVerdict(false, 5000)(initialVerdict());
 * t.result; // { healthy: false, since: 5000, generation: 1 }
 * ```
 */
export function proposeVerdict(
  healthy: boolean,
  now: number,
  failure?: { error: string; failures: number },
): (v: Verdict) => { value: Verdict; result: Verdict | undefined } {
  return (v) => {
    if (v.healthy === healthy) return { value: v, result: undefined };
    const next: Verdict = { healthy, since: now, generation: v.generation + 1, notified: false };
    if (!healthy && failure !== undefined) {
      next.error = failure.error;
      next.failures = failure.failures;
    }
    return { value: next, result: next };
  };
}

/**
 * The transition recording that change `generation`'s event was delivered (nothing when the
 * verdict has moved on, or was marked already).
 *
 * @example
 * ```ts
 * markNotified(1)({ healthy: false, since: 5000, generation: 1, notified: false }).value.notified; // true
 * ```
 */
export function markNotified(
  generation: number,
): (v: Verdict) => { value: Verdict; result: undefined } {
  return (v) =>
    v.generation !== generation || v.notified
      ? { value: v, result: undefined }
      : { value: { ...v, notified: true }, result: undefined };
}
