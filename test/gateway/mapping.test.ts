import { describe, expect, it } from 'vitest';
import {
  applyMapping,
  compileMapping,
  compileRoutes,
  createGateway,
  GatewayConfigError,
  GatewayRequestError,
  matchRoute,
  REQUEST_ROOTS,
} from '../../src/gateway/index.js';

/** The mapping language and route declarations, as pure functions. */
describe('gateway mapping', () => {
  const compile = (m: Parameters<typeof compileMapping>[0], params: string[] = ['id']) =>
    compileMapping(m, REQUEST_ROOTS, params, 'route T');

  it('picks nested fields, converts text to the declared type, nests outputs', () => {
    const m = compile({
      id: 'path.id',
      'paging.limit': { from: 'query.limit', type: 'integer' },
      'paging.all': { from: 'query.all', type: 'boolean' },
      first: 'body.items.0.sku',
      tenant: 'header.X-Tenant',
      absent: 'body.nope',
    });
    expect(
      applyMapping(m, {
        path: { id: '7' },
        query: { limit: '20', all: 'true' },
        body: { items: [{ sku: 'A' }] },
        header: { 'x-tenant': 'acme' },
      }),
    ).toEqual({ id: '7', paging: { limit: 20, all: true }, first: 'A', tenant: 'acme' });
  });

  it('reads own properties only: __proto__ and friends are refused, inherited ones are absent', () => {
    expect(() => compile({ x: 'body.__proto__' })).toThrow(GatewayConfigError);
    expect(() => compile({ '__proto__.x': 'body.a' })).toThrow(/reserved/);
    const m = compile({ x: 'body.toString' });
    expect(applyMapping(m, { body: {} })).toEqual({});
    const polluted = applyMapping(compile({ a: 'body' }), {
      body: JSON.parse('{"__proto__":{"p":1}}'),
    });
    expect(({} as Record<string, unknown>).p).toBeUndefined();
    expect(Object.keys(polluted as object)).toEqual(['a']);
  });

  it('refuses unknown roots, undeclared path parameters and unknown types when declared', () => {
    expect(() => compile({ x: 'cookie.a' })).toThrow(/must start with one of/);
    expect(() => compile({ x: 'path.other' })).toThrow(/not a parameter/);
    expect(() => compile({ x: { from: 'body.a', type: 'date' as never } })).toThrow(/type must be/);
    expect(() => compile({ x: 42 as never })).toThrow(/a source is/);
  });

  it("maps a whole value with '.' (a handler taking a string or a number)", () => {
    expect(applyMapping(compile({ '.': 'path.id' }), { path: { id: 'ada' } })).toBe('ada');
    const n = compile({ '.': { from: 'body.n', type: 'integer', required: true } });
    expect(applyMapping(n, { body: { n: '4' } })).toBe(4);
    expect(() => applyMapping(n, { body: {} })).toThrow(/body\.n is required/);
    expect(() => compile({ '.': 'path.id', other: 'body.x' })).toThrow(/only field/);
  });

  it('reports every field that does not fit in one 400', () => {
    const m = compile({
      a: { from: 'body.a', type: 'number', required: true },
      b: { from: 'body.b', type: 'string', required: true },
      c: { from: 'body.c', default: 'dflt' },
    });
    let err: unknown;
    try {
      applyMapping(m, { body: { a: 'x' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GatewayRequestError);
    expect((err as Error).message).toMatch(
      /body\.a must be a number, got "x"; body\.b is required/,
    );
    expect(applyMapping(m, { body: { a: '1.5', b: 's' } })).toEqual({ a: 1.5, b: 's', c: 'dflt' });
  });
});

describe('gateway routes', () => {
  it('matches literal segments before failing over to another method', () => {
    const routes = compileRoutes([
      { method: 'GET', path: '/v1/orders/:id', target: { service: 'S', handler: 'h' } },
      { method: 'POST', path: '/v1/orders', target: { service: 'S', handler: 'h' } },
    ]);
    expect(matchRoute(routes, 'GET', ['v1', 'orders', '9'])).toMatchObject({
      kind: 'route',
      params: { id: '9' },
    });
    expect(matchRoute(routes, 'DELETE', ['v1', 'orders', '9'])).toEqual({
      kind: 'method',
      allow: 'GET',
    });
    expect(matchRoute(routes, 'GET', ['v1', 'nope'])).toEqual({ kind: 'none' });
  });

  it('refuses bad declarations, naming the route', () => {
    const t = { service: 'S', handler: 'h' };
    expect(() => compileRoutes([{ method: 'GET', path: 'v1', target: t }])).toThrow(
      /route GET v1: path/,
    );
    expect(() => compileRoutes([{ method: 'FETCH' as never, path: '/v1', target: t }])).toThrow(
      /method/,
    );
    expect(() => compileRoutes([{ method: 'GET', path: '/v1/:a/:a', target: t }])).toThrow(/twice/);
    expect(() =>
      compileRoutes([
        {
          method: 'GET',
          path: '/v1',
          target: { flow: 'f', service: 'S', handler: 'h' },
        },
      ]),
    ).toThrow(/exactly one/);
    expect(() =>
      compileRoutes([
        { method: 'GET', path: '/v1/:a', target: t },
        { method: 'GET', path: '/v1/:b', target: t },
      ]),
    ).toThrow(/same method and path/);
    expect(() => createGateway({ env: { KEEL_GATEWAY_KEYS: 'a:short' }, routes: [] })).toThrow(
      /16/,
    );
  });
});
