import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { service, TerminalError, workflow } from '../../src/index.js';
import type { FlowRunner } from '../../src/gateway/index.js';
import { call, gatewayHarness, KEY_A, KEY_B, type GatewayHarness } from './helpers.js';

/**
 * Routing and mapping through the gateway: a handler target (waiting, or sent), a flow target,
 * request mapping from path/query/body/headers with types and defaults, response shaping, the
 * Idempotency-Key passed through (scoped to the API key), and the errors: 400 for input that
 * does not fit (malformed JSON included), 404/405, 413 for a huge body, 502 for a failed flow.
 */
const runs = new Map<string, number>();
const Orders = workflow({
  name: 'Orders',
  run: async (ctx, input: { items: unknown[]; limit: number; tenant?: string; caller: string }) => {
    await ctx.run('count', () => runs.set(ctx.key, (runs.get(ctx.key) ?? 0) + 1));
    return { status: 'accepted', order: { id: ctx.key, lines: input.items.length }, input };
  },
});
let echoes = 0;
const Echo = service({
  name: 'Echo',
  handlers: {
    echo: async (ctx, input: unknown) => {
      await ctx.run('count', () => echoes++);
      return input;
    },
    refuse: async () => {
      throw new TerminalError('out of stock', { code: 'out_of_stock', status: 409 });
    },
  },
});

const flowCalls: Array<{ name: string; input: unknown; opts: unknown }> = [];
const runFlow: FlowRunner = async (_engine, name, input, opts) => {
  flowCalls.push({ name, input, opts });
  if (name === 'broken')
    return {
      workflow: name,
      success: false,
      status: 'compensated',
      errors: [{ step: 'charge', code: 'integration_rejected', message: 'card declined' }],
    };
  return { workflow: name, success: true, status: 'completed', data: { quote: 42, input } };
};

let h: GatewayHarness;
beforeAll(async () => {
  h = await gatewayHarness([Orders, Echo], {
    keys: [
      { name: 'alpha', key: KEY_A },
      { name: 'beta', key: KEY_B },
    ],
    runFlow,
    bodyLimit: 10_000,
    routes: [
      {
        method: 'POST',
        path: '/v1/orders/:id',
        target: { service: 'Orders', handler: 'run', key: 'path.id' },
        requestMap: {
          items: { from: 'body.items', type: 'array', required: true },
          limit: { from: 'query.limit', type: 'integer', default: 10 },
          tenant: 'header.x-tenant',
          caller: 'key.name',
        },
        responseMap: {
          id: 'result.order.id',
          lines: 'result.order.lines',
          state: 'result.status',
          via: { const: 'gateway' },
        },
      },
      {
        method: 'POST',
        path: '/v1/orders/:id/async',
        target: { service: 'Orders', handler: 'run', key: 'path.id', send: true },
        requestMap: { items: 'body.items', caller: 'key.name' },
      },
      { method: 'POST', path: '/v1/echo', target: { service: 'Echo', handler: 'echo' } },
      { method: 'DELETE', path: '/v1/stock/:sku', target: { service: 'Echo', handler: 'refuse' } },
      {
        method: 'GET',
        path: '/v1/quotes/:zip',
        target: { flow: 'quote', id: 'query.run' },
        requestMap: { zip: 'path.zip', 'address.country': { const: 'NL' } },
        responseMap: { quote: 'result.data.quote', zip: 'result.data.input.zip' },
      },
      { method: 'POST', path: '/v1/broken', target: { flow: 'broken' } },
    ],
  });
});
afterAll(() => h.close());

describe('gateway routing and mapping', () => {
  it('maps path, query, body, header and key into a workflow and shapes its result', async () => {
    const r = await call(h.base, 'POST', '/gateway/v1/orders/o-1?limit=5', {
      key: KEY_A,
      body: { items: [{ sku: 'A' }, { sku: 'B' }], ignored: true },
      headers: { 'x-tenant': 'acme' },
    });
    expect(r).toMatchObject({
      status: 200,
      body: { id: 'o-1', lines: 2, state: 'accepted', via: 'gateway' },
    });
    // The input the workflow got: only the mapped fields, typed.
    const out = await h.engine.invoke({
      service: 'Orders',
      handler: 'run',
      key: 'o-1',
      input: null,
    });
    expect((out as { input: unknown }).input).toEqual({
      items: [{ sku: 'A' }, { sku: 'B' }],
      limit: 5,
      tenant: 'acme',
      caller: 'alpha',
    });
  });

  it('applies defaults and reports every field that does not fit as a 400', async () => {
    const r = await call(h.base, 'POST', '/gateway/v1/orders/o-2?limit=ten', {
      key: KEY_A,
      body: { items: 'not a list' },
    });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('invalid_request');
    expect(r.body.message).toMatch(/body\.items must be an array, got "not a list"/);
    expect(r.body.message).toMatch(/query\.limit must be an integer, got "ten"/);
    const missing = await call(h.base, 'POST', '/gateway/v1/orders/o-2', { key: KEY_A, body: {} });
    expect(missing.body.message).toMatch(/body\.items is required/);
    expect(runs.has('o-2')).toBe(false);
  });

  it('answers malformed JSON, a wrong media type and a huge body without running anything', async () => {
    const before = echoes;
    const bad = await call(h.base, 'POST', '/gateway/v1/echo', { key: KEY_A, raw: '{"a": ' });
    expect(bad).toMatchObject({ status: 400, body: { code: 'invalid_json' } });
    const text = await call(h.base, 'POST', '/gateway/v1/echo', {
      key: KEY_A,
      raw: 'hello',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.status).toBe(415);
    const huge = await call(h.base, 'POST', '/gateway/v1/echo', {
      key: KEY_A,
      body: { blob: 'x'.repeat(50_000) },
    });
    expect(huge).toMatchObject({ status: 413, body: { code: 'body_too_large' } });
    expect(echoes).toBe(before);
    // The body passes as it is when a route has no requestMap.
    expect(
      (await call(h.base, 'POST', '/gateway/v1/echo', { key: KEY_A, body: [1, { a: 2 }] })).body,
    ).toEqual([1, { a: 2 }]);
  });

  it('answers 404 for an unknown route and 405 for a known path with another method', async () => {
    expect((await call(h.base, 'GET', '/gateway/v1/nowhere', { key: KEY_A })).status).toBe(404);
    const r = await call(h.base, 'GET', '/gateway/v1/echo', { key: KEY_A });
    expect(r.status).toBe(405);
    expect(r.body.code).toBe('method_not_allowed');
  });

  it("passes a handler's terminal error through with its status and code", async () => {
    const r = await call(h.base, 'DELETE', '/gateway/v1/stock/sku-1', { key: KEY_A });
    expect(r).toMatchObject({
      status: 409,
      body: { code: 'out_of_stock', message: 'out of stock' },
    });
  });

  it('passes Idempotency-Key through: a repeat runs nothing again; another API key is another request', async () => {
    const before = echoes;
    const send = (key: string) =>
      call(h.base, 'POST', '/gateway/v1/echo', {
        key,
        body: { n: 1 },
        headers: { 'idempotency-key': 'idem-1' },
      });
    expect((await send(KEY_A)).body).toEqual({ n: 1 });
    expect((await send(KEY_A)).body).toEqual({ n: 1 });
    expect(echoes).toBe(before + 1);
    await send(KEY_B);
    expect(echoes).toBe(before + 2);
    const twice = await call(h.base, 'POST', '/gateway/v1/echo', {
      key: KEY_A,
      body: 1,
      headers: { 'idempotency-key': '' },
    });
    expect(twice.status).toBe(400);
  });

  it('sends to a handler and answers 202 with the invocation, which completes', async () => {
    const r = await call(h.base, 'POST', '/gateway/v1/orders/o-async/async', {
      key: KEY_A,
      body: { items: [1] },
    });
    expect(r.status).toBe(202);
    expect(r.body.invocationId).toEqual(expect.any(String));
    const attached = await call(h.base, 'GET', `/invocations/${r.body.invocationId}/attach`);
    expect(attached.body).toMatchObject({ status: 'accepted', order: { id: 'o-async', lines: 1 } });
  });

  it('runs a flow target with the mapped input, its id and the scoped Idempotency-Key', async () => {
    const r = await call(h.base, 'GET', '/gateway/v1/quotes/1011?run=q-7', {
      key: KEY_B,
      headers: { 'idempotency-key': 'abc' },
    });
    expect(r).toMatchObject({ status: 200, body: { quote: 42, zip: '1011' } });
    expect(flowCalls.at(-1)).toEqual({
      name: 'quote',
      input: { zip: '1011', address: { country: 'NL' } },
      opts: { id: 'q-7', idempotencyKey: 'env-beta:abc' },
    });
    // The flow's id is required when the route names one.
    expect((await call(h.base, 'GET', '/gateway/v1/quotes/1011', { key: KEY_B })).status).toBe(400);
  });

  it('answers 502 naming the failed step when a flow fails', async () => {
    const r = await call(h.base, 'POST', '/gateway/v1/broken', { key: KEY_A, body: {} });
    expect(r.status).toBe(502);
    expect(r.body).toMatchObject({ code: 'flow_failed' });
    expect(r.body.message).toMatch(/step "charge": card declined/);
  });

  it('lists its routes on the admin API', async () => {
    const r = await call(h.adminBase, 'GET', '/gateway/routes');
    expect(r.body).toContainEqual(
      expect.objectContaining({ method: 'POST', path: '/gateway/v1/orders/:id' }),
    );
  });
});
