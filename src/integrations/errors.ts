/**
 * The errors of declared integrations. Each one says which integration (and, for a file, which
 * line and column) is wrong, what was found and what is accepted, so the fix is obvious from the
 * message alone. None of them ever repeats a secret value.
 */
import { KeelError, registerErrorClass, TerminalError } from '../core/errors.js';

/**
 * An integration declaration (TypeScript or file) that Keel refuses. `path` is the field in
 * TypeScript terms (`circuitBreaker.failures`, `operations.get_user.path`), `detail` the
 * complaint without the field, so a file loader can restate it with a line and column.
 *
 * @example
 * ```ts
 * try {
 *   integration({ name: 'GitHub', baseUrl: 'https://api.github.com', circuitBreaker: { failures: 0, window: '1m', reset: '30s' } });
 * } catch (err) {
 *   if (err instanceof IntegrationConfigError) console.error(err.path, err.detail);
 * }
 * ```
 */
export class IntegrationConfigError extends TerminalError {
  constructor(
    readonly integration: string,
    readonly path: string,
    readonly detail: string,
  ) {
    super(`integration ${integration}: ${path === '' ? '' : `${path} `}${detail}`, {
      code: 'invalid_integration',
      status: 500,
    });
  }
}

/** Where a declaration error is in its source: 1-based line and column, and the file if known. */
export interface SourcePosition {
  line: number;
  column: number;
  file?: string;
}

/**
 * A declarative integrations file (the `integration X { ... }` syntax or its JSON form) that
 * does not parse or does not describe a valid integration. The message starts with the
 * position: `integrations.keel, line 4, column 12: expected a duration like 30s after 'reset after'`.
 *
 * @example
 * ```ts
 * try {
 *   parseIntegrations(text, { file: 'integrations.keel' });
 * } catch (err) {
 *   if (err instanceof IntegrationDeclarationError) console.error(`${err.line}:${err.column}`, err.message);
 * }
 * ```
 */
export class IntegrationDeclarationError extends TerminalError {
  readonly line: number;
  readonly column: number;
  readonly file: string | undefined;

  constructor(at: SourcePosition, detail: string, cause?: unknown) {
    // A syntax error may quote a misplaced URL with a password (`scheme://user:secret@host`).
    super(`${formatPosition(at)}: ${detail.replace(/(\/\/[^\s/:@'"]*:)[^\s/@'"]+@/g, '$1***@')}`, {
      code: 'invalid_declaration',
      status: 500,
      cause,
    });
    this.line = at.line;
    this.column = at.column;
    this.file = at.file;
  }
}

/**
 * A secret (or other `env(NAME)` reference) was needed for a call and the environment does not
 * have it. Raised at use time, not at load time, so a process that never calls the integration
 * does not need its credentials.
 *
 * @example
 * ```ts
 * try {
 *   resolveSecret(env('GITHUB_TOKEN'), { integration: 'GitHubAPI', field: 'auth.token' });
 * } catch (err) {
 *   if (err instanceof MissingSecretError) console.error(err.variable); // 'GITHUB_TOKEN'
 * }
 * ```
 */
export class MissingSecretError extends KeelError {
  constructor(
    readonly integration: string,
    readonly field: string,
    readonly variable: string,
    empty: boolean,
  ) {
    super(
      `integration ${integration}: ${field} reads the environment variable ${variable}, which is ${empty ? 'empty' : 'not set'}. ` +
        `Set ${variable} in the environment of the process that runs Keel.`,
      { code: 'missing_secret', status: 500 },
    );
  }
}

function formatPosition(at: SourcePosition): string {
  return `${at.file === undefined ? '' : `${at.file}, `}line ${at.line}, column ${at.column}`;
}

/** Why a call failed, as {@link IntegrationCallError} reports it. */
export type CallFailureReason =
  /** The server answered with a status the classifier calls terminal (most 4xx). */
  | 'rejected'
  /** Every attempt the retry policy allowed failed. */
  | 'retries-exhausted'
  /** The circuit breaker is open and no fallback is declared. */
  | 'circuit-open'
  /** The request could not be built (missing parameter, missing secret, bad body). */
  | 'invalid-request'
  /** A GraphQL response carried `errors` and no `data`. */
  | 'graphql-errors'
  /** OAuth2 authorization code: the account never connected (or was disconnected). */
  | 'not-connected'
  /** OAuth2 authorization code: the provider refused the refresh token; the user must connect again. */
  | 'reconnect-required'
  /** OAuth2 authorization code: the account did not grant a scope the operation needs. */
  | 'scope-missing';

/** What is kept of a failed call: plain JSON, so it is journaled and replayed identically. */
export interface CallFailure {
  integration: string;
  operation: string;
  reason: CallFailureReason;
  message: string;
  /** The last HTTP status the server answered, if it answered. */
  status?: number;
  /** The classifier's verdict on the last attempt (`server-error`, `timeout`, ...). */
  classification?: string;
  /** Attempts made (0 when refused before sending). */
  attempts: number;
  /** The last response's body (parsed JSON, or text cut to 2 KiB). */
  body?: unknown;
  /** Circuit open: how long until the breaker lets a probe through. */
  retryAfterMs?: number;
}

const REASON_CODE: Record<CallFailureReason, string> = {
  rejected: 'integration_rejected',
  'retries-exhausted': 'integration_unavailable',
  'circuit-open': 'circuit_open',
  'invalid-request': 'integration_invalid_request',
  'graphql-errors': 'integration_graphql_errors',
  'not-connected': 'oauth_not_connected',
  'reconnect-required': 'oauth_reconnect_required',
  'scope-missing': 'oauth_scope_missing',
};

/** Failures that only the user can fix (connect, reconnect, grant a scope): HTTP 403. */
const ACCOUNT_REASONS: ReadonlySet<CallFailureReason> = new Set([
  'not-connected',
  'reconnect-required',
  'scope-missing',
]);

/**
 * An integration call that did not produce a result. It is terminal (the call's own retry policy
 * already ran), so a handler can catch it and compensate; `code` says why:
 * `integration_rejected` (a terminal HTTP status, see `status`), `integration_unavailable`
 * (retries exhausted), `circuit_open`, `integration_invalid_request`,
 * `integration_graphql_errors`, and for OAuth2 connected accounts `oauth_not_connected`,
 * `oauth_reconnect_required`, `oauth_scope_missing`. Its HTTP status is 502 (a dependency
 * failed), except an invalid request (500: a bug in the caller), an open circuit (503) and an
 * account the user must (re)connect or grant more scopes to (403).
 *
 * Live and on replay the same error is thrown: its fields come from the journaled outcome.
 *
 * @example
 * ```ts
 * try {
 *   await use(ctx, stripe).create_charge({ amount: 500 });
 * } catch (err) {
 *   if (err instanceof IntegrationCallError && err.failure.status === 402) return 'card declined';
 *   throw err;
 * }
 * ```
 */
export class IntegrationCallError extends TerminalError {
  constructor(readonly failure: CallFailure) {
    super(`${failure.integration}.${failure.operation}: ${failure.message}`, {
      code: REASON_CODE[failure.reason],
      status:
        failure.reason === 'invalid-request'
          ? 500
          : failure.reason === 'circuit-open'
            ? 503
            : ACCOUNT_REASONS.has(failure.reason)
              ? 403
              : 502,
    });
  }

  /** The server's HTTP status on the last attempt, if it answered. */
  get httpStatus(): number | undefined {
    return this.failure.status;
  }
}

// Rebuilt from the journal with their class and fields (see `fromErrorInfo`).
registerErrorClass(IntegrationConfigError, ['invalid_integration']);
registerErrorClass(IntegrationDeclarationError, ['invalid_declaration']);
registerErrorClass(MissingSecretError, ['missing_secret']);
registerErrorClass(IntegrationCallError, Object.values(REASON_CODE));
