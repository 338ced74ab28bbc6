/**
 * The HTTP ingress, on plain `node:http`.
 *
 * Why no framework: the ingress is on the hot path of every invocation (target: >15,000
 * requests/s for a trivial handler on 2 cores) and its surface is six fixed URL shapes. A
 * framework would add a router, middleware chains and per-request objects for nothing; here a
 * request costs one path split, one body read and one JSON parse, with no regular expressions
 * and no per-request closures beyond the body reader's.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { parseDuration, type Duration } from '../core/duration.js';
import { errorMessage, NotFoundError } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import { BodyTooLargeError } from './body.js';
import { answerInvocation, readInvokeRequest } from './handlers.js';
import { errorAnswer, sendError, sendJson, sendText } from './respond.js';
import { MethodNotAllowedError, route } from './router.js';

/** Options of {@link serve}. Every field has a documented default. */
export interface IngressOptions {
  /** TCP port; `0` picks a free one. Default `9080` (apps map `KEEL_PORT` onto it). */
  port?: number;
  /** Interface to bind. Default `'127.0.0.1'`: exposing the ingress is an explicit choice. */
  host?: string;
  /** Largest accepted request body in bytes; larger ones get 413. Default 1 MiB. */
  bodyLimit?: number;
  /**
   * How long `close()` lets requests in flight (calls, attaches) finish before answering them
   * 503. Default `5s`: inside the 10-30 s that process managers give a stopping process.
   */
  closeGrace?: Duration;
}

/** A running ingress. */
export interface IngressServer {
  /** The bound port (useful with `port: 0`). */
  readonly port: number;
  /** Base URL, e.g. `http://127.0.0.1:9080`. */
  readonly url: string;
  /**
   * Stops accepting connections and closes idle keep-alive sockets at once. Requests in
   * flight get `closeGrace` (5 s) to finish (their answers carry `Connection: close`); any still
   * waiting then are answered 503 `shutting_down`. Their invocations keep running in the
   * engine. Resolves when every connection is closed.
   */
  close(): Promise<void>;
}

const DEFAULT_PORT = 9080;
const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_BODY_LIMIT = 1024 * 1024;
/**
 * Longer than the idle timeout of common load balancers (60 s on AWS ALB, nginx's upstream
 * keepalive): the proxy must be the one to close an idle connection, or it may reuse one the
 * server is closing at that very moment and get a reset.
 */
const KEEP_ALIVE_MS = 65_000;
const HEALTH_BODY = '{"status":"ok"}';
const SHUTTING_DOWN =
  'the ingress is shutting down; the invocation goes on: attach to it later, or retry with the same Idempotency-Key';

/**
 * Serves an engine over HTTP/1.1 JSON. The routes:
 *
 * | Request                                   | Answer                                             |
 * | ----------------------------------------- | -------------------------------------------------- |
 * | `POST /{Service}/{handler}`               | 200, the result as JSON (`null` when it returns nothing) |
 * | `POST /{Object or Workflow}/{key}/{handler}` | same; keys are URL-decoded path segments       |
 * | the same with `/send`, `?delay=10s` optional | 202 `{ invocationId, status, existing }`        |
 * | `GET /invocations/{id}`                   | 200 the invocation's status, 404 if unknown        |
 * | `GET /invocations/{id}/attach`            | waits; 200 the result, or the terminal error       |
 * | `GET /invocations/{id}/output`            | 200 the result if finished, else 202 `{ code: "not_ready", status }` |
 * | `GET /health`                             | 200 `{ status: "ok" }`                             |
 *
 * An `Idempotency-Key` header makes calls and sends idempotent: the same key (per target)
 * answers with the same invocation and result. Errors are always `{ code, message }` with the
 * error's HTTP status; a handler's `TerminalError` keeps its `code` and `status`.
 *
 * @example
 * ```ts
 * import { Engine, serve } from 'keel';
 * import { openSqliteStore } from 'keel/sqlite';
 *
 * const engine = new Engine({ services: [Greeter], store: openSqliteStore({ path: '.keel/keel.db' }) });
 * await engine.start();
 * const ingress = await serve(engine, { port: Number(process.env.KEEL_PORT ?? 9080) });
 * // curl -X POST localhost:9080/Greeter/greet -H 'content-type: application/json' -d '"Ada"'
 * process.on('SIGTERM', async () => { await ingress.close(); await engine.stop(); });
 * ```
 */
export async function serve(engine: Engine, options: IngressOptions = {}): Promise<IngressServer> {
  const port = options.port ?? DEFAULT_PORT;
  const host = options.host ?? DEFAULT_HOST;
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const closeGraceMs = parseDuration(options.closeGrace ?? '5s');
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new TypeError(`port must be an integer from 0 to 65535, got ${port}`);
  if (!Number.isInteger(bodyLimit) || bodyLimit < 0)
    throw new TypeError(`bodyLimit must be a whole number of bytes, got ${bodyLimit}`);

  /** Requests waiting for an answer, so close() can answer them if they outlive the grace. */
  const pending = new Set<ServerResponse>();
  let closing = false;

  const answerError = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    if (res.headersSent || res.destroyed || req.socket.destroyed) {
      res.destroy();
      return;
    }
    const answer = errorAnswer(err);
    if (!answer.known) {
      engine.log(
        'error',
        `ingress: ${req.method ?? '?'} ${req.url ?? '?'} failed: ${errorMessage(err)}`,
        {
          stack: err instanceof Error ? err.stack : undefined,
        },
      );
    }
    let extra: string[] | undefined;
    if (err instanceof MethodNotAllowedError) extra = ['allow', err.allow];
    // The unread rest of an oversized body is not worth reading: answer, then close.
    else if (err instanceof BodyTooLargeError) extra = ['connection', 'close'];
    sendError(res, answer.status, answer.code, answer.message, withClose(extra, closing));
  };

  const handle = async (
    req: IncomingMessage,
    res: ServerResponse,
    expectContinue: boolean,
  ): Promise<void> => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path.charCodeAt(0) !== 47 /* / */)
      throw new NotFoundError(
        `"${url}" is not a path; send origin-form request targets such as /Greeter/greet`,
      );
    const r = route(req.method, path, engine.registry);
    const close = closing ? CLOSE : undefined;
    switch (r.kind) {
      case 'health':
        sendText(res, 200, HEALTH_BODY, close);
        return;
      case 'invocation':
        return answerInvocation(engine, r, res, close);
      case 'invoke': {
        const request = await readInvokeRequest(
          req,
          res,
          r,
          q === -1 ? undefined : url.slice(q + 1),
          bodyLimit,
          expectContinue,
        );
        if (r.send) {
          const sent = await engine.send(request);
          const body = {
            invocationId: sent.invocationId,
            status: sent.status,
            existing: sent.existing,
          };
          sendJson(res, 202, body, withClose(['x-keel-invocation-id', sent.invocationId], closing));
        } else {
          sendJson(res, 200, await engine.invoke(request), closing ? CLOSE : undefined);
        }
      }
    }
  };

  // One async function per request and no per-request closures: under tsx every closure
  // also costs a `__name` call, and this is the hottest path of the process.
  const respond = async (
    req: IncomingMessage,
    res: ServerResponse,
    expectContinue: boolean,
  ): Promise<void> => {
    pending.add(res);
    try {
      await handle(req, res, expectContinue);
    } catch (err) {
      // An exception here must answer 500, never reach the process as an unhandled rejection.
      try {
        answerError(req, res, err);
      } catch {
        res.destroy();
      }
    } finally {
      pending.delete(res);
    }
  };
  const onRequest = (req: IncomingMessage, res: ServerResponse): void =>
    void respond(req, res, false);

  // noDelay: an answer is one small write; Nagle would hold it back waiting for an ACK.
  const server = createServer({ noDelay: true }, onRequest);
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  // `Expect: 100-continue`: decide after routing, so a 404 or 413 is answered without
  // inviting the client to upload the body first (see readInvokeRequest).
  server.on(
    'checkContinue',
    (req: IncomingMessage, res: ServerResponse) => void respond(req, res, true),
  );
  server.on('clientError', onClientError);

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // An 'error' after listening (e.g. EMFILE on accept) must be logged, not crash the process.
  server.on('error', (err) => engine.log('error', `ingress: ${errorMessage(err)}`, {}));
  const address = server.address();
  const boundPort = typeof address === 'object' && address !== null ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve, reject) => {
      closing = true;
      const grace = setTimeout(() => {
        for (const res of pending) sendError(res, 503, 'shutting_down', SHUTTING_DOWN, CLOSE);
        setImmediate(() => server.closeAllConnections());
      }, closeGraceMs);
      grace.unref();
      server.close((err) => {
        clearTimeout(grace);
        if (err) reject(err);
        else resolve();
      });
      server.closeIdleConnections();
    });
    return closed;
  };
  return { port: boundPort, url, close };
}

const CLOSE = ['connection', 'close'] as const;

function withClose(extra: string[] | undefined, closing = true): string[] | undefined {
  if (!closing) return extra;
  return extra ? [...extra, ...CLOSE] : [...CLOSE];
}

/**
 * Malformed HTTP never reaches a request handler; Node reports it here. Answer it in JSON like
 * everything else and close, unless the peer is gone or a response is already on the wire.
 */
function onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const [status, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'headers_too_large', 'the request headers are too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'request_timeout', 'the request was not received in time']
        : [400, 'bad_request', 'the request is not valid HTTP/1.1'];
  const body = JSON.stringify({ code, message });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\ncontent-type: application/json; charset=utf-8\r\n` +
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
  );
}
