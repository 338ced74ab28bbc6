import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duration } from '../core/duration.js';
import { errorMessage, UsageError } from '../core/errors.js';
import { BodyTooLargeError, closeAfterAnswer } from './body.js';
import { inject } from './inject.js';
import { listen, onClientError } from './listen.js';
import type { Mounts } from './mount.js';
import { errorAnswer, MethodNotAllowedError, sendError } from './respond.js';
import { pathForLog } from '../observability/redact.js';

/**
 * The HTTP server base of the ingress and the admin API: one `node:http` server with the
 * options, error answers, graceful close and socketless `handle()` both share. Each surface
 * brings only its routing (a function from a request to an answer) and the headers its own
 * errors carry.
 */

/** `Connection: close`, as the `[name, value]` pair the send functions of respond.ts take. */
export const CLOSE = ['connection', 'close'] as const;

/** `extra` with `Connection: close` added when `closing` (and not there already). */
export function withClose(
  extra: readonly string[] | undefined,
  closing: boolean,
): readonly string[] | undefined {
  if (!closing) return extra;
  if (!extra) return CLOSE;
  return extra.includes('connection') ? extra : [...extra, ...CLOSE];
}

/** Options the ingress and the admin API share. Every field has a documented default. */
export interface HttpServerOptions {
  /**
   * TCP port; `0` picks a free one. Default `9080` for the ingress (`KEEL_PORT`), `9070` for
   * the admin API (`KEEL_ADMIN_PORT`).
   */
  port?: number;
  /** Interface to bind. Default `'127.0.0.1'`: exposing a server is an explicit choice. */
  host?: string;
  /**
   * How long `close()` lets requests in flight finish before answering them 503
   * `shutting_down`. Default `5s` for the ingress (calls and attaches may wait on handlers),
   * `1s` for the admin API (its requests are single store reads or writes): both inside the
   * 10-30 s that process managers give a stopping process.
   */
  closeGrace?: Duration;
  /**
   * Extension routes by first path segment, e.g. `{ webhooks: receivers }` for
   * `POST /webhooks/stripe`. They take precedence over the server's own routes.
   */
  mounts?: Mounts;
}

/** A running Keel HTTP server: the ingress or the admin API. */
export interface HttpServer {
  /** The bound port (useful with `port: 0`). */
  readonly port: number;
  /** Base URL, e.g. `http://127.0.0.1:9080`. */
  readonly url: string;
  /**
   * Stops accepting connections and closes idle keep-alive sockets at once. Requests in
   * flight get `closeGrace` to finish (their answers carry `Connection: close`); any still
   * waiting then are answered 503 `shutting_down`. Resolves when every connection is closed.
   * Calling it again returns the same promise.
   */
  close(): Promise<void>;
  /**
   * Answers one request without a socket, the way hono's `app.request()` does: a Fetch API
   * `Request` in, its `Response` out, through exactly the routing, body limits and error
   * answers a TCP client gets (the request is parsed by Node's HTTP server from an in-memory
   * connection). Only the path and query of the request's URL are used; its host becomes the
   * `Host` header. The request comes from this process, so it counts as a loopback client.
   * The body is buffered before it is sent. Rejects once `close()` has been called, as a
   * connection to a closed port would.
   *
   * @example
   * ```ts
   * const ingress = await serve(engine, { port: 0 });
   * const res = await ingress.handle(
   *   new Request('http://keel/Greeter/greet', {
   *     method: 'POST',
   *     headers: { 'content-type': 'application/json' },
   *     body: JSON.stringify('Ada'),
   *   }),
   * );
   * expect(await res.json()).toBe('Hello, Ada!');
   * ```
   */
  handle(request: Request): Promise<Response>;
}

/** Where a server logs what it cannot answer for (a bug, or an accept error). */
export type ServerLog = (level: 'error', message: string, fields: Record<string, unknown>) => void;

/** What a surface brings to {@link createServerBase}. */
export interface ServerBaseConfig {
  /** The surface's name in log lines and messages: `ingress`, `admin`. */
  name: string;
  port: number;
  host: string;
  closeGraceMs: number;
  log: ServerLog;
  /**
   * Answers one request, or throws the error to answer with. `expectContinue` is true for an
   * `Expect: 100-continue` request when `decidesContinue` is set: the route then sends
   * `100 Continue` itself, once it knows it wants the body.
   */
  route(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): Promise<void>;
  /**
   * Route `Expect: 100-continue` requests with `expectContinue` set, so a 404 or 413 is answered
   * without inviting the upload first. Otherwise Node sends `100 Continue` at once.
   */
  decidesContinue?: boolean;
  /** Headers the answer to `err` carries besides the shared ones (`Allow`, `Connection`). */
  errorHeaders?(err: unknown): readonly string[] | undefined;
  /** Replaces an error before it is answered (the ingress hides target names from some clients). */
  publicError?(err: unknown, req: IncomingMessage): unknown;
  /** The message of the 503 `shutting_down` that requests outliving the close grace get. */
  shuttingDown: string;
}

/** A server before and after it listens; what a surface builds its {@link HttpServer} from. */
export interface ServerBase {
  /** The underlying server (for `address()`). */
  readonly server: Server;
  /** True once `close()` was called: answers must carry `Connection: close`. */
  readonly closing: boolean;
  /** Binds the port; resolves with the bound port and base URL. */
  listen(): Promise<{ port: number; url: string }>;
  /** {@link HttpServer.close}, as a function that needs no `this`. */
  readonly close: () => Promise<void>;
  /** {@link HttpServer.handle}, as a function that needs no `this`. */
  readonly handle: (request: Request) => Promise<Response>;
}

/**
 * Longer than the idle timeout of common load balancers (60 s on AWS ALB, nginx's upstream
 * keepalive): the proxy must be the one to close an idle connection, or it may reuse one the
 * server is closing at that very moment and get a reset.
 */
const KEEP_ALIVE_MS = 65_000;

/** Builds the shared server around a surface's routing. Nothing is bound until `listen()`. */
export function createServerBase(config: ServerBaseConfig): ServerBase {
  const { name, log } = config;
  /** Requests waiting for an answer, so close() can answer them if they outlive the grace. */
  const pending = new Set<ServerResponse>();
  let closing = false;

  const answerError = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    if (res.headersSent || res.destroyed || req.socket.destroyed) {
      res.destroy();
      return;
    }
    if (config.publicError) err = config.publicError(err, req);
    const answer = errorAnswer(err);
    if (!answer.known) {
      // The method, path and error only: headers and query values (tokens) are never logged.
      const path = pathForLog(req.url ?? '?');
      log('error', `${name}: ${req.method ?? '?'} ${path} failed: ${errorMessage(err)}`, {
        stack: err instanceof Error ? err.stack : undefined,
      });
    }
    let extra: readonly string[] | undefined;
    if (err instanceof MethodNotAllowedError) extra = ['allow', err.allow];
    // The unread rest of an oversized body is not worth reading: answer, then close (after
    // the client has had the time to read the answer).
    else if (err instanceof BodyTooLargeError) {
      extra = CLOSE;
      closeAfterAnswer(req);
    } else extra = config.errorHeaders?.(err);
    sendError(res, answer.status, answer.code, answer.message, withClose(extra, closing));
  };

  // One async function per request and no per-request closures: under tsx every closure
  // also costs a `__name` call, and on the ingress this is the hottest path of the process.
  const respond = async (
    req: IncomingMessage,
    res: ServerResponse,
    expectContinue: boolean,
  ): Promise<void> => {
    pending.add(res);
    try {
      await config.route(req, res, expectContinue);
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
  if (config.decidesContinue) {
    server.on(
      'checkContinue',
      (req: IncomingMessage, res: ServerResponse) => void respond(req, res, true),
    );
  }
  server.on('clientError', onClientError);

  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= new Promise<void>((resolve, reject) => {
      closing = true;
      if (!server.listening) {
        resolve();
        return;
      }
      const grace = setTimeout(() => {
        for (const res of pending) sendError(res, 503, 'shutting_down', config.shuttingDown, CLOSE);
        setImmediate(() => server.closeAllConnections());
      }, config.closeGraceMs);
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

  return {
    server,
    get closing() {
      return closing;
    },
    async listen() {
      const bound = await listen(server, config.port, config.host);
      // An 'error' after listening (e.g. EMFILE on accept) must be logged, not crash the process.
      server.on('error', (err) => log('error', `${name}: ${errorMessage(err)}`, {}));
      return bound;
    },
    close,
    handle: (request: Request): Promise<Response> =>
      closed
        ? Promise.reject(
            new UsageError(`the ${name} is closed: handle() answers only while it is open`),
          )
        : inject(server, request),
  };
}
