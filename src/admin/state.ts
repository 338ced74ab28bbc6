/**
 * The admin API's `/state` routes: browse and edit the state of objects and workflows.
 *
 * | Request                               | Answer                                                     |
 * | ------------------------------------- | ---------------------------------------------------------- |
 * | `GET /state/{service}?limit=&cursor=` | 200 `{ keys: [{ key }], nextCursor? }`, keys in order; `limit` 1-1000 (default 100) |
 * | `GET /state/{service}/{key}`          | 200 `{ service, key, state: { name: value } }`             |
 * | `PUT /state/{service}/{key}/{name}`   | body: the JSON value. 200 `{ service, key, name, value, invocationId }` |
 * | `DELETE /state/{service}/{key}/{name}`| 200 `{ service, key, name, deleted: true, invocationId }`  |
 *
 * An edit runs as an invocation exclusive on the key (see src/engine/admin-state.ts): it waits
 * for the handler holding the key. If that takes longer than {@link EDIT_WAIT_MS}, the answer
 * is 202 with `status: "pending"`: the edit stays queued and happens when the key is free.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KeelError } from '../core/errors.js';
import {
  editState,
  listStateKeys,
  MAX_STATE_VALUE_BYTES,
  readState,
} from '../engine/admin-state.js';
import type { Kernel } from '../engine/kernel.js';
import { isJsonType, parseJson, readBody, unsupportedMediaType } from '../http/body.js';
import { requireAdmin, type MountRole } from '../http/mount.js';
import { MethodNotAllowedError, sendJson } from '../http/respond.js';

/** How long an edit's answer waits for the key's holder before answering 202. */
export const EDIT_WAIT_MS = 10_000;
const MAX_LIMIT = 1000;
const DEFAULT_LIMIT = 100;

function invalid(message: string, code = 'invalid_request'): KeelError {
  return new KeelError(message, { code, status: 400 });
}

/** Answers `/state/...` (segments after `state`). */
export async function answerState(
  k: Kernel,
  req: IncomingMessage,
  res: ServerResponse,
  segs: string[],
  query: string,
  role: MountRole,
  close: readonly string[] | undefined,
): Promise<void> {
  const [service, key, name, ...rest] = segs;
  if (service === undefined || service === '' || rest.length > 0 || key === '' || name === '')
    throw new KeelError(
      'the state routes are GET /state/{service}, GET /state/{service}/{key}, and PUT or DELETE /state/{service}/{key}/{name}',
      { code: 'not_found', status: 404 },
    );
  if (key === undefined) {
    allow(req, ['GET']);
    const { limit, after } = pageOf(query);
    const keys = await listStateKeys(k, service, after, limit + 1);
    const page = keys.slice(0, limit);
    const last = page[page.length - 1];
    sendJson(
      res,
      200,
      {
        keys: page.map((key) => ({ key })),
        ...(keys.length > limit && last !== undefined ? { nextCursor: cursorOf(last) } : {}),
      },
      close,
    );
    return;
  }
  if (name === undefined) {
    allow(req, ['GET']);
    noQuery(query);
    sendJson(res, 200, { service, key, state: await readState(k, service, key) }, close);
    return;
  }
  allow(req, ['PUT', 'DELETE']);
  noQuery(query);
  requireAdmin({ role }, `${req.method === 'PUT' ? 'setting' : 'deleting'} state`);
  if (req.method === 'DELETE') {
    const edit = await editState(k, service, key, name, undefined, EDIT_WAIT_MS);
    sendJson(
      res,
      edit.done ? 200 : 202,
      {
        service,
        key,
        name,
        deleted: true,
        invocationId: edit.invocationId,
        ...(edit.done ? {} : pendingNote(service, key)),
      },
      close,
    );
    return;
  }
  const value = await readValue(req);
  const edit = await editState(k, service, key, name, { value }, EDIT_WAIT_MS);
  sendJson(
    res,
    edit.done ? 200 : 202,
    {
      service,
      key,
      name,
      value,
      invocationId: edit.invocationId,
      ...(edit.done ? {} : pendingNote(service, key)),
    },
    close,
  );
}

function pendingNote(service: string, key: string): { status: 'pending'; message: string } {
  return {
    status: 'pending',
    message: `another handler holds ${service}/${key}: the edit is queued behind it and happens when it finishes or suspends for good; follow invocationId`,
  };
}

/** The body is the value itself, as JSON (`null` is a value; an empty body is not). */
async function readValue(req: IncomingMessage): Promise<unknown> {
  const type = req.headers['content-type'];
  if (type !== undefined && !isJsonType(type)) throw unsupportedMediaType(type);
  const body = await readBody(req, MAX_STATE_VALUE_BYTES);
  if (type === undefined && body.length > 0) throw unsupportedMediaType(undefined);
  if (body.length === 0)
    throw invalid(
      'the body is empty: send the new value as JSON, e.g. 42, "text" or {"a":1} (null to store null; DELETE to remove it)',
    );
  return parseJson(body);
}

function allow(req: IncomingMessage, methods: string[]): void {
  if (!methods.includes(req.method ?? ''))
    throw new MethodNotAllowedError(req.method ?? '?', methods.join(', '));
}

function noQuery(query: string): void {
  if (query !== '')
    throw invalid(`unexpected query "${query}": this route takes none`, 'invalid_query');
}

/** Cursors are the last key of a page, base64url-encoded: keys may hold any character. */
function cursorOf(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

function pageOf(query: string): { limit: number; after: string | undefined } {
  const params = new URLSearchParams(query);
  let limit = DEFAULT_LIMIT;
  let after: string | undefined;
  for (const [name, value] of params) {
    if (name === 'limit') {
      const n = /^\d{1,7}$/.test(value) ? Number(value) : NaN;
      if (!(n >= 1 && n <= MAX_LIMIT))
        throw invalid(
          `limit "${value}" must be a whole number from 1 to ${MAX_LIMIT}`,
          'invalid_query',
        );
      limit = n;
    } else if (name === 'cursor') {
      if (!/^[A-Za-z0-9_-]*$/.test(value))
        throw invalid(
          `cursor "${value}" is not valid: pass the nextCursor of a previous page`,
          'invalid_query',
        );
      after = Buffer.from(value, 'base64url').toString('utf8');
    } else {
      throw invalid(
        `unknown query parameter "${name}": GET /state/{service} takes limit and cursor`,
        'invalid_query',
      );
    }
  }
  return { limit, after };
}
