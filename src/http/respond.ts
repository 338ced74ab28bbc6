import type { ServerResponse } from 'node:http';
import { KeelError } from '../core/errors.js';

/**
 * Writing JSON answers, shared by the ingress and the admin API. Every answer carries an
 * explicit `content-length`, so Node never falls back to chunked encoding and the client can
 * reuse the connection without parsing chunks.
 */

const JSON_TYPE = 'application/json; charset=utf-8';

/** Writes `body` (already JSON text) with `status`. Extra headers are `[name, value, ...]` pairs. */
export function sendText(
  res: ServerResponse,
  status: number,
  body: string,
  extra?: readonly string[],
): void {
  if (res.headersSent || res.destroyed) return;
  const headers: Record<string, string | number> = {
    'content-type': JSON_TYPE,
    'content-length': Buffer.byteLength(body),
  };
  if (extra) for (let i = 0; i + 1 < extra.length; i += 2) headers[extra[i]!] = extra[i + 1]!;
  res.writeHead(status, headers);
  res.end(body);
}

/** Writes any value as JSON; `undefined` (a handler that returns nothing) becomes `null`. */
export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  extra?: readonly string[],
): void {
  sendText(res, status, value === undefined ? 'null' : JSON.stringify(value), extra);
}

/**
 * The HTTP face of an error: `{ code, message }` with the error's status. Anything that is not
 * a KeelError is a bug (ours or the store's), so the client gets a bare 500 `internal` and the
 * details go to the engine's log, never into the response: stack traces and SQL errors leak
 * internals.
 */
export function errorAnswer(err: unknown): {
  status: number;
  code: string;
  message: string;
  known: boolean;
} {
  if (err instanceof KeelError)
    return { status: httpStatus(err.status), code: err.code, message: err.message, known: true };
  return {
    status: 500,
    code: 'internal',
    message: 'internal error; the server log has the details',
    known: false,
  };
}

/**
 * A user's TerminalError may carry any number as its status. Only 4xx and 5xx are errors to
 * HTTP clients: a failure answered with 200 or 302 would be mistaken for success, so anything
 * else becomes 500.
 */
function httpStatus(status: number): number {
  return Number.isInteger(status) && status >= 400 && status <= 599 ? status : 500;
}

/** Writes an error answer. */
export function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  extra?: readonly string[],
): void {
  sendText(res, status, JSON.stringify({ code, message }), extra);
}

/** A 405; `allow` becomes the `Allow` header. */
export class MethodNotAllowedError extends KeelError {
  constructor(
    method: string,
    readonly allow: string,
  ) {
    super(`${method} is not allowed here; use ${allow}`, {
      code: 'method_not_allowed',
      status: 405,
    });
  }
}
