/**
 * Flow-control queues: how many invocations of a set of handlers run at once, per key, and how
 * often they start. Declared here (pure), attached to handlers with `handler({ queue }, fn)`,
 * enforced by the engine through the store (so every process sharing a PostgreSQL database
 * applies the same limits to the same counts).
 */
import { parseDuration, type Duration } from './duration.js';
import { UsageError } from './errors.js';

/** At most `limit` starts in any window of length `period` (sliding). */
export interface RateLimitOptions {
  limit: number;
  period: Duration;
}

/** What {@link queue} takes. */
export interface QueueOptions {
  /** Unique among the engine's queues; shown in the admin API. */
  name: string;
  /** Invocations of the queue running at once (admitted and not finished). Default: no limit. */
  concurrency?: number;
  /** Starts of the whole queue. Default: no limit. */
  rateLimit?: RateLimitOptions;
  /** Limits per key (the handler's `queueKey`: a tenant, a user). */
  perKey?: {
    /** Invocations of one key running at once. Default: no limit. */
    concurrency?: number;
    /** Starts of one key. Default: no limit. */
    rateLimit?: RateLimitOptions;
  };
}

/** A declared queue: give it to handlers as `handler({ queue: Emails }, fn)`. */
export interface Queue {
  readonly name: string;
  readonly concurrency?: number;
  readonly rate?: { limit: number; periodMs: number };
  readonly keyConcurrency?: number;
  readonly keyRate?: { limit: number; periodMs: number };
}

/** Largest `limit` of a rate (its start log holds slots, whatever the limit: see src/core/sliding-window.ts). */
const MAX_RATE_LIMIT = 100_000;

function count(what: string, n: number | undefined): number | undefined {
  if (n === undefined) return undefined;
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${what} must be a whole number of at least 1 (got ${String(n)})`);
  return n;
}

function rate(
  what: string,
  r: RateLimitOptions | undefined,
): { limit: number; periodMs: number } | undefined {
  if (r === undefined) return undefined;
  const limit = count(`${what}.limit`, r.limit)!;
  if (limit > MAX_RATE_LIMIT)
    throw new UsageError(`${what}.limit must be at most ${MAX_RATE_LIMIT} (got ${limit})`);
  let periodMs: number;
  try {
    periodMs = parseDuration(r.period);
  } catch (err) {
    throw new UsageError(`${what}.period: ${(err as Error).message}`);
  }
  if (!(periodMs >= 1)) throw new UsageError(`${what}.period must be at least 1ms`);
  return { limit, periodMs };
}

/**
 * Declares a flow-control queue. Invocations of the handlers that name it wait in the store
 * (status `queued`, costing storage, not memory) until its limits let them start; keys take
 * turns, so one tenant's backlog cannot starve another's; within a key, higher `priority`
 * first, then arrival order. A slot is held from the start until the invocation finishes,
 * suspensions included (one invocation per key at a time means exactly that).
 *
 * @example
 * ```ts
 * const Emails = queue({
 *   name: 'emails',
 *   concurrency: 3,
 *   rateLimit: { limit: 100, period: '1s' },
 *   perKey: { concurrency: 1 },
 * });
 * const Mailer = service({
 *   name: 'Mailer',
 *   handlers: {
 *     send: handler(
 *       { queue: Emails, queueKey: (m: Mail) => m.tenant, priority: (m: Mail) => (m.vip ? 10 : 0) },
 *       async (ctx, m: Mail) => ctx.run('smtp', () => smtp.send(m)),
 *     ),
 *   },
 * });
 * ```
 */
export function queue(options: QueueOptions): Queue {
  if (typeof options.name !== 'string' || options.name.length === 0)
    throw new UsageError('a queue needs a name (a non-empty string)');
  const q: {
    name: string;
    concurrency?: number;
    rate?: { limit: number; periodMs: number };
    keyConcurrency?: number;
    keyRate?: { limit: number; periodMs: number };
  } = { name: options.name };
  const where = `queue "${options.name}"`;
  const c = count(`${where}: concurrency`, options.concurrency);
  if (c !== undefined) q.concurrency = c;
  const r = rate(`${where}: rateLimit`, options.rateLimit);
  if (r) q.rate = r;
  const kc = count(`${where}: perKey.concurrency`, options.perKey?.concurrency);
  if (kc !== undefined) q.keyConcurrency = kc;
  const kr = rate(`${where}: perKey.rateLimit`, options.perKey?.rateLimit);
  if (kr) q.keyRate = kr;
  return Object.freeze(q);
}
