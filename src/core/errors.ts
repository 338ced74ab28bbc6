/**
 * The error tree. Every error Keel raises has a stable string `code` that programs can match
 * on and a message that says what happened and what to do. `TerminalError` is the one users
 * throw; the rest are raised by Keel itself.
 */

/** Options shared by every Keel error. */
export interface KeelErrorOptions {
  /** A stable, machine-readable code, e.g. `"not_found"`. */
  code?: string;
  /** HTTP status the ingress answers with when this error reaches a client. */
  status?: number;
  /** The underlying error, if any. */
  cause?: unknown;
}

/** Base class of every error Keel raises. */
export class KeelError extends Error {
  readonly code: string;
  readonly status: number;

  constructor(message: string, options: KeelErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? 'internal';
    this.status = options.status ?? 500;
  }
}

/**
 * An error that must not be retried. Thrown from a handler or a `ctx.run` step, it ends the
 * step or invocation at once and propagates to the caller with its `code` and `status`.
 *
 * @example
 * ```ts
 * if (balance < amount) {
 *   throw new TerminalError('insufficient funds', { code: 'insufficient_funds', status: 409 });
 * }
 * ```
 */
export class TerminalError extends KeelError {
  constructor(message: string, options: KeelErrorOptions = {}) {
    super(message, {
      code: options.code ?? 'terminal',
      status: options.status ?? 500,
      cause: options.cause,
    });
  }
}

/**
 * A step or invocation failed on every attempt its retry policy allowed. `attempts` is how many
 * attempts were made; the last attempt's error is the `cause` (live only: a cause is not
 * journaled, its message is part of `message`).
 *
 * @example
 * ```ts
 * try {
 *   await ctx.run('charge', () => psp.charge(order), { retry: { maxAttempts: 5 } });
 * } catch (err) {
 *   if (err instanceof RetriesExhaustedError) return refundAndCancel(ctx, order);
 *   throw err;
 * }
 * ```
 */
export class RetriesExhaustedError extends TerminalError {
  readonly attempts: number;

  constructor(what: string, attempts: number, last: unknown) {
    super(
      `${what} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}; last error: ${errorMessage(last)}. ` +
        'Fix the cause and invoke again, or raise maxAttempts in the retry policy.',
      { code: 'retries_exhausted', status: 500, cause: last },
    );
    this.attempts = attempts;
  }
}

/** Replay met a journal entry that does not match what the handler code does now. */
export class NonDeterminismError extends KeelError {
  constructor(
    readonly entryIndex: number,
    readonly recorded: string,
    readonly attempted: string,
  ) {
    super(
      `journal mismatch at entry ${entryIndex}: the journal recorded ${recorded} but the code now attempted ${attempted}. ` +
        'The handler changed while this invocation was in flight; restore the old step order or let the invocation finish on the old code, and gate the change with ctx.patched() so in-flight invocations keep the old code.',
      { code: 'non_determinism', status: 500 },
    );
  }
}

/** Input (a request body, a call argument) that Keel or a schema refused. */
export class ValidationError extends TerminalError {
  constructor(message: string, cause?: unknown) {
    super(message, { code: 'validation_failed', status: 400, cause });
  }
}

/** Something that was asked for does not exist. */
export class NotFoundError extends KeelError {
  constructor(message: string) {
    super(message, { code: 'not_found', status: 404 });
  }
}

/** The request conflicts with the current state (e.g. resolving an awakeable twice). HTTP 409. */
export class ConflictError extends TerminalError {
  constructor(message: string, code = 'conflict') {
    super(message, { code, status: 409 });
  }
}

/**
 * The invocation was cancelled. Handlers see it at their next await after a cancel request;
 * they may still run compensating steps before they end.
 */
export class CancelledError extends TerminalError {
  constructor(message = 'the invocation was cancelled') {
    super(message, { code: 'cancelled', status: 409 });
  }
}

/** A combinator's timeout (`orTimeout`) elapsed first. */
export class TimeoutError extends TerminalError {
  constructor(message: string) {
    super(message, { code: 'timeout', status: 408 });
  }
}

/**
 * A delay that is negative, not a finite number, or longer than the bound (`MAX_DELAY_MS`, 365
 * days). Terminal: sending it again cannot succeed. HTTP 400.
 */
export class InvalidDelayError extends TerminalError {
  constructor(message: string) {
    super(message, { code: 'invalid_delay', status: 400 });
  }
}

/** A misuse of the API that is a bug in the calling code (e.g. `ctx.set` in a shared handler). */
export class UsageError extends TerminalError {
  constructor(message: string) {
    super(message, { code: 'usage', status: 500 });
  }
}

/** The plain JSON shape of an error as stored in the journal and sent over HTTP. */
export interface ErrorInfo {
  code: string;
  message: string;
  status?: number;
  /**
   * The error's own fields beyond `code`, `status` and `message` (e.g. `attempts` of a
   * {@link RetriesExhaustedError}, `failure` of an integration call error), in their JSON form.
   * A field with no JSON form is left out.
   */
  fields?: Record<string, unknown>;
}

/**
 * The codes Keel's core raises. With the engine's and the store's codes they make up
 * `KeelErrorCode` (exported from `keel`).
 */
export type CoreErrorCode =
  | 'internal'
  | 'terminal'
  | 'retries_exhausted'
  | 'non_determinism'
  | 'validation_failed'
  | 'not_found'
  | 'conflict'
  | 'cancelled'
  | 'timeout'
  | 'invalid_delay'
  | 'usage'
  /** A value returned or passed by a handler has no JSON form. */
  | 'not_json'
  /** An awakeable or a durable promise was rejected. */
  | 'rejected';

/** The codes a {@link ConflictError} is raised with by the engine (HTTP 409 each). */
export const CONFLICT_CODES = [
  'conflict',
  'already_completed',
  'already_finished',
  'promise_already_completed',
  'not_finished',
  'not_paused',
  'paused',
] as const;

/** A Keel error class, as the registry holds it (its constructor is never called to rebuild). */
export type KeelErrorClass = abstract new (...args: any[]) => KeelError;

/**
 * The registry of error classes by code: the one place that decides which class a stored error
 * comes back as. The core's classes are listed here; classes of outer layers (integrations,
 * webhooks, the store) add themselves with {@link registerErrorClass} next to their definition,
 * since the core imports nothing of theirs.
 */
const classes = new Map<string, KeelErrorClass>();

/**
 * Makes errors stored with one of `codes` come back from the journal as instances of `cls`, so
 * `instanceof` and `code` agree after a replay and across a call. A code belongs to one class;
 * registering it for another is a bug, reported at once.
 */
export function registerErrorClass(cls: KeelErrorClass, codes: readonly string[]): void {
  for (const code of codes) {
    const had = classes.get(code);
    if (had && had !== cls)
      throw new UsageError(
        `error code "${code}" is registered to ${had.name} already; ${cls.name} needs a code of its own`,
      );
    classes.set(code, cls);
  }
}

const CORE_CLASSES: ReadonlyArray<readonly [KeelErrorClass, readonly string[]]> = [
  [TerminalError, ['terminal']],
  [RetriesExhaustedError, ['retries_exhausted']],
  [NonDeterminismError, ['non_determinism']],
  [ValidationError, ['validation_failed']],
  [NotFoundError, ['not_found']],
  [ConflictError, CONFLICT_CODES],
  [CancelledError, ['cancelled']],
  [TimeoutError, ['timeout']],
  [InvalidDelayError, ['invalid_delay']],
  [UsageError, ['usage']],
];
for (const [cls, codes] of CORE_CLASSES) registerErrorClass(cls, codes);

/** Fields every error has, which `ErrorInfo` carries in its own properties (or not at all). */
const NOT_FIELDS = new Set(['name', 'code', 'status', 'message', 'stack', 'cause', '__proto__']);

/**
 * Marks errors rebuilt from a stored outcome: that outcome is final, so the error is terminal
 * whatever its class (a `NotFoundError` is retried when thrown live, not when it is the recorded
 * result of a call).
 */
const RECORDED = Symbol('keel.recorded');

/** Turns any thrown value into the JSON shape stored in the journal. */
export function toErrorInfo(err: unknown): ErrorInfo {
  if (!(err instanceof KeelError)) return { code: 'internal', message: errorMessage(err) };
  const info: ErrorInfo = { code: err.code, message: err.message, status: err.status };
  let fields: Record<string, unknown> | undefined;
  for (const key of Object.keys(err)) {
    if (NOT_FIELDS.has(key)) continue;
    const value = jsonForm((err as unknown as Record<string, unknown>)[key]);
    if (value === undefined) continue;
    (fields ??= {})[key] = value;
  }
  if (fields) info.fields = fields;
  return info;
}

function jsonForm(value: unknown): unknown {
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol')
    return undefined;
  try {
    const text = JSON.stringify(value);
    return text === undefined ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined; // a cycle or a BigInt: left out rather than failing the whole outcome
  }
}

/**
 * Rebuilds an error from its stored shape, as an instance of the class registered for its code
 * (a `TerminalError` with the code kept when none is), with its message, status and fields. The
 * same happens on first execution and on replay, so a handler sees one error either way. The
 * result is terminal (see {@link isTerminal}): a recorded failure is final.
 */
export function fromErrorInfo(info: ErrorInfo): KeelError {
  // Kills stored by older versions carry status 500; a kill is a 409 like a cancellation.
  const status = info.code === 'killed' ? 409 : (info.status ?? 500);
  const cls = classes.get(info.code) ?? TerminalError;
  // The class's own constructor composes its message from arguments that are not stored; the
  // base constructor with the class as `new.target` gives the right prototype and name.
  const err = Reflect.construct(
    KeelError,
    [info.message, { code: info.code, status }],
    cls,
  ) as KeelError;
  if (info.fields) {
    for (const [key, value] of Object.entries(info.fields)) {
      if (NOT_FIELDS.has(key)) continue;
      Object.defineProperty(err, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
  }
  Object.defineProperty(err, RECORDED, { value: true });
  return err;
}

/** True for errors that must not be retried: terminal ones, and any recorded outcome. */
export function isTerminal(err: unknown): boolean {
  return (
    err instanceof TerminalError ||
    (err instanceof KeelError && (err as unknown as Record<symbol, unknown>)[RECORDED] === true)
  );
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err);
  } catch {
    return String(err);
  }
}
