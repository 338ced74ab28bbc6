/**
 * What a schedule is, and the checks every schedule passes, whether declared in code with
 * {@link schedule} or created through the admin API: a name usable in a URL, a cron pattern
 * croner parses and that fires at least once, an IANA timezone, a missed-tick policy, a jitter.
 * The target is checked against the engine's definitions later (see targets.ts): a declaration
 * is made before any engine exists.
 */
import { Cron } from 'croner';
import type { Definition } from '../core/definitions.js';
import { parseDuration, type Duration } from '../core/duration.js';
import { ScheduleError } from './errors.js';

/**
 * What happens to ticks that came due while no process ran the schedule (the app was down).
 * Ticks that came due while it was paused are never fired.
 *
 * - `'skip'` (the default): none of them fires, except the latest one when it is less than
 *   {@link MISSED_GRACE_MS} late, so a restart across a tick does not lose it;
 * - `'once'`: the latest one fires once, however late;
 * - `{ all: N }`: the latest N of them fire, oldest first, each with its own idempotency key.
 */
export type MissedPolicy = 'skip' | 'once' | { readonly all: number };

/** The most ticks `{ all: N }` may catch up. */
export const MAX_CATCH_UP = 1000;

/**
 * How late the latest tick may be and still fire under the `'skip'` policy: a restart (or a
 * busy moment) across a tick fires it late rather than not at all.
 */
export const MISSED_GRACE_MS = 60_000;

/** The longest jitter: a spread meant for a minute's schedules, not for moving ticks by days. */
export const MAX_JITTER_MS = 3_600_000;

/** What a schedule starts at each tick. */
export interface ScheduleTarget {
  readonly service: string;
  readonly handler: string;
  /**
   * The object key (required for an object's handlers). For a workflow's `run`, the prefix of
   * each tick's workflow key (`<key>@<tick time>`; default: the schedule's name), since a
   * workflow runs once per key.
   */
  readonly key?: string;
}

/** A schedule as stored: everything but its name and its run-time state. */
export interface ScheduleSpec {
  readonly cron: string;
  /** IANA name; absent: UTC. */
  readonly timezone?: string;
  readonly target: ScheduleTarget;
  /** The target's input at every tick (absent: none). */
  readonly input?: unknown;
  readonly missed: MissedPolicy;
  /** The largest delay after the tick time (0: none); each schedule's own delay is fixed. */
  readonly jitterMs: number;
}

/** A schedule declared in code: pass it to `schedules([...])` or `startApp({ schedules })`. */
export interface ScheduleDeclaration {
  readonly name: string;
  readonly spec: ScheduleSpec;
  /** Whether it starts paused (when first stored, or when its declaration changed). */
  readonly paused: boolean;
}

/** A target given as a definition: the handler's name is checked by the compiler. */
export interface TypedScheduleTarget<D extends Definition> {
  readonly service: D;
  readonly handler: keyof D['handlers'] & string;
  readonly key?: string;
}

/** The options of {@link schedule}. */
export interface ScheduleOptions {
  /** Unique per app: letters, digits, `.`, `_` and `-`, at most 100, starting with a letter or digit. */
  readonly name: string;
  /**
   * A cron pattern (croner): five fields (minute hour day month weekday) or six with seconds
   * first (`*\/30 * * * * *`); `@hourly`, `@daily` and the like; `L` and `#`.
   */
  readonly cron: string;
  /** An IANA timezone the pattern is read in (`Europe/Berlin`). Default: UTC. */
  readonly timezone?: string;
  /**
   * What each tick starts: a service's handler, an object's handler with its key, a workflow.
   * The service may be given as its definition (`{ service: Reports, handler: 'build' }`), and
   * the handler's name is then checked by the compiler.
   */
  readonly target: ScheduleTarget;
  /** The input of every tick's invocation. */
  readonly input?: unknown;
  /** Ticks missed while the app was down: `'skip'` (default), `'once'` or `{ all: N }`. */
  readonly missed?: MissedPolicy;
  /**
   * Spreads schedules of the same tick time: each fires a fixed delay after its tick, from 0
   * up to this (a hash of its name), so a thousand `0 * * * *` schedules do not all start in
   * the same millisecond. Default 0. At most 1 hour.
   */
  readonly jitter?: Duration;
  /** Starts paused. Default false. */
  readonly paused?: boolean;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * Declares a cron schedule: each tick starts one invocation of the target (exactly one, across
 * restarts and processes: its idempotency key is `schedule:<name>:<tick time>`). Throws a
 * {@link ScheduleError} for a bad name, pattern, timezone, policy or jitter; the target is
 * checked when the engine starts.
 *
 * @example
 * ```ts
 * const nightly = schedule({
 *   name: 'nightly-report',
 *   cron: '30 2 * * *',
 *   timezone: 'Europe/Berlin',
 *   target: { service: Reports, handler: 'build' },
 *   input: { kind: 'daily' },
 *   missed: 'once',
 * });
 * const app = await startApp({ services: [Reports], schedules: [nightly] });
 * ```
 */
export function schedule<D extends Definition>(
  options: Omit<ScheduleOptions, 'target'> & { readonly target: TypedScheduleTarget<D> },
): ScheduleDeclaration;
export function schedule(options: ScheduleOptions): ScheduleDeclaration;
export function schedule(
  options: Omit<ScheduleOptions, 'target'> & {
    readonly target: ScheduleTarget | TypedScheduleTarget<Definition>;
  },
): ScheduleDeclaration {
  const target = options.target;
  const service = typeof target.service === 'string' ? target.service : target.service?.name;
  const parsed = parseSchedule({ ...options, target: { ...target, service } });
  return { name: parsed.name, spec: parsed.spec, paused: parsed.paused };
}

/**
 * Checks a schedule given as plain data (a declaration, or the JSON body of `POST
 * /schedules`), refusing unknown fields, and returns it normalized.
 */
export function parseSchedule(raw: unknown): ScheduleDeclaration {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw invalid('a schedule is a JSON object: { name, cron, target: { service, handler } }');
  const o = raw as Record<string, unknown>;
  const allowed = ['name', 'cron', 'timezone', 'target', 'input', 'missed', 'jitter', 'paused'];
  for (const k of Object.keys(o))
    if (!allowed.includes(k))
      throw invalid(`unknown field "${k}": a schedule has ${allowed.join(', ')}`, k);
  const name = o.name;
  if (typeof name !== 'string' || !NAME.test(name))
    throw invalid(
      `name must be 1 to 100 letters, digits, ".", "_" or "-", starting with a letter or digit; got ${show(name)}`,
      'name',
    );
  const where = `schedule "${name}"`;
  const timezone = o.timezone === undefined ? undefined : checkTimezone(o.timezone, where);
  const cron = checkCron(o.cron, timezone, where);
  const target = checkTarget(o.target, where);
  const missed = checkMissed(o.missed, where);
  const jitterMs = checkJitter(o.jitter, where);
  if (o.paused !== undefined && typeof o.paused !== 'boolean')
    throw invalid(`${where}: paused must be true or false, not ${show(o.paused)}`, 'paused');
  if (o.input !== undefined) checkJson(o.input, where);
  const spec: ScheduleSpec = {
    cron,
    ...(timezone === undefined ? {} : { timezone }),
    target,
    ...(o.input === undefined ? {} : { input: o.input }),
    missed,
    jitterMs,
  };
  return { name, spec, paused: o.paused === true };
}

/**
 * A croner job that only computes times (made without a function, it never starts a timer).
 * UTC is given as a zero offset: croner's named-timezone arithmetic costs about 300 µs a call,
 * its offset arithmetic a few µs, and UTC has no DST for the two to differ on.
 */
export function cronOf(spec: Pick<ScheduleSpec, 'cron' | 'timezone'>): Cron {
  const tz = spec.timezone;
  return new Cron(spec.cron, {
    paused: true,
    ...(tz === undefined || tz === 'UTC' || tz === 'Etc/UTC' ? { utcOffset: 0 } : { timezone: tz }),
  });
}

function checkCron(value: unknown, timezone: string | undefined, where: string): string {
  if (typeof value !== 'string' || value.trim() === '')
    throw new ScheduleError(
      'invalid_cron',
      `${where}: cron must be a pattern such as "*/5 * * * *" (minute hour day month weekday, or seconds first with six fields), not ${show(value)}`,
      'cron',
    );
  const cron = value.trim().replace(/\s+/g, ' ');
  let job: Cron;
  try {
    job = cronOf({ cron, ...(timezone === undefined ? {} : { timezone }) });
  } catch (err) {
    throw new ScheduleError(
      'invalid_cron',
      `${where}: cron "${cron}" is not valid: ${(err as Error).message.replace(/^CronPattern: /, '')}`,
      'cron',
    );
  }
  // From a fixed time, so whether a pattern is accepted does not depend on the day it is given.
  if (job.nextRun(new Date(Date.UTC(2000, 0, 1))) === null)
    throw new ScheduleError(
      'invalid_cron',
      `${where}: cron "${cron}" never fires (no date matches it)`,
      'cron',
    );
  return cron;
}

function checkTimezone(value: unknown, where: string): string {
  if (typeof value === 'string' && value !== '') {
    try {
      new Intl.DateTimeFormat('en', { timeZone: value });
      return value;
    } catch {
      // reported below
    }
  }
  throw new ScheduleError(
    'invalid_timezone',
    `${where}: timezone must be an IANA name such as "Europe/Berlin" or "UTC", not ${show(value)}`,
    'timezone',
  );
}

function checkTarget(value: unknown, where: string): ScheduleTarget {
  const bad = (why: string) =>
    new ScheduleError('unknown_target', `${where}: target ${why}`, 'target');
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad('must be an object: { service, handler, key? }');
  const t = value as Record<string, unknown>;
  for (const k of Object.keys(t))
    if (!['service', 'handler', 'key'].includes(k))
      throw bad(`has an unknown field "${k}": it has service, handler and key`);
  if (typeof t.service !== 'string' || t.service === '')
    throw bad(`service must be a service, object or workflow name, not ${show(t.service)}`);
  if (typeof t.handler !== 'string' || t.handler === '')
    throw bad(`handler must be a handler name, not ${show(t.handler)}`);
  if (t.key !== undefined && (typeof t.key !== 'string' || t.key === '' || t.key.length > 256))
    throw bad(`key must be a non-empty string of at most 256 characters, not ${show(t.key)}`);
  return {
    service: t.service,
    handler: t.handler,
    ...(t.key === undefined ? {} : { key: t.key }),
  };
}

function checkMissed(value: unknown, where: string): MissedPolicy {
  if (value === undefined) return 'skip';
  if (value === 'skip' || value === 'once') return value;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    const n = o.all;
    if (
      Object.keys(o).length === 1 &&
      typeof n === 'number' &&
      Number.isInteger(n) &&
      n >= 1 &&
      n <= MAX_CATCH_UP
    )
      return { all: n };
  }
  throw invalid(
    `${where}: missed must be "skip", "once" or { "all": N } with N from 1 to ${MAX_CATCH_UP}, not ${show(value)}`,
    'missed',
  );
}

function checkJitter(value: unknown, where: string): number {
  if (value === undefined) return 0;
  let ms: number | undefined;
  if (typeof value === 'number' || typeof value === 'string') {
    try {
      ms = parseDuration(value);
    } catch {
      ms = undefined;
    }
  }
  if (ms === undefined || !Number.isInteger(ms) || ms > MAX_JITTER_MS)
    throw invalid(
      `${where}: jitter must be a duration ("30s", or milliseconds) of at most 1h, not ${show(value)}`,
      'jitter',
    );
  return ms;
}

/** Inputs are stored as JSON: refuse what JSON cannot hold rather than store something else. */
function checkJson(value: unknown, where: string): void {
  let ok = true;
  const walk = (v: unknown, depth: number): void => {
    if (!ok) return;
    if (depth > 64) ok = false;
    else if (v === null || typeof v === 'string' || typeof v === 'boolean') return;
    else if (typeof v === 'number') ok = Number.isFinite(v);
    else if (Array.isArray(v)) for (const x of v) walk(x, depth + 1);
    else if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype)
      for (const x of Object.values(v)) walk(x, depth + 1);
    else ok = false;
  };
  walk(value, 0);
  if (!ok)
    throw invalid(
      `${where}: input must be plain JSON (objects, arrays, strings, finite numbers, booleans, null)`,
      'input',
    );
}

function invalid(message: string, field?: string): ScheduleError {
  return new ScheduleError('invalid_schedule', message, field);
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? typeof value;
  } catch {
    text = typeof value;
  }
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}
