/**
 * The CLI's HTTP client for the admin API and the ingress: JSON in, JSON out, and every
 * failure turned into a {@link CliError} with the exit code scripts rely on.
 */
import { CliError, EXIT, exitForStatus } from './errors.js';

/** Where the commands send their requests, from the global options and the environment. */
export interface Target {
  /** Admin API base URL, without a trailing slash. */
  admin: string;
  /** Ingress base URL, without a trailing slash. */
  ingress: string;
  /** Bearer token of the admin API. */
  token?: string;
  /** An ingress API key (when the app sets `KEEL_INGRESS_KEYS`). */
  apiKey?: string;
}

export interface RequestOptions {
  method?: 'GET' | 'POST' | 'PUT' | 'DELETE';
  /** Sent as JSON (`undefined`: no body). */
  body?: unknown;
  headers?: Record<string, string>;
}

/** A successful answer: its status and parsed body (`undefined` when empty). */
export interface Answer<T = unknown> {
  status: number;
  body: T;
  headers: Headers;
}

/** A request to the admin API (with the token). */
export function admin<T = unknown>(
  target: Target,
  path: string,
  options: RequestOptions = {},
): Promise<Answer<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (target.token !== undefined) headers.authorization = `Bearer ${target.token}`;
  return request<T>(`${target.admin}${path}`, { ...options, headers }, 'admin API');
}

/** A request to the ingress, with the API key if there is one (never the admin token). */
export function ingress<T = unknown>(
  target: Target,
  path: string,
  options: RequestOptions = {},
): Promise<Answer<T>> {
  const headers: Record<string, string> = { ...options.headers };
  if (target.apiKey !== undefined) headers.authorization = `Bearer ${target.apiKey}`;
  return request<T>(`${target.ingress}${path}`, { ...options, headers }, 'ingress');
}

async function request<T>(url: string, options: RequestOptions, what: string): Promise<Answer<T>> {
  const headers: Record<string, string> = { accept: 'application/json', ...options.headers };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(url, {
      method: options.method ?? 'GET',
      headers,
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
  } catch (err) {
    throw unreachable(url, what, err);
  }
  const text = await res.text();
  let body: unknown;
  if (text !== '') {
    try {
      body = JSON.parse(text);
    } catch {
      body = text;
    }
  }
  if (res.status >= 400) throw fromAnswer(res.status, body, url, what);
  return { status: res.status, body: body as T, headers: res.headers };
}

/** The server's `{ code, message }` as a CliError with the matching exit code. */
function fromAnswer(status: number, body: unknown, url: string, what: string): CliError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as {
    code?: unknown;
    message?: unknown;
  };
  const code = typeof b.code === 'string' ? b.code : `http_${status}`;
  let message =
    typeof b.message === 'string'
      ? b.message
      : typeof body === 'string' && body !== ''
        ? body.slice(0, 500)
        : `HTTP ${status} from ${url}`;
  if (status === 401)
    message +=
      what === 'ingress'
        ? ' (give an ingress API key with --api-key or KEEL_API_KEY)'
        : ' (give the admin token with --token or KEEL_TOKEN / KEEL_ADMIN_TOKEN)';
  return new CliError(code, message, exitForStatus(status));
}

function unreachable(url: string, what: string, err: unknown): CliError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const reason = cause?.code ?? cause?.message ?? (err as Error).message;
  const origin = safeOrigin(url);
  const hint =
    what === 'admin API'
      ? 'is the app running? Point --url (KEEL_ADMIN_URL) at its admin API'
      : 'is the app running? Point --ingress (KEEL_INGRESS_URL) at its ingress';
  return new CliError(
    'unreachable',
    `cannot reach the ${what} at ${origin} (${reason}): ${hint}`,
    EXIT.unreachable,
    {
      cause: err,
    },
  );
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** One path segment, escaped (`/` in a key stays inside its segment). */
export function seg(s: string): string {
  return encodeURIComponent(s);
}

/** A query string from the defined entries (`?a=1&b=2`, or `''`). */
export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}
