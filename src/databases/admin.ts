/**
 * The declared databases on the admin API, mounted under `/databases`.
 *
 * | Request                        | Answer                                                                  |
 * | ------------------------------ | ----------------------------------------------------------------------- |
 * | `GET /databases`               | 200 `{ databases }`: each database's status (either token)               |
 * | `GET /databases/{name}`        | 200 one status; 404 `not_found` for an undeclared name (either token)    |
 * | `POST /databases/{name}/ping`  | 200 `{ ok: true, status }`; 503 with the error's code when it is down (admin token) |
 */
import { NotFoundError } from '../core/errors.js';
import { requireAdmin, type Mount, type MountRequest } from '../http/mount.js';
import { MethodNotAllowedError, sendJson } from '../http/respond.js';
import type { DatabaseConnection } from './connection.js';
import type { DatabaseStatus } from './types.js';

/** What the mount reads, per request (the mount exists before the engine started). */
export interface AdminView {
  status(): DatabaseStatus[];
  connection(name: string): DatabaseConnection | undefined;
}

/**
 * The admin mount of the `databases` extension.
 *
 * @example
 * ```ts
 * const mounts = { admin: databasesAdminMount(view) };
 * ```
 */
export function databasesAdminMount(view: AdminView): Mount {
  return async (r) => {
    const method = r.req.method ?? 'GET';
    const [name, action, ...rest] = r.segments;
    if (name === undefined) {
      if (method !== 'GET') throw new MethodNotAllowedError(method, 'GET');
      return send(r, 200, { databases: view.status() });
    }
    const known = view.status().find((s) => s.name === name);
    if (known === undefined)
      throw new NotFoundError(`no database "${name}"; GET /databases lists them`);
    if (action === undefined) {
      if (method !== 'GET') throw new MethodNotAllowedError(method, 'GET');
      return send(r, 200, known);
    }
    if (action === 'ping' && rest.length === 0) {
      if (method !== 'POST') throw new MethodNotAllowedError(method, 'POST');
      requireAdmin(r, `POST /databases/${name}/ping`);
      const conn = view.connection(name);
      if (conn === undefined)
        throw new NotFoundError(`database "${name}" is not open: the engine has not started`);
      try {
        await conn.ping();
        return send(r, 200, { ok: true, status: conn.status() });
      } catch (err) {
        const code = (err as { code?: unknown }).code;
        return send(r, 503, {
          ok: false,
          code: typeof code === 'string' ? code : 'database_unavailable',
          status: conn.status(),
        });
      }
    }
    throw new NotFoundError(`no route /databases/${r.segments.join('/')}; try GET /databases`);
  };
}

function send(r: MountRequest, status: number, value: unknown): void {
  sendJson(r.res, status, value, r.closing ? ['connection', 'close'] : undefined);
}
