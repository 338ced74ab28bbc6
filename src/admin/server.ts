/**
 * The admin API: inspect and control invocations over HTTP/1.1 JSON, on its own port so it can
 * stay on loopback (or behind a token) while the ingress faces clients.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDuration } from '../core/duration.js';
import { NotFoundError } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import { isInvocationId } from '../engine/ids.js';
import { checkPort, isLoopback } from '../http/listen.js';
import { dispatchMount, requireAdmin } from '../http/mount.js';
import { splitPath } from '../http/path.js';
import { MethodNotAllowedError, sendJson } from '../http/respond.js';
import {
  createServerBase,
  withClose,
  type HttpServer,
  type HttpServerOptions,
} from '../http/server.js';
import {
  AdminTokenRequiredError,
  checkExposure,
  UnauthorizedError,
  type AdminRole,
} from './auth.js';
import { kernelOf } from '../engine/kernel.js';
import { operatorRoutes } from './actions.js';
import { answerMetrics } from '../observability/metrics/route.js';
import { listFilterFromQuery } from './list-query.js';
import { resolveTokens, roleCheck, type TokenOptions } from './tokens.js';
import { serveDashboard } from '../dashboard/serve.js';
import { answerServices, SERVICES_ROUTES } from './services.js';

/**
 * Options of {@link serveAdmin}: those every Keel server takes (`port` default `9070`, `host`,
 * `closeGrace` default `1s`, `mounts`) and the admin API's tokens. Any `host` off loopback
 * requires `token`: the server refuses to start without one. Mounts (e.g.
 * `{ webhooks, integrations }`) sit behind the same token check as the built-in routes, and
 * are told the caller's role (`MountRequest.role`).
 */
export interface AdminOptions extends HttpServerOptions, TokenOptions {
  /**
   * When set, every request must carry `Authorization: Bearer <token>` (else 401). Printable
   * ASCII, no spaces, at least 32 characters (else the server refuses to start): use a random
   * secret such as `openssl rand -hex 32`. Apps map `KEEL_ADMIN_TOKEN` onto it.
   */
  token?: string;
  /**
   * A second, read-only token (`Authorization: Bearer <userToken>`): it may read everything
   * the admin token may (`GET /invocations...`, `/health`, `GET /integrations/status`,
   * `GET /integrations/{name}/health`, `GET /webhooks`, `GET /webhooks/{id}/deliveries`, ...),
   * and is answered 403 `forbidden` on every change (invocation actions, circuit reset, every
   * write under `/webhooks`, and the reveal of an endpoint's secret). Same form as `token`,
   * different from it, and only with it (else the server refuses to start). The former name of
   * `viewerToken`; apps map `KEEL_USER_TOKEN` onto it.
   */
  userToken?: string;
  /**
   * The read-only token (`KEEL_VIEWER_TOKEN`): what `userToken` describes. `viewerTokens` and
   * `adminTokens` take several of each (`KEEL_VIEWER_TOKENS`, `KEEL_ADMIN_TOKENS`,
   * comma-separated), so a token can be rotated: add the new one, move callers, drop the old.
   */
  viewerToken?: string;
}

/** A running admin API. */
export type AdminServer = HttpServer;

const DEFAULT_PORT = 9070;
const DEFAULT_HOST = '127.0.0.1';
/** Admin requests are single store reads or writes: a second is plenty to let them finish. */
const DEFAULT_CLOSE_GRACE = '1s';
const SHUTTING_DOWN = 'the admin API is shutting down; repeat the request once it is back';
const ACTIONS = ['cancel', 'kill', 'purge', 'resume'] as const;
type Action = (typeof ACTIONS)[number];

const ROUTES_HINT =
  'the routes are GET /invocations (?status=&service=&handler=&key=&error=&since=&until=&limit=&cursor=), GET /invocations/{id}, ' +
  'GET /invocations/{id}/journal, POST /invocations/{id}/cancel, /kill, /purge, /resume, /pause, /retry-now and /restart, ' +
  'POST /invocations/bulk, GET /invocations/bulk/{jobId}, GET /state/{service}[/{key}], PUT and DELETE /state/{service}/{key}/{name}, ' +
  'GET /queues[/{name}], GET /health and GET /metrics; ' +
  SERVICES_ROUTES;

/** The admin API refuses to start; thrown before anything is bound when it can be decided then. */
export function checkAdminOptions(options: AdminOptions): void {
  parseDuration(options.closeGrace ?? DEFAULT_CLOSE_GRACE);
  checkPort(options.port ?? DEFAULT_PORT, 'the admin port');
  checkExposure(options.host ?? DEFAULT_HOST, resolveTokens(options).admin);
}

/**
 * Serves the admin API of an engine. Secure by default: it binds to `127.0.0.1`; bound to any
 * other address it refuses to start without a `token`, and with a token every request needs
 * `Authorization: Bearer <token>` (else 401 `unauthorized`).
 *
 * Two roles: the admin token may do everything; the optional `userToken` may only read. On
 * loopback without any token, every caller is admin. A user-token request for a change (the
 * `POST` routes below, a circuit reset, any write under `/webhooks` or the reveal of an
 * endpoint's secret) is answered 403 `forbidden`; reads answer the same as for the admin.
 *
 * | Request                                                 | Answer                                        |
 * | ------------------------------------------------------- | --------------------------------------------- |
 * | `GET /invocations?status=&service=&handler=&key=&error=&since=&until=&limit=&cursor=` | 200 `{ invocations, nextCursor? }`, newest first; `status` one or a comma list, `error` an error code, `since`/`until` bound `createdAt` (ISO or epoch ms); `limit` 1-1000 (default 50) |
 * | `GET /invocations/{id}`                                 | 200 the invocation                            |
 * | `GET /invocations/{id}/journal`                         | 200 `{ entries }`                             |
 * | `POST /invocations/{id}/cancel`                         | 202 `{ invocation }`: the handler sees a `CancelledError` at its next await |
 * | `POST /invocations/{id}/kill`                           | 200 `{ invocation }`: ended at once, code `killed` |
 * | `POST /invocations/{id}/purge`                          | 200 `{ purged: id }`: a finished invocation and its journal are deleted |
 * | `POST /invocations/{id}/resume`                         | 202 `{ invocation }`: a paused invocation is replayed (one paused before it started starts) |
 * | `POST /invocations/{id}/pause`                          | 202 `{ invocation }`: status `paused`; a running handler stops at its next wait or step, timers do not run it |
 * | `POST /invocations/{id}/retry-now`                      | 202 `{ invocation }`: a backing-off (or scheduled) invocation runs now; 409 `not_waiting` otherwise |
 * | `POST /invocations/{id}/restart`                        | 202 `{ invocation }`: a NEW invocation, same target, key and input; a workflow run only once finished (409 `workflow_running`). Optional body `{ "fromEntry": N }`: the new one starts with a copy of the journal's entries 0..N-1 and replays them (a finished invocation only, 409 `not_finished`; 400 `entry_out_of_range`; 409 `entry_unfinished`, `entry_not_portable`, `key_busy`) |
 * | `POST /invocations/bulk`                                | body `{ action, filter }` or `{ action, ids }` (action: cancel, kill, purge, restart, resume, pause): 202 `{ job }` |
 * | `GET /invocations/bulk/{jobId}`                         | 200 `{ job: { id, action, status, matched, done, failed, errors } }` |
 * | `GET /state/{service}?limit=&cursor=`                   | 200 `{ keys: [{ key }], nextCursor? }`: keys of an object or workflow that have state |
 * | `GET /state/{service}/{key}`                            | 200 `{ service, key, state }`                 |
 * | `PUT /state/{service}/{key}/{name}`                     | body: the JSON value; 200 `{ service, key, name, value, invocationId }`, run as an invocation exclusive on the key (202 while it still waits for the key's holder) |
 * | `DELETE /state/{service}/{key}/{name}`                  | 200 `{ service, key, name, deleted: true, invocationId }` |
 * | `GET /health`                                           | 200 `{ status: "ok" }`                        |
 * | `GET /metrics`                                          | 200 Prometheus text (`text/plain; version=0.0.4`); 404 `metrics_disabled` when metrics are off |
 * | `GET /services`                                         | 200 `{ services }`: each routable service, object and workflow with its handlers' JSON Schemas |
 * | `POST /services/{service}/{handler}/invoke`             | body `{ key?, input?, mode?: "call"\|"send", delay?, idempotencyKey? }`: 200 `{ invocationId, output }` (call), 202 `{ invocationId }` (send, the default); admin only |
 * | `GET /openapi.json`                                     | 200 the ingress's OpenAPI 3.1 document        |
 * | `GET /queues`                                           | 200 `{ queues }`: each flow-control queue with its `limits`, `waiting`, `running`, `keys` and `oldestWaitingSince` (epoch ms) |
 * | `GET /queues/{name}`                                    | 200 one queue; 404 `not_found` for an unknown name |
 *
 * Errors are `{ code, message }` with the error's status, as on the ingress: 400 for a bad
 * query, 401 `unauthorized`, 403 `forbidden`, 404 for an unknown id or path, 405 (with `Allow`) for a wrong
 * method, 409 when the invocation's state forbids the action (e.g. `already_finished`).
 *
 * @example
 * ```ts
 * import { Engine, serve, serveAdmin } from 'keel';
 *
 * const engine = new Engine({ services: [Greeter], store: openSqliteStore({ path: '.keel/keel.db' }) });
 * await engine.start();
 * const ingress = await serve(engine);
 * const admin = await serveAdmin(engine, {
 *   token: process.env.KEEL_ADMIN_TOKEN,
 *   userToken: process.env.KEEL_USER_TOKEN, // read-only
 * });
 * // curl -H "Authorization: Bearer $KEEL_USER_TOKEN" 'localhost:9070/invocations?status=failed'
 * // curl -X POST -H "Authorization: Bearer $KEEL_ADMIN_TOKEN" localhost:9070/invocations/inv_.../cancel
 * process.on('SIGTERM', async () => {
 *   await Promise.all([admin.close(), ingress.close()]);
 *   await engine.stop();
 * });
 * ```
 */
export async function serveAdmin(engine: Engine, options: AdminOptions = {}): Promise<AdminServer> {
  checkAdminOptions(options);
  const port = options.port ?? DEFAULT_PORT;
  const host = options.host ?? DEFAULT_HOST;
  const tokens = resolveTokens(options);
  const authorize = tokens.admin.length === 0 ? undefined : roleCheck(tokens);
  // Extensions' routes under their names; routes given here win.
  const mounts = { ...kernelOf(engine).mounts('admin'), ...options.mounts };
  // Pause, retry-now, restart, bulk jobs and /state (actions.ts).
  const operator = operatorRoutes(engine);

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // The dashboard's page and assets hold no data: served without a token.
    if (await serveDashboard(req, res, base.closing)) return;
    // Before routing: without the token, not even which paths exist is revealed.
    const role: AdminRole = authorize?.(req.headers.authorization) ?? 'admin';
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (path.charCodeAt(0) !== 47 /* / */) throw unknownPath(url);
    const segs = splitPath(path);
    const [first, id, action] = segs;
    const close = withClose(undefined, base.closing);
    const query = q === -1 ? '' : url.slice(q + 1);
    if (await dispatchMount(mounts, req, res, segs, query, base.closing, role)) return;
    if (first === 'whoami' && segs.length === 1) {
      allow(req, 'GET');
      sendJson(res, 200, { role }, close);
      return;
    }
    if (first === 'health' && segs.length === 1) {
      allow(req, 'GET');
      sendJson(res, 200, { status: 'ok' }, close);
      return;
    }
    // Prometheus text; any role may scrape (404 metrics_disabled when metrics are off).
    if (await answerMetrics(kernelOf(engine).metrics, req, res, segs, close)) return;
    if (await answerServices(engine, req, res, segs, role, close)) return;
    if (first === 'queues' && segs.length <= 2) {
      allow(req, 'GET');
      const queues = await engine.queues();
      if (id === undefined) {
        sendJson(res, 200, { queues }, close);
        return;
      }
      const one = queues.find((x) => x.name === id);
      if (!one)
        throw unknownQueue(
          id,
          queues.map((x) => x.name),
        );
      sendJson(res, 200, one, close);
      return;
    }
    if (await operator(req, res, segs, query, role, close)) return;
    if (first !== 'invocations' || segs.length > 3 || id === '') throw unknownPath(path);
    if (id === undefined) {
      allow(req, 'GET');
      const filter = listFilterFromQuery(q === -1 ? '' : url.slice(q + 1));
      sendJson(res, 200, await engine.listInvocations(filter), close);
      return;
    }
    if (action === undefined) {
      allow(req, 'GET');
      const info = isInvocationId(id) ? await engine.getInvocation(id) : undefined;
      if (!info) throw unknownInvocation(id);
      sendJson(res, 200, info, close);
      return;
    }
    if (action === 'journal') {
      allow(req, 'GET');
      if (!isInvocationId(id)) throw unknownInvocation(id);
      sendJson(res, 200, { entries: await engine.getJournal(id) }, close);
      return;
    }
    if (!isAction(action)) throw unknownPath(path);
    allow(req, 'POST');
    requireAdmin({ role }, `${action} of an invocation`);
    if (!isInvocationId(id)) throw unknownInvocation(id);
    switch (action) {
      case 'cancel':
        sendJson(res, 202, { invocation: await engine.cancel(id) }, close);
        return;
      case 'kill':
        sendJson(res, 200, { invocation: await engine.kill(id) }, close);
        return;
      case 'purge':
        await engine.purge(id);
        sendJson(res, 200, { purged: id }, close);
        return;
      case 'resume':
        sendJson(res, 202, { invocation: await engine.resumePaused(id) }, close);
        return;
    }
  };

  const base = createServerBase({
    name: 'admin',
    port,
    host,
    closeGraceMs: parseDuration(options.closeGrace ?? DEFAULT_CLOSE_GRACE),
    log: (level, message, fields) => kernelOf(engine).log(level, message, fields),
    route: handle,
    errorHeaders: (err) =>
      err instanceof UnauthorizedError ? ['www-authenticate', 'Bearer'] : undefined,
    shuttingDown: SHUTTING_DOWN,
  });
  const bound = await base.listen();
  // A hostname is judged by what it resolved to: `localhost` is fine, a public name is not.
  const address = base.server.address();
  if (
    tokens.admin.length === 0 &&
    typeof address === 'object' &&
    address !== null &&
    !isLoopback(address.address)
  ) {
    await base.close();
    throw new AdminTokenRequiredError(`${host} (${address.address})`);
  }
  return { port: bound.port, url: bound.url, close: base.close, handle: base.handle };
}

function allow(req: IncomingMessage, method: 'GET' | 'POST'): void {
  if (req.method !== method) throw new MethodNotAllowedError(req.method ?? '?', method);
}

function isAction(s: string): s is Action {
  return (ACTIONS as readonly string[]).includes(s);
}

function unknownInvocation(id: string): NotFoundError {
  return new NotFoundError(`no invocation "${id}": it never existed or its retention ended`);
}

function unknownQueue(name: string, known: string[]): NotFoundError {
  return new NotFoundError(
    `no queue "${name}": the queues are ${known.length ? known.join(', ') : '(none)'}`,
  );
}

function unknownPath(path: string): NotFoundError {
  return new NotFoundError(`nothing at "${path}": ${ROUTES_HINT}`);
}
