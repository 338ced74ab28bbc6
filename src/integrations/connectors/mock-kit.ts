/**
 * What every connector's mock is built from: deterministic ids and timestamps derived from the
 * request, a small router, form decoding, and controls shared by every mock (queued failures, a
 * log of the requests seen).
 *
 * Determinism matters because a mocked call runs inside a journaled step like a real one: the
 * same request must give the same answer in every run, so ids are hashes of the request (or of
 * its idempotency key) and timestamps are derived from those hashes, never from the clock.
 */
import { createHash } from 'node:crypto';
import type { HttpMethod } from '../declarations/config.js';
import type { MockRequest, MockResponse } from '../declarations/mock.js';

/** 2024-01-01T00:00:00Z in Unix seconds: the date mocks stamp their objects with. */
export const MOCK_EPOCH_S = 1_704_067_200;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** JSON with object keys sorted, so equal values always hash equally. */
export function stableJson(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('base64'));
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
}

/** The SHA-256 of the parts (strings as they are, anything else as stable JSON). */
export function digest(...parts: unknown[]): Buffer {
  const h = createHash('sha256');
  for (const p of parts) h.update(typeof p === 'string' ? p : stableJson(p)).update('\0');
  return h.digest();
}

/** `length` hex characters derived from the parts. */
export function hexId(length: number, ...parts: unknown[]): string {
  let out = '';
  for (let i = 0; out.length < length; i++) out += digest(i, ...parts).toString('hex');
  return out.slice(0, length);
}

/** `length` base-62 characters (0-9, A-Z, a-z) derived from the parts. */
export function base62Id(length: number, ...parts: unknown[]): string {
  let out = '';
  for (let i = 0; out.length < length; i++) {
    for (const byte of digest(i, ...parts)) {
      // 248 = 4 × 62: rejecting the top bytes keeps every character equally likely.
      if (byte < 248) out += BASE62[byte % 62];
    }
  }
  return out.slice(0, length);
}

/** A whole number in [0, max) derived from the parts. */
export function numberFrom(max: number, ...parts: unknown[]): number {
  return digest(...parts).readUInt32BE(0) % max;
}

/** A Unix time (seconds) within the first day after {@link MOCK_EPOCH_S}, derived from the parts. */
export function mockTimestamp(...parts: unknown[]): number {
  return MOCK_EPOCH_S + numberFrom(86_400, 'ts', ...parts);
}

/** What a route's handler receives: the request and the path's `{placeholders}`, decoded. */
export type RouteHandler = (req: MockRequest, params: Record<string, string>) => MockResponse;

/** One route: a method and a path template (`/v1/charges/{id}`; `{key+}` matches several segments). */
export interface MockRoute {
  method: HttpMethod;
  path: string;
  handle: RouteHandler;
}

/**
 * A handler that dispatches on method and path; anything else gets `notFound(req)`.
 *
 * @example
 * ```ts
 * const handler = routes([{ method: 'GET', path: '/users/{login}', handle: (_, p) => ({ body: { login: p.login } }) }],
 *   () => ({ status: 404, body: { message: 'Not Found' } }));
 * ```
 */
export function routes(
  table: readonly MockRoute[],
  notFound: (req: MockRequest) => MockResponse,
): (req: MockRequest) => MockResponse {
  const compiled = table.map((r) => ({ ...r, match: compilePath(r.path) }));
  return (req) => {
    const path = req.path.split('?')[0] ?? '';
    for (const r of compiled) {
      if (r.method !== req.method) continue;
      const params = r.match(path);
      if (params !== undefined) return r.handle(req, params);
    }
    return notFound(req);
  };
}

function compilePath(template: string): (path: string) => Record<string, string> | undefined {
  const names: string[] = [];
  const source = template
    .split(/(\{[A-Za-z_][A-Za-z0-9_]*\+?\})/)
    .map((part) => {
      const m = /^\{([A-Za-z_][A-Za-z0-9_]*)(\+?)\}$/.exec(part);
      if (m === null) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      names.push(m[1]!);
      return m[2] === '+' ? '(.+)' : '([^/]+)';
    })
    .join('');
  const re = new RegExp(`^${source}$`);
  return (path) => {
    const m = re.exec(path);
    if (m === null) return undefined;
    const out: Record<string, string> = {};
    names.forEach((n, i) => (out[n] = safeDecode(m[i + 1]!)));
    return out;
  };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Decodes an `application/x-www-form-urlencoded` body, turning bracketed names back into
 * structure (`metadata[order]=1` → `{ metadata: { order: '1' } }`, `a[0]=x` → `{ a: ['x'] }`).
 * A name given twice becomes a list (`MediaUrl=a&MediaUrl=b`).
 */
export function formDecode(body: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of new URLSearchParams(body)) assign(out, formPath(name), value);
  return out;
}

/** `a[b][0]` → `['a', 'b', '0']`; `a[]` → `['a', '']` (append). */
function formPath(name: string): string[] {
  const m = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(name);
  if (m === null) return [name];
  return [m[1]!, ...[...m[2]!.matchAll(/\[([^[\]]*)\]/g)].map((x) => x[1]!)];
}

function assign(target: Record<string, unknown>, path: string[], value: string): void {
  let node: Record<string, unknown> | unknown[] = target;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i]!;
    const container = node;
    if (typeof container[key] !== 'object' || container[key] === null) {
      container[key] = /^\d*$/.test(path[i + 1]!) ? [] : {};
    }
    node = container[key] as Record<string, unknown>;
  }
  const last = path[path.length - 1]!;
  if (Array.isArray(node) && last === '') {
    node.push(value);
    return;
  }
  const container = node;
  const prev = container[last];
  if (prev === undefined) container[last] = value;
  else container[last] = Array.isArray(prev) ? [...(prev as unknown[]), value] : [prev, value];
}

/** The body as an object: parsed JSON stays, a form-encoded string is decoded, anything else is `{}`. */
export function bodyObject(body: unknown): Record<string, unknown> {
  if (typeof body === 'string') {
    const trimmed = body.trim();
    if (trimmed.startsWith('{')) {
      try {
        return JSON.parse(trimmed) as Record<string, unknown>;
      } catch {
        return {};
      }
    }
    return formDecode(body);
  }
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    return body as Record<string, unknown>;
  }
  return {};
}

/**
 * A JSON response.
 *
 * @example
 * ```ts
 * json(404, { message: 'Not Found' }); // { status: 404, headers: { 'content-type': 'application/json' }, body: {...} }
 * ```
 */
export function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): MockResponse {
  return { status, headers: { 'content-type': 'application/json', ...headers }, body };
}

/**
 * A connector's mock: the handler (pass it as `mock`; it answers synchronously, so it is a `MockHandler`)
 * plus controls for tests and examples.
 */
export interface ConnectorMock {
  (req: MockRequest): MockResponse;
  /**
   * The next `count` requests (to any operation, or only to `operation`) get `response` instead
   * of the normal answer: a status code (`503`), or a full response. For exercising retries and
   * the circuit breaker.
   *
   * @example
   * ```ts
   * const mock = stripeMock();
   * mock.failNext(2, 503); // two 503s, then the normal answer
   * ```
   */
  failNext(count: number, response: number | MockResponse, operation?: string): void;
  /** Every request this mock has answered, oldest first. */
  readonly requests: readonly MockRequest[];
  /** Forgets queued failures, the request log and the provider state (objects created so far). */
  reset(): void;
}

/**
 * Wraps a provider's answering logic with the shared controls. `make` is called again on
 * `reset()`, which is how provider state is forgotten.
 *
 * @example
 * ```ts
 * const mock = connectorMock(
 *   () => routes([{ method: 'GET', path: '/ping', handle: () => json(200, { ok: true }) }],
 *     () => json(404, { error: 'not_found' })),
 *   (status) => json(status, { error: 'unavailable' }),
 * );
 * const api = integration({ name: 'PingAPI', baseUrl: 'https://ping.test', mock, mockMode: true });
 * ```
 */
export function connectorMock(
  make: () => (req: MockRequest) => MockResponse,
  failure: (status: number, req: MockRequest) => MockResponse,
): ConnectorMock {
  let answer = make();
  const requests: MockRequest[] = [];
  let queued: { remaining: number; response: number | MockResponse; operation?: string }[] = [];
  const handler = (req: MockRequest): MockResponse => {
    requests.push(req);
    const q = queued.find((f) => f.operation === undefined || f.operation === req.operation);
    if (q !== undefined) {
      q.remaining--;
      if (q.remaining <= 0) queued = queued.filter((f) => f !== q);
      return typeof q.response === 'number' ? failure(q.response, req) : q.response;
    }
    return answer(req);
  };
  return Object.assign(handler, {
    failNext(count: number, response: number | MockResponse, operation?: string): void {
      if (!Number.isInteger(count) || count < 1) {
        throw new RangeError(`failNext: count must be a whole number of at least 1, got ${count}`);
      }
      queued.push({
        remaining: count,
        response,
        ...(operation === undefined ? {} : { operation }),
      });
    },
    get requests(): readonly MockRequest[] {
      return requests;
    },
    reset(): void {
      answer = make();
      requests.length = 0;
      queued = [];
    },
  });
}

/** Whether a name is one mocks treat as not existing (`missing…`), documented per connector. */
export function isMissing(name: string | undefined): boolean {
  return name !== undefined && name.toLowerCase().startsWith('missing');
}
