/**
 * Talking to the admin API: the page's own origin, with the token the user logged in with
 * (kept in sessionStorage only, so it dies with the tab). A 401 anywhere asks for a token.
 */

const TOKEN_KEY = 'keel.token';

/** An answer other than 2xx, with the API's `{ code, message }`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
  /** The route does not exist on this server (an older Keel, or not built yet). */
  get notAvailable(): boolean {
    return this.status === 404 || this.status === 405 || this.status === 501;
  }
}

export function getToken(): string | undefined {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
  } catch {
    return undefined;
  }
}

export function setToken(token: string | undefined): void {
  if (token === undefined) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

/** Called whenever the API answers 401: the app shows the login form. */
export function onUnauthorized(listener: Listener): () => void {
  unauthorizedListeners.add(listener);
  return () => unauthorizedListeners.delete(listener);
}

/**
 * Calls the admin API. `body` is sent as JSON. Resolves with the parsed answer; rejects with
 * an {@link ApiError} (status 0 when the server could not be reached).
 */
export async function api<T = any>(
  path: string,
  options: { method?: string; body?: unknown } = {},
): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = getToken();
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method: options.method ?? 'GET',
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError(0, 'unreachable', 'the admin server cannot be reached; is Keel running?');
  }
  const text = await res.text();
  let value: any;
  try {
    value = text === '' ? undefined : JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (!res.ok) {
    const code = typeof value?.code === 'string' ? value.code : `http_${res.status}`;
    const message =
      typeof value?.message === 'string' ? value.message : `${res.status} ${res.statusText}`;
    if (res.status === 401) for (const l of unauthorizedListeners) l();
    throw new ApiError(res.status, code, message);
  }
  return value as T;
}

/** A path segment, encoded. */
export const seg = (s: string): string => encodeURIComponent(s);

/** `?a=1&b=2` from the set values of `params` (empty when none). */
export function qs(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}
