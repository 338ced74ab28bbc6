import {
  checkDebounce,
  checkThrottle,
  InvalidFlowControlError,
  type Debounce,
  type Throttle,
} from '../core/flow.js';

/**
 * The query parameters of a send's debounce and throttle (see docs/flow-control.md):
 *
 * | Parameter          | Meaning                                                    |
 * | ------------------ | ---------------------------------------------------------- |
 * | `debounceKey`      | the debounce key (required with any `debounce*`)            |
 * | `debouncePeriod`   | the quiet period (`5s`, `PT5S`, milliseconds); required     |
 * | `debounceMaxWait`  | optional bound from the burst's first send, ≥ the period    |
 * | `throttleKey`      | the throttle key (required with any `throttle*`)            |
 * | `throttleLimit`    | starts per period, 1 to 1000; required                      |
 * | `throttlePeriod`   | the window; required                                        |
 * | `throttleMode`     | `delay` (default) or `drop`                                 |
 *
 * Checked here, before the body is read: anything unusable is a 400 (`invalid_debounce`,
 * `invalid_throttle`) and nothing is stored.
 */
export const DEBOUNCE_PARAMS = ['debounceKey', 'debouncePeriod', 'debounceMaxWait'] as const;
export const THROTTLE_PARAMS = [
  'throttleKey',
  'throttleLimit',
  'throttlePeriod',
  'throttleMode',
] as const;

/** The debounce and throttle a send's query asks for (none when it names neither). */
export function flowParams(
  params: URLSearchParams,
  send: boolean,
): { debounce?: Debounce; throttle?: Throttle } {
  const debounce = read(params, DEBOUNCE_PARAMS, 'invalid_debounce');
  const throttle = read(params, THROTTLE_PARAMS, 'invalid_throttle');
  const out: { debounce?: Debounce; throttle?: Throttle } = {};
  if ((debounce || throttle) && !send) {
    throw new InvalidFlowControlError(
      `?${debounce ? 'debounce' : 'throttle'}… applies only to sends: append /send to the path, e.g. POST /Search/reindex/send?debounceKey=doc-1&debouncePeriod=5s`,
      debounce ? 'invalid_debounce' : 'invalid_throttle',
    );
  }
  if (debounce) {
    out.debounce = checkDebounce({
      key: debounce.debounceKey!,
      period: debounce.debouncePeriod!,
      maxWait: debounce.debounceMaxWait,
    });
  }
  if (throttle) {
    const limit = throttle.throttleLimit;
    out.throttle = checkThrottle({
      key: throttle.throttleKey!,
      // Digits only: `Number('')` is 0 and `Number('1e3')` 1000, neither what was written.
      limit: limit !== undefined && /^\d{1,7}$/.test(limit) ? Number(limit) : (limit as never),
      period: throttle.throttlePeriod!,
      mode: throttle.throttleMode as 'delay' | 'drop' | undefined,
    });
  }
  return out;
}

/** The parameters of one group, each given at most once; undefined when none is given. */
function read<N extends string>(
  params: URLSearchParams,
  names: readonly N[],
  code: 'invalid_debounce' | 'invalid_throttle',
): Partial<Record<N, string>> | undefined {
  const out: Partial<Record<N, string>> = {};
  let any = false;
  for (const name of names) {
    const values = params.getAll(name);
    // Two values would silently pick one: refused, as a repeated ?delay= is.
    if (values.length > 1)
      throw new InvalidFlowControlError(`?${name}= is given more than once: give it once`, code);
    if (values[0] !== undefined) {
      out[name] = values[0];
      any = true;
    }
  }
  return any ? out : undefined;
}
