/**
 * Request and response log lines of API clients, through the engine's logger: one line when an
 * attempt is sent, one when it is answered (or failed), each with the method, the path (query
 * values replaced by `***`: they may hold keys), the status, the duration, the attempt's
 * `X-Request-ID` and the integration and operation. Never a header (authorization, API keys
 * live there), never a body unless `logBodies` is on, and then with secret-looking fields
 * replaced by `***` and clipped.
 *
 * Levels: `debug` for the request line and for answers that are not failures; `warn` for an
 * attempt that failed in a way the breaker counts or a retry follows (5xx, 429, timeouts,
 * network errors).
 */

/** Where log lines go (the engine's logger, when installed on an engine). */
export type LogSink = (
  level: 'debug' | 'info' | 'warn' | 'error',
  message: string,
  fields: Record<string, unknown>,
) => void;

/** One attempt, as logged. */
export interface LoggedAttempt {
  integration: string;
  operation: string;
  method: string;
  path: string;
  query: Readonly<Record<string, string>>;
  requestId: string;
  /** 1 for the first attempt of a call. */
  attempt: number;
}

const BODY_LIMIT = 1024;
const FORM = /^[\w.%-]+=[^\s&]*(?:&[\w.%-]+=[^\s&]*)*$/;
const SECRET_KEY = /pass|secret|token|auth|key|credential|signature|cookie|session|card|cvv|ssn/i;

/**
 * Writes request and response lines.
 *
 * @example
 * ```ts
 * const log = new RequestLog((level, message, fields) => console.log(level, message, fields), false);
 * log.sent({ integration: 'GitHubAPI', operation: 'get_user', method: 'GET', path: '/users/octocat', query: {}, requestId: 'r1', attempt: 1 });
 * ```
 */
export class RequestLog {
  constructor(
    private readonly sink: LogSink,
    readonly logBodies: boolean,
  ) {}

  sent(a: LoggedAttempt, body?: unknown): void {
    const path = logPath(a.path, a.query);
    const fields: Record<string, unknown> = {
      integration: a.integration,
      operation: a.operation,
      method: a.method,
      path,
      requestId: a.requestId,
      attempt: a.attempt,
    };
    if (this.logBodies && body !== undefined) fields.body = redactBody(body);
    this.sink(
      'debug',
      `${a.integration}.${a.operation} → ${a.method} ${path} (attempt ${a.attempt}, request ${a.requestId})`,
      fields,
    );
  }

  answered(
    a: LoggedAttempt,
    outcome: { status: number | undefined; durationMs: number; failed: boolean; error?: string },
    body?: unknown,
  ): void {
    const path = logPath(a.path, a.query);
    const durationMs = Math.round(outcome.durationMs * 10) / 10;
    const fields: Record<string, unknown> = {
      integration: a.integration,
      operation: a.operation,
      method: a.method,
      path,
      status: outcome.status ?? null,
      durationMs,
      requestId: a.requestId,
      attempt: a.attempt,
    };
    if (outcome.error !== undefined) fields.error = outcome.error;
    if (this.logBodies && body !== undefined) fields.body = redactBody(body);
    const what =
      outcome.status === undefined ? (outcome.error ?? 'failed') : String(outcome.status);
    this.sink(
      outcome.failed ? 'warn' : 'debug',
      `${a.integration}.${a.operation} ← ${a.method} ${path} ${what} in ${durationMs} ms (attempt ${a.attempt}, request ${a.requestId})`,
      fields,
    );
  }
}

/**
 * The path as logged: the query's names kept, its values replaced by `***`.
 *
 * @example
 * ```ts
 * logPath('/search', { q: 'cats', api_key: 'sk_live_1' }); // '/search?q=***&api_key=***'
 * ```
 */
export function logPath(path: string, query: Readonly<Record<string, string>>): string {
  // A path given with its own query string ('/health?deep=1'): its values are hidden too.
  const q = path.indexOf('?');
  let out = q === -1 ? path : path.slice(0, q);
  const names = q === -1 ? [] : [...new URLSearchParams(path.slice(q + 1)).keys()];
  for (const k in query) names.push(k);
  if (names.length > 0) out += `?${names.map((n) => `${encodeURIComponent(n)}=***`).join('&')}`;
  return out === '' ? '/' : out;
}

/**
 * A body as `logBodies` logs it: fields whose names look secret (`password`, `token`,
 * `api_key`, `authorization`, `card`, ...) replaced by `***`, the whole clipped to 1 KB of JSON.
 *
 * @example
 * ```ts
 * redactBody({ user: 'ada', password: 'hunter2' }); // { user: 'ada', password: '***' }
 * ```
 */
export function redactBody(body: unknown): unknown {
  if (body instanceof Uint8Array) return `<${body.length} bytes>`;
  const redacted = redactValue(body, 0);
  const text = typeof redacted === 'string' ? redacted : JSON.stringify(redacted);
  if (text === undefined) return null;
  if (text.length <= BODY_LIMIT) return redacted;
  return `${text.slice(0, BODY_LIMIT)}… (${text.length} characters)`;
}

function redactValue(v: unknown, depth: number): unknown {
  if (depth > 8) return '…';
  if (Array.isArray(v)) return v.slice(0, 50).map((x) => redactValue(x, depth + 1));
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      out[k] = SECRET_KEY.test(k) ? '***' : redactValue(x, depth + 1);
    }
    return out;
  }
  if (typeof v === 'string') {
    if (/^(?:Bearer|Basic)\s/i.test(v)) return '***';
    // A form-encoded body (an OAuth2 token request): its secret-looking fields too.
    if (FORM.test(v)) {
      const form = new URLSearchParams(v);
      for (const k of new Set(form.keys())) if (SECRET_KEY.test(k)) form.set(k, '***');
      return form.toString();
    }
  }
  return v;
}
