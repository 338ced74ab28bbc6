/**
 * The schedules' admin API routes (under `/schedules` on the admin API). Reads need any token;
 * changes need the admin token. Errors are `{ code, message }` (400 ones with `field`).
 *
 * - `GET /schedules`: `{ schedules: [ScheduleView] }` in name order, with next fire times;
 * - `POST /schedules`: a schedule as JSON; 201 with it, 400 when anything is wrong (nothing
 *   stored), 409 `schedule_exists`;
 * - `GET /schedules/{name}`: one, or 404 `schedule_not_found`;
 * - `DELETE /schedules/{name}`: 200 `{ deleted: true, name }`; 409 `schedule_in_code` for one
 *   declared in code;
 * - `POST /schedules/{name}/pause`, `/resume`: 200 with the schedule;
 * - `POST /schedules/{name}/trigger`: starts the target now; 202 `{ invocationId, status,
 *   existing, idempotencyKey }`.
 */
import type { IncomingMessage } from 'node:http';
import { NotFoundError } from '../core/errors.js';
import { isJsonType, parseJson, readBody, unsupportedMediaType } from '../http/body.js';
import { describeMount } from '../http/mount-doc.js';
import { requireAdmin, type Mount } from '../http/mount.js';
import { MethodNotAllowedError, sendJson } from '../http/respond.js';
import { ScheduleError } from './errors.js';
import type { Schedules } from './setup.js';

const BODY_LIMIT = 256 * 1024;

const ACTIONS = ['pause', 'resume', 'trigger'] as const;

/** The admin mount. */
export function adminMount(ext: () => Schedules): Mount {
  const mount: Mount = async (r) => {
    const [name, action, ...rest] = r.segments;
    const method = r.req.method ?? '';
    if (rest.length > 0 || name === '') throw noRoute();
    if (name === undefined) {
      if (method === 'GET') {
        sendJson(r.res, 200, { schedules: await ext().list() });
        return;
      }
      if (method !== 'POST') throw new MethodNotAllowedError(method, 'GET, POST');
      requireAdmin(r, 'creating a schedule');
      const body = await readJson(r.req);
      try {
        sendJson(r.res, 201, await ext().create(body));
      } catch (err) {
        if (!(err instanceof ScheduleError)) throw err;
        sendJson(r.res, 400, {
          code: err.code,
          message: err.message,
          ...(err.field === undefined ? {} : { field: err.field }),
        });
      }
      return;
    }
    if (action === undefined) {
      if (method === 'GET') {
        sendJson(r.res, 200, await ext().get(name));
        return;
      }
      if (method !== 'DELETE') throw new MethodNotAllowedError(method, 'GET, DELETE');
      requireAdmin(r, 'deleting a schedule');
      await ext().delete(name);
      sendJson(r.res, 200, { deleted: true, name });
      return;
    }
    if (!(ACTIONS as readonly string[]).includes(action)) throw noRoute();
    if (method !== 'POST') throw new MethodNotAllowedError(method, 'POST');
    requireAdmin(
      r,
      `${action === 'trigger' ? 'triggering' : `${action.slice(0, -1)}ing`} a schedule`,
    );
    if (action === 'trigger') sendJson(r.res, 202, await ext().trigger(name));
    else sendJson(r.res, 200, await ext()[action as 'pause' | 'resume'](name));
  };
  return describeMount(mount, [
    { method: 'GET', path: '/', summary: 'Every schedule, with its next fire time' },
    {
      method: 'POST',
      path: '/',
      summary: 'Creates a cron schedule',
      description:
        'Body: { name, cron, timezone?, target: { service, handler, key? }, input?, missed?: "skip" | "once" | { all: N }, jitter?, paused? }.',
      responses: {
        '201': 'The schedule, stored',
        '400': 'A field is wrong ({ code, message, field }); nothing was stored',
        '409': 'A schedule of that name exists',
      },
    },
    { method: 'GET', path: '/{name}', summary: 'One schedule' },
    {
      method: 'DELETE',
      path: '/{name}',
      summary: 'Deletes a schedule created through the admin API',
      responses: { '200': 'Deleted', '409': 'Declared in code: remove it there, or pause it' },
    },
    { method: 'POST', path: '/{name}/pause', summary: 'Stops firing ticks' },
    {
      method: 'POST',
      path: '/{name}/resume',
      summary: 'Fires ticks again, from the next one',
    },
    {
      method: 'POST',
      path: '/{name}/trigger',
      summary: 'Starts the target now, once',
      responses: { '202': '{ invocationId, status, existing, idempotencyKey }' },
    },
  ]);
}

function noRoute(): NotFoundError {
  return new NotFoundError(
    'no such schedules route: GET/POST /schedules, GET/DELETE /schedules/{name}, POST /schedules/{name}/pause|resume|trigger',
  );
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type === undefined || !isJsonType(type)) throw unsupportedMediaType(type);
  return parseJson(await readBody(req, BODY_LIMIT));
}
