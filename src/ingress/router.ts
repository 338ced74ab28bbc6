import { KeelError, NotFoundError } from '../core/errors.js';
import type { Registry } from '../engine/registry.js';

/**
 * Request routing without a router: the URL shapes are few and fixed, so a path is split on
 * `/` once and dispatched on its segment count and the registered definition's kind. No
 * regular expression runs per request and nothing is compiled at request time.
 *
 *   POST /{Service}/{handler}[/send]
 *   POST /{Object|Workflow}/{key}/{handler}[/send]
 *   GET  /invocations/{id}[/attach|/output]
 *   GET  /health
 *
 * GET routes and POST routes never overlap, so a service may be named `health` or
 * `invocations` and still be reached with POST.
 */
export type Route =
  | { kind: 'health' }
  | { kind: 'invocation'; action: 'get' | 'attach' | 'output'; id: string }
  | { kind: 'invoke'; send: boolean; service: string; handler: string; key: string | undefined };

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

const SEND = 'send';
const ROUTES_HINT =
  'the routes are POST /{Service}/{handler}, POST /{Object}/{key}/{handler} (append /send to start without waiting), ' +
  'GET /invocations/{id}, GET /invocations/{id}/attach, GET /invocations/{id}/output and GET /health';

/**
 * Maps a method and a path (without the query string) to a route, or throws the 400/404/405
 * KeelError that explains why not. Object and workflow targets are resolved against the
 * registry here, before any body is read, so a bad path costs nothing and changes nothing.
 */
export function route(method: string | undefined, path: string, registry: Registry): Route {
  const segs = splitPath(path);
  const first = segs[0];
  if (first === undefined) throw unknownPath(path);
  const registered = registry.get(first) !== undefined;
  if (method === 'POST' && registered) return resolveInvoke(segs, registry);
  const reserved = reservedRoute(segs);
  if (reserved) {
    if (method === 'GET') return reserved;
    throw new MethodNotAllowedError(method ?? '?', 'GET');
  }
  if (registered) throw new MethodNotAllowedError(method ?? '?', 'POST');
  if (first === 'health' || first === 'invocations' || segs.length > 4) throw unknownPath(path);
  // An unknown first segment: let the registry's 404 say which services exist.
  registry.resolve(first, segs[1] ?? '', undefined);
  throw unknownPath(path); // not reached: resolve throws for an unregistered name
}

function reservedRoute(segs: readonly string[]): Route | undefined {
  const [first, id, action] = segs;
  if (first === 'health' && segs.length === 1) return { kind: 'health' };
  if (first !== 'invocations' || id === undefined || id === '') return undefined;
  if (segs.length === 2) return { kind: 'invocation', action: 'get', id };
  if (segs.length === 3 && (action === 'attach' || action === 'output'))
    return { kind: 'invocation', action, id };
  return undefined;
}

/**
 * Resolves a POST path against a registered definition. A trailing `/send` means "send" only
 * when the path without it still names a handler; otherwise `send` is a handler name:
 *
 * - service:  `/S/h` calls h, `/S/h/send` sends to h. `/S/send` calls a handler named `send`
 *   (a service takes no key, so two segments can only be service + handler).
 * - keyed:    `/O/k/h` calls h, `/O/k/h/send` sends to h. `/O/k/send` calls a handler named
 *   `send`; if O has none, the client meant "send to handler k without a key", which is
 *   answered as the missing-key 400 (or a 404 when k is no handler either).
 */
function resolveInvoke(segs: readonly string[], registry: Registry): Route {
  const service = segs[0]!;
  const def = registry.get(service)!;
  let n = segs.length;
  let send = false;
  if (def.kind === 'service') {
    if (n === 3 && segs[2] === SEND) {
      send = true;
      n = 2;
    }
    if (n !== 2) {
      if (n === 3) registry.resolve(service, segs[2]!, segs[1]); // "a service takes no key"
      throw new NotFoundError(
        `"${service}" is a service: call it as POST /${service}/{handler}, or /${service}/{handler}/send`,
      );
    }
    const { spec } = registry.resolve(service, segs[1]!, undefined);
    return { kind: 'invoke', send, service, handler: spec.name, key: undefined };
  }
  if (n === 4 && segs[3] === SEND) {
    send = true;
    n = 3;
  } else if (
    n === 3 &&
    segs[2] === SEND &&
    !Object.prototype.hasOwnProperty.call(def.handlers, SEND)
  ) {
    registry.resolve(service, segs[1]!, undefined); // throws: missing key (400) or unknown handler (404)
  }
  if (n === 2) registry.resolve(service, segs[1]!, undefined); // throws the same way
  if (n !== 3) {
    throw new NotFoundError(
      `"${service}" is a ${def.kind}: call it as POST /${service}/{key}/{handler}, or /${service}/{key}/{handler}/send`,
    );
  }
  const { spec } = registry.resolve(service, segs[2]!, segs[1]);
  return { kind: 'invoke', send, service, handler: spec.name, key: segs[1] };
}

/**
 * Splits `/a/b%2Fc/` into `['a', 'b/c']`: one trailing slash is tolerated, segments are
 * URL-decoded (only when they contain `%`, the common case costs no decode), and an empty
 * segment is kept so `/Counter//add` reaches the missing-key answer rather than a 404.
 */
export function splitPath(path: string): string[] {
  let end = path.length;
  if (end > 1 && path.charCodeAt(end - 1) === 47 /* / */) end--;
  const raw = path.slice(1, end);
  if (raw.length === 0) return [];
  const segs = raw.split('/');
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i]!;
    if (s.includes('%')) {
      try {
        segs[i] = decodeURIComponent(s);
      } catch {
        throw new KeelError(
          `the path segment "${s}" is not valid URL encoding; encode keys with encodeURIComponent`,
          {
            code: 'invalid_path',
            status: 400,
          },
        );
      }
    }
  }
  return segs;
}

function unknownPath(path: string): NotFoundError {
  return new NotFoundError(`nothing at "${path}": ${ROUTES_HINT}`);
}
