import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appOptionsFromEnv, startApp } from '../app.js';
import { object, service, type Definition } from '../core/definitions.js';
import { TerminalError } from '../core/errors.js';
import { Engine } from '../engine/engine.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { checkAdminOptions, serveAdmin, type AdminServer } from './index.js';

// End-to-end: a real engine on a real SQLite file, the admin API on a real socket, fetch.

/** Gates that hold a handler inside a step until a test opens them. */
const gates = new Map<string, () => void>();
const gated = new Map<string, Promise<void>>();
function gate(name: string): void {
  gated.set(name, new Promise<void>((resolve) => gates.set(name, resolve)));
}

const Pager = service({ name: 'Pager', handlers: { echo: async (_ctx, n: number) => n } });
/** Invoked only by the paging tests, so they know every one of its invocations. */
const Paged = service({ name: 'Paged', handlers: { echo: async (_ctx, n: number) => n } });

const Jobs = service({
  name: 'Jobs',
  handlers: {
    hold: async (ctx, name: string) => {
      await ctx.run('wait', () => gated.get(name)!);
      return `done ${name}`;
    },
    nap: async (ctx) => {
      await ctx.sleep('1h');
      return 'woke';
    },
    steps: async (ctx) => {
      const a = await ctx.run('first', () => 1);
      const b = await ctx.run('second', () => 2);
      return a + b;
    },
    fail: async () => {
      throw new TerminalError('nope', { code: 'nope', status: 422 });
    },
  },
});

const Box = object({
  name: 'Box',
  handlers: {
    put: async (ctx, v: string) => {
      ctx.set('v', v);
      return v;
    },
  },
});

/** Changes between engine starts to make a journal stop matching the code (a pause). */
let evolvingVersion = 1;
const Evolving = service({
  name: 'Evolving',
  handlers: {
    go: async (ctx) => {
      await ctx.run(evolvingVersion === 1 ? 'old' : 'new', () => 1);
      await ctx.run('wait', () => gated.get('evolve')!);
      return 'evolved';
    },
  },
});

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'keel-admin-'));
  dirs.push(dir);
  return dir;
}

const logs: string[] = [];
function newEngine(path: string, services: Definition[]): Engine {
  return new Engine({
    services,
    stopGrace: 0, // tests end with bodies held; a stop here need not wait for them
    store: openSqliteStore({ path, durability: 'os' }),
    logger: (level, message) => logs.push(`${level} ${message}`),
  });
}

const TOKEN = 'test-token-0123456789abcdef0123456789';
let engine: Engine;
let admin: AdminServer;
let secured: AdminServer;

beforeAll(async () => {
  engine = newEngine(join(tempDir(), 'keel.db'), [Pager, Paged, Jobs, Box]);
  await engine.start();
  admin = await serveAdmin(engine, { port: 0 });
  secured = await serveAdmin(engine, { port: 0, token: TOKEN });
});

afterAll(async () => {
  for (const open of gates.values()) open();
  await admin?.close();
  await secured?.close();
  await engine?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

async function call(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  server: AdminServer = admin,
): Promise<Answer> {
  const res = await fetch(server.url + path, { method, headers });
  const text = await res.text();
  return {
    status: res.status,
    body: text === '' ? undefined : JSON.parse(text),
    headers: res.headers,
  };
}
const get = (path: string, server?: AdminServer): Promise<Answer> => call('GET', path, {}, server);
const post = (path: string, server?: AdminServer): Promise<Answer> =>
  call('POST', path, {}, server);

/** Polls until `check` passes (it throws until then), at most 10 s. */
async function eventually<T>(check: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

async function statusOf(id: string, server?: AdminServer): Promise<string> {
  return (await get(`/invocations/${id}`, server)).body.status as string;
}

/** A well-formed id that names no invocation. */
const UNKNOWN_ID = 'inv_0000000000aaaaaaaaaaaaaaaa';

async function finished(n: number, name = 'Pager'): Promise<string> {
  const { invocationId } = await engine.send({ service: name, handler: 'echo', input: n });
  await engine.attach(invocationId);
  return invocationId;
}

describe('routes', () => {
  it('GET /health answers ok', async () => {
    const r = await get('/health');
    expect(r).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('GET /invocations/{id} answers the invocation', async () => {
    const id = await finished(1);
    expect(await get(`/invocations/${id}`)).toMatchObject({
      status: 200,
      body: { id, target: 'Pager/echo', service: 'Pager', handler: 'echo', status: 'completed' },
    });
  });

  it('GET /invocations/{id}/journal answers its entries', async () => {
    const { invocationId: id } = await engine.send({ service: 'Jobs', handler: 'steps' });
    expect(await engine.attach(id)).toBe(3);
    const r = await get(`/invocations/${id}/journal`);
    expect(r.status).toBe(200);
    expect(r.body.entries).toMatchObject([
      { index: 0, kind: 'run', name: 'first', done: true, value: 1 },
      { index: 1, kind: 'run', name: 'second', done: true, value: 2 },
    ]);
  });

  it.each([
    ['GET', `/invocations/${UNKNOWN_ID}`],
    ['GET', `/invocations/${UNKNOWN_ID}/journal`],
    ['GET', '/invocations/not-an-id'],
    ['GET', '/invocations/not-an-id/journal'],
    ['POST', `/invocations/${UNKNOWN_ID}/cancel`],
    ['POST', `/invocations/${UNKNOWN_ID}/kill`],
    ['POST', `/invocations/${UNKNOWN_ID}/purge`],
    ['POST', `/invocations/${UNKNOWN_ID}/resume`],
    ['POST', '/invocations/not-an-id/cancel'],
  ])('%s %s (unknown invocation) is a 404', async (method, path) => {
    const r = await call(method, path);
    expect(r).toMatchObject({ status: 404, body: { code: 'not_found' } });
    expect(typeof r.body.message).toBe('string');
  });

  it.each([
    ['GET', '/nope'],
    ['GET', '/health/more'],
    ['GET', '/invocations//journal'],
    ['GET', `/invocations/${UNKNOWN_ID}/frob`],
    ['POST', `/invocations/${UNKNOWN_ID}/cancel/now`],
  ])('%s %s is a 404 naming the routes', async (method, path) => {
    const r = await call(method, path);
    expect(r).toMatchObject({ status: 404, body: { code: 'not_found' } });
    expect(r.body.message).toContain('GET /invocations/{id}/journal');
  });

  it.each([
    ['POST', '/health', 'GET'],
    ['DELETE', '/invocations', 'GET'],
    ['POST', `/invocations/${UNKNOWN_ID}`, 'GET'],
    ['PUT', `/invocations/${UNKNOWN_ID}/journal`, 'GET'],
    ['GET', `/invocations/${UNKNOWN_ID}/cancel`, 'POST'],
    ['GET', `/invocations/${UNKNOWN_ID}/purge`, 'POST'],
  ])('%s %s is a 405 with Allow: %s', async (method, path, allow) => {
    const r = await call(method, path);
    expect(r).toMatchObject({ status: 405, body: { code: 'method_not_allowed' } });
    expect(r.headers.get('allow')).toBe(allow);
  });
});

describe('GET /invocations', () => {
  let pagerIds: string[];

  beforeAll(async () => {
    pagerIds = [];
    // One at a time, so their order is known: the list is newest first.
    for (let i = 0; i < 7; i++) pagerIds.push(await finished(i, 'Paged'));
  });

  it('pages with limit 3 through every invocation, newest first, without repeats or gaps', async () => {
    const seen: string[] = [];
    const sizes: number[] = [];
    let cursor: string | undefined;
    do {
      const r = await get(
        `/invocations?service=Paged&limit=3${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      expect(r.status).toBe(200);
      sizes.push(r.body.invocations.length);
      seen.push(...r.body.invocations.map((i: { id: string }) => i.id));
      cursor = r.body.nextCursor;
      expect(sizes.length).toBeLessThan(10);
    } while (cursor !== undefined);
    expect(sizes).toEqual([3, 3, 1]);
    expect(new Set(seen).size).toBe(7);
    expect(seen).toEqual([...pagerIds].reverse());
  });

  it('a page that ends the list has no nextCursor', async () => {
    const r = await get('/invocations?service=Paged&limit=7');
    expect(r.status).toBe(200);
    expect(r.body.nextCursor).toBeUndefined();
    expect(r.body.invocations.map((i: { id: string }) => i.id)).toEqual([...pagerIds].reverse());
  });

  it('filters by status', async () => {
    const { invocationId: failed } = await engine.send({ service: 'Jobs', handler: 'fail' });
    await expect(engine.attach(failed)).rejects.toThrow('nope');
    const r = await get('/invocations?status=failed');
    expect(r.status).toBe(200);
    expect(r.body.invocations.map((i: { id: string }) => i.id)).toContain(failed);
    expect(r.body.invocations.every((i: { status: string }) => i.status === 'failed')).toBe(true);
    const done = await get('/invocations?status=completed&service=Paged');
    expect(done.body.invocations.map((i: { id: string }) => i.id)).toEqual([...pagerIds].reverse());
    expect(done.body.invocations.map((i: { id: string }) => i.id)).not.toContain(failed);
  });

  it('filters by service and key', async () => {
    await engine.invoke({ service: 'Box', handler: 'put', key: 'a', input: 'x' });
    await engine.invoke({ service: 'Box', handler: 'put', key: 'b', input: 'y' });
    await engine.invoke({ service: 'Box', handler: 'put', key: 'a', input: 'z' });
    const r = await get('/invocations?service=Box&key=a');
    expect(r.status).toBe(200);
    expect(r.body.invocations).toHaveLength(2);
    expect(r.body.invocations.every((i: { key: string }) => i.key === 'a')).toBe(true);
    const all = await get('/invocations?service=Box');
    expect(all.body.invocations).toHaveLength(3);
    expect((await get('/invocations?service=Nobody')).body).toEqual({ invocations: [] });
  });

  it('an unknown status is a 400 listing the statuses', async () => {
    const r = await get('/invocations?status=done');
    expect(r).toMatchObject({ status: 400, body: { code: 'invalid_query' } });
    for (const s of ['pending', 'running', 'suspended', 'backing-off', 'paused', 'completed'])
      expect(r.body.message).toContain(s);
  });

  it.each(['0', '1001', '-1', '1.5', 'ten', '1e3', ''])('limit=%s is a 400', async (limit) => {
    const r = await get(`/invocations?limit=${limit}`);
    expect(r).toMatchObject({ status: 400, body: { code: 'invalid_query' } });
  });

  it('limit=1 and limit=1000 are accepted', async () => {
    const one = await get('/invocations?limit=1');
    expect(one.status).toBe(200);
    expect(one.body.invocations).toHaveLength(1);
    expect(one.body.nextCursor).toEqual(expect.any(String));
    expect((await get('/invocations?limit=1000')).status).toBe(200);
  });

  it('an unknown or repeated parameter is a 400, not silently ignored', async () => {
    const unknown = await get('/invocations?state=failed');
    expect(unknown).toMatchObject({ status: 400, body: { code: 'invalid_query' } });
    expect(unknown.body.message).toContain('state');
    const twice = await get('/invocations?status=failed&status=completed');
    expect(twice).toMatchObject({ status: 400, body: { code: 'invalid_query' } });
  });

  it('a cursor that no page gave is a 400', async () => {
    expect((await get('/invocations?cursor=nope')).status).toBe(400);
  });
});

describe('control', () => {
  it('cancel of a finished invocation is a 409 already_finished', async () => {
    const id = await finished(1);
    expect(await post(`/invocations/${id}/cancel`)).toMatchObject({
      status: 409,
      body: { code: 'already_finished' },
    });
  });

  it('cancel of a waiting invocation is a 202; it then fails with code cancelled', async () => {
    const { invocationId: id } = await engine.send({ service: 'Jobs', handler: 'nap' });
    await eventually(async () => {
      const journal = (await get(`/invocations/${id}/journal`)).body.entries;
      expect(journal).toEqual([expect.objectContaining({ kind: 'sleep' })]);
    });
    const r = await post(`/invocations/${id}/cancel`);
    expect(r).toMatchObject({ status: 202, body: { invocation: { id } } });
    await eventually(async () => expect(await statusOf(id)).toBe('failed'));
    expect((await get(`/invocations/${id}`)).body.error).toMatchObject({ code: 'cancelled' });
    expect(await post(`/invocations/${id}/cancel`)).toMatchObject({ status: 409 });
  });

  it('kill of a running invocation answers it failed with code killed', async () => {
    gate('kill');
    const { invocationId: id } = await engine.send({
      service: 'Jobs',
      handler: 'hold',
      input: 'kill',
    });
    await eventually(async () => expect(await statusOf(id)).toBe('running'));
    const r = await post(`/invocations/${id}/kill`);
    expect(r).toMatchObject({
      status: 200,
      body: { invocation: { id, status: 'failed', error: { code: 'killed' } } },
    });
    expect((await get(`/invocations/${id}`)).body).toMatchObject({
      status: 'failed',
      error: { code: 'killed' },
    });
    expect(await post(`/invocations/${id}/kill`)).toMatchObject({
      status: 409,
      body: { code: 'already_finished' },
    });
  });

  it('purge of a running invocation is a 409; of a finished one a 200, and then it is gone', async () => {
    gate('purge');
    const { invocationId: id } = await engine.send({
      service: 'Jobs',
      handler: 'hold',
      input: 'purge',
    });
    await eventually(async () => expect(await statusOf(id)).toBe('running'));
    const early = await post(`/invocations/${id}/purge`);
    expect(early.status).toBe(409);
    expect(early.body.code).toEqual(expect.any(String));
    gates.get('purge')!();
    expect(await engine.attach(id)).toBe('done purge');
    expect(await post(`/invocations/${id}/purge`)).toMatchObject({
      status: 200,
      body: { purged: id },
    });
    expect((await get(`/invocations/${id}`)).status).toBe(404);
    expect((await get(`/invocations/${id}/journal`)).status).toBe(404);
    expect((await post(`/invocations/${id}/purge`)).status).toBe(404);
  });

  it('resume of an invocation that is not paused is a 409', async () => {
    const id = await finished(2);
    const r = await post(`/invocations/${id}/resume`);
    expect(r.status).toBe(409);
    expect(r.body.code).toEqual(expect.any(String));
  });

  it('resume of a paused invocation is a 202 and it runs to completion', async () => {
    const path = join(tempDir(), 'keel.db');
    gate('evolve');
    evolvingVersion = 1;
    let first: Engine | undefined = newEngine(path, [Evolving]);
    let second: Engine | undefined;
    let server: AdminServer | undefined;
    try {
      await first.start();
      const { invocationId: id } = await first.send({ service: 'Evolving', handler: 'go' });
      await eventually(async () => {
        const entries = await first!.getJournal(id);
        expect(entries[0]).toMatchObject({ name: 'old', done: true });
      });
      await first.stop();
      first = undefined;
      // The code changed while the invocation was in flight: its replay pauses it.
      evolvingVersion = 2;
      second = newEngine(path, [Evolving]);
      await second.start();
      server = await serveAdmin(second, { port: 0 });
      await eventually(async () => expect(await statusOf(id, server)).toBe('paused'));
      const paused = await get('/invocations?status=paused', server);
      expect(paused.body.invocations.map((i: { id: string }) => i.id)).toEqual([id]);
      // Fixed: resume replays it on the old step order.
      evolvingVersion = 1;
      gates.get('evolve')!();
      const r = await post(`/invocations/${id}/resume`, server);
      expect(r).toMatchObject({ status: 202, body: { invocation: { id } } });
      expect(await second.attach(id)).toBe('evolved');
      expect(await post(`/invocations/${id}/resume`, server)).toMatchObject({ status: 409 });
    } finally {
      await server?.close();
      await first?.stop();
      await second?.stop();
    }
  });
});

describe('auth', () => {
  const withToken = (token: string, path = '/health'): Promise<Answer> =>
    call('GET', path, { authorization: `Bearer ${token}` }, secured);

  it('with a token, a request without it is a 401 unauthorized', async () => {
    const r = await get('/health', secured);
    expect(r).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
    expect(r.headers.get('www-authenticate')).toBe('Bearer');
    expect(r.body.message).toContain('KEEL_ADMIN_TOKEN');
  });

  it.each([
    ['a wrong token', `Bearer ${TOKEN.slice(0, -1)}x`],
    ['a longer token', `Bearer ${TOKEN}${TOKEN}`],
    ['a short token', 'Bearer x'],
    ['an empty token', 'Bearer '],
    ['another scheme', `Basic ${TOKEN}`],
    ['the bare token', TOKEN],
  ])('%s is a 401', async (_what, authorization) => {
    const r = await call('GET', '/health', { authorization }, secured);
    expect(r).toMatchObject({ status: 401, body: { code: 'unauthorized' } });
  });

  it('the right token is a 200, on every route', async () => {
    expect(await withToken(TOKEN)).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect((await withToken(TOKEN, '/invocations?limit=1')).status).toBe(200);
    expect(
      await call('GET', '/health', { authorization: `bearer  ${TOKEN}` }, secured),
    ).toMatchObject({ status: 200 });
  });

  it('without the token, not even unknown paths or wrong methods are revealed', async () => {
    expect((await get('/nope', secured)).status).toBe(401);
    expect((await post('/health', secured)).status).toBe(401);
    expect((await withToken(TOKEN, '/nope')).status).toBe(404);
  });

  it('never writes the token to an answer or the log', async () => {
    const wrong = await withToken(`${TOKEN}-wrong`);
    expect(JSON.stringify(wrong.body)).not.toContain(TOKEN);
    expect(logs.join('\n')).not.toContain(TOKEN);
  });

  it.each(['0.0.0.0', '::', '10.1.2.3', '::ffff:10.0.0.1'])(
    'refuses to serve on %s without a token, before binding',
    async (host) => {
      expect(() => checkAdminOptions({ host })).toThrow(/KEEL_ADMIN_TOKEN/);
      await expect(serveAdmin(engine, { host, port: 0 })).rejects.toMatchObject({
        code: 'admin_token_required',
        message: expect.stringContaining('KEEL_ADMIN_TOKEN'),
      });
      expect(() => checkAdminOptions({ host, token: TOKEN })).not.toThrow();
    },
  );

  it.each(['127.0.0.1', '127.0.0.2', '::1'])('serves on loopback %s without a token', (host) => {
    expect(() => checkAdminOptions({ host })).not.toThrow();
  });

  it('a hostname is judged by the address it bound: localhost is loopback', async () => {
    const local = await serveAdmin(engine, { host: 'localhost', port: 0 });
    try {
      expect((await fetch(`${local.url}/health`)).status).toBe(200);
    } finally {
      await local.close();
    }
  });

  it.each([
    ['0.0.0.0', 'Z'],
    ['0.0.0.0', 'a'.repeat(31)],
    ['127.0.0.1', 'short-secret'],
  ])(
    'on %s, refuses a token shorter than 32 characters, without echoing it',
    async (host, token) => {
      let error: unknown;
      try {
        await serveAdmin(engine, { host, port: 0, token });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toContain('32 characters');
      expect((error as Error).message).toContain('openssl rand -hex 32');
      expect((error as Error).message).not.toContain(token);
      expect(() => checkAdminOptions({ host, token: 'b'.repeat(32) })).not.toThrow();
    },
  );

  it('refuses a token that cannot travel in a header, without echoing it', async () => {
    for (const token of ['', 'with space', 'trailing-newline\n']) {
      let error: unknown;
      try {
        await serveAdmin(engine, { port: 0, token });
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(TypeError);
      if (token.length > 0) expect((error as Error).message).not.toContain(token.trim());
    }
  });
});

describe('startApp', () => {
  it('serves the admin API beside the ingress and closes it with the app', async () => {
    const app = await startApp({
      services: [Pager],
      db: join(tempDir(), 'keel.db'),
      durability: 'os',
      port: 0,
      adminPort: 0,
      adminToken: TOKEN,
      logger: () => undefined,
    });
    const url = app.admin.url;
    try {
      expect(app.admin.port).not.toBe(app.ingress.port);
      expect((await fetch(`${url}/health`)).status).toBe(401);
      const ok = await fetch(`${url}/health`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(ok.status).toBe(200);
    } finally {
      await app.close();
    }
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });

  it('refuses an exposed admin API without a token before opening the database', async () => {
    const db = join(tempDir(), 'keel.db');
    await expect(
      startApp({ services: [Pager], db, port: 0, adminPort: 0, adminHost: '0.0.0.0' }),
    ).rejects.toThrow(/KEEL_ADMIN_TOKEN/);
    expect(existsSync(db)).toBe(false);
  });

  it('reads KEEL_ADMIN_PORT, KEEL_ADMIN_HOST and KEEL_ADMIN_TOKEN', () => {
    expect(
      appOptionsFromEnv({
        KEEL_ADMIN_PORT: '9171',
        KEEL_ADMIN_HOST: '0.0.0.0',
        KEEL_ADMIN_TOKEN: TOKEN,
      }),
    ).toEqual({ adminPort: 9171, adminHost: '0.0.0.0', adminToken: TOKEN });
    expect(() => appOptionsFromEnv({ KEEL_ADMIN_PORT: 'x' })).toThrow(/KEEL_ADMIN_PORT/);
    expect(() => appOptionsFromEnv({ KEEL_ADMIN_PORT: '70000' })).toThrow(RangeError);
  });
});
