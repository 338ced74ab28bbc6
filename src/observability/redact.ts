/**
 * What Keel's logger hides. Two layers, because one is not enough:
 *
 * - pino's `redact` with exact paths ({@link redactPaths}): the well-known names (`authorization`,
 *   `token`, `password`, `x-api-key`, ...) at the top of a line's fields and one or two levels
 *   below (`headers.authorization`, `req.headers.cookie`).
 * - {@link redactDeep}, run on every line's fields before they are written: any field, at any
 *   depth and in any spelling (`Authorization`, `client_secret`, `webhookSecret`,
 *   `GITHUB_TOKEN`), whose name ends like a secret's. It also cleans the values a handler
 *   formats into a `ctx.log` message.
 *
 * Messages are free text and cannot be cleaned after the fact: Keel's own messages never carry a
 * header or a secret (request lines name the method, the path with its query values hidden, the
 * status and the request id; see `integrations/runtime/request-log.ts`).
 */

/** What a hidden value is replaced with. */
export const REDACTED = '[Redacted]';

/**
 * Field names whose values are never logged, as pino's `redact` paths name them (exact spelling;
 * {@link isSecretName} also catches other spellings and longer names ending like these).
 */
export const SECRET_FIELDS: readonly string[] = [
  'authorization',
  'Authorization',
  'proxy-authorization',
  'token',
  'secret',
  'password',
  'passwd',
  'apiKey',
  'api_key',
  'apikey',
  'clientSecret',
  'client_secret',
  'accessToken',
  'access_token',
  'refreshToken',
  'refresh_token',
  'idToken',
  'id_token',
  'privateKey',
  'private_key',
  'cookie',
  'Cookie',
  'set-cookie',
  'x-api-key',
  'X-Api-Key',
  'adminToken',
  'userToken',
];

/**
 * Names ending like these (case, `-` and `_` ignored) are secret: `webhookSecret`, `GITHUB_TOKEN`,
 * `STRIPE_SECRET_KEY`.
 */
const SECRET_SUFFIX =
  /(?:authorization|password|passwd|secret|token|(?:api|private|secret|access|signing)key|cookie|credentials?)$/;

/**
 * Whether a field of this name holds a secret.
 *
 * @example
 * ```ts
 * isSecretName('X-Api-Key'); // true
 * isSecretName('webhookSecret'); // true
 * isSecretName('key'); // false: an object key, logged
 * ```
 */
export function isSecretName(name: string): boolean {
  return SECRET_SUFFIX.test(name.toLowerCase().replace(/[-_\s]/g, ''));
}

/** pino `redact` paths: every secret name at the top level and one and two levels down. */
export function redactPaths(names: readonly string[] = SECRET_FIELDS): string[] {
  const paths: string[] = [];
  for (const name of names) {
    const step = /^[A-Za-z_$][\w$]*$/.test(name) ? name : `["${name}"]`;
    const dotted = step.startsWith('[') ? step : `.${step}`;
    paths.push(step, `*${dotted}`, `*.*${dotted}`);
  }
  return paths;
}

const MAX_DEPTH = 8;

/**
 * A copy of `value` with every field whose name is secret ({@link isSecretName}) replaced by
 * `[Redacted]`, at any depth. Plain objects and arrays are copied; anything else (an Error, a
 * Date, a Buffer) is kept as it is, for pino's serializers.
 *
 * @example
 * ```ts
 * redactDeep({ user: 'ada', headers: { Authorization: 'Bearer abc' } });
 * // { user: 'ada', headers: { Authorization: '[Redacted]' } }
 * ```
 */
export function redactDeep<T>(value: T): T {
  return walk(value, 0) as T;
}

function walk(value: unknown, depth: number): unknown {
  if (Array.isArray(value)) {
    if (depth >= MAX_DEPTH) return value.length === 0 ? value : '[…]';
    return value.map((v) => walk(v, depth + 1));
  }
  if (!isPlainObject(value)) return value;
  if (depth >= MAX_DEPTH) return '{…}';
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = isSecretName(k) && v !== undefined && v !== null ? REDACTED : walk(v, depth + 1);
  }
  return out;
}

/** An object literal (or one without a prototype), not a class instance. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * A request target as a log message may show it: the path, and the query's names with their
 * values replaced by `***` (a query may carry a token, an OAuth code or an API key).
 *
 * @example
 * ```ts
 * pathForLog('/oauth/callback?code=abc&state=xyz'); // '/oauth/callback?code=***&state=***'
 * ```
 */
export function pathForLog(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const names = [...new URLSearchParams(url.slice(q + 1)).keys()];
  const query = names.map((n) => `${encodeURIComponent(n)}=***`).join('&');
  return query === '' ? url.slice(0, q) : `${url.slice(0, q)}?${query}`;
}
