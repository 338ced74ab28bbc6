/**
 * Definitions are checked when registered: each refusal is a FlowDefinitionError with a code
 * and the step it is about. And the expression language is safe: no prototype access, no eval.
 */
import { describe, expect, it } from 'vitest';
import {
  compileFlow,
  evaluate,
  FlowDefinitionError,
  parseExpr,
  parseFlowText,
  type FlowEnvironment,
} from '../../src/flows/index.js';

const env: FlowEnvironment = {
  integrations: new Map([['Shop', new Set(['reserve', 'charge'])]]),
  databases: new Map([
    ['orders', 'sql'],
    ['cache', 'redis'],
  ]),
  transforms: new Set(['total']),
};

function refused(def: unknown, e: FlowEnvironment = env): FlowDefinitionError {
  try {
    compileFlow(def, e);
  } catch (err) {
    expect(err).toBeInstanceOf(FlowDefinitionError);
    return err as FlowDefinitionError;
  }
  throw new Error('the definition was accepted');
}

const flow = (...steps: unknown[]) => ({ name: 'f', steps });
const api = (id: string, extra: object = {}) => ({
  id,
  type: 'api',
  integration: 'Shop',
  operation: 'reserve',
  ...extra,
});

describe('flow validation', () => {
  it('accepts a definition with every step type', () => {
    const f = compileFlow(
      flow(
        api('a', { storeAs: 'r', params: { sku: '{{input.sku}}' } }),
        { id: 'b', type: 'database', database: 'orders', query: 'select $1', params: ['{{r.id}}'] },
        { id: 'c', type: 'database', database: 'cache', command: 'GET', args: ['k'] },
        { id: 'd', type: 'event', bus: 'nats', destination: 'orders.x', payload: '{{steps.a}}' },
        { id: 'e', type: 'transform', function: 'total', input: '{{r}}', storeAs: 't' },
        {
          id: 'g',
          type: 'conditional',
          condition: '{{ t > 1 }}',
          then: { id: 'h', type: 'transform', expression: 't', storeAs: 'u' },
          else: [{ id: 'i', type: 'transform', expression: '0', storeAs: 'u' }],
        },
        { id: 'j', type: 'transform', expression: 'u + 1' },
      ),
      env,
    );
    expect(f.steps.map((s) => s.id)).toEqual(['a', 'b', 'c', 'd', 'e', 'g', 'j']);
  });

  it("accepts the seed's field names (name as id, api, topic, params)", () => {
    const f = compileFlow(
      flow(
        { name: 'Reserve', type: 'api', api: 'Shop', operation: 'reserve' },
        { name: 'Notify', type: 'event', bus: 'rabbitmq', topic: 'orders', params: { a: 1 } },
      ),
      env,
    );
    expect(f.steps.map((s) => s.id)).toEqual(['Reserve', 'Notify']);
  });

  it('refuses an unknown step type, naming the step', () => {
    const e = refused(flow(api('a'), { id: 'weird', type: 'graphql' }));
    expect(e.code).toBe('unknown_step_type');
    expect(e.step).toBe('weird');
    expect(e.message).toContain('weird');
  });

  it('refuses an unknown integration or operation, naming the step', () => {
    const a = refused(flow(api('pay', { integration: 'Stripe' })));
    expect([a.code, a.step, a.field]).toEqual(['unknown_integration', 'pay', 'integration']);
    const b = refused(flow(api('pay', { operation: 'refund' })));
    expect([b.code, b.step]).toEqual(['unknown_operation', 'pay']);
    // Not checked when no integrations are known.
    expect(() =>
      compileFlow(flow(api('pay', { integration: 'Stripe' })), { transforms: new Set() }),
    ).not.toThrow();
  });

  it('refuses an unknown transform function or database', () => {
    const a = refused(flow({ id: 't', type: 'transform', function: 'nope' }));
    expect([a.code, a.step]).toEqual(['unknown_transform', 't']);
    const b = refused(flow({ id: 'q', type: 'database', database: 'other', query: 'select 1' }));
    expect([b.code, b.step]).toEqual(['unknown_database', 'q']);
    const c = refused(flow({ id: 'q', type: 'database', database: 'cache', query: 'select 1' }));
    expect([c.code, c.step]).toEqual(['invalid_flow', 'q']);
  });

  it('refuses a {{variable}} used before it is stored, naming the step', () => {
    const a = refused(
      flow(api('a', { params: { id: '{{payment.id}}' } }), api('b', { storeAs: 'payment' })),
    );
    expect([a.code, a.step, a.field]).toEqual(['undefined_variable', 'a', 'params']);
    expect(a.message).toContain('{{payment}}');
    const b = refused(flow({ id: 'x', type: 'transform', expression: 'steps.y.total' }, api('y')));
    expect([b.code, b.step]).toEqual(['undefined_variable', 'x']);
    // Stored in one branch only: not stored after the conditional.
    const c = refused(
      flow(
        {
          id: 'if',
          type: 'conditional',
          condition: 'input.a',
          then: [{ id: 'set', type: 'transform', expression: '1', storeAs: 'v' }],
        },
        { id: 'use', type: 'transform', expression: 'v' },
      ),
    );
    expect([c.code, c.step]).toEqual(['undefined_variable', 'use']);
    // A compensation may read its own step's output.
    expect(() =>
      compileFlow(
        flow(api('a', { storeAs: 'r', compensate: api('undo-a', { params: { id: '{{r.id}}' } }) })),
        env,
      ),
    ).not.toThrow();
  });

  it('refuses duplicate step ids and cycles', () => {
    const a = refused(
      flow(api('a'), { id: 'c', type: 'conditional', condition: true, then: [api('a')] }),
    );
    expect([a.code, a.step]).toEqual(['duplicate_step_id', 'a']);
    const loop: Record<string, unknown> = { id: 'loop', type: 'conditional', condition: true };
    loop.then = [loop];
    const b = refused(flow(loop));
    expect([b.code, b.step]).toEqual(['flow_cycle', 'loop']);
    // A YAML alias reusing a step is the same step twice.
    const yaml = parseFlowText(
      'name: f\nsteps:\n  - &s { id: a, type: transform, expression: "1" }\n  - *s\n',
    );
    expect(refused(yaml).code).toBe('duplicate_step_id');
  });

  it('refuses a bad onError, retries or backoff', () => {
    expect(refused(flow(api('a', { onError: 'ignore' })))).toMatchObject({
      code: 'invalid_on_error',
      step: 'a',
    });
    expect(refused(flow(api('a', { retries: 2 })))).toMatchObject({
      code: 'invalid_on_error',
      step: 'a',
      field: 'retries',
    });
    expect(refused(flow(api('a', { onError: 'retry', retries: -1 })))).toMatchObject({
      code: 'invalid_on_error',
    });
    expect(refused(flow(api('a', { onError: 'retry', retries: 1.5 })))).toMatchObject({
      code: 'invalid_on_error',
    });
    expect(
      refused(flow(api('a', { onError: 'retry', backoff: { initial: 'soon' } }))),
    ).toMatchObject({
      code: 'invalid_flow',
      field: 'backoff.initial',
    });
  });

  it('refuses malformed text, expressions and fields with typed errors', () => {
    expect(() => parseFlowText('name: [unclosed')).toThrow(FlowDefinitionError);
    expect(() => parseFlowText('{"name":')).toThrow(
      expect.objectContaining({ code: 'flow_parse_error' }),
    );
    expect(refused(flow({ id: 'x', type: 'transform', expression: '1 +' }))).toMatchObject({
      code: 'invalid_expression',
      step: 'x',
    });
    expect(refused(flow(api('a', { params: { x: '{{ unclosed' } })))).toMatchObject({
      code: 'invalid_expression',
      step: 'a',
    });
    expect(refused(flow(api('a', { oops: 1 })))).toMatchObject({
      code: 'invalid_flow',
      step: 'a',
      field: 'oops',
    });
    expect(refused({ name: '1bad', steps: [api('a')] })).toMatchObject({
      code: 'invalid_flow',
      field: 'name',
    });
    expect(refused({ name: 'f', steps: [] })).toMatchObject({
      code: 'invalid_flow',
      field: 'steps',
    });
    expect(refused(null).code).toBe('invalid_flow');
    expect(refused(flow(api('a', { storeAs: 'input' })))).toMatchObject({
      code: 'invalid_flow',
      field: 'storeAs',
    });
  });
});

describe('the expression language', () => {
  const ev = (src: string, scope: Record<string, unknown> = {}) => evaluate(parseExpr(src), scope);

  it('evaluates arithmetic, comparison, logic, paths, literals and functions', () => {
    expect(ev('1 + 2 * 3 - 4 / 2')).toBe(5);
    expect(ev('a.b[1].c', { a: { b: [{}, { c: 'x' }] } })).toBe('x');
    expect(ev('a.missing.deeper', { a: {} })).toBe(null);
    expect(ev("x == 'y' && !(n > 3) || false", { x: 'y', n: 2 })).toBe(true);
    expect(ev('n >= 10 ? "big" : "small"', { n: 12 })).toBe('big');
    expect(ev('missing ?? 7')).toBe(7);
    expect(ev('sum(items, "p") + len(items)', { items: [{ p: 2 }, { p: 3 }] })).toBe(7);
    expect(ev('{ total: round(a * 1.19, 2), tags: [upper("x"), "y"] }', { a: 10 })).toEqual({
      total: 11.9,
      tags: ['X', 'y'],
    });
    expect(ev('"n=" + n', { n: 3 })).toBe('n=3');
  });

  it('cannot reach prototypes, constructors or anything outside its scope', () => {
    expect(() => ev('a.__proto__', { a: {} })).toThrow(
      expect.objectContaining({ code: 'flow_expression_failed' }),
    );
    expect(() => ev('a.constructor', { a: {} })).toThrow(
      expect.objectContaining({ code: 'flow_expression_failed' }),
    );
    expect(() => ev('a["constructor"]', { a: {} })).toThrow(
      expect.objectContaining({ code: 'flow_expression_failed' }),
    );
    expect(ev('toString', {})).toBe(null);
    expect(ev('a.toString', { a: {} })).toBe(null);
    expect(ev('process')).toBe(null);
    expect(() => parseExpr('eval("1")')).toThrow(
      expect.objectContaining({ code: 'invalid_expression' }),
    );
    expect(() => parseExpr('a.b()')).toThrow(
      expect.objectContaining({ code: 'invalid_expression' }),
    );
    expect(() => parseExpr('x = 1')).toThrow(
      expect.objectContaining({ code: 'invalid_expression' }),
    );
    expect(() => parseExpr('('.repeat(500) + '1' + ')'.repeat(500))).toThrow(
      expect.objectContaining({ code: 'invalid_expression' }),
    );
  });

  it('reports type errors at run time as typed errors', () => {
    expect(() => ev('a * 2', { a: 'x' })).toThrow(
      expect.objectContaining({ code: 'flow_expression_failed' }),
    );
    expect(() => ev('a < "b"', { a: 1 })).toThrow(
      expect.objectContaining({ code: 'flow_expression_failed' }),
    );
  });
});
