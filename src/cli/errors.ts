/**
 * Exit codes of the `keel` command and the error that carries one. Scripts match on the code,
 * so the numbers are part of the CLI's contract: never renumber, only add.
 */

/** The exit codes, documented in `keel --help` and docs/cli.md. */
export const EXIT = {
  /** Done. */
  ok: 0,
  /** The server answered an error not covered below (400, 5xx, a handler's terminal error...). */
  failed: 1,
  /** Bad arguments or options: nothing was sent. */
  usage: 2,
  /** 404: no such invocation, service, key, endpoint, delivery or integration. */
  notFound: 3,
  /** 401 or 403: no token, a wrong token, or a read-only token asking for a change. */
  unauthorized: 4,
  /** The server (or database) could not be reached. */
  unreachable: 5,
  /** 409: the invocation's state forbids the action (e.g. it already finished). */
  conflict: 6,
  /** A bulk action finished, but some of the invocations it matched failed. */
  partial: 7,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** The help text's table of exit codes (also in docs/cli.md). */
export const EXIT_CODES_HELP = `Exit codes:
  0  ok
  1  the server answered an error (4xx/5xx not listed below, a handler's error)
  2  usage error: bad arguments or options
  3  not found (404)
  4  unauthorized or forbidden (401/403): check --token / KEEL_TOKEN
  5  cannot connect to the server or database
  6  conflict (409): the invocation's state forbids the action
  7  a bulk action finished with some failures`;

/** An error the CLI reports as `{ code, message }` and exits with `exit`. */
export class CliError extends Error {
  readonly code: string;
  readonly exit: ExitCode;

  constructor(code: string, message: string, exit: ExitCode, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliError';
    this.code = code;
    this.exit = exit;
  }
}

/** Bad input on the command line: exit 2. */
export function usage(message: string): CliError {
  return new CliError('usage', message, EXIT.usage);
}

/** The exit code an HTTP error status stands for. */
export function exitForStatus(status: number): ExitCode {
  if (status === 404) return EXIT.notFound;
  if (status === 401 || status === 403) return EXIT.unauthorized;
  if (status === 409) return EXIT.conflict;
  return EXIT.failed;
}
