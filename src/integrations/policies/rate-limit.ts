/**
 * The rate limiter as a pure state machine: "at most N requests in any window of length W",
 * adjusted by what the server says (`X-RateLimit-Remaining` / `X-RateLimit-Reset`,
 * `Retry-After`). State in, state out, `now` injected: the state is a small JSON value meant to
 * live in a shared store, so every process that calls an integration draws from one limit.
 *
 * The algorithm is a sliding window kept as a handful of slots instead of one timestamp per
 * request. Each slot holds the first and last admission time and a count; a slot is forgotten
 * only once its *last* request has left the window. That makes the limit strict (no window of
 * length W ever sees more than N admissions, bursts included, unlike a token bucket which can pass
 * 2N across a refill) while the state stays at most `slots + 2` entries, whatever N is. The price
 * is a little caution: a slot straddling the window edge is counted whole until it leaves, which
 * delays admissions by at most `W / slots`.
 *
 * Optionally (`burst`), admissions are also paced by a token bucket holding at most `burst`
 * permits and refilled at N per W, which starts full. The window alone lets a burst of N go at
 * once and then N more exactly W later; pacing spreads them out (N calls take W, not 0), so a
 * provider that counts its window differently (fixed windows, a different start) never sees
 * more than its limit. The window still guarantees the hard limit.
 */

/** The limiter's policy. */
export interface RateLimitOptions {
  /** N: requests allowed in any window. */
  requests: number;
  /** W: the window, in ms. */
  windowMs: number;
  /** How finely the window is tracked (default 10): the state holds at most `slots + 2` entries. */
  slots?: number;
  /**
   * Pace admissions with a token bucket of this many permits, refilled at `requests` per
   * `windowMs` and full when the state is created. Off when undefined.
   */
  burst?: number;
}

/** One slot: `[first admission, last admission, permits admitted]`, timestamps in epoch ms. */
export type RateLimitSlot = [first: number, last: number, count: number];

/** The limiter's state: plain JSON. */
export interface RateLimitState {
  /** Admissions still inside the window, oldest first. */
  slots: RateLimitSlot[];
  /** Nothing is admitted before this time (from `Retry-After`). */
  blockedUntil?: number;
  /** The server's own budget, from rate-limit headers: `remaining` more until `resetAt`. */
  server?: { remaining: number; resetAt: number };
  /** Pacing only: the bucket's permits at time `at` (fractional; it refills continuously). */
  bucket?: { tokens: number; at: number };
}

/** The answer to "may a request go out now?". */
export interface RateLimitDecision {
  allowed: boolean;
  /** 0 when allowed; otherwise how long to wait before asking again. */
  waitMs: number;
  /** Why a request was refused: our own window, the pacing bucket, the server's budget, or a `Retry-After`. */
  reason?: 'window' | 'pace' | 'server-budget' | 'retry-after';
  state: RateLimitState;
}

/** What a response said about the server's limit. */
export interface ServerHints {
  /** Requests the server will still accept in its current window. */
  remaining?: number;
  /** When the server's window resets (epoch ms). */
  resetAt?: number;
  /** How long the server asked us to wait (from `Retry-After`), in ms. */
  retryAfterMs?: number;
}

const DEFAULT_SLOTS = 10;

/**
 * An empty limiter.
 *
 * @example
 * ```ts
 * let state = initialRateLimitState();
 * ```
 */
export function initialRateLimitState(): RateLimitState {
  return { slots: [] };
}

/**
 * Takes `permits` (default 1) from the limiter if it can. When it cannot, `waitMs` is the
 * shortest wait after which the same request would be admitted if nothing else happens; the
 * state is still returned (it may have been pruned).
 *
 * @example
 * ```ts
 * const opts = { requests: 100, windowMs: 1000 };
 * const d = tryAcquire(state, clock.now(), opts);
 * state = d.state; // compare-and-swap into the store
 * if (!d.allowed) await ctx.sleep(d.waitMs); // then ask again
 * ```
 */
export function tryAcquire(
  state: RateLimitState,
  now: number,
  options: RateLimitOptions,
  permits = 1,
  holdMs = 0,
): RateLimitDecision {
  const most = Math.min(options.requests, options.burst ?? Infinity);
  if (!Number.isInteger(permits) || permits < 1 || permits > most) {
    throw new RangeError(
      `tryAcquire: permits must be a whole number from 1 to the limit (${most}), got ${permits}`,
    );
  }
  let next = prune(state, now, options);

  if (next.blockedUntil !== undefined) {
    return { allowed: false, waitMs: next.blockedUntil - now, reason: 'retry-after', state: next };
  }
  if (next.server !== undefined && next.server.remaining < permits) {
    return {
      allowed: false,
      waitMs: next.server.resetAt - now,
      reason: 'server-budget',
      state: next,
    };
  }

  const used = next.slots.reduce((n, s) => n + s[2], 0);
  if (used + permits > options.requests) {
    return {
      allowed: false,
      waitMs: waitForRoom(next.slots, used, permits, now, options),
      reason: 'window',
      state: next,
    };
  }

  let bucket: RateLimitState['bucket'];
  if (options.burst !== undefined) {
    bucket = refill(next.bucket, now, options);
    if (bucket.tokens + EPSILON < permits) {
      const waitMs = Math.max(
        1,
        Math.ceil(((permits - bucket.tokens) * options.windowMs) / options.requests),
      );
      // The bucket's start is recorded even when refusing, so that it refills from now on.
      const kept = next.bucket === undefined ? { ...next, bucket } : next;
      return { allowed: false, waitMs, reason: 'pace', state: kept };
    }
    bucket = { tokens: Math.max(0, bucket.tokens - permits), at: now };
  }

  // A permit handed out for later use (`holdMs`) counts in the window until it has surely been
  // used and then left the window.
  const until = now + Math.max(0, holdMs);
  const slots = next.slots.slice();
  const newest = slots[slots.length - 1];
  if (newest !== undefined && now - newest[0] < slotWidth(options)) {
    slots[slots.length - 1] = [newest[0], Math.max(newest[1], until), newest[2] + permits];
  } else {
    slots.push([now, until, permits]);
  }
  next = { ...next, slots };
  if (bucket !== undefined) next = { ...next, bucket };
  if (next.server !== undefined) {
    next = { ...next, server: { ...next.server, remaining: next.server.remaining - permits } };
  }
  return { allowed: true, waitMs: 0, state: next };
}

/**
 * Folds what a response said into the state. `retryAfterMs` blocks every request until then.
 * `remaining` (with `resetAt`, or else assumed to reset one window from now) caps what is
 * admitted until the reset, on top of the limiter's own window. Hints from an older server
 * window than the one recorded are ignored, and of two hints for the same window the lower
 * `remaining` wins, since responses from concurrent calls arrive in any order.
 *
 * @example
 * ```ts
 * const rl = parseRateLimitHeaders(response.headers, clock.now());
 * state = applyServerHints(state, { ...rl, retryAfterMs: parseRetryAfter(response.headers.get('retry-after'), clock.now()) }, clock.now(), opts);
 * ```
 */
export function applyServerHints(
  state: RateLimitState,
  hints: ServerHints,
  now: number,
  options: RateLimitOptions,
): RateLimitState {
  let next = prune(state, now, options);
  if (hints.retryAfterMs !== undefined && hints.retryAfterMs > 0) {
    const until = now + hints.retryAfterMs;
    if (next.blockedUntil === undefined || until > next.blockedUntil)
      next = { ...next, blockedUntil: until };
  }
  if (hints.remaining !== undefined && Number.isFinite(hints.remaining) && hints.remaining >= 0) {
    const remaining = Math.floor(hints.remaining);
    const resetAt = hints.resetAt ?? now + options.windowMs;
    if (resetAt > now) {
      const current = next.server;
      if (current === undefined || resetAt > current.resetAt) {
        next = { ...next, server: { remaining, resetAt } };
      } else if (resetAt === current.resetAt && remaining < current.remaining) {
        next = { ...next, server: { remaining, resetAt } };
      }
    }
  }
  return next;
}

/**
 * How many permits {@link tryAcquire} would grant at once right now (0 when it would refuse),
 * so a caller can take a block of permits in one go without asking for more than is there.
 *
 * @example
 * ```ts
 * const n = Math.min(wanted, availablePermits(state, now, opts));
 * if (n > 0) state = tryAcquire(state, now, opts, n).state;
 * ```
 */
export function availablePermits(
  state: RateLimitState,
  now: number,
  options: RateLimitOptions,
): number {
  const p = prune(state, now, options);
  if (p.blockedUntil !== undefined) return 0;
  let n = options.requests - p.slots.reduce((k, s) => k + s[2], 0);
  if (p.server !== undefined) n = Math.min(n, p.server.remaining);
  if (options.burst !== undefined) {
    n = Math.min(n, options.burst, Math.floor(refill(p.bucket, now, options).tokens + EPSILON));
  }
  return Math.max(0, n);
}

/**
 * Requests admitted in the current window, for the health API.
 *
 * @example
 * ```ts
 * rateLimitUsage(state, clock.now(), opts); // { used: 37, limit: 100, serverRemaining: 4950 }
 * ```
 */
export function rateLimitUsage(
  state: RateLimitState,
  now: number,
  options: RateLimitOptions,
): { used: number; limit: number; serverRemaining?: number } {
  const p = prune(state, now, options);
  const used = p.slots.reduce((n, s) => n + s[2], 0);
  return p.server === undefined
    ? { used, limit: options.requests }
    : { used, limit: options.requests, serverRemaining: p.server.remaining };
}

/**
 * Validates a state read back from storage; throws a `TypeError` saying what is wrong.
 *
 * @example
 * ```ts
 * const state = parseRateLimitState(JSON.parse(row.value));
 * ```
 */
export function parseRateLimitState(value: unknown): RateLimitState {
  const bad = (why: string): never => {
    throw new TypeError(`not a rate limiter state (${why}): ${JSON.stringify(value)}`);
  };
  if (typeof value !== 'object' || value === null) return bad('not an object');
  const v = value as Record<string, unknown>;
  if (!Array.isArray(v.slots)) return bad('slots must be an array');
  const slots = v.slots.map((s): RateLimitSlot => {
    if (!Array.isArray(s) || s.length !== 3 || !s.every((x) => Number.isFinite(x))) {
      return bad('each slot is [first, last, count]');
    }
    return [s[0] as number, s[1] as number, s[2] as number];
  });
  const out: RateLimitState = { slots };
  if (v.blockedUntil !== undefined) {
    if (!Number.isFinite(v.blockedUntil)) return bad('blockedUntil must be a timestamp');
    out.blockedUntil = v.blockedUntil as number;
  }
  if (v.server !== undefined) {
    const s = v.server as Record<string, unknown> | null;
    if (s === null || !Number.isFinite(s.remaining) || !Number.isFinite(s.resetAt)) {
      return bad('server must be { remaining, resetAt }');
    }
    out.server = { remaining: s.remaining as number, resetAt: s.resetAt as number };
  }
  if (v.bucket !== undefined) {
    const b = v.bucket as Record<string, unknown> | null;
    if (b === null || !Number.isFinite(b.tokens) || !Number.isFinite(b.at)) {
      return bad('bucket must be { tokens, at }');
    }
    out.bucket = { tokens: b.tokens as number, at: b.at as number };
  }
  return out;
}

/** Drops what has expired; returns the same object when nothing did. */
function prune(state: RateLimitState, now: number, options: RateLimitOptions): RateLimitState {
  const cutoff = now - options.windowMs;
  const firstLive = state.slots.findIndex((s) => s[1] > cutoff);
  const dropSlots = firstLive === -1 ? state.slots.length : firstLive;
  const dropBlock = state.blockedUntil !== undefined && now >= state.blockedUntil;
  const dropServer = state.server !== undefined && now >= state.server.resetAt;
  if (dropSlots === 0 && !dropBlock && !dropServer) return state;
  const next: RateLimitState = {
    slots: dropSlots === 0 ? state.slots : state.slots.slice(dropSlots),
  };
  if (state.blockedUntil !== undefined && !dropBlock) next.blockedUntil = state.blockedUntil;
  if (state.server !== undefined && !dropServer) next.server = state.server;
  if (state.bucket !== undefined) next.bucket = state.bucket;
  return next;
}

/** Floating-point slack when comparing fractional tokens with whole permits. */
const EPSILON = 1e-9;

/**
 * The pacing bucket at `now`: refilled since it was last touched. A new bucket starts full, so a
 * fresh app's first `burst` calls go at once (an empty one made the first call of a "100 per
 * hour" API wait 36 s); the window still holds the hard limit.
 */
function refill(
  bucket: RateLimitState['bucket'],
  now: number,
  options: RateLimitOptions,
): { tokens: number; at: number } {
  if (bucket === undefined) return { tokens: options.burst ?? 0, at: now };
  const elapsed = Math.max(0, now - bucket.at);
  const tokens = Math.min(
    options.burst ?? Infinity,
    bucket.tokens + (elapsed * options.requests) / options.windowMs,
  );
  return { tokens, at: Math.max(now, bucket.at) };
}

/** The wait until enough of the oldest slots leave the window to make room for `permits`. */
function waitForRoom(
  slots: readonly RateLimitSlot[],
  used: number,
  permits: number,
  now: number,
  options: RateLimitOptions,
): number {
  let left = used;
  for (const [, last, count] of slots) {
    left -= count;
    // A slot leaves the window when `now - last >= windowMs`.
    if (left + permits <= options.requests) return Math.max(1, last + options.windowMs - now);
  }
  return options.windowMs;
}

function slotWidth(options: RateLimitOptions): number {
  return options.windowMs / (options.slots ?? DEFAULT_SLOTS);
}
