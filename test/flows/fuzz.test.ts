/**
 * A seeded fuzzer for flow definitions: random mutations of a valid definition, random text as
 * YAML and JSON, and random expressions. A definition is either accepted or refused with a
 * FlowDefinitionError of a known code (never another exception: no TypeError, no stack
 * overflow); an accepted one's templates evaluate to a value or a FlowExpressionError. Then the
 * same kind of bodies through `POST /flows/definitions` of a real app: never a 5xx, and only
 * accepted definitions change what is registered. A fresh seed each run, printed;
 * KEEL_FUZZ_SEED=<seed> repeats one.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startApp } from '../../src/app.js';
import {
  compileFlow,
  createFlows,
  evaluate,
  FlowDefinitionError,
  FlowExpressionError,
  parseExpr,
  parseFlowText,
  type FlowEnvironment,
} from '../../src/flows/index.js';
import { renderTemplate, type Template } from '../../src/flows/template.js';
import type { CompiledStep } from '../../src/flows/validate.js';
import { tempDir } from '../helpers.js';

const CODES = new Set([
  'invalid_flow',
  'flow_parse_error',
  'unknown_step_type',
  'unknown_integration',
  'unknown_operation',
  'unknown_transform',
  'unknown_database',
  'undefined_variable',
  'duplicate_step_id',
  'flow_cycle',
  'invalid_on_error',
  'invalid_expression',
]);

const seed = Number(process.env.KEEL_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: small, seeded, good enough to pick mutations. */
function rng(s: number) {
  let a = s >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
  return { next, int, pick, chance: (p: number) => next() < p };
}
type Rng = ReturnType<typeof rng>;

const env: FlowEnvironment = {
  integrations: new Map([['Shop', new Set(['reserve', 'charge', 'release'])]]),
  databases: new Map([['orders', 'sql']]),
  transforms: new Set(['total']),
};

const VALID = () => ({
  name: 'saga',
  steps: [
    {
      id: 'reserve',
      type: 'api',
      integration: 'Shop',
      operation: 'reserve',
      params: { sku: '{{input.sku}}' },
      storeAs: 'r',
      onError: 'retry',
      retries: 2,
      compensate: {
        id: 'release',
        type: 'api',
        integration: 'Shop',
        operation: 'release',
        params: { id: '{{r.id}}' },
      },
    },
    { id: 'total', type: 'transform', function: 'total', input: '{{r}}', storeAs: 't' },
    {
      id: 'big',
      type: 'conditional',
      condition: 't > 10 && len(input.items) > 0',
      then: [
        { id: 'q', type: 'database', database: 'orders', query: 'select $1', params: ['{{t}}'] },
      ],
      else: [
        { id: 'e', type: 'event', bus: 'nats', destination: 'x', payload: { t: '{{t + 1}}' } },
      ],
    },
  ],
  output: { total: '{{t}}' },
});

const EXPR_BITS = [
  'input',
  'steps',
  'r',
  't',
  'x',
  '.',
  '[',
  ']',
  '(',
  ')',
  '{',
  '}',
  ':',
  ',',
  '?',
  '!',
  '-',
  '+',
  '*',
  '/',
  '%',
  '==',
  '!=',
  '<',
  '>=',
  '&&',
  '||',
  '??',
  '"s"',
  "'q'",
  '1',
  '2.5',
  'true',
  'null',
  'len',
  'sum',
  'round',
  'merge',
  '__proto__',
  'constructor',
  'prototype',
  ' ',
  '\\',
  '"',
  '{{',
  '}}',
];

function randomExpr(r: Rng): string {
  let s = '';
  const n = r.int(1, 12);
  for (let i = 0; i < n; i++) s += r.pick(EXPR_BITS);
  return s;
}

function randomValue(r: Rng, depth = 0): unknown {
  switch (r.int(0, depth > 3 ? 5 : 8)) {
    case 0:
      return null;
    case 1:
      return r.int(-5, 200);
    case 2:
      return r.chance(0.5);
    case 3:
      return `{{${randomExpr(r)}}}`;
    case 4:
      return r.pick([
        'api',
        'database',
        'event',
        'transform',
        'conditional',
        'fail',
        'retry',
        'continue',
        '',
        'x',
        '1s',
        'Shop',
        'reserve',
      ]);
    case 5:
      return randomExpr(r);
    case 6:
      return Array.from({ length: r.int(0, 3) }, () => randomValue(r, depth + 1));
    case 7: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(0, 3); i > 0; i--) set(o, r.pick(KEYS), randomValue(r, depth + 1));
      return o;
    }
    default: {
      let v: unknown = 1;
      for (let i = r.int(10, 200); i > 0; i--) v = r.chance(0.5) ? [v] : { a: v };
      return v;
    }
  }
}

const KEYS = [
  'id',
  'name',
  'type',
  'storeAs',
  'onError',
  'retries',
  'backoff',
  'timeout',
  'compensate',
  'integration',
  'api',
  'operation',
  'params',
  'body',
  'headers',
  'database',
  'query',
  'command',
  'args',
  'bus',
  'destination',
  'topic',
  'routingKey',
  'payload',
  'function',
  'expression',
  'input',
  'condition',
  'then',
  'else',
  'steps',
  'output',
  '__proto__',
  'constructor',
  'initial',
  'max',
  'factor',
];

/** All objects and arrays inside `v`. */
function nodes(
  v: unknown,
  out: Array<Record<string, unknown> | unknown[]> = [],
  seen = new Set<unknown>(),
): typeof out {
  // Each node once: mutations share nodes, and a walk with repetitions can be exponential.
  if (v === null || typeof v !== 'object' || seen.has(v)) return out;
  seen.add(v);
  out.push(v as Record<string, unknown>);
  for (const x of Object.values(v)) nodes(x, out, seen);
  return out;
}

/** Whether `v`, expanded as a tree (shared nodes repeated), has more than `budget` values. */
function tooBig(v: unknown, budget = { left: 20_000 }): boolean {
  if (--budget.left < 0) return true;
  if (v === null || typeof v !== 'object') return false;
  for (const x of Object.values(v)) if (tooBig(x, budget)) return true;
  return false;
}

function mutate(r: Rng, def: Record<string, unknown>): unknown {
  for (let i = r.int(1, 4); i > 0; i--) {
    const all = nodes(def);
    const target = r.pick(all);
    if (Array.isArray(target)) {
      const op = r.int(0, 3);
      if (op === 0 && target.length > 0) target.splice(r.int(0, target.length - 1), 1);
      else if (op === 1 && target.length > 0)
        target.push(target[r.int(0, target.length - 1)]); // a shared step
      else if (op === 2) target.push(randomValue(r));
      else if (target.length > 0) target[r.int(0, target.length - 1)] = randomValue(r);
    } else {
      const keys = Object.keys(target);
      const op = r.int(0, 4);
      if (op === 0 && keys.length > 0) delete target[r.pick(keys)];
      else if (op === 1 && keys.length > 0) set(target, r.pick(keys), randomValue(r));
      else if (op === 2) set(target, r.pick(KEYS), randomValue(r));
      else if (op === 3 && all.length > 1)
        set(target, r.pick(KEYS), r.pick(all)); // maybe a cycle
      else if (keys.length > 0) set(target, r.pick(keys), `{{${randomExpr(r)}}}`);
    }
  }
  return def;
}

/** As JSON.parse makes them: `__proto__` is an own field, never the prototype. */
function set(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function randomText(r: Rng): string {
  const valid = JSON.stringify(VALID());
  switch (r.int(0, 3)) {
    case 0:
      return valid.slice(0, r.int(0, valid.length));
    case 1:
      return Array.from({ length: r.int(0, 200) }, () => String.fromCharCode(r.int(0, 0x7f))).join(
        '',
      );
    case 2:
      return `name: x\nsteps:\n${Array.from({ length: r.int(0, 5) }, () => `  - ${r.pick(['&a', '*a', '{', '[', '- ', 'id: a', '!!js/function x', '<<: *a'])} ${randomExpr(r)}`).join('\n')}\n`;
    default:
      return `a: &a [*a, *a]\nb: &b [*a, *a, *a]\nc: [*b, *b, *b, *b]\n`;
  }
}

/** Every template and expression of an accepted flow, evaluated with random scopes. */
function exercise(r: Rng, steps: CompiledStep[]): void {
  const scope = { input: randomValue(r), r: randomValue(r), t: randomValue(r), steps: {} };
  const check = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      if (!(err instanceof FlowExpressionError)) throw err;
    }
  };
  const tpl = (t: Template | undefined) => t && check(() => renderTemplate(t, scope));
  for (const s of steps) {
    if (s.type === 'api') [s.params, s.body, s.headers].forEach(tpl);
    if (s.type === 'database') tpl(s.args);
    if (s.type === 'event') tpl(s.payload);
    if (s.type === 'transform') {
      tpl(s.input);
      if (s.expression) check(() => evaluate(s.expression!, scope));
    }
    if (s.type === 'conditional') {
      check(() => evaluate(s.condition, scope));
      exercise(r, s.then);
      exercise(r, s.else);
    }
    exercise(r, s.compensate);
  }
}

function expectTyped(err: unknown, what: string): void {
  if (!(err instanceof FlowDefinitionError) || !CODES.has(err.code) || !err.message)
    throw new Error(`seed ${seed}: ${what} threw ${String((err as Error)?.stack ?? err)}`);
}

describe(`flow definitions fuzzer (seed ${seed}; repeat with KEEL_FUZZ_SEED=${seed})`, () => {
  it('accepts or refuses every definition with a typed error, and never crashes evaluating', () => {
    const r = rng(seed);
    let accepted = 0;
    let refused = 0;
    for (let i = 0; i < 3000; i++) {
      let raw: unknown;
      try {
        raw = r.chance(0.15) ? parseFlowText(randomText(r)) : mutate(r, VALID());
      } catch (err) {
        expectTyped(err, `parseFlowText (case ${i})`);
        refused++;
        continue;
      }
      try {
        const flow = compileFlow(raw, env);
        accepted++;
        exercise(r, flow.steps);
      } catch (err) {
        expectTyped(err, `compileFlow (case ${i})`);
        refused++;
      }
    }
    console.log(`flow fuzzer: ${accepted} accepted, ${refused} refused (seed ${seed})`);
    expect(refused).toBeGreaterThan(100);
    expect(accepted).toBeGreaterThan(10);
  });

  it('parses random expressions into a tree or a typed error', () => {
    const r = rng(seed ^ 0x5eed);
    for (let i = 0; i < 5000; i++) {
      const src = randomExpr(r);
      try {
        const e = parseExpr(src);
        try {
          evaluate(e, { input: randomValue(r), x: randomValue(r), t: 3 });
        } catch (err) {
          if (!(err instanceof FlowExpressionError))
            throw new Error(`seed ${seed}: evaluating ${JSON.stringify(src)} threw ${String(err)}`);
        }
      } catch (err) {
        if (err instanceof Error && err.message.startsWith(`seed ${seed}`)) throw err;
        expectTyped(err, `parseExpr(${JSON.stringify(src)})`);
      }
    }
  });

  describe('through the admin API', () => {
    const tmp = tempDir('keel-flows-fuzz-');
    afterAll(() => tmp.cleanup());

    it('answers random definitions with 2xx or a typed 4xx, and registers only what it accepted', async () => {
      const app = await startApp({
        services: [],
        db: join(tmp.dir, 'keel.db'),
        port: 0,
        adminPort: 0,
        durability: 'os',
        extensions: [createFlows({ transforms: { total: () => 1 } })],
        logger: () => undefined,
      });
      try {
        const r = rng(seed ^ 0xad);
        const accepted = new Map<string, number>();
        for (let i = 0; i < 300; i++) {
          const yaml = r.chance(0.3);
          let body: string;
          try {
            const value = yaml ? undefined : mutate(r, VALID());
            if (!yaml && tooBig(value)) continue; // shared nodes expand exponentially in JSON
            body = yaml ? randomText(r) : JSON.stringify(value ?? null);
          } catch {
            continue; // a cycle has no JSON form
          }
          const res = await fetch(`${app.admin.url}/flows/definitions`, {
            method: 'POST',
            headers: { 'content-type': yaml ? 'application/yaml' : 'application/json' },
            body,
          });
          const json = (await res.json()) as any;
          expect(
            res.status,
            `seed ${seed} case ${i}: ${body.slice(0, 300)} → ${JSON.stringify(json)}`,
          ).toBeLessThan(500);
          if (res.status < 300) accepted.set(json.name, json.version);
          else expect(typeof json.code).toBe('string');
        }
        const list = (await (await fetch(`${app.admin.url}/flows/definitions`)).json()) as any;
        expect(new Map(list.flows.map((f: any) => [f.name, f.version]))).toEqual(accepted);
      } finally {
        await app.close();
      }
    }, 120_000);
  });
});
