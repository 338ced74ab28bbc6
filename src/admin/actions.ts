/**
 * The admin API's operator actions beyond cancel, kill, purge and resume:
 *
 * | Request                              | Answer                                                     |
 * | ------------------------------------ | ---------------------------------------------------------- |
 * | `POST /invocations/{id}/pause`       | 202 `{ invocation }`: status `paused`; a running handler stops at its next wait or step |
 * | `POST /invocations/{id}/retry-now`   | 202 `{ invocation }`: a backing-off (or scheduled) invocation runs now |
 * | `POST /invocations/{id}/restart`     | 202 `{ invocation }`: the NEW invocation, same target, key and input; optional body `{ "fromEntry": N }` restarts from a journal prefix (see engine/restart.ts) |
 * | `POST /invocations/bulk`             | body `{ action, filter }` or `{ action, ids }`: 202 `{ job }` |
 * | `GET /invocations/bulk/{jobId}`      | 200 `{ job }`: `{ id, action, status, matched, done, failed, errors }` |
 * | `/state/...`                         | see state.ts                                               |
 *
 * Every change needs the admin role (403 `forbidden` for the read-only token).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { NotFoundError, ValidationError } from '../core/errors.js';
import type { Engine } from '../engine/engine.js';
import type { RestartOptions } from '../engine/restart.js';
import { isInvocationId } from '../engine/ids.js';
import { kernelOf } from '../engine/kernel.js';
import { isJsonType, parseJson, readBody, unsupportedMediaType } from '../http/body.js';
import { requireAdmin, type MountRole } from '../http/mount.js';
import { MethodNotAllowedError, sendJson } from '../http/respond.js';
import { BulkJobs, parseBulkRequest } from './bulk.js';
import { answerState } from './state.js';

const ACTIONS = ['pause', 'retry-now', 'restart'] as const;
type Action = (typeof ACTIONS)[number];

/** A bulk request lists at most 10,000 ids of ~30 bytes: 1 MiB is ample. */
const BODY_LIMIT = 1024 * 1024;

/** The routes' answer: true when the request was one of them (and was answered). */
export type OperatorRoutes = (
  req: IncomingMessage,
  res: ServerResponse,
  segs: string[],
  query: string,
  role: MountRole,
  close: readonly string[] | undefined,
) => Promise<boolean>;

/** The operator routes of one admin server (its bulk jobs live as long as it does). */
export function operatorRoutes(engine: Engine): OperatorRoutes {
  const jobs = new BulkJobs(engine);
  return async (req, res, segs, query, role, close) => {
    const [first, id, action] = segs;
    if (first === 'state') {
      await answerState(kernelOf(engine), req, res, segs.slice(1), query, role, close);
      return true;
    }
    if (first !== 'invocations') return false;
    if (id === 'bulk') {
      if (segs.length === 2) {
        allow(req, 'POST');
        requireAdmin({ role }, 'a bulk action');
        const request = parseBulkRequest(await readJson(req));
        sendJson(res, 202, { job: jobs.start(request) }, close);
        return true;
      }
      if (segs.length === 3) {
        allow(req, 'GET');
        const job = jobs.get(action!);
        if (!job)
          throw new NotFoundError(
            `no bulk job "${action}": it never existed here, or it was one of more than 100 newer jobs (jobs live in the admin server's memory)`,
          );
        sendJson(res, 200, { job }, close);
        return true;
      }
      return false;
    }
    if (segs.length !== 3 || !isAction(action)) return false;
    allow(req, 'POST');
    requireAdmin({ role }, `${action} of an invocation`);
    if (id === undefined || !isInvocationId(id))
      throw new NotFoundError(`no invocation "${id}": it never existed or its retention ended`);
    const invocation =
      action === 'pause'
        ? await engine.pause(id)
        : action === 'retry-now'
          ? await engine.retryNow(id)
          : await engine.restart(id, parseRestart(await readJson(req)));
    sendJson(res, 202, { invocation }, close);
    return true;
  };
}

/**
 * The optional body of a restart: none (or `{}`) for a plain restart, `{ "fromEntry": N }` to
 * keep the journal's first N entries. Unknown fields are refused, so a misspelt option never
 * turns into a plain restart that runs every step again.
 */
function parseRestart(body: unknown): RestartOptions {
  if (body === undefined) return {};
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new ValidationError(
      'the body of a restart is a JSON object, { "fromEntry": N }, or nothing',
    );
  const unknown = Object.keys(body).filter((k) => k !== 'fromEntry');
  if (unknown.length > 0)
    throw new ValidationError(
      `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')} in the body of a restart: the only one is "fromEntry"`,
    );
  const { fromEntry } = body as { fromEntry?: unknown };
  if (fromEntry === undefined) return {};
  if (typeof fromEntry !== 'number' || !Number.isSafeInteger(fromEntry) || fromEntry < 0)
    throw new ValidationError(
      `"fromEntry" is the journal index of the first entry to run again, a whole number from 0, not ${JSON.stringify(fromEntry)}`,
    );
  return { fromEntry };
}

function isAction(s: string | undefined): s is Action {
  return (ACTIONS as readonly (string | undefined)[]).includes(s);
}

function allow(req: IncomingMessage, method: 'GET' | 'POST'): void {
  if (req.method !== method) throw new MethodNotAllowedError(req.method ?? '?', method);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !isJsonType(type)) throw unsupportedMediaType(type);
  const body = await readBody(req, BODY_LIMIT);
  if (type === undefined && body.length > 0) throw unsupportedMediaType(undefined);
  return parseJson(body);
}
