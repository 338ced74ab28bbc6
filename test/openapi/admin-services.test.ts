import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ADMIN_TOKEN,
  Order,
  Receipt,
  startFixture,
  VIEWER_TOKEN,
  zodJsonSchema,
  type Fixture,
} from './fixture.js';

/**
 * The admin API's `GET /services` (the dashboard's catalog of handlers) and
 * `POST /services/{service}/{handler}/invoke` (its invoke form), over real HTTP with the admin
 * and the read-only viewer token.
 */
let f: Fixture;

beforeAll(async () => {
  f = await startFixture();
}, 60_000);
afterAll(async () => {
  await f?.close();
});

interface Answer {
  status: number;
  body: any;
}

async function call(
  token: string | undefined,
  method: string,
  path: string,
  body?: unknown,
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${f.admin.url}${path}`, {
    method,
    headers,
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}
const asAdmin = (method: string, path: string, body?: unknown) =>
  call(ADMIN_TOKEN, method, path, body);
const asViewer = (method: string, path: string, body?: unknown) =>
  call(VIEWER_TOKEN, method, path, body);

/** How many invocations the store holds (of every service). */
async function stored(): Promise<number> {
  const page = await f.engine.listInvocations({ limit: 1000 });
  return page.invocations.length;
}

describe('GET /services', () => {
  it('lists the routable services, objects and workflows with their handlers and schemas', async () => {
    const { status, body } = await asAdmin('GET', '/services');
    expect(status).toBe(200);
    expect(body.services.map((s: any) => [s.name, s.kind])).toEqual([
      ['Cart', 'object'],
      ['Shop', 'service'],
      ['Signup', 'workflow'],
    ]);
    const shop = body.services[1];
    const place = shop.handlers.find((h: any) => h.name === 'place');
    expect(place).toEqual({
      name: 'place',
      kind: 'service',
      input: zodJsonSchema(Order),
      output: zodJsonSchema(Receipt, 'output'),
      inputRequired: true,
    });
    // No schema: no input or output field, and no body needed.
    expect(shop.handlers.find((h: any) => h.name === 'ping')).toEqual({
      name: 'ping',
      kind: 'service',
      inputRequired: false,
    });
    const cart = body.services[0];
    expect(cart.handlers.map((h: any) => [h.name, h.kind])).toEqual([
      ['add', 'exclusive'],
      ['items', 'shared'],
    ]);
    const signup = body.services[2];
    expect(signup.handlers.map((h: any) => [h.name, h.kind])).toEqual([
      ['run', 'workflow'],
      ['stage', 'shared'],
    ]);
    expect(signup.handlers[0].input).toEqual(
      zodJsonSchema(z.object({ email: z.string().email() })),
    );
    // A recursive schema keeps its own root-relative references here (it stands alone).
    const tree = shop.handlers.find((h: any) => h.name === 'tree');
    expect(tree.input.properties.children.items).toEqual({ $ref: '#' });
  });

  it('leaves out internal services', async () => {
    const { body } = await asAdmin('GET', '/services');
    const names = body.services.map((s: any) => s.name);
    expect(names).not.toContain('Machinery');
    expect(names).not.toContain('keel.hidden');
  });

  it('may be read with the viewer token, not without a token', async () => {
    expect((await asViewer('GET', '/services')).status).toBe(200);
    expect((await call(undefined, 'GET', '/services')).status).toBe(401);
    const post = await asAdmin('POST', '/services');
    expect(post.status).toBe(405);
  });
});

describe('POST /services/{service}/{handler}/invoke', () => {
  it('calls: 200 { invocationId, output }, the invocation stored and completed', async () => {
    const { status, body } = await asAdmin('POST', '/services/Shop/place/invoke', {
      mode: 'call',
      input: { sku: 'tea', quantity: 3 },
    });
    expect(status).toBe(200);
    expect(body).toEqual({ invocationId: expect.any(String), output: { id: 'r-tea', total: 30 } });
    const info = await f.engine.getInvocation(body.invocationId);
    expect(info).toMatchObject({ service: 'Shop', handler: 'place', status: 'completed' });
  });

  it('sends by default: 202 { invocationId }, to an object key', async () => {
    const { status, body } = await asAdmin('POST', '/services/Cart/add/invoke', {
      key: 'c-1',
      input: { sku: 'mug' },
    });
    expect(status).toBe(202);
    expect(body.invocationId).toEqual(expect.any(String));
    expect(await f.engine.attach(body.invocationId)).toEqual(['mug']);
    const info = await f.engine.getInvocation(body.invocationId);
    expect(info).toMatchObject({ service: 'Cart', key: 'c-1', handler: 'add' });
  });

  it('runs a workflow by key, with an idempotency key and a delay', async () => {
    const run = await asAdmin('POST', '/services/Signup/run/invoke', {
      key: 'ada',
      mode: 'call',
      input: { email: 'ada@example.com' },
    });
    expect(run).toMatchObject({ status: 200, body: { output: 'welcome ada@example.com' } });
    const first = await asAdmin('POST', '/services/Shop/ping/invoke', {
      idempotencyKey: 'once',
      delay: '1h',
    });
    expect(first.status).toBe(202);
    expect(await f.engine.getInvocation(first.body.invocationId)).toMatchObject({
      status: 'scheduled',
      idempotencyKey: 'once',
    });
    const again = await asAdmin('POST', '/services/Shop/ping/invoke', {
      idempotencyKey: 'once',
      delay: 3_600_000,
    });
    expect(again.body.invocationId).toBe(first.body.invocationId);
  });

  it("answers a handler's terminal error with its status, code and the invocation id", async () => {
    const { status, body } = await asAdmin('POST', '/services/Shop/refuse/invoke', {
      mode: 'call',
    });
    expect(status).toBe(409);
    expect(body).toEqual({
      code: 'out_of_stock',
      message: 'out of stock',
      invocationId: expect.any(String),
    });
    expect(await f.engine.getInvocation(body.invocationId)).toMatchObject({ status: 'failed' });
  });

  it("refuses input the handler's schema refuses: 400 with the issues, nothing stored", async () => {
    const before = await stored();
    const { status, body } = await asAdmin('POST', '/services/Shop/place/invoke', {
      mode: 'call',
      input: { sku: '', quantity: -1 },
    });
    expect(status).toBe(400);
    expect(body.code).toBe('validation_failed');
    expect(body.message).toContain('Shop.place');
    expect(body.issues.map((i: any) => i.path).sort()).toEqual(['quantity', 'sku']);
    expect(body.issues.every((i: any) => typeof i.message === 'string')).toBe(true);
    // A missing body is no input, which the schema refuses as well.
    expect((await asAdmin('POST', '/services/Signup/run/invoke', { key: 'x' })).status).toBe(400);
    expect(await stored()).toBe(before);
  });

  it('refuses a bad request body with a 400 that says what to send, storing nothing', async () => {
    const before = await stored();
    const cases: [string, unknown, string][] = [
      ['/services/Shop/ping/invoke', [1, 2], 'invalid_request'],
      ['/services/Shop/ping/invoke', { inptu: 1 }, 'invalid_request'],
      ['/services/Shop/ping/invoke', { mode: 'later' }, 'invalid_request'],
      ['/services/Shop/ping/invoke', { key: 'k' }, 'invalid_request'],
      ['/services/Cart/add/invoke', { input: { sku: 'x' } }, 'invalid_request'],
      ['/services/Cart/add/invoke', { key: '', input: { sku: 'x' } }, 'invalid_request'],
      ['/services/Shop/ping/invoke', { mode: 'call', delay: '1s' }, 'invalid_delay'],
      ['/services/Shop/ping/invoke', { delay: 'soon' }, 'invalid_delay'],
      ['/services/Shop/ping/invoke', { delay: '400d' }, 'invalid_delay'],
      ['/services/Shop/ping/invoke', { idempotencyKey: '' }, 'invalid_idempotency_key'],
    ];
    for (const [path, body, code] of cases) {
      const res = await asAdmin('POST', path, body);
      expect([res.status, res.body.code], JSON.stringify(body)).toEqual([400, code]);
      expect(res.body.message.length).toBeGreaterThan(10);
    }
    const notJson = await fetch(`${f.admin.url}/services/Shop/ping/invoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: '{',
    });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { code: string }).code).toBe('invalid_json');
    expect(await stored()).toBe(before);
  });

  it('answers 404 for an unknown or internal target, 405 for GET', async () => {
    const before = await stored();
    expect((await asAdmin('POST', '/services/Nope/x/invoke', {})).status).toBe(404);
    expect((await asAdmin('POST', '/services/Shop/nope/invoke', {})).status).toBe(404);
    expect((await asAdmin('POST', '/services/Machinery/crank/invoke', {})).status).toBe(404);
    expect((await asAdmin('POST', '/services/Shop/ping/run', {})).status).toBe(404);
    expect((await asAdmin('GET', '/services/Shop/ping/invoke')).status).toBe(405);
    expect(await stored()).toBe(before);
  });

  it('is refused to the read-only viewer token (403) and without a token (401), storing nothing', async () => {
    const before = await stored();
    const res = await asViewer('POST', '/services/Shop/place/invoke', {
      mode: 'call',
      input: { sku: 'tea', quantity: 1 },
    });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('forbidden');
    const none = await call(undefined, 'POST', '/services/Shop/place/invoke', {
      input: { sku: 'tea', quantity: 1 },
    });
    expect(none.status).toBe(401);
    expect(await stored()).toBe(before);
  });
});
