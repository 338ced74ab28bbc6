/**
 * The wire: one HTTP attempt over undici (a keep-alive connection pool per origin, shared by every
 * integration of a runtime), or the integration's in-process mock in mock mode. Either way the
 * answer is a {@link RawResponse}, so the policies above cannot tell them apart.
 */
import { Agent, request, type Dispatcher } from 'undici';
import type { HttpMethod } from './config.js';
import type { MockHandler, MockRequest } from './mock.js';

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

/** From this long on, attempt timeouts use undici's coarse timers (see `HttpTransport.send`). */
const COARSE_FROM_MS = 1000;

/** Raised when an attempt ran out of time (classified as `timeout`). */
export class AttemptTimeoutError extends Error {
  override readonly name = 'TimeoutError';
}

/**
 * Sends requests over a shared undici agent.
 *
 * @example
 * ```ts
 * const http = new HttpTransport();
 * const res = await http.send({ method: 'GET', url, headers: {}, body: undefined }, 5000);
 * await http.close();
 * ```
 */
export class HttpTransport {
  private readonly agent: Agent;

  constructor(options: { connections?: number } = {}) {
    this.agent = new Agent({
      keepAliveTimeout: 10_000,
      ...(options.connections === undefined ? {} : { connections: options.connections }),
    });
  }

  /**
   * One attempt; rejects with the network error or a timeout. A timeout of a second or more is
   * left to undici's coarse timers (no answer headers, or a pause in the body, for that long;
   * they fire up to about a second late), which cost almost nothing; a shorter one is enforced
   * exactly with an abort signal, which costs an AbortController and a timer per request.
   */
  async send(req: WireRequest, timeoutMs: number): Promise<RawResponse> {
    if (timeoutMs < COARSE_FROM_MS) return this.sendAbortable(req, timeoutMs);
    const res = await request(req.url, {
      method: req.method,
      headers: req.headers,
      body: req.body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      dispatcher: this.agent,
    });
    return readResponse(res);
  }

  private async sendAbortable(req: WireRequest, timeoutMs: number): Promise<RawResponse> {
    const controller = new AbortController();
    const timer = setTimeout(
      () => controller.abort(new AttemptTimeoutError(`no complete answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    try {
      const res = await request(req.url, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        signal: controller.signal,
        dispatcher: this.agent,
      });
      return await readResponse(res);
    } catch (err) {
      if (controller.signal.reason instanceof AttemptTimeoutError) throw controller.signal.reason;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

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

async function readResponse(res: Dispatcher.ResponseData): Promise<RawResponse> {
  const headers = flattenHeaders(res.headers);
  const type = headers['content-type'];
  if (type === undefined || type.includes('json') || TEXTUAL.test(type)) {
    const text = await res.body.text();
    return { status: res.statusCode, headers, body: decodeText(text, type) };
  }
  const buf = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers, body: decodeBody(buf, type) };
}

/** undici's header names are lower case already; repeated headers are joined. */
function flattenHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string> {
  for (const k in headers) {
    const v = headers[k];
    if (typeof v !== 'string') return joined(headers);
  }
  return headers as Record<string, string>;
}

function joined(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k in headers) {
    const v = headers[k];
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
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
