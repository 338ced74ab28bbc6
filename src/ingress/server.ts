/**
 * The HTTP ingress, on plain `node:http`.
 *
 * Why no framework: the ingress is on the hot path of every invocation (target: >15,000
 * requests/s for a trivial handler on 2 cores) and its surface is six fixed URL shapes. A
 * framework would add a router, middleware chains and per-request objects for nothing; here a
 * request costs one path split, one body read and one JSON parse, with no regular expressions
 * and no per-request closures beyond the body reader's.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDuration } from '../core/duration.js';
import { NotFoundError } from '../core/errors.js';
import { ThrottledError } from '../core/flow.js';
import type { Engine } from '../engine/engine.js';
import { kernelOf } from '../engine/kernel.js';
import { checkPort, isLoopback } from '../http/listen.js';
import { dispatchMount, type Mounts } from '../http/mount.js';
import { splitPath } from '../http/path.js';
import { sendJson, sendText } from '../http/respond.js';
import {
  createServerBase,
  withClose,
  type HttpServer,
  type HttpServerOptions,
} from '../http/server.js';
import { TooManyWaitersError } from '../engine/waiters.js';
import { clientGone } from '../http/client-gone.js';
import { answerAwakeable, answerInvocation, readInvokeRequest } from './handlers.js';
import { registerIngress } from './openapi.js';
import { AWAKEABLES, isAwakeableAction, route, UnknownTargetError, unknownPath } from './router.js';
import { ingressKeyCheck, IngressUnauthorizedError, SELF_AUTHENTICATED_MOUNTS } from './keys.js';

/**
 * Options of {@link serve}: those every Keel server takes (`port` default `9080`, `host`,
 * `closeGrace` default `5s`, `mounts`) and the ingress's own. Every field has a documented
 * default.
 */
export interface IngressOptions extends HttpServerOptions {
  /** Largest accepted request body in bytes; larger ones get 413. Default 1 MiB. */
  bodyLimit?: number;
  /**
   * Who sees, in the 404 for an unknown service or handler, the names of the services and
   * handlers that exist (a help while developing, a map for an attacker): `'loopback'` clients
   * only (the default), `'always'` or `'never'`. Others get a plain 404 naming the path. Behind
   * a proxy on the same host every client looks like loopback: set `'never'` there.
   */
  revealTargets?: 'loopback' | 'always' | 'never';
  /**
   * API keys (`KEEL_INGRESS_KEYS`, comma-separated), each at least 32 characters. When given,
   * every request must carry one as `Authorization: Bearer <key>` or `X-API-Key: <key>`, else
   * 401 `unauthorized`; except `GET /health` and the mounts that authenticate on their own
   * (inbound webhooks by signature, the gateway by its keys, OAuth links). `/openapi.json`
   * needs a key (it maps every handler). Default: none, every client may call.
   */
  ingressKeys?: readonly string[];
}

/**
 * A running ingress. `close()` leaves the invocations of requests it answers 503 running in
 * the engine: their clients attach to them later.
 */
export type IngressServer = HttpServer;

const DEFAULT_PORT = 9080;
const DEFAULT_HOST = '127.0.0.1';
const DEFAULT_BODY_LIMIT = 1024 * 1024;
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
 * | `/send?debounceKey=..&debouncePeriod=5s`  | 202 as above: the burst's invocation (docs/flow-control.md) |
 * | `/send?throttleKey=..&throttleLimit=10&throttlePeriod=1m[&throttleMode=drop]` | 202, or 200 `{ dropped: true, code: "throttled", retryAfterMs }` |
 * | `POST /awakeables/{id}/resolve`           | 200 `{ resolved: id }`; the body is the value (empty: `null`) |
 * | `POST /awakeables/{id}/reject`            | 200 `{ rejected: id }`; body `{ message: string }` |
 * | `GET /invocations/{id}`                   | 200 the invocation's status, 404 if unknown        |
 * | `GET /invocations/{id}/attach`            | waits; 200 the result, or the terminal error       |
 * | `GET /invocations/{id}/output`            | 200 the result if finished, else 202 `{ code: "not_ready", status }` |
 * | `GET /health`                             | 200 `{ status: "ok" }`                             |
 * | `GET /openapi.json`                       | 200 this API as OpenAPI 3.1, from the handlers' schemas |
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
  const k = kernelOf(engine);
  // Extensions' routes under their names; routes given here win.
  const merged = { ...k.mounts('ingress'), ...options.mounts };
  const mounts = Object.keys(merged).length > 0 ? merged : undefined;
  const port = options.port ?? DEFAULT_PORT;
  const host = options.host ?? DEFAULT_HOST;
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const closeGraceMs = parseDuration(options.closeGrace ?? '5s');
  checkPort(port);
  if (!Number.isInteger(bodyLimit) || bodyLimit < 0)
    throw new TypeError(`bodyLimit must be a whole number of bytes, got ${bodyLimit}`);

  warnIfShadowed(engine);
  const openapi = registerIngress(engine, {
    mounts: merged,
    ...(options.ingressKeys?.length
      ? { apiKeys: { exemptMounts: SELF_AUTHENTICATED_MOUNTS } }
      : {}),
  });

  const reveal = options.revealTargets ?? 'loopback';
  if (reveal !== 'loopback' && reveal !== 'always' && reveal !== 'never')
    throw new TypeError(
      `revealTargets must be 'loopback', 'always' or 'never', got ${String(reveal)}`,
    );
  const checkKey =
    options.ingressKeys === undefined || options.ingressKeys.length === 0
      ? undefined
      : ingressKeyCheck(options.ingressKeys);
  const revealsTargets = (req: IncomingMessage): boolean =>
    reveal === 'always' || (reveal === 'loopback' && isLoopback(req.socket.remoteAddress ?? ''));

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
    const segs = splitPath(path);
    if (checkKey && !exemptFromKeys(segs, mounts)) checkKey(req);
    if (
      mounts &&
      (await dispatchMount(mounts, req, res, segs, q === -1 ? '' : url.slice(q + 1), base.closing))
    )
      return;
    const r = route(req.method, path, k.registry);
    const close = withClose(undefined, base.closing);
    switch (r.kind) {
      case 'health':
        sendText(res, 200, HEALTH_BODY, close);
        return;
      case 'openapi':
        sendText(res, 200, await openapi.text(), close);
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
          const sent = await k.send(request).catch((err: unknown) => {
            if (err instanceof ThrottledError) return err;
            throw err;
          });
          if (sent instanceof ThrottledError) {
            // Dropped as asked: a 200 that says so, not a 429 (see docs/flow-control.md).
            sendJson(
              res,
              200,
              {
                dropped: true,
                code: sent.code,
                retryAfterMs: sent.retryAfterMs,
                message: sent.message,
              },
              withClose(undefined, base.closing),
            );
            return;
          }
          const body = {
            invocationId: sent.invocationId,
            status: sent.status,
            existing: sent.existing,
          };
          sendJson(
            res,
            202,
            body,
            withClose(['x-keel-invocation-id', sent.invocationId], base.closing),
          );
        } else {
          const result = await k.invoke(request, { gone: clientGone(res) });
          // Read again: close() may have been called while the invocation ran.
          sendJson(res, 200, result, withClose(undefined, base.closing));
        }
      }
    }
  };

  const base = createServerBase({
    name: 'ingress',
    port,
    host,
    closeGraceMs,
    log: (level, message, fields) => k.log(level, message, fields),
    route: handle,
    // `Expect: 100-continue`: decide after routing, so a 404 or 413 is answered without
    // inviting the client to upload the body first (see readInvokeRequest).
    decidesContinue: true,
    errorHeaders: (err) =>
      err instanceof TooManyWaitersError
        ? ['retry-after', String(err.retryAfterSeconds)]
        : err instanceof IngressUnauthorizedError
          ? ['www-authenticate', 'Bearer']
          : undefined,
    publicError: (err, req) =>
      err instanceof UnknownTargetError && !revealsTargets(req) ? plainNotFound(req) : err,
    shuttingDown: SHUTTING_DOWN,
  });
  const { port: boundPort, url } = await base.listen();
  openapi.bound(url);
  return { port: boundPort, url, close: base.close, handle: base.handle };
}

/** `GET /health` and the mounts that authenticate on their own need no ingress key (see keys.ts). */
function exemptFromKeys(segs: readonly string[], mounts: Mounts | undefined): boolean {
  const first = segs[0];
  if (first === undefined) return false;
  if (first === 'health' && segs.length === 1) return true;
  return SELF_AUTHENTICATED_MOUNTS.has(first) && mounts?.[first] !== undefined;
}

/** The 404 of an unknown target for a client that may not see which targets exist. */
function plainNotFound(req: IncomingMessage): NotFoundError {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return unknownPath(q === -1 ? url : url.slice(0, q));
}

/** An object or workflow named `awakeables` loses `POST /awakeables/{key}/resolve|reject` (see router.ts). */
function warnIfShadowed(engine: Engine): void {
  const k = kernelOf(engine);
  const def = k.registry.routable(AWAKEABLES);
  if (!def || def.kind === 'service') return;
  const lost = Object.keys(def.handlers).filter((h) => isAwakeableAction(h.toLowerCase()));
  if (lost.length === 0) return;
  k.log(
    'warn',
    `ingress: POST /${AWAKEABLES}/{id}/resolve and /reject are the awakeable routes, so ${def.kind} "${AWAKEABLES}" ` +
      `cannot be called there: call ${lost.join(' and ')} with /${AWAKEABLES}/{key}/{handler}/send, or rename the ${def.kind}`,
    {},
  );
}
