/**
 * The HTTP ingress, on plain `node:http`.
 *
 * Why no framework: the ingress is on the hot path of every invocation (target: >15,000
 * requests/s for a trivial handler on 2 cores) and its surface is six fixed URL shapes. A
 * framework would add a router, middleware chains and per-request objects for nothing; here a
 * request costs one path split, one body read and one JSON parse, with no regular expressions
 * and no per-request closures beyond the body reader's.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseDuration, type Duration } from '../core/duration.js';
import { errorMessage, NotFoundError } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import { BodyTooLargeError, closeAfterAnswer } from '../http/body.js';
import { checkPort, isLoopback, listen, onClientError } from '../http/listen.js';
import { dispatchMount, type Mounts } from '../http/mount.js';
import { splitPath } from '../http/path.js';
import {
  errorAnswer,
  MethodNotAllowedError,
  sendError,
  sendJson,
  sendText,
} from '../http/respond.js';
import { TooManyWaitersError } from '../engine/waiters.js';
import { answerAwakeable, answerInvocation, clientGone, readInvokeRequest } from './handlers.js';
import { AWAKEABLES, isAwakeableAction, route, UnknownTargetError, unknownPath } from './router.js';

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
  /**
   * Who sees, in the 404 for an unknown service or handler, the names of the services and
   * handlers that exist (a help while developing, a map for an attacker): `'loopback'` clients
   * only (the default), `'always'` or `'never'`. Others get a plain 404 naming the path. Behind
   * a proxy on the same host every client looks like loopback: set `'never'` there.
   */
  revealTargets?: 'loopback' | 'always' | 'never';
  /**
   * Extension routes by first path segment, e.g. `{ webhooks: receivers }` for
   * `POST /webhooks/stripe`. They take precedence over a service of the same name.
   */
  mounts?: Mounts;
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
 * | `POST /awakeables/{id}/resolve`           | 200 `{ resolved: id }`; the body is the value (empty: `null`) |
 * | `POST /awakeables/{id}/reject`            | 200 `{ rejected: id }`; body `{ message: string }` |
 * | `GET /invocations/{id}`                   | 200 the invocation's status, 404 if unknown        |
 * | `GET /invocations/{id}/attach`            | waits; 200 the result, or the terminal error       |
 * | `GET /invocations/{id}/output`            | 200 the result if finished, else 202 `{ code: "not_ready", status }` |
 * | `GET /health`                             | 200 `{ status: "ok" }`                             |
 *
 * An `Idempotency-Key` header (once, 1-256 characters, else 400) makes calls and sends
 * idempotent: the same key (per target) answers with the same invocation and result. A
 * workflow's `run` is deduplicated by its workflow key alone, whatever the header says.
 * `?delay=` is at most 365 days (else 400 `invalid_delay`). At most 1,000 clients wait on one
 * invocation (attach, or a call that joined it): the next gets 429 `too_many_waiters`; a client
 * that disconnects releases its wait. Killed invocations answer 409 `killed` on attach and
 * output. Errors are always `{ code, message }` with the error's HTTP status; a handler's
 * `TerminalError` keeps its `code` and `status`.
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
  checkPort(port);
  if (!Number.isInteger(bodyLimit) || bodyLimit < 0)
    throw new TypeError(`bodyLimit must be a whole number of bytes, got ${bodyLimit}`);

  warnIfShadowed(engine);

  const reveal = options.revealTargets ?? 'loopback';
  if (reveal !== 'loopback' && reveal !== 'always' && reveal !== 'never')
    throw new TypeError(
      `revealTargets must be 'loopback', 'always' or 'never', got ${String(reveal)}`,
    );
  const revealsTargets = (req: IncomingMessage): boolean =>
    reveal === 'always' || (reveal === 'loopback' && isLoopback(req.socket.remoteAddress ?? ''));

  /** Requests waiting for an answer, so close() can answer them if they outlive the grace. */
  const pending = new Set<ServerResponse>();
  let closing = false;

  const answerError = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    if (res.headersSent || res.destroyed || req.socket.destroyed) {
      res.destroy();
      return;
    }
    if (err instanceof UnknownTargetError && !revealsTargets(req)) err = plainNotFound(req);
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
    // The unread rest of an oversized body is not worth reading: answer, then close (after
    // the client has had the time to read the answer).
    else if (err instanceof BodyTooLargeError) {
      extra = ['connection', 'close'];
      closeAfterAnswer(req);
    } else if (err instanceof TooManyWaitersError)
      extra = ['retry-after', String(err.retryAfterSeconds)];
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
    if (
      options.mounts &&
      (await dispatchMount(
        options.mounts,
        req,
        res,
        splitPath(path),
        q === -1 ? '' : url.slice(q + 1),
        closing,
      ))
    )
      return;
    const r = route(req.method, path, engine.registry);
    const close = closing ? CLOSE : undefined;
    switch (r.kind) {
      case 'health':
        sendText(res, 200, HEALTH_BODY, close);
        return;
      case 'invocation':
        return answerInvocation(engine, r, res, close);
      case 'awakeable':
        return answerAwakeable(engine, r, req, res, bodyLimit, expectContinue, close);
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
          const result = await engine.invoke(request, { signal: clientGone(res) });
          sendJson(res, 200, result, closing ? CLOSE : undefined);
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

  const { port: boundPort, url } = await listen(server, port, host);
  // An 'error' after listening (e.g. EMFILE on accept) must be logged, not crash the process.
  server.on('error', (err) => engine.log('error', `ingress: ${errorMessage(err)}`, {}));

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

/** The 404 of an unknown target for a client that may not see which targets exist. */
function plainNotFound(req: IncomingMessage): NotFoundError {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return unknownPath(q === -1 ? url : url.slice(0, q));
}

function withClose(extra: string[] | undefined, closing = true): string[] | undefined {
  if (!closing) return extra;
  return extra ? [...extra, ...CLOSE] : [...CLOSE];
}

/** An object or workflow named `awakeables` loses `POST /awakeables/{key}/resolve|reject` (see router.ts). */
function warnIfShadowed(engine: Engine): void {
  const def = engine.registry.get(AWAKEABLES);
  if (!def || def.kind === 'service') return;
  const lost = Object.keys(def.handlers).filter((h) => isAwakeableAction(h.toLowerCase()));
  if (lost.length === 0) return;
  engine.log(
    'warn',
    `ingress: POST /${AWAKEABLES}/{id}/resolve and /reject are the awakeable routes, so ${def.kind} "${AWAKEABLES}" ` +
      `cannot be called there: call ${lost.join(' and ')} with /${AWAKEABLES}/{key}/{handler}/send, or rename the ${def.kind}`,
    {},
  );
}
