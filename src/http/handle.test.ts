import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveAdmin, type AdminServer } from '../admin/index.js';
import { object, service } from '../core/definitions.js';
import { UsageError } from '../core/errors.js';
import { Engine } from '../engine/engine.js';
import { serve, type IngressServer } from '../ingress/index.js';
import { openSqliteStore } from '../store/sqlite/index.js';

// handle(): Fetch API requests answered by the ingress and the admin API without a socket, on
// a real engine and a real SQLite file. The same servers also listen, and answer TCP clients
// the same way.

const Greeter = service({
  name: 'Greeter',
  handlers: { greet: async (_ctx, name: string) => `Hello, ${name}!` },
});
const Counter = object({
  name: 'Counter',
  handlers: {
    add: async (ctx, n: number) => {
      const total = ((await ctx.get<number>('total')) ?? 0) + n;
      ctx.set('total', total);
      return total;
    },
  },
});

const BASE = 'http://keel.test';
let dir: string;
let engine: Engine;
let ingress: IngressServer;
let admin: AdminServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keel-handle-'));
  engine = new Engine({
    services: [Greeter, Counter],
    store: openSqliteStore({ path: join(dir, 'keel.db') }),
    logger: () => {},
  });
  await engine.start();
  ingress = await serve(engine, { port: 0, bodyLimit: 1024 });
  admin = await serveAdmin(engine, { port: 0 });
});

afterAll(async () => {
  await Promise.all([ingress?.close(), admin?.close()]);
  await engine?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const post = (path: string, body: string, headers: Record<string, string> = {}): Request =>
  new Request(`${BASE}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });

describe('ingress.handle', () => {
  it('calls a handler and answers its result', async () => {
    const res = await ingress.handle(post('/Greeter/greet', '"Ada"'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    // Keep-alive is the server's decision, visible as on a socket: no Connection: close.
    expect(res.headers.get('connection')).not.toBe('close');
    expect(await res.json()).toBe('Hello, Ada!');
  });

  it('answers the same as a TCP client gets', async () => {
    const viaSocket = await fetch(`${ingress.url}/Counter/c1/add`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '2',
    });
    const viaHandle = await ingress.handle(post('/Counter/c1/add', '3'));
    expect([viaSocket.status, viaHandle.status]).toEqual([200, 200]);
    expect([await viaSocket.json(), await viaHandle.json()]).toEqual([2, 5]);
  });

  it('sends, with the invocation id in a header', async () => {
    const res = await ingress.handle(post('/Greeter/greet/send', '"Bo"'));
    expect(res.status).toBe(202);
    const body = (await res.json()) as { invocationId: string };
    expect(res.headers.get('x-keel-invocation-id')).toBe(body.invocationId);
  });

  it('answers 404 for an unknown service, naming the services to a loopback caller', async () => {
    const res = await ingress.handle(post('/Nobody/greet', '"x"'));
    expect(res.status).toBe(404);
    const body = (await res.json()) as { code: string; message: string };
    expect(body.code).toBe('not_found');
    expect(body.message).toContain('Greeter');
  });

  it('answers 413 for a body over the limit, and closes the connection', async () => {
    const res = await ingress.handle(post('/Greeter/greet', JSON.stringify('x'.repeat(2048))));
    expect(res.status).toBe(413);
    expect(res.headers.get('connection')).toBe('close');
    expect(((await res.json()) as { code: string }).code).toBe('body_too_large');
  });

  it('answers 400 for a body that is not JSON', async () => {
    const res = await ingress.handle(post('/Greeter/greet', '{oops'));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBe('invalid_json');
  });

  it('answers 405 with Allow for a wrong method', async () => {
    const res = await ingress.handle(new Request(`${BASE}/health`, { method: 'POST' }));
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET');
  });
});

describe('admin.handle', () => {
  it('lists invocations', async () => {
    await ingress.handle(post('/Greeter/greet', '"Cy"'));
    const res = await admin.handle(
      new Request(`${BASE}/invocations?service=Greeter&status=completed`),
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as { invocations: Array<{ service: string; status: string }> };
    expect(body.invocations.length).toBeGreaterThan(0);
    for (const inv of body.invocations)
      expect(inv).toMatchObject({ service: 'Greeter', status: 'completed' });
  });

  it('answers 400 for an unknown query parameter and 404 for an unknown path', async () => {
    const bad = await admin.handle(new Request(`${BASE}/invocations?colour=red`));
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { code: string }).code).toBe('invalid_query');
    const missing = await admin.handle(new Request(`${BASE}/nothing`));
    expect(missing.status).toBe(404);
  });

  it('asks for the token when one is set', async () => {
    const secured = await serveAdmin(engine, { port: 0, token: 'x'.repeat(32) });
    try {
      const res = await secured.handle(new Request(`${BASE}/invocations`));
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      const ok = await secured.handle(
        new Request(`${BASE}/health`, { headers: { authorization: `Bearer ${'x'.repeat(32)}` } }),
      );
      expect(await ok.json()).toEqual({ status: 'ok' });
    } finally {
      await secured.close();
    }
  });
});

describe('handle after close', () => {
  it('rejects, as a connection to a closed port would', async () => {
    const closing = await serve(engine, { port: 0 });
    await closing.close();
    await expect(closing.handle(new Request(`${BASE}/health`))).rejects.toBeInstanceOf(UsageError);
  });
});
