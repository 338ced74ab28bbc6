/**
 * The admin API: inspect and control invocations over HTTP/1.1 JSON, on its own port so it can
 * stay on loopback (or behind a token) while the ingress faces clients.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { parseDuration } from '../core/duration.js';
import { KeelError, NotFoundError } from '../core/errors.js';
import type { Engine, InvocationInfo } from '../engine/engine.js';
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
  bearerCheck,
  checkExposure,
  checkTokens,
  UnauthorizedError,
  type AdminRole,
} from './auth.js';
import { kernelOf } from '../engine/kernel.js';

/**
 * Options of {@link serveAdmin}: those every Keel server takes (`port` default `9070`, `host`,
 * `closeGrace` default `1s`, `mounts`) and the admin API's tokens. Any `host` off loopback
 * requires `token`: the server refuses to start without one. Mounts (e.g.
 * `{ webhooks, integrations }`) sit behind the same token check as the built-in routes, and
 * are told the caller's role (`MountRequest.role`).
 */
export interface AdminOptions extends HttpServerOptions {
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
   * different from it, and only with it (else the server refuses to start). Apps map
   * `KEEL_USER_TOKEN` onto it.
   */
  userToken?: string;
}

/** A running admin API. */
export type AdminServer = HttpServer;

const DEFAULT_PORT = 9070;
const DEFAULT_HOST = '127.0.0.1';
/** Admin requests are single store reads or writes: a second is plenty to let them finish. */
const DEFAULT_CLOSE_GRACE = '1s';
const SHUTTING_DOWN = 'the admin API is shutting down; repeat the request once it is back';
const MAX_LIMIT = 1000;

type Status = InvocationInfo['status'];
const STATUSES = [
  'pending',
  'scheduled',
  'running',
  'suspended',
  'backing-off',
  'paused',
  'completed',
  'failed',
] as const satisfies readonly Status[];
// A status the engine gains but this list lacks fails to compile, so the 400 never lies.
const _everyStatus: [Exclude<Status, (typeof STATUSES)[number]>] extends [never] ? true : never =
  true;

const LIST_PARAMS = ['status', 'service', 'key', 'limit', 'cursor'] as const;
const ACTIONS = ['cancel', 'kill', 'purge', 'resume'] as const;
type Action = (typeof ACTIONS)[number];

const ROUTES_HINT =
  'the routes are GET /invocations (?status=&service=&key=&limit=&cursor=), GET /invocations/{id}, ' +
  'GET /invocations/{id}/journal, POST /invocations/{id}/cancel, /kill, /purge and /resume, and GET /health';

/** The admin API refuses to start; thrown before anything is bound when it can be decided then. */
export function checkAdminOptions(options: AdminOptions): void {
  parseDuration(options.closeGrace ?? DEFAULT_CLOSE_GRACE);
  checkPort(options.port ?? DEFAULT_PORT, 'the admin port');
  checkTokens(options.token, options.userToken);
  checkExposure(options.host ?? DEFAULT_HOST, options.token);
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
 * | `GET /invocations?status=&service=&key=&limit=&cursor=` | 200 `{ invocations, nextCursor? }`, newest first; `limit` 1-1000 (default 50) |
 * | `GET /invocations/{id}`                                 | 200 the invocation                            |
 * | `GET /invocations/{id}/journal`                         | 200 `{ entries }`                             |
 * | `POST /invocations/{id}/cancel`                         | 202 `{ invocation }`: the handler sees a `CancelledError` at its next await |
 * | `POST /invocations/{id}/kill`                           | 200 `{ invocation }`: ended at once, code `killed` |
 * | `POST /invocations/{id}/purge`                          | 200 `{ purged: id }`: a finished invocation and its journal are deleted |
 * | `POST /invocations/{id}/resume`                         | 202 `{ invocation }`: a paused invocation is replayed |
 * | `GET /health`                                           | 200 `{ status: "ok" }`                        |
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
  const authorize =
    options.token === undefined ? undefined : bearerCheck(options.token, options.userToken);
  // Extensions' routes under their names; routes given here win.
  const mounts = { ...kernelOf(engine).mounts('admin'), ...options.mounts };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
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
    if (first === 'health' && segs.length === 1) {
      allow(req, 'GET');
      sendJson(res, 200, { status: 'ok' }, close);
      return;
    }
    if (first !== 'invocations' || segs.length > 3 || id === '') throw unknownPath(path);
    if (id === undefined) {
      allow(req, 'GET');
      const filter = listFilter(q === -1 ? '' : url.slice(q + 1));
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
    options.token === undefined &&
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

/** Reads the query of `GET /invocations`; anything it does not understand is a 400, not ignored. */
function listFilter(query: string): Parameters<Engine['listInvocations']>[0] {
  const params = new URLSearchParams(query);
  const filter: Parameters<Engine['listInvocations']>[0] = {};
  for (const name of new Set(params.keys())) {
    if (!(LIST_PARAMS as readonly string[]).includes(name)) {
      throw invalidQuery(
        `unknown query parameter "${name}": GET /invocations takes ${LIST_PARAMS.join(', ')}`,
      );
    }
    const values = params.getAll(name);
    if (values.length > 1)
      throw invalidQuery(`"${name}" is given ${values.length} times; give it once`);
    if (values[0] === '') throw invalidQuery(`"${name}" is empty: give it a value or leave it out`);
  }
  const status = params.get('status');
  if (status !== null) {
    if (!(STATUSES as readonly string[]).includes(status))
      throw invalidQuery(`unknown status "${status}": the statuses are ${STATUSES.join(', ')}`);
    filter.status = status as Status;
  }
  const limit = params.get('limit');
  if (limit !== null) {
    const n = /^\d{1,7}$/.test(limit) ? Number(limit) : NaN;
    if (!(n >= 1 && n <= MAX_LIMIT))
      throw invalidQuery(`limit "${limit}" must be a whole number from 1 to ${MAX_LIMIT}`);
    filter.limit = n;
  }
  const service = params.get('service');
  if (service !== null) filter.service = service;
  const key = params.get('key');
  if (key !== null) filter.key = key;
  const cursor = params.get('cursor');
  if (cursor !== null) filter.cursor = cursor;
  return filter;
}

function invalidQuery(message: string): KeelError {
  return new KeelError(message, { code: 'invalid_query', status: 400 });
}

function unknownInvocation(id: string): NotFoundError {
  return new NotFoundError(`no invocation "${id}": it never existed or its retention ended`);
}

function unknownPath(path: string): NotFoundError {
  return new NotFoundError(`nothing at "${path}": ${ROUTES_HINT}`);
}
