/**
 * Request and response mapping, as data: an output object whose fields are picked from the
 * request (`path.id`, `query.limit`, `body.customer.email`, `header.x-tenant`, `key.name`) or,
 * for responses, from the target's result (`result.order.id`). No expressions and nothing
 * evaluated: a source is a root and a dotted path, optionally typed, required or defaulted, or a
 * constant. Pure: compiled once when the gateway is created (errors name the route and field),
 * applied per request (errors name every field that did not fit, as a 400).
 */
import { GatewayConfigError, GatewayRequestError } from './errors.js';

/** The type a picked value must have; `number`, `integer` and `boolean` also accept their text form (query strings, headers). */
export type FieldType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array';

/**
 * Where a field comes from: `'root.path.to.value'` (absent is left out), the same with a type,
 * `required` or a `default`, or a constant.
 */
export type Source =
  | string
  | {
      readonly from: string;
      readonly type?: FieldType;
      readonly required?: boolean;
      readonly default?: unknown;
    }
  | { readonly const: unknown };

/**
 * Output field (dotted for nesting: `customer.email`; `'.'` alone for the whole value) → its
 * source.
 *
 * @example
 * ```ts
 * const requestMap: Mapping = {
 *   orderId: 'path.id',
 *   limit: { from: 'query.limit', type: 'integer', default: 10 },
 *   'customer.email': { from: 'body.email', type: 'string', required: true },
 *   channel: { const: 'api' },
 * };
 * ```
 */
export type Mapping = Readonly<Record<string, Source>>;

/**
 * The output field that stands for the whole value: `{ '.': 'path.name' }` makes the input the
 * path's `name` itself (for handlers that take a string or a number), not an object.
 */
export const WHOLE = '.';

/** The roots a request mapping reads. */
export const REQUEST_ROOTS = ['path', 'query', 'body', 'header', 'key'] as const;
/** The roots a response mapping reads: the request's, plus the target's `result` and the `input` it got. */
export const RESPONSE_ROOTS = [...REQUEST_ROOTS, 'result', 'input'] as const;

interface Field {
  out: string[];
  root: string;
  path: string[];
  label: string;
  type: FieldType | undefined;
  required: boolean;
  fallback: { value: unknown } | undefined;
  constant: { value: unknown } | undefined;
}

/** A mapping checked and ready to apply (see {@link compileMapping}). */
export interface CompiledMapping {
  readonly fields: readonly Field[];
}

const FORBIDDEN = new Set(['__proto__', 'prototype', 'constructor']);
const TYPES = new Set<FieldType>(['string', 'number', 'integer', 'boolean', 'object', 'array']);

function dotted(text: string, what: string, where: string): string[] {
  const segs = text.split('.');
  for (const s of segs) {
    if (s === '') throw new GatewayConfigError(`${where}: ${what} "${text}" has an empty segment`);
    if (FORBIDDEN.has(s))
      throw new GatewayConfigError(`${where}: ${what} "${text}" uses the reserved name "${s}"`);
  }
  return segs;
}

/**
 * Checks a mapping and prepares it. `roots` are the roots it may read; `params` the route's
 * path parameters (a `path.x` that the route does not declare is refused). Throws
 * {@link GatewayConfigError} naming `where` and the field.
 *
 * @example
 * ```ts
 * const m = compileMapping({ id: 'path.id' }, REQUEST_ROOTS, ['id'], 'route GET /v1/orders/:id');
 * applyMapping(m, { path: { id: '42' } }); // { id: '42' }
 * ```
 */
export function compileMapping(
  mapping: Mapping,
  roots: readonly string[],
  params: readonly string[],
  where: string,
): CompiledMapping {
  if (typeof mapping !== 'object' || mapping === null || Array.isArray(mapping))
    throw new GatewayConfigError(`${where}: a mapping is an object of output field → source`);
  const fields: Field[] = [];
  const entries = Object.entries(mapping);
  const whole = entries.some(([k]) => k === WHOLE);
  if (whole && entries.length !== 1)
    throw new GatewayConfigError(
      `${where}: "${WHOLE}" (the whole value) must be the mapping's only field`,
    );
  for (const [outText, source] of entries) {
    const out = outText === WHOLE ? [] : dotted(outText, 'output field', where);
    const at = `${where}, field "${outText}"`;
    if (typeof source === 'object' && source !== null && 'const' in source) {
      fields.push({
        out,
        root: '',
        path: [],
        label: outText,
        type: undefined,
        required: false,
        fallback: undefined,
        constant: { value: source.const },
      });
      continue;
    }
    const spec = typeof source === 'string' ? { from: source } : source;
    if (typeof spec !== 'object' || spec === null || typeof spec.from !== 'string')
      throw new GatewayConfigError(
        `${at}: a source is "root.path", { from, type?, required?, default? } or { const }`,
      );
    const [root, ...path] = dotted(spec.from, 'source', at);
    if (!roots.includes(root!))
      throw new GatewayConfigError(
        `${at}: source "${spec.from}" must start with one of ${roots.map((r) => `${r}.`).join(', ')}`,
      );
    if (root === 'path' && (path.length !== 1 || !params.includes(path[0]!)))
      throw new GatewayConfigError(
        `${at}: "${spec.from}" is not a parameter of the route's path (it has ${params.length ? params.map((p) => `:${p}`).join(', ') : 'none'})`,
      );
    if ((root === 'query' || root === 'header') && path.length !== 1)
      throw new GatewayConfigError(`${at}: "${spec.from}" must name one ${root} field`);
    const type = 'type' in spec ? spec.type : undefined;
    if (type !== undefined && !TYPES.has(type))
      throw new GatewayConfigError(`${at}: type must be one of ${[...TYPES].join(', ')}`);
    fields.push({
      out,
      root: root!,
      path: root === 'header' ? path.map((p) => p.toLowerCase()) : path,
      label: spec.from,
      type,
      required: 'required' in spec && spec.required === true,
      fallback: 'default' in spec ? { value: spec.default } : undefined,
      constant: undefined,
    });
  }
  return { fields };
}

/** Reads `path` in `value`, own properties only; undefined when anything on the way is absent. */
export function pick(value: unknown, path: readonly string[]): unknown {
  let cur = value;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, seg)) return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/** Converts `value` to `type`, or returns an explanation of why it does not fit. */
function coerce(value: unknown, type: FieldType): { ok: true; value: unknown } | { ok: false } {
  switch (type) {
    case 'string':
      return typeof value === 'string' ? { ok: true, value } : { ok: false };
    case 'number':
    case 'integer': {
      const n =
        typeof value === 'number'
          ? value
          : typeof value === 'string' && value.trim() !== ''
            ? Number(value)
            : NaN;
      if (!Number.isFinite(n) || (type === 'integer' && !Number.isInteger(n))) return { ok: false };
      return { ok: true, value: n };
    }
    case 'boolean':
      if (typeof value === 'boolean') return { ok: true, value };
      if (value === 'true') return { ok: true, value: true };
      if (value === 'false') return { ok: true, value: false };
      return { ok: false };
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value)
        ? { ok: true, value }
        : { ok: false };
    case 'array':
      return Array.isArray(value) ? { ok: true, value } : { ok: false };
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  const text = JSON.stringify(value) ?? typeof value;
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

function put(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  if (path.length === 0) {
    target[WHOLE] = value;
    return;
  }
  let cur = target;
  for (let i = 0; i < path.length - 1; i++) {
    const seg = path[i]!;
    const next = cur[seg];
    if (typeof next === 'object' && next !== null && !Array.isArray(next))
      cur = next as Record<string, unknown>;
    else cur = cur[seg] = {};
  }
  cur[path[path.length - 1]!] = value;
}

/**
 * Builds the output object from `roots` (`{ path, query, body, ... }`). Every field that does
 * not fit is reported at once, in one {@link GatewayRequestError} (a 400).
 *
 * @example
 * ```ts
 * applyMapping(compileMapping({ n: { from: 'query.n', type: 'integer' } }, REQUEST_ROOTS, [], 'r'), { query: { n: '3' } }); // { n: 3 }
 * ```
 */
export function applyMapping(
  mapping: CompiledMapping,
  roots: Readonly<Record<string, unknown>>,
): unknown {
  const out: Record<string, unknown> = {};
  let problems: string[] | undefined;
  for (const f of mapping.fields) {
    if (f.constant) {
      put(out, f.out, f.constant.value);
      continue;
    }
    let value = pick(roots[f.root], f.path);
    if (value === undefined) {
      if (f.fallback) value = f.fallback.value;
      else if (f.required) {
        (problems ??= []).push(`${f.label} is required`);
        continue;
      } else continue;
    } else if (f.type !== undefined) {
      const c = coerce(value, f.type);
      if (!c.ok) {
        (problems ??= []).push(`${f.label} must be ${article(f.type)}, got ${describe(value)}`);
        continue;
      }
      value = c.value;
    }
    put(out, f.out, value);
  }
  if (problems)
    throw new GatewayRequestError(`the request does not fit this route: ${problems.join('; ')}`);
  return mapping.fields.length === 1 && mapping.fields[0]!.out.length === 0 ? out[WHOLE] : out;
}

function article(type: FieldType): string {
  return type === 'integer' || type === 'object' || type === 'array' ? `an ${type}` : `a ${type}`;
}
