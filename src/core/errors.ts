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

/** A step or invocation failed on every attempt its retry policy allowed. */
export class RetriesExhaustedError extends TerminalError {
  constructor(what: string, attempts: number, last: unknown) {
    super(
      `${what} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}; last error: ${errorMessage(last)}. ` +
        'Fix the cause and invoke again, or raise maxAttempts in the retry policy.',
      { code: 'retries_exhausted', status: 500, cause: last },
    );
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
        'The handler changed while this invocation was in flight; restore the old step order or let the invocation finish on the old code.',
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
}

/** Turns any thrown value into the JSON shape stored in the journal. */
export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof KeelError) return { code: err.code, message: err.message, status: err.status };
  return { code: 'internal', message: errorMessage(err) };
}

/** Rebuilds a terminal error from its stored shape, so a replayed failure throws the same error. */
export function fromErrorInfo(info: ErrorInfo): TerminalError {
  if (info.code === 'cancelled') return new CancelledError(info.message);
  // Kills stored by older versions carry status 500; a kill is a 409 like a cancellation.
  if (info.code === 'killed')
    return new TerminalError(info.message, { code: 'killed', status: 409 });
  if (info.code === 'timeout') return new TimeoutError(info.message);
  return new TerminalError(info.message, { code: info.code, status: info.status ?? 500 });
}

/** True for errors that must not be retried. */
export function isTerminal(err: unknown): boolean {
  return err instanceof TerminalError;
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
