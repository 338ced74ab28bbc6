/**
 * The remote client's errors. An answer of the ingress (`{ code, message }` with its status)
 * becomes the error class Keel owns for its code, as a journaled error does (see
 * `fromErrorInfo`): a handler's `TerminalError` arrives as a `TerminalError` with its code and
 * status, `validation_failed` as a `ValidationError`, `not_found` as a `NotFoundError`, and so
 * on. The client adds two errors of its own: no answer at all, and an answer that is not Keel's.
 *
 * Only `../core/errors.js` is imported at run time: it imports nothing, so a browser bundle of
 * the client stays free of the engine.
 */
import { fromErrorInfo, KeelError } from '../core/errors.js';

/**
 * No answer: the connection was refused, reset or timed out (or the browser reported a failed
 * fetch), on every attempt the retry policy allowed. `attempts` says how many were made; the
 * last failure is the `cause`. A request that was not idempotent was tried once, and may or may
 * not have reached the app: retry it with an `idempotencyKey` to be sure it runs once. Not
 * terminal: a Keel step that calls another app through this client retries it. HTTP 502.
 *
 * @example
 * ```ts
 * try {
 *   await keel.serviceClient<typeof Mailer>('Mailer').send(mail, { idempotencyKey: mail.id });
 * } catch (err) {
 *   if (err instanceof NetworkError) console.warn(`unreachable after ${err.attempts} attempts`);
 * }
 * ```
 */
export class NetworkError extends KeelError {
  readonly attempts: number;

  constructor(message: string, attempts: number, cause: unknown) {
    super(message, { code: 'network_error', status: 502, cause });
    this.attempts = attempts;
  }
}

/**
 * An answer that is not the ingress's: an error status without a JSON `{ code, message }` body
 * (a proxy's HTML error page), or a success whose body is not JSON. `status` is the answer's
 * HTTP status (502 when it was a success). Not terminal.
 *
 * @example
 * ```ts
 * if (err instanceof UnexpectedAnswerError && err.status === 404) {
 *   console.error('the URL does not point at a Keel ingress');
 * }
 * ```
 */
export class UnexpectedAnswerError extends KeelError {
  constructor(message: string, status: number) {
    super(message, { code: 'unexpected_answer', status: status >= 400 ? status : 502 });
  }
}

/**
 * Statuses that say "not now" rather than "no": answered as plain, non-terminal `KeelError`s
 * with their code and status (and retried first, for an idempotent request).
 */
export const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);

/**
 * The error of an error answer. `body` is the parsed JSON body, if it was JSON.
 *
 * A transient status, or the ingress's `internal` (a fault of the server, not of the request),
 * gives a plain `KeelError`, which is not terminal; any other `{ code, message }` is rebuilt as
 * the class registered for its code (a `TerminalError` when none is), which is terminal.
 */
export function errorOfAnswer(status: number, body: unknown, path: string): KeelError {
  const info = errorBody(body);
  if (info === undefined) {
    return new UnexpectedAnswerError(
      `${path} answered HTTP ${status} without a Keel error body: is the URL a Keel ingress, or did a proxy answer?`,
      status,
    );
  }
  if (TRANSIENT_STATUSES.has(status) || info.code === 'internal')
    return new KeelError(info.message, { code: info.code, status });
  return fromErrorInfo({ code: info.code, message: info.message, status });
}

function errorBody(body: unknown): { code: string; message: string } | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const { code, message } = body as { code?: unknown; message?: unknown };
  if (typeof code !== 'string' || code === '') return undefined;
  return { code, message: typeof message === 'string' ? message : code };
}
