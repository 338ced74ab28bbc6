import type { FuzzCase, HttpCase, Surface } from './cases.js';
import type { Known } from './known.js';
import type { Rand } from './random.js';

/** One kind of request the fuzzer makes. */
export interface Generator {
  name: string;
  /** Whether its requests are valid (may change state) or invalid (must change nothing). */
  valid: boolean;
  /** Relative frequency among the generators of its kind. */
  weight: number;
  make(r: Rand, known: Known): FuzzCase;
}

export const JSON_TYPE: [string, string] = ['content-type', 'application/json'];

/** An HTTP case; `valid` and `gen` are filled in from the generator by {@link nextCase}. */
export function http(
  surface: Surface,
  method: string,
  path: string,
  headers: [string, string][] = [],
  body?: Buffer | string,
  extra: Partial<HttpCase> = {},
): FuzzCase {
  return {
    transport: 'http',
    surface,
    gen: '',
    valid: false,
    method,
    path,
    headers,
    ...(body === undefined ? {} : { body: Buffer.isBuffer(body) ? body : Buffer.from(body) }),
    ...extra,
  };
}

/** A JSON POST. */
export function post(
  surface: Surface,
  path: string,
  value?: unknown,
  headers: [string, string][] = [],
): FuzzCase {
  return value === undefined
    ? http(surface, 'POST', path, headers)
    : http(surface, 'POST', path, [JSON_TYPE, ...headers], JSON.stringify(value));
}

/** Picks a generator by weight among those of the wanted validity and makes its next case. */
export function nextCase(
  r: Rand,
  known: Known,
  generators: readonly Generator[],
  want: 'valid' | 'invalid' | 'any',
): FuzzCase {
  const pool =
    want === 'any' ? generators : generators.filter((g) => g.valid === (want === 'valid'));
  const g = r.weighted(pool.map((x) => [x.weight, x] as const));
  return { ...g.make(r, known), gen: g.name, valid: g.valid };
}

/** A known id if there is one (most of the time), else a made-up one of the same shape. */
export function someInvocation(r: Rand, known: Known): string {
  if (known.invocations.length > 0 && r.chance(0.8)) return r.pick(known.invocations);
  return `inv_${r.chars(26, '0123456789abcdefghjkmnpqrstvwxyz')}`;
}
