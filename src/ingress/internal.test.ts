import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { object, service, shared, workflow } from '../core/definitions.js';
import { UsageError } from '../core/errors.js';
import { serveAdmin, type AdminServer } from '../admin/index.js';
import { Engine } from '../engine/engine.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { serve, type IngressServer } from './index.js';

// `internal: true` definitions: not routable from the ingress (answered as names the engine does
// not serve), callable from handlers and from code holding the engine, visible in the admin API.
// A real engine on a real SQLite file, driven over real sockets.

const Secret = service({
  name: 'Secret',
  internal: true,
  handlers: { hello: async (_ctx, name: string) => `secret hello ${name}` },
});

const Vault = object({
  name: 'Vault',
  internal: true,
  handlers: {
    put: async (ctx, v: string) => {
      ctx.set('v', v);
      return `${ctx.key} holds ${v}`;
    },
    get: shared(async (ctx) => (await ctx.get<string>('v')) ?? null),
  },
});

const Job = workflow({
  name: 'Job',
  internal: true,
  run: async (ctx, n: number) => {
    ctx.set('stage', 'done');
    return n * 2;
  },
  handlers: { stage: async (ctx) => (await ctx.get<string>('stage')) ?? 'none' },
});

const Front = service({
  name: 'Front',
  handlers: {
    viaService: async (ctx, name: string) => ctx.serviceClient(Secret).hello(name),
    viaObject: async (ctx, v: string) => {
      const put = await ctx.objectClient(Vault, 'k1').put(v);
      return { put, got: await ctx.objectClient(Vault, 'k1').get() };
    },
    viaWorkflow: async (ctx, n: number) => ctx.workflowClient(Job, `j-${n}`).run(n),
    viaSend: async (ctx, name: string) => ctx.serviceSendClient(Secret).hello(name).invocationId,
  },
});

let dir: string;
let engine: Engine;
let ingress: IngressServer;
let admin: AdminServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keel-internal-'));
  engine = new Engine({
    services: [Front, Secret, Vault, Job],
    store: openSqliteStore({ path: join(dir, 'keel.db'), durability: 'os' }),
    logger: () => undefined,
  });
  await engine.start();
  ingress = await serve(engine, { port: 0 });
  admin = await serveAdmin(engine, { port: 0 });
});

afterAll(async () => {
  await ingress?.close();
  await admin?.close();
  await engine?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const init: RequestInit = { method };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'content-type': 'application/json' };
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

describe('internal definitions on the ingress', () => {
  // Each internal path, answered as the same path with a name the engine does not serve.
  const paths: Array<[method: string, path: string]> = [
    ['POST', '/Secret/hello'],
    ['POST', '/Secret/hello/send'],
    ['POST', '/Secret/k/hello'],
    ['POST', '/Secret'],
    ['GET', '/Secret/hello'],
    ['POST', '/Vault/k1/put'],
    ['POST', '/Vault/k1/put/send'],
    ['POST', '/Vault/k1/get'],
    ['POST', '/Vault/put'],
    ['PUT', '/Vault/k1/put'],
    ['POST', '/Job/j-1/run'],
    ['POST', '/Job/j-1/run/send'],
    ['POST', '/Job/j-1/stage'],
    ['POST', '/Job/run/send'],
  ];

  it.each(paths)('%s %s answers as an unknown name does: 404', async (method, path) => {
    const name = path.split('/')[1]!;
    const unknownPath = path.replace(name, 'Nope');
    const input = method === 'POST' || method === 'PUT' ? 'x' : undefined;
    const internal = await call(ingress.url, method, path, input);
    const unknown = await call(ingress.url, method, unknownPath, input);
    expect(unknown.status).toBe(404);
    expect(internal.status).toBe(404);
    expect(internal.body).toEqual(
      JSON.parse(JSON.stringify(unknown.body).replaceAll('Nope', name)),
    );
  });

  it('leaves internal definitions out of the targets it shows a loopback client', async () => {
    const r = await call(ingress.url, 'POST', '/Vault/k1/put', 'x');
    expect(r.body.message).toContain('this engine serves: Front');
    for (const name of ['Secret', 'Vault', 'Job'])
      expect(r.body.message).not.toMatch(new RegExp(`serves: .*${name}`));
  });

  it('answers the plain 404 of an unknown path to clients that may not see targets', async () => {
    const hidden = await serve(engine, { port: 0, revealTargets: 'never' });
    try {
      for (const path of ['/Secret/hello', '/Job/j-1/run/send']) {
        const internal = await call(hidden.url, 'POST', path, 'x');
        const unknown = await call(hidden.url, 'POST', path.replace(/Secret|Job/, 'Nope'), 'x');
        expect(internal.status).toBe(404);
        expect(internal.body.code).toBe(unknown.body.code);
        expect(internal.body.message).not.toContain('serves');
      }
    } finally {
      await hidden.close();
    }
  });

  it('started nothing for those requests', async () => {
    for (const service of ['Secret', 'Vault', 'Job']) {
      const { invocations } = await engine.listInvocations({ service });
      expect(invocations, service).toEqual([]);
    }
  });
});

describe('internal definitions inside the engine', () => {
  it('are callable from handlers: service, object and workflow clients, and sends', async () => {
    expect(await call(ingress.url, 'POST', '/Front/viaService', 'Ada')).toEqual({
      status: 200,
      body: 'secret hello Ada',
    });
    expect((await call(ingress.url, 'POST', '/Front/viaObject', 'gold')).body).toEqual({
      put: 'k1 holds gold',
      got: 'gold',
    });
    expect((await call(ingress.url, 'POST', '/Front/viaWorkflow', 21)).body).toBe(42);
    const sent = (await call(ingress.url, 'POST', '/Front/viaSend', 'Bo')).body as string;
    expect(await engine.attach(sent)).toBe('secret hello Bo');
  });

  it('are callable from code holding the engine: invoke, send and clients', async () => {
    expect(await engine.invoke({ service: 'Secret', handler: 'hello', input: 'Cy' })).toBe(
      'secret hello Cy',
    );
    const sent = await engine.send({ service: 'Job', handler: 'run', key: 'j-7', input: 7 });
    expect(await engine.attach(sent.invocationId)).toBe(14);
    expect(await engine.client(Vault, 'k2').put('tin')).toBe('k2 holds tin');
  });

  it('are not readable by id on the ingress: GET, attach and output answer 404 as for an unknown id', async () => {
    const sent = await engine.send({ service: 'Secret', handler: 'hello', input: 'Di' });
    expect(await engine.attach(sent.invocationId)).toBe('secret hello Di');
    for (const path of ['', '/attach', '/output']) {
      const hidden = await call(ingress.url, 'GET', `/invocations/${sent.invocationId}${path}`);
      expect(hidden.status, path).toBe(404);
      expect(hidden.body.message).toBe(
        `no invocation "${sent.invocationId}": it never existed or its retention ended`,
      );
    }
    // A user invocation stays readable.
    const front = await engine.send({ service: 'Front', handler: 'viaService', input: 'Ed' });
    await engine.attach(front.invocationId);
    expect((await call(ingress.url, 'GET', `/invocations/${front.invocationId}/output`)).body).toBe(
      'secret hello Ed',
    );
  });

  it('are listed and inspected in the admin API', async () => {
    const list = await call(admin.url, 'GET', '/invocations?service=Secret');
    expect(list.status).toBe(200);
    const ids = (list.body.invocations as Array<{ id: string }>).map((i) => i.id);
    expect(ids.length).toBeGreaterThan(0);
    const one = await call(admin.url, 'GET', `/invocations/${ids[0]}`);
    expect(one.status).toBe(200);
    expect(one.body.service).toBe('Secret');
    expect((await call(admin.url, 'GET', `/invocations/${ids[0]}/journal`)).status).toBe(200);
  });
});

describe('the internal option', () => {
  it('is kept on the definition only when true', () => {
    expect(Secret.options.internal).toBe(true);
    expect(Front.options).not.toHaveProperty('internal');
    expect(service({ name: 'P', internal: false, handlers: {} }).options).toEqual({});
  });

  it('refuses a value that is not a boolean', () => {
    expect(() =>
      service({ name: 'P', internal: 'yes' as unknown as boolean, handlers: {} }),
    ).toThrow(UsageError);
  });
});
