/**
 * `{{ }}` templates in a step's parameters: a string that is exactly one `{{ expr }}` takes the
 * expression's value as it is (a number stays a number, an object an object); `{{ }}` inside
 * other text is replaced by the value as text (JSON for objects). Objects and arrays are
 * resolved field by field. The expressions are the language of expr.ts.
 */
import { FlowDefinitionError } from './errors.js';
import { evaluate, parseExpr, refsOf, type Expr, type Ref } from './expr.js';

/** A compiled template: the same shape as the value it came from. */
export type Template =
  | { k: 'value'; v: unknown }
  | { k: 'expr'; e: Expr }
  | { k: 'text'; parts: Array<string | Expr> }
  | { k: 'list'; items: Template[] }
  | { k: 'record'; fields: Array<[string, Template]> };

const MAX_DEPTH = 64;

/**
 * Compiles a value with `{{ }}` placeholders; throws `invalid_expression` for a placeholder that
 * does not parse or is not closed.
 *
 * @example
 * ```ts
 * const t = compileTemplate({ amount: '{{ input.amount }}', note: 'order {{input.id}}' });
 * renderTemplate(t, { input: { amount: 5, id: 'o1' } }); // { amount: 5, note: 'order o1' }
 * ```
 */
export function compileTemplate(value: unknown, depth = 0): Template {
  if (depth > MAX_DEPTH)
    throw new FlowDefinitionError('invalid_flow', `a value is nested deeper than ${MAX_DEPTH}`);
  if (typeof value === 'string') return compileString(value);
  if (Array.isArray(value))
    return { k: 'list', items: value.map((v) => compileTemplate(v, depth + 1)) };
  if (value !== null && typeof value === 'object') {
    return {
      k: 'record',
      fields: Object.entries(value).map(([k, v]) => [k, compileTemplate(v, depth + 1)]),
    };
  }
  return { k: 'value', v: value };
}

function compileString(s: string): Template {
  if (!s.includes('{{')) return { k: 'value', v: s };
  const parts: Array<string | Expr> = [];
  let i = 0;
  while (i < s.length) {
    const open = s.indexOf('{{', i);
    if (open === -1) {
      parts.push(s.slice(i));
      break;
    }
    if (open > i) parts.push(s.slice(i, open));
    const close = s.indexOf('}}', open + 2);
    if (close === -1)
      throw new FlowDefinitionError(
        'invalid_expression',
        `"${s.length > 80 ? s.slice(0, 77) + '...' : s}": "{{" without its closing "}}"`,
      );
    parts.push(parseExpr(s.slice(open + 2, close).trim()));
    i = close + 2;
  }
  if (parts.length === 1 && typeof parts[0] !== 'string') return { k: 'expr', e: parts[0]! };
  return { k: 'text', parts };
}

/** Every scope reference a template makes. */
export function templateRefs(t: Template, out: Ref[] = []): Ref[] {
  switch (t.k) {
    case 'value':
      break;
    case 'expr':
      refsOf(t.e, out);
      break;
    case 'text':
      for (const p of t.parts) if (typeof p !== 'string') refsOf(p, out);
      break;
    case 'list':
      for (const x of t.items) templateRefs(x, out);
      break;
    case 'record':
      for (const [, x] of t.fields) templateRefs(x, out);
      break;
  }
  return out;
}

/** The template's value in `scope`. */
export function renderTemplate(t: Template, scope: Readonly<Record<string, unknown>>): unknown {
  switch (t.k) {
    case 'value':
      return t.v;
    case 'expr':
      return evaluate(t.e, scope);
    case 'text':
      return t.parts
        .map((p) => {
          if (typeof p === 'string') return p;
          const v = evaluate(p, scope);
          return typeof v === 'string' ? v : JSON.stringify(v ?? null);
        })
        .join('');
    case 'list':
      return t.items.map((x) => renderTemplate(x, scope));
    case 'record': {
      const out: Record<string, unknown> = {};
      for (const [k, x] of t.fields) {
        const v = renderTemplate(x, scope);
        // defineProperty: a field named `__proto__` is data, never the object's prototype.
        if (v !== undefined)
          Object.defineProperty(out, k, {
            value: v,
            enumerable: true,
            writable: true,
            configurable: true,
          });
      }
      return out;
    }
  }
}
