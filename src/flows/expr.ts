/**
 * A small, safe expression language for flow definitions (conditions, transforms, `{{ }}`
 * templates). It is parsed into a tree and interpreted: no `eval`, no `new Function`, no access
 * to anything but the values a flow hands it. Property access reads own properties of plain
 * data only (`__proto__`, `constructor` and `prototype` are refused), and the only functions
 * are the fixed list in {@link FUNCTIONS}.
 *
 * Grammar (lowest precedence first):
 * ```
 * expr     := cond
 * cond     := or ('?' expr ':' expr)?
 * or       := and (('||' | '??') and)*
 * and      := eq ('&&' eq)*
 * eq       := rel (('==' | '!=') rel)*
 * rel      := add (('<' | '<=' | '>' | '>=') add)*
 * add      := mul (('+' | '-') mul)*
 * mul      := unary (('*' | '/' | '%') unary)*
 * unary    := ('!' | '-') unary | postfix
 * postfix  := primary ('.' name | '[' expr ']' | '(' args ')')*
 * primary  := number | string | true | false | null | name | '(' expr ')' | '[' list ']' | '{' fields '}'
 * ```
 * `==` is strict (no coercion), `+` adds numbers or concatenates when either side is a string,
 * and reading a missing property gives `null`.
 */
import { FlowDefinitionError, FlowExpressionError } from './errors.js';

/** A parsed expression. */
export type Expr =
  | { k: 'lit'; v: unknown }
  | { k: 'id'; name: string }
  | { k: 'get'; obj: Expr; key: Expr }
  | { k: 'call'; fn: string; args: Expr[] }
  | { k: 'un'; op: '!' | '-'; e: Expr }
  | { k: 'bin'; op: string; l: Expr; r: Expr }
  | { k: 'cond'; c: Expr; t: Expr; f: Expr }
  | { k: 'arr'; items: Expr[] }
  | { k: 'obj'; fields: Array<[string, Expr]> };

/** Longest expression accepted, and deepest nesting: bounds on what a definition can cost. */
const MAX_LENGTH = 4096;
const MAX_DEPTH = 64;

type Tok =
  | { t: 'num'; v: number; at: number }
  | { t: 'str'; v: string; at: number }
  | { t: 'name'; v: string; at: number }
  | { t: 'op'; v: string; at: number }
  | { t: 'end'; at: number };

const OPS = [
  '==',
  '!=',
  '<=',
  '>=',
  '&&',
  '||',
  '??',
  '<',
  '>',
  '+',
  '-',
  '*',
  '/',
  '%',
  '!',
  '?',
  ':',
  '.',
  ',',
  '(',
  ')',
  '[',
  ']',
  '{',
  '}',
];

function bad(text: string, at: number, what: string): FlowDefinitionError {
  return new FlowDefinitionError(
    'invalid_expression',
    `expression "${text.length > 80 ? text.slice(0, 77) + '...' : text}": ${what} at position ${at + 1}`,
  );
}

function tokenize(text: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
      continue;
    }
    if (/[0-9]/.test(c)) {
      const m = /^[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i))!;
      out.push({ t: 'num', v: Number(m[0]), at: i });
      i += m[0].length;
      continue;
    }
    if (/[A-Za-z_$]/.test(c)) {
      const m = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(text.slice(i))!;
      out.push({ t: 'name', v: m[0], at: i });
      i += m[0].length;
      continue;
    }
    if (c === '"' || c === "'") {
      let s = '';
      let j = i + 1;
      for (;;) {
        if (j >= text.length) throw bad(text, i, 'unterminated string');
        const d = text[j]!;
        if (d === c) break;
        if (d === '\\') {
          const e = text[j + 1];
          if (e === undefined) throw bad(text, j, 'unterminated string');
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e;
          j += 2;
          continue;
        }
        s += d;
        j++;
      }
      out.push({ t: 'str', v: s, at: i });
      i = j + 1;
      continue;
    }
    const op = OPS.find((o) => text.startsWith(o, i));
    if (!op) throw bad(text, i, `unexpected character "${c}"`);
    out.push({ t: 'op', v: op, at: i });
    i += op.length;
  }
  out.push({ t: 'end', at: text.length });
  return out;
}

/**
 * Parses an expression; throws a {@link FlowDefinitionError} (`invalid_expression`) saying where.
 *
 * @example
 * ```ts
 * const e = parseExpr('charge.amount > 100 && input.country == "DE"');
 * evaluate(e, { charge: { amount: 120 }, input: { country: 'DE' } }); // true
 * ```
 */
export function parseExpr(text: string): Expr {
  if (typeof text !== 'string') throw bad(String(text), 0, 'not a string');
  if (text.length > MAX_LENGTH) throw bad(text, MAX_LENGTH, `longer than ${MAX_LENGTH} characters`);
  const toks = tokenize(text);
  let p = 0;
  let depth = 0;
  const peek = (): Tok => toks[p]!;
  const isOp = (v: string): boolean => {
    const t = peek();
    return t.t === 'op' && t.v === v;
  };
  const expect = (v: string): void => {
    if (!isOp(v)) throw bad(text, peek().at, `expected "${v}"`);
    p++;
  };
  const nest = <T>(f: () => T): T => {
    if (++depth > MAX_DEPTH) throw bad(text, peek().at, `nested deeper than ${MAX_DEPTH}`);
    try {
      return f();
    } finally {
      depth--;
    }
  };
  const binary = (next: () => Expr, ops: string[]) => (): Expr => {
    let l = next();
    for (;;) {
      const t = peek();
      if (t.t !== 'op' || !ops.includes(t.v)) return l;
      p++;
      l = { k: 'bin', op: t.v, l, r: next() };
    }
  };
  const expr = (): Expr =>
    nest(() => {
      const c = or();
      if (!isOp('?')) return c;
      p++;
      const t = expr();
      expect(':');
      return { k: 'cond', c, t, f: expr() };
    });
  const unary = (): Expr =>
    nest(() => {
      const t = peek();
      if (t.t === 'op' && (t.v === '!' || t.v === '-')) {
        p++;
        return { k: 'un', op: t.v, e: unary() };
      }
      return postfix();
    });
  const mul = binary(unary, ['*', '/', '%']);
  const add = binary(mul, ['+', '-']);
  const rel = binary(add, ['<', '<=', '>', '>=']);
  const eq = binary(rel, ['==', '!=']);
  const and = binary(eq, ['&&']);
  const or = binary(and, ['||', '??']);
  const list = (close: string): Expr[] => {
    const items: Expr[] = [];
    if (isOp(close)) {
      p++;
      return items;
    }
    for (;;) {
      items.push(expr());
      if (isOp(',')) {
        p++;
        continue;
      }
      expect(close);
      return items;
    }
  };
  const postfix = (): Expr => {
    let e = primary();
    for (;;) {
      if (isOp('.')) {
        p++;
        const t = peek();
        if (t.t !== 'name') throw bad(text, t.at, 'expected a property name after "."');
        p++;
        e = { k: 'get', obj: e, key: { k: 'lit', v: t.v } };
      } else if (isOp('[')) {
        p++;
        const key = expr();
        expect(']');
        e = { k: 'get', obj: e, key };
      } else if (isOp('(')) {
        if (e.k !== 'id') throw bad(text, peek().at, 'only named functions can be called');
        if (!Object.hasOwn(FUNCTIONS, e.name))
          throw bad(
            text,
            peek().at,
            `unknown function "${e.name}" (known: ${Object.keys(FUNCTIONS).join(', ')})`,
          );
        p++;
        e = { k: 'call', fn: e.name, args: list(')') };
      } else {
        return e;
      }
    }
  };
  const primary = (): Expr => {
    const t = peek();
    p++;
    switch (t.t) {
      case 'num':
        return { k: 'lit', v: t.v };
      case 'str':
        return { k: 'lit', v: t.v };
      case 'name':
        if (t.v === 'true') return { k: 'lit', v: true };
        if (t.v === 'false') return { k: 'lit', v: false };
        if (t.v === 'null') return { k: 'lit', v: null };
        return { k: 'id', name: t.v };
      case 'op':
        if (t.v === '(') {
          const e = expr();
          expect(')');
          return e;
        }
        if (t.v === '[') return { k: 'arr', items: nest(() => list(']')) };
        if (t.v === '{') return nest(() => object());
        throw bad(text, t.at, `unexpected "${t.v}"`);
      case 'end':
        throw bad(text, t.at, 'unexpected end');
    }
  };
  const object = (): Expr => {
    const fields: Array<[string, Expr]> = [];
    if (isOp('}')) {
      p++;
      return { k: 'obj', fields };
    }
    for (;;) {
      const t = peek();
      if (t.t !== 'name' && t.t !== 'str') throw bad(text, t.at, 'expected a field name');
      p++;
      expect(':');
      fields.push([t.v, expr()]);
      if (isOp(',')) {
        p++;
        continue;
      }
      expect('}');
      return { k: 'obj', fields };
    }
  };
  const e = expr();
  if (peek().t !== 'end') throw bad(text, peek().at, 'unexpected text after the expression');
  return e;
}

/** A reference an expression makes to the flow's scope: a root name, and for `steps`, the id. */
export interface Ref {
  root: string;
  /** The second segment when it is a literal (`steps.charge` → `charge`). */
  member?: string;
}

/** The names an expression reads from its scope (for validation before it ever runs). */
export function refsOf(e: Expr, out: Ref[] = []): Ref[] {
  switch (e.k) {
    case 'lit':
      break;
    case 'id':
      out.push({ root: e.name });
      break;
    case 'get':
      if (e.obj.k === 'id' && e.key.k === 'lit' && typeof e.key.v === 'string') {
        out.push({ root: e.obj.name, member: e.key.v });
      } else {
        refsOf(e.obj, out);
        refsOf(e.key, out);
      }
      break;
    case 'call':
      for (const a of e.args) refsOf(a, out);
      break;
    case 'un':
      refsOf(e.e, out);
      break;
    case 'bin':
      refsOf(e.l, out);
      refsOf(e.r, out);
      break;
    case 'cond':
      refsOf(e.c, out);
      refsOf(e.t, out);
      refsOf(e.f, out);
      break;
    case 'arr':
      for (const a of e.items) refsOf(a, out);
      break;
    case 'obj':
      for (const [, v] of e.fields) refsOf(v, out);
      break;
  }
  return out;
}

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

const num = (v: unknown, what: string): number => {
  if (typeof v !== 'number')
    throw new FlowExpressionError(`${what} needs a number, got ${typeOf(v)}`);
  return v;
};

function typeOf(v: unknown): string {
  return v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v;
}

/** The functions expressions may call. Pure, total on their documented inputs. */
export const FUNCTIONS: Readonly<Record<string, (...args: unknown[]) => unknown>> = {
  /** Length of a string or an array, number of fields of an object. */
  len: (v) =>
    typeof v === 'string' || Array.isArray(v)
      ? v.length
      : v !== null && typeof v === 'object'
        ? Object.keys(v).length
        : 0,
  lower: (v) => text(v ?? '').toLowerCase(),
  upper: (v) => text(v ?? '').toUpperCase(),
  trim: (v) => text(v ?? '').trim(),
  string: (v) => (typeof v === 'string' ? v : JSON.stringify(v ?? null)),
  number: (v) => Number(v),
  round: (v, digits) => {
    const f = 10 ** (digits === undefined ? 0 : num(digits, 'round'));
    return Math.round(num(v, 'round') * f) / f;
  },
  floor: (v) => Math.floor(num(v, 'floor')),
  ceil: (v) => Math.ceil(num(v, 'ceil')),
  abs: (v) => Math.abs(num(v, 'abs')),
  min: (...vs) => Math.min(...vs.map((v) => num(v, 'min'))),
  max: (...vs) => Math.max(...vs.map((v) => num(v, 'max'))),
  /** `sum(list)` or `sum(list, 'field')`. */
  sum: (list, field) => {
    if (!Array.isArray(list))
      throw new FlowExpressionError(`sum needs an array, got ${typeOf(list)}`);
    return list.reduce<number>(
      (acc, x) => acc + num(field === undefined ? x : read(x, field), 'sum'),
      0,
    );
  },
  /** `pluck(list, 'field')`: the field of each element. */
  pluck: (list, field) => (Array.isArray(list) ? list.map((x) => read(x, field)) : []),
  keys: (o) => (o !== null && typeof o === 'object' && !Array.isArray(o) ? Object.keys(o) : []),
  contains: (hay, needle) =>
    typeof hay === 'string'
      ? hay.includes(String(needle))
      : Array.isArray(hay)
        ? hay.some((x) => x === needle)
        : false,
  /** `merge(a, b, ...)`: objects' fields, later ones winning. */
  merge: (...os) => {
    const out: Record<string, unknown> = {};
    for (const o of os) {
      if (o === null || typeof o !== 'object' || Array.isArray(o)) continue;
      for (const [k, v] of Object.entries(o)) if (!FORBIDDEN.has(k)) out[k] = v;
    }
    return out;
  },
};

function read(obj: unknown, key: unknown): unknown {
  if (obj === null || obj === undefined) return null;
  if (typeof key === 'number' && Array.isArray(obj)) return obj[key] ?? null;
  if (typeof key !== 'string' && typeof key !== 'number') return null;
  const k = String(key);
  if (FORBIDDEN.has(k)) throw new FlowExpressionError(`property "${k}" cannot be read`);
  if (typeof obj === 'string') return k === 'length' ? obj.length : null;
  if (Array.isArray(obj))
    return k === 'length' ? obj.length : Object.hasOwn(obj, k) ? (obj[Number(k)] ?? null) : null;
  if (typeof obj !== 'object') return null;
  return Object.hasOwn(obj, k) ? ((obj as Record<string, unknown>)[k] ?? null) : null;
}

/**
 * Evaluates a parsed expression against a scope of plain data.
 *
 * @example
 * ```ts
 * evaluate(parseExpr('sum(order.items, "price")'), { order: { items: [{ price: 2 }, { price: 3 }] } }); // 5
 * ```
 */
export function evaluate(e: Expr, scope: Readonly<Record<string, unknown>>): unknown {
  switch (e.k) {
    case 'lit':
      return e.v;
    case 'id':
      return Object.hasOwn(scope, e.name) ? (scope[e.name] ?? null) : null;
    case 'get':
      return read(evaluate(e.obj, scope), evaluate(e.key, scope));
    case 'call':
      return FUNCTIONS[e.fn]!(...e.args.map((a) => evaluate(a, scope)));
    case 'un': {
      const v = evaluate(e.e, scope);
      return e.op === '!' ? !truthy(v) : -num(v, 'unary -');
    }
    case 'cond':
      return truthy(evaluate(e.c, scope)) ? evaluate(e.t, scope) : evaluate(e.f, scope);
    case 'arr':
      return e.items.map((a) => evaluate(a, scope));
    case 'obj': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of e.fields) {
        if (FORBIDDEN.has(k)) throw new FlowExpressionError(`field "${k}" cannot be set`);
        out[k] = evaluate(v, scope);
      }
      return out;
    }
    case 'bin': {
      if (e.op === '&&') {
        const l = evaluate(e.l, scope);
        return truthy(l) ? evaluate(e.r, scope) : l;
      }
      if (e.op === '||') {
        const l = evaluate(e.l, scope);
        return truthy(l) ? l : evaluate(e.r, scope);
      }
      if (e.op === '??') {
        const l = evaluate(e.l, scope);
        return l === null || l === undefined ? evaluate(e.r, scope) : l;
      }
      const l = evaluate(e.l, scope);
      const r = evaluate(e.r, scope);
      switch (e.op) {
        case '==':
          return equal(l, r);
        case '!=':
          return !equal(l, r);
        case '+':
          if (typeof l === 'string' || typeof r === 'string') return text(l) + text(r);
          return num(l, '+') + num(r, '+');
        case '-':
          return num(l, '-') - num(r, '-');
        case '*':
          return num(l, '*') * num(r, '*');
        case '/':
          return num(l, '/') / num(r, '/');
        case '%':
          return num(l, '%') % num(r, '%');
        default:
          return compare(e.op, l, r);
      }
    }
  }
}

function text(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v ?? null);
}

function compare(op: string, l: unknown, r: unknown): boolean {
  if (!(
    (typeof l === 'number' && typeof r === 'number') ||
    (typeof l === 'string' && typeof r === 'string')
  ))
    throw new FlowExpressionError(
      `"${op}" compares two numbers or two strings, got ${typeOf(l)} and ${typeOf(r)}`,
    );
  switch (op) {
    case '<':
      return l < r;
    case '<=':
      return l <= r;
    case '>':
      return l > r;
    default:
      return l >= r;
  }
}

/** Structural equality of JSON values (`undefined` counts as `null`). */
function equal(a: unknown, b: unknown): boolean {
  if ((a ?? null) === (b ?? null)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** What a condition counts as true: anything but `false`, `null`, `0`, `''` and an empty list. */
export function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  return Boolean(v);
}
