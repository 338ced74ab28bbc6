/**
 * The wire: one HTTP attempt through the shared outbound client (`src/http/client.ts`: a
 * keep-alive connection pool per origin, shared by every integration of a runtime), or the
 * integration's in-process mock in mock mode. Either way the answer is a {@link RawResponse}, so
 * the policies above cannot tell them apart.
 */
import { HttpClient, flattenHeaders, type ResponseHead } from '../../http/client.js';
import type { HttpMethod } from '../declarations/config.js';
import type { MockHandler, MockRequest } from '../declarations/mock.js';
import type { BuiltRequest } from './request.js';

export type { ResponseHead } from '../../http/client.js';

/** A response as the policies see it: status, lower-case headers and the decoded body. */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  /** Parsed JSON, text, or `null` for an empty body. */
  body: unknown;
}

/** One attempt's request, signed and ready. */
export interface WireRequest {
  method: HttpMethod;
  url: string;
  headers: Record<string, string>;
  body: string | Uint8Array | undefined;
}

/** From this long on, attempt timeouts use undici's coarse timers (see `HttpTransport.open`). */
export const COARSE_TIMEOUT_FROM_MS = 1000;

/** Raised when an attempt ran out of time (classified as `timeout`). */
export class AttemptTimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/**
 * Sends integration requests over the shared outbound client, and maps its answers and failures
 * to what the policies classify ({@link RawResponse}, or a thrown error).
 *
 * @example
 * ```ts
 * const http = new HttpTransport();
 * const res = await http.send({ method: 'GET', url, headers: {}, body: undefined }, 500);
 * await http.close();
 * ```
 */
export class HttpTransport {
  private readonly client: HttpClient;
  /** Each base URL's origin and path prefix, `null` when it is not in normal form. */
  private readonly bases = new Map<string, BaseTarget | null>();

  constructor(options: { connections?: number } = {}) {
    this.client = new HttpClient({
      keepAliveMs: 10_000,
      ...(options.connections === undefined ? {} : { connections: options.connections }),
    });
  }

  /**
   * One attempt with an exact deadline of `timeoutMs` for the whole exchange (a timer per
   * request); rejects with the network error or an {@link AttemptTimeoutError}. The call path
   * uses it for timeouts under {@link COARSE_TIMEOUT_FROM_MS}, and {@link open} for the others.
   */
  async send(req: WireRequest, timeoutMs: number): Promise<RawResponse> {
    const res = await this.client.exchange({ ...req, timeoutMs });
    if (!res.ok) {
      if (res.code === 'timeout') {
        throw new AttemptTimeoutError(`no complete answer within ${timeoutMs} ms`, {
          cause: res.cause,
        });
      }
      // The network error itself when there is one, so the policies classify it by its code.
      if (res.cause instanceof Error) throw res.cause;
      throw Object.assign(new Error(res.message), { code: res.code });
    }
    return {
      status: res.status,
      headers: res.headers,
      body: decodeBody(res.body, res.headers['content-type']),
    };
  }

  /**
   * Sends the request and resolves with the response head ({@link readBody} reads the rest),
   * with a coarse timeout (`timeoutMs` ≥ 1 s: no answer head, or a pause in the body, for that
   * long; undici's timers, which fire up to about a second late and cost almost nothing). Split
   * so that the call path awaits undici's own promises and no promise of ours in between.
   *
   * With a `target` (see {@link target}) the request goes straight to the agent, as
   * `agent.request({ origin, path })`; without, undici's `request(url)` parses the URL.
   */
  open(req: WireRequest, timeoutMs: number, target?: Target): Promise<ResponseHead> {
    return this.client.open(req, timeoutMs, target);
  }

  /**
   * The origin and path of `requestUrl(base, req)` exactly as undici's `request()` would take
   * them from `new URL()`, worked out without parsing: when the base URL's origin is in normal
   * form (checked once per base URL) and the path and query are made of characters the URL
   * parser copies as they are, with no dot segment (an integration's path with encoded
   * parameters is: see `BuiltRequest.plainPath`). `undefined` otherwise: then {@link open} is
   * given the URL alone.
   */
  target(
    base: string,
    req: Pick<BuiltRequest, 'path' | 'query' | 'plainPath'>,
  ): Target | undefined {
    let b = this.bases.get(base);
    if (b === undefined) {
      b = baseTarget(base);
      if (this.bases.size >= 256) this.bases.clear();
      this.bases.set(base, b);
    }
    if (b === null) return undefined;
    let path = req.path === '' ? b.prefix : b.trimmed + req.path;
    if (path === '') path = '/';
    else if (path[0] !== '/') return undefined;
    for (const _ in req.query) {
      const qs = new URLSearchParams(req.query).toString();
      if (qs !== '') path += `?${qs}`;
      break;
    }
    // A plain built path (and the query, which URLSearchParams encodes) can only hold dot segments.
    const plain =
      req.plainPath === true ? !path.includes('/.') || !DOT_SEGMENT.test(path) : isPlainPath(path);
    return plain ? { origin: b.origin, path } : undefined;
  }

  /** Waits for the requests in flight, then closes the pools. */
  close(): Promise<void> {
    return this.client.close();
  }
}

/** Where a request goes, for `agent.request()`: the origin and the path with its query. */
export interface Target {
  origin: string;
  path: string;
}

interface BaseTarget {
  origin: string;
  /** The base URL's path ('' for none) and the same without trailing slashes. */
  prefix: string;
  trimmed: string;
}

/**
 * A base URL's origin and path, when it is an http(s) URL whose origin is in normal form (as
 * `new URL(base).origin` writes it: no user, no default port) and whose path is plain, with no
 * query or fragment; `null` otherwise.
 */
function baseTarget(base: string): BaseTarget | null {
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    return null;
  }
  const origin = url.origin;
  if (!/^https?:$/.test(url.protocol) || !base.startsWith(origin)) return null;
  const prefix = base.slice(origin.length);
  if (prefix !== '' && (prefix.includes('?') || !isPlainPath(prefix))) return null;
  return { origin, prefix, trimmed: prefix.replace(/\/+$/, '') };
}

/** A path (and query) that the URL parser would leave exactly as it is. */
function isPlainPath(path: string): boolean {
  if (!PLAIN_PATH.test(path)) return false;
  // Dot segments (`/./`, `/../`, also `%2e`-encoded) are resolved away by the URL parser.
  return !((path.includes('/.') || path.includes('%2')) && DOT_SEGMENT.test(path));
}

/**
 * A path and query made only of characters the URL parser copies as they are (no percent
 * encoding added, no backslashes, no fragment, no empty `?`).
 */
const PLAIN_PATH = /^\/[\w\-.~!$&'()*+,;=:@%/]*(?:\?[\w\-.~!$&()*+,;=:@%/?]+)?$/;
/** A `.` or `..` segment (also percent-encoded), which the URL parser would resolve away. */
const DOT_SEGMENT = /\/(?:\.|%2e){1,2}(?:[/?]|$)/i;

/**
 * Runs a mock in place of the request, with the same timeout as a real attempt.
 *
 * @example
 * ```ts
 * const res = await sendToMock(mock, mockRequest, 5000);
 * ```
 */
export async function sendToMock(
  mock: MockHandler,
  req: MockRequest,
  timeoutMs: number,
): Promise<RawResponse> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new AttemptTimeoutError(`the mock did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    const res = await Promise.race([Promise.resolve(mock(req)), timeout]);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(res?.headers ?? {})) headers[k.toLowerCase()] = String(v);
    const body = res?.body === undefined ? null : (JSON.parse(JSON.stringify(res.body)) as unknown);
    return { status: res?.status ?? 200, headers, body };
  } finally {
    clearTimeout(timer);
  }
}

/** The response's headers as the policies see them (see {@link RawResponse}). */
export function responseHeaders(res: ResponseHead): Record<string, string> {
  return flattenHeaders(res.headers);
}

/** Reads the whole body: as text when it is JSON or textual, else as bytes. */
export function readBody(
  res: ResponseHead,
  headers: Record<string, string>,
): Promise<string | ArrayBuffer> {
  const type = headers['content-type'];
  if (type === undefined || type.includes('json') || TEXTUAL.test(type)) return res.body.text();
  return res.body.arrayBuffer();
}

/** The {@link RawResponse} of a head and its body, decoded (JSON parsed, bytes in base64). */
export function responseOf(
  res: ResponseHead,
  headers: Record<string, string>,
  body: string | ArrayBuffer,
): RawResponse {
  const type = headers['content-type'];
  return {
    status: res.statusCode,
    headers,
    body: typeof body === 'string' ? decodeText(body, type) : decodeBody(Buffer.from(body), type),
  };
}

function decodeText(text: string, type: string | undefined): unknown {
  if (text === '') return null;
  if (type !== undefined && type.includes('json')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

const TEXTUAL = /^(text\/|application\/(xml|x-www-form-urlencoded|javascript)|[^;]*\+xml)/i;

/** JSON is parsed, text decoded as UTF-8, anything else (images, archives) kept as base64. */
export function decodeBody(buf: Buffer, contentType: string | undefined): unknown {
  if (buf.length === 0) return null;
  const type = contentType?.toLowerCase() ?? '';
  if (type.includes('json')) {
    const text = buf.toString('utf8');
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  if (type === '' || TEXTUAL.test(type)) return buf.toString('utf8');
  return buf.toString('base64');
}
