/**
 * The ingress's URL shapes, built on the client's side (see src/ingress/router.ts for the other
 * side): `/{Service}/{handler}`, `/{Object or Workflow}/{key}/{handler}`, `/send` appended for a
 * send, `?delay=` and debounce/throttle parameters on a send, `/invocations/{id}[/attach|/output]`,
 * `/awakeables/{id}/resolve|reject`.
 */
import { checkDelay, parseDuration, type Duration } from '../core/duration.js';
import { UsageError } from '../core/errors.js';
import {
  checkDebounce,
  checkThrottle,
  type DebounceOptions,
  type ThrottleOptions,
} from '../core/flow.js';

/**
 * One path segment, percent-encoded (the ingress decodes each segment). `.` and `..` are
 * refused: URL parsers resolve them (even encoded as `%2E`) before the request leaves, so such a
 * key would reach another path.
 */
export function segment(value: string, what: string): string {
  if (typeof value !== 'string')
    throw new UsageError(`the ${what} must be a string, got ${typeof value}`);
  if (value === '.' || value === '..')
    throw new UsageError(
      `the ${what} "${value}" cannot travel in a URL path (URLs resolve "." and ".." segments): choose another`,
    );
  return encodeURIComponent(value);
}

/** The path of a call or a send to a handler. `key` is `undefined` for a service. */
export function invokePath(
  service: string,
  handler: string,
  key: string | undefined,
  send: boolean,
): string {
  const target =
    key === undefined
      ? `/${segment(service, 'service name')}/${segment(handler, 'handler name')}`
      : `/${segment(service, 'service name')}/${segment(key, 'key')}/${segment(handler, 'handler name')}`;
  return send ? `${target}/send` : target;
}

/**
 * The query of a send: `?delay=` and the debounce and throttle parameters (see
 * src/ingress/flow-params.ts), checked here as the engine checks them, so bad options cost no
 * request: `InvalidDelayError`, `InvalidFlowControlError` (`invalid_debounce`, `invalid_throttle`).
 */
export function sendQuery(options: {
  delay?: Duration;
  debounce?: DebounceOptions;
  throttle?: ThrottleOptions;
}): string {
  const params: string[] = [];
  const add = (name: string, value: string | number): void => {
    params.push(`${name}=${encodeURIComponent(value)}`);
  };
  if (options.delay !== undefined) add('delay', `${checkDelay(parseDuration(options.delay))}ms`);
  if (options.debounce !== undefined) {
    const d = checkDebounce(options.debounce);
    add('debounceKey', d.key);
    add('debouncePeriod', `${d.periodMs}ms`);
    if (d.maxWaitMs !== undefined) add('debounceMaxWait', `${d.maxWaitMs}ms`);
  }
  if (options.throttle !== undefined) {
    const t = checkThrottle(options.throttle);
    add('throttleKey', t.key);
    add('throttleLimit', t.limit);
    add('throttlePeriod', `${t.periodMs}ms`);
    add('throttleMode', t.mode);
  }
  return params.length === 0 ? '' : `?${params.join('&')}`;
}

/** `/invocations/{id}` with an optional action. */
export function invocationPath(id: string, action?: 'attach' | 'output'): string {
  const base = `/invocations/${segment(id, 'invocation id')}`;
  return action === undefined ? base : `${base}/${action}`;
}

/** `/awakeables/{id}/resolve` or `/reject`. */
export function awakeablePath(id: string, action: 'resolve' | 'reject'): string {
  return `/awakeables/${segment(id, 'awakeable id')}/${action}`;
}
