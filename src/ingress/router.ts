import { NotFoundError } from '../core/errors.js';
import { parseAwakeableId } from '../core/journal.js';
import type { ResolvedTarget } from '../engine/admission.js';
import type { Registry } from '../engine/registry.js';
import { splitPath } from '../http/path.js';
import { MethodNotAllowedError } from '../http/respond.js';

/**
 * Request routing without a router: the URL shapes are few and fixed, so a path is split on
 * `/` once and dispatched on its segment count and the registered definition's kind. No
 * regular expression runs per request and nothing is compiled at request time.
 *
 *   POST /{Service}/{handler}[/send]
 *   POST /{Object|Workflow}/{key}/{handler}[/send]
 *   POST /awakeables/{id}/resolve|reject
 *   GET  /invocations/{id}[/attach|/output]
 *   GET  /health
 *   GET  /openapi.json
 *
 * GET routes and POST routes never overlap, so a service may be named `health` or
 * `invocations` and still be reached with POST.
 *
 * An `internal` definition is not routable: the router looks names up with
 * `Registry.routable`/`resolveRoutable`, so a path naming it is answered as one naming nothing.
 *
 * The awakeable routes are POSTs too, so they win over a definition named `awakeables` for
 * exactly their shape: three segments ending in `resolve` or `reject`. A service is never
 * affected (three segments only reach a service as `/S/h/send`); an object or workflow named
 * `awakeables` keeps every other path, and its handlers named `resolve` or `reject` stay
 * reachable with `/send`. `serve` warns at start when a definition is shadowed that way.
 */
export type Route =
  | { kind: 'health' }
  | { kind: 'openapi' }
  | { kind: 'invocation'; action: 'get' | 'attach' | 'output'; id: string }
  | { kind: 'awakeable'; action: 'resolve' | 'reject'; id: string }
  | { kind: 'invoke'; send: boolean; target: ResolvedTarget };

const SEND = 'send';
/** The path of the OpenAPI document (a service may still be named so: its routes are POSTs). */
const OPENAPI = 'openapi.json';
/** The first path segment of the awakeable routes. */
export const AWAKEABLES = 'awakeables';
const ROUTES_HINT =
  'the routes are POST /{Service}/{handler}, POST /{Object}/{key}/{handler} (append /send to start without waiting), ' +
  'POST /awakeables/{id}/resolve, POST /awakeables/{id}/reject, ' +
  'GET /invocations/{id}, GET /invocations/{id}/attach, GET /invocations/{id}/output, GET /health ' +
  'and GET /openapi.json (this API as OpenAPI 3.1)';

/** The last segment of an awakeable route (see the note on shadowing above). */
export function isAwakeableAction(segment: string | undefined): segment is 'resolve' | 'reject' {
  return segment === 'resolve' || segment === 'reject';
}

/**
 * Maps a method and a path (without the query string) to a route, or throws the 400/404/405
 * KeelError that explains why not. Object and workflow targets are resolved against the
 * registry here, before any body is read, so a bad path costs nothing and changes nothing.
 */
export function route(method: string | undefined, path: string, registry: Registry): Route {
  const segs = splitPath(path);
  const first = segs[0];
  if (first === undefined) throw unknownPath(path);
  if (first === AWAKEABLES && segs.length === 3 && isAwakeableAction(segs[2])) {
    if (method !== 'POST') throw new MethodNotAllowedError(method ?? '?', 'POST');
    return awakeableRoute(segs[1]!, segs[2]);
  }
  // An internal definition is not routable: every path naming it is answered as for a name
  // the engine does not serve.
  const registered = registry.routable(first) !== undefined;
  if (method === 'POST' && registered) return resolveInvoke(segs, registry);
  const reserved = reservedRoute(segs);
  if (reserved) {
    if (method === 'GET') return reserved;
    throw new MethodNotAllowedError(method ?? '?', 'GET');
  }
  if (registered) throw new MethodNotAllowedError(method ?? '?', 'POST');
  if (
    first === 'health' ||
    first === 'invocations' ||
    first === AWAKEABLES ||
    first === OPENAPI ||
    segs.length > 4
  )
    throw unknownPath(path);
  // An unknown first segment: let the registry's 404 say which services exist.
  resolveTarget(registry, first, segs[1] ?? '', undefined);
  throw unknownPath(path); // not reached: resolve throws for an unregistered name
}

/**
 * A malformed id names no awakeable: answered 404 here, before the body is read, like any
 * unknown id (a well-formed one the engine does not know is its 404).
 */
function awakeableRoute(id: string, action: 'resolve' | 'reject'): Route {
  if (parseAwakeableId(id) === undefined) {
    throw new NotFoundError(
      `no awakeable "${id}": awakeable ids look like awk_<26 characters>; pass the id exactly as the handler that created the awakeable got it`,
    );
  }
  return { kind: 'awakeable', action, id };
}

function reservedRoute(segs: readonly string[]): Route | undefined {
  const [first, id, action] = segs;
  if (first === 'health' && segs.length === 1) return { kind: 'health' };
  if (first === OPENAPI && segs.length === 1) return { kind: 'openapi' };
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
  const def = registry.routable(service)!;
  let n = segs.length;
  let send = false;
  if (def.kind === 'service') {
    if (n === 3 && segs[2] === SEND) {
      send = true;
      n = 2;
    }
    if (n !== 2) {
      if (n === 3) resolveTarget(registry, service, segs[2]!, segs[1]); // "a service takes no key"
      throw new NotFoundError(
        `"${service}" is a service: call it as POST /${service}/{handler}, or /${service}/{handler}/send`,
      );
    }
    const { spec } = resolveTarget(registry, service, segs[1]!, undefined);
    return { kind: 'invoke', send, target: { def, spec, key: '' } };
  }
  if (n === 4 && segs[3] === SEND) {
    send = true;
    n = 3;
  } else if (
    n === 3 &&
    segs[2] === SEND &&
    !Object.prototype.hasOwnProperty.call(def.handlers, SEND)
  ) {
    resolveTarget(registry, service, segs[1]!, undefined); // throws: missing key (400) or unknown handler (404)
  }
  if (n === 2) resolveTarget(registry, service, segs[1]!, undefined); // throws the same way
  if (n !== 3) {
    throw new NotFoundError(
      `"${service}" is a ${def.kind}: call it as POST /${service}/{key}/{handler}, or /${service}/{key}/{handler}/send`,
    );
  }
  const { spec } = resolveTarget(registry, service, segs[2]!, segs[1]);
  // Resolved once, here: the engine takes the resolved target as it is.
  return { kind: 'invoke', send, target: { def, spec, key: segs[1]! } };
}

/**
 * A 404 from the registry: its message names the services or handlers that exist. The ingress
 * shows it only to clients allowed to see them (`revealTargets`); others get
 * {@link unknownPath}.
 */
export class UnknownTargetError extends NotFoundError {}

function resolveTarget(
  registry: Registry,
  service: string,
  handler: string,
  key: string | undefined,
): ReturnType<Registry['resolve']> {
  try {
    return registry.resolveRoutable(service, handler, key);
  } catch (err) {
    if (err instanceof NotFoundError) throw new UnknownTargetError(err.message);
    throw err;
  }
}

/** The 404 of a path that names nothing, without naming what exists. */
export function unknownPath(path: string): NotFoundError {
  return new NotFoundError(`nothing at "${path}": ${ROUTES_HINT}`);
}
