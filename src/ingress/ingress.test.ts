import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { handler, object, service, shared, workflow } from '../core/definitions.js';
import { ConflictError, TerminalError } from '../core/errors.js';
import { Engine } from '../engine/engine.js';
import { openSqliteStore } from '../store/sqlite/index.js';
import { serve, type IngressServer } from './index.js';
import { kernelOf } from '../engine/kernel.js';

// End-to-end: a real engine on a real SQLite file, driven over real sockets with fetch.

/** Gates that hold the `slow` handler inside a step until a test opens them. */
const gates = new Map<string, { promise: Promise<void>; open: () => void }>();
function gate(name: string): () => void {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  gates.set(name, { promise, open });
  return open;
}

const Greeter = service({
  name: 'Greeter',
  handlers: {
    greet: async (_ctx, name: string) => `Hello, ${name}!`,
    nothing: async () => undefined,
    // A handler literally named like the /send suffix.
    send: async () => 'the send handler',
    fail: async () => {
      throw new TerminalError('nope', { code: 'nope', status: 409 });
    },
    slow: async (ctx, name: string) => {
      await ctx.run('wait', () => gates.get(name)!.promise);
      return `done ${name}`;
    },
    typed: handler(
      { input: z.object({ name: z.string(), age: z.number().int() }) },
      async (_ctx, v) => `${v.name} is ${v.age}`,
    ),
  },
});

const Counter = object({
  name: 'Counter',
  handlers: {
    add: async (ctx, n: number) => {
      const total = ((await ctx.get<number>('total')) ?? 0) + n;
      ctx.set('total', total);
      return total;
    },
    get: shared(async (ctx) => (await ctx.get<number>('total')) ?? 0),
    whoami: shared(async (ctx) => ctx.key),
  },
});

/** An object with a handler named `send`, for the /send disambiguation. */
const Mailbox = object({
  name: 'Mailbox',
  handlers: { send: async (ctx, text: string) => `${ctx.key} got ${text}` },
});

const Signup = workflow({
  name: 'Signup',
  run: async (ctx, email: string) => {
    const user = await ctx.run('create', () => ({ email, id: 'u-1' }));
    ctx.set('stage', 'created');
    await ctx.sleep('10ms');
    await ctx.run('welcome', () => `mailed ${user.email}`);
    ctx.set('stage', 'welcomed');
    return { user: user.id, email };
  },
  handlers: { stage: async (ctx) => (await ctx.get<string>('stage')) ?? 'none' },
});

/** Awakeable ids the `Approval` handlers created, by their input. */
const awakeables = new Map<string, string>();

const Approval = service({
  name: 'Approval',
  handlers: {
    wait: async (ctx, name: string) => {
      const awakeable = ctx.awakeable<unknown>();
      awakeables.set(name, awakeable.id);
      const value = await awakeable.promise;
      // Still running after the awakeable completed, until the test opens the gate.
      await ctx.run('hold', () => gates.get(name)?.promise);
      return { value };
    },
  },
});

let dir: string;
let engine: Engine;
let ingress: IngressServer;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'keel-ingress-'));
  engine = new Engine({
    services: [Greeter, Counter, Mailbox, Signup, Approval],
    store: openSqliteStore({ path: join(dir, 'keel.db'), durability: 'os' }),
    logger: () => undefined,
  });
  await engine.start();
  ingress = await serve(engine, { port: 0 });
  base = ingress.url;
});

afterAll(async () => {
  for (const g of gates.values()) g.open();
  await ingress?.close();
  await engine?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  body: any;
  headers: Headers;
}

async function call(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body =
      typeof body === 'string' && headers['content-type'] !== undefined
        ? body
        : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, init);
  const text = await res.text();
  return {
    status: res.status,
    body: text === '' ? undefined : JSON.parse(text),
    headers: res.headers,
  };
}

const post = (path: string, body?: unknown, headers?: Record<string, string>): Promise<Answer> =>
  call('POST', path, body, headers);
const get = (path: string): Promise<Answer> => call('GET', path);

/** Sends raw bytes on a fresh socket; resolves with everything the server wrote until it closed. */
function raw(port: number, chunks: string[], waitFor?: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    let data = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(chunks[0]!));
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      data += d;
      // Send the rest (the body) only once the server asked for it.
      if (waitFor !== undefined && data.includes(waitFor)) {
        waitFor = undefined;
        for (const c of chunks.slice(1)) socket.write(c);
        socket.end();
      }
    });
    socket.on('end', () => resolve(data));
    socket.on('error', reject);
  });
}

async function countInvocations(service: string): Promise<number> {
  return (await engine.store.listInvocations({ service, limit: 100_000 })).length;
}

describe('calls', () => {
  it('GET /health answers ok', async () => {
    const r = await get('/health');
    expect(r).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  });

  it('POST /{Service}/{handler} answers the result', async () => {
    expect(await post('/Greeter/greet', 'Ada')).toMatchObject({ status: 200, body: 'Hello, Ada!' });
  });

  it('a handler that returns nothing answers 200 with body null; an empty body without content type is undefined input', async () => {
    const res = await fetch(`${base}/Greeter/nothing`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('null');
  });

  it('POST /{Object}/{key}/{handler} runs exclusive and shared handlers on the key', async () => {
    expect((await post('/Counter/c1/add', 2)).body).toBe(2);
    expect((await post('/Counter/c1/add', 3)).body).toBe(5);
    expect(await post('/Counter/c1/get')).toMatchObject({ status: 200, body: 5 });
    expect((await post('/Counter/c2/get')).body).toBe(0);
  });

  it('keys are URL-decoded path segments', async () => {
    expect((await post(`/Counter/${encodeURIComponent('a/b c?é')}/whoami`)).body).toBe('a/b c?é');
    expect((await post('/Counter/%E2%9C%93/whoami')).body).toBe('✓');
  });

  it('a malformed percent-encoding is a 400', async () => {
    expect(await post('/Counter/%E2%9C/whoami')).toMatchObject({
      status: 400,
      body: { code: 'invalid_path' },
    });
  });

  it('POST /{Workflow}/{key}/run runs the workflow once per key; its other handlers read its state', async () => {
    const first = await post('/Signup/w1/run', 'ada@example.com');
    expect(first).toMatchObject({ status: 200, body: { user: 'u-1', email: 'ada@example.com' } });
    expect((await post('/Signup/w1/stage')).body).toBe('welcomed');
    // A second run on the same key attaches to the first: same result, despite other input.
    expect((await post('/Signup/w1/run', 'other@example.com')).body).toEqual(first.body);
    expect((await post('/Signup/w-none/stage')).body).toBe('none');
  });

  it('handler names match case-insensitively', async () => {
    expect((await post('/Greeter/GREET', 'Bo')).body).toBe('Hello, Bo!');
  });

  it('a trailing slash is tolerated', async () => {
    expect((await post('/Greeter/greet/', 'Cy')).body).toBe('Hello, Cy!');
  });
});

describe('sends', () => {
  it('POST /{Service}/{handler}/send answers 202 with the invocation id, and attach returns the result', async () => {
    const r = await post('/Greeter/greet/send', 'Di');
    expect(r.status).toBe(202);
    expect(r.body).toMatchObject({ invocationId: expect.stringMatching(/^inv_/), existing: false });
    expect(['pending', 'running', 'completed']).toContain(r.body.status);
    expect(r.headers.get('x-keel-invocation-id')).toBe(r.body.invocationId);
    expect(await get(`/invocations/${r.body.invocationId}/attach`)).toMatchObject({
      status: 200,
      body: 'Hello, Di!',
    });
  });

  it('sends to objects and workflows carry the key', async () => {
    const add = await post('/Counter/s1/add/send', 7);
    expect(add.status).toBe(202);
    expect((await get(`/invocations/${add.body.invocationId}/attach`)).body).toBe(7);
    const info = await get(`/invocations/${add.body.invocationId}`);
    expect(info).toMatchObject({
      status: 200,
      body: { service: 'Counter', handler: 'add', key: 's1', status: 'completed' },
    });

    const run = await post('/Signup/w2/run/send', 'bo@example.com');
    expect(run.status).toBe(202);
    expect((await get(`/invocations/${run.body.invocationId}/attach`)).body).toEqual({
      user: 'u-1',
      email: 'bo@example.com',
    });
  });

  it('a handler named `send` is still reachable: /Svc/send calls it, /Svc/send/send sends to it', async () => {
    expect((await post('/Greeter/send')).body).toBe('the send handler');
    const sent = await post('/Greeter/send/send');
    expect(sent.status).toBe(202);
    expect((await get(`/invocations/${sent.body.invocationId}`)).body.handler).toBe('send');
    expect((await get(`/invocations/${sent.body.invocationId}/attach`)).body).toBe(
      'the send handler',
    );
  });

  it('on an object with a `send` handler, /O/k/send calls it and /O/k/send/send sends to it', async () => {
    expect((await post('/Mailbox/m1/send', 'hi')).body).toBe('m1 got hi');
    const sent = await post('/Mailbox/m1/send/send', 'yo');
    expect(sent.status).toBe(202);
    expect((await get(`/invocations/${sent.body.invocationId}/attach`)).body).toBe('m1 got yo');
  });

  it('on an object without a `send` handler, /O/{handler}/send is a send missing its key (400), not a call', async () => {
    const before = await countInvocations('Counter');
    const r = await post('/Counter/add/send', 1);
    expect(r.status).toBe(400);
    expect(r.body.message).toContain('key is required');
    expect(await post('/Counter/nothing/send', 1)).toMatchObject({
      status: 404,
      body: { code: 'not_found' },
    });
    expect(await countInvocations('Counter')).toBe(before);
  });

  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['PT1M', 60_000],
  ])('?delay=%s schedules the send %i ms ahead', async (delay, ms) => {
    const r = await post(`/Greeter/greet/send?delay=${delay}`, 'Later');
    expect(r).toMatchObject({ status: 202, body: { status: 'scheduled' } });
    const info = (await get(`/invocations/${r.body.invocationId}`)).body;
    // The 500ms one may already have started; the others are certainly still scheduled.
    if (info.status === 'scheduled')
      expect(Date.parse(info.nextAttemptAt) - Date.parse(info.createdAt)).toBe(ms);
    else expect(ms).toBe(500);
  });

  it('a bad delay is a 400 naming the accepted forms, and creates nothing', async () => {
    const before = await countInvocations('Greeter');
    const r = await post('/Greeter/greet/send?delay=soon', 'x');
    expect(r).toMatchObject({ status: 400, body: { code: 'invalid_delay' } });
    for (const form of ['500ms', '10s', '5m', '1h', 'PT1M']) expect(r.body.message).toContain(form);
    expect((await post('/Greeter/greet/send?delay=', 'x')).status).toBe(400);
    expect(await countInvocations('Greeter')).toBe(before);
  });

  it('a delay on a call (not a send) is a 400', async () => {
    expect(await post('/Greeter/greet?delay=10s', 'x')).toMatchObject({
      status: 400,
      body: { code: 'invalid_delay' },
    });
  });

  it('unrelated query parameters are ignored', async () => {
    expect((await post('/Greeter/greet?trace=1', 'Q')).body).toBe('Hello, Q!');
  });
});

describe('idempotency', () => {
  it('the same Idempotency-Key on a send answers the same invocation', async () => {
    const a = await post('/Greeter/greet/send', 'Idem', { 'idempotency-key': 'send-1' });
    const b = await post('/Greeter/greet/send', 'Idem', { 'idempotency-key': 'send-1' });
    expect(a.body.existing).toBe(false);
    expect(b.body).toMatchObject({ invocationId: a.body.invocationId, existing: true });
    const info = await get(`/invocations/${a.body.invocationId}`);
    expect(info.body.idempotencyKey).toBe('send-1');
  });

  it('the same Idempotency-Key on a call answers the same result without running again', async () => {
    const before = await countInvocations('Counter');
    const a = await post('/Counter/idem/add', 10, { 'idempotency-key': 'call-1' });
    const b = await post('/Counter/idem/add', 10, { 'idempotency-key': 'call-1' });
    expect([a.body, b.body]).toEqual([10, 10]);
    expect((await post('/Counter/idem/get')).body).toBe(10);
    expect(await countInvocations('Counter')).toBe(before + 2); // one add, one get
  });

  it('concurrent sends with one Idempotency-Key create one invocation', async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        post('/Greeter/greet/send', `racer ${i}`, { 'idempotency-key': 'race-1' }),
      ),
    );
    expect(new Set(answers.map((a) => a.body.invocationId)).size).toBe(1);
    expect(answers.filter((a) => a.body.existing === false)).toHaveLength(1);
  });

  it('a call with the key of a running invocation attaches to it', async () => {
    const open = gate('idem-running');
    const sent = await post('/Greeter/slow/send', 'idem-running', { 'idempotency-key': 'slow-1' });
    expect(sent.status).toBe(202);
    // Different input, same key: the answer is the first invocation's result.
    const attached = post('/Greeter/slow', 'ignored', { 'idempotency-key': 'slow-1' });
    const info = await get(`/invocations/${sent.body.invocationId}`);
    expect(info.body.status).not.toBe('completed');
    open();
    expect(await attached).toMatchObject({ status: 200, body: 'done idem-running' });
  });

  it('an empty Idempotency-Key is a 400', async () => {
    expect(await post('/Greeter/greet', 'x', { 'idempotency-key': ' ' })).toMatchObject({
      status: 400,
      body: { code: 'invalid_idempotency_key' },
    });
  });
});

describe('invocations', () => {
  it('attach waits for a running invocation; output answers not_ready, then the result', async () => {
    const open = gate('attach-1');
    const sent = await post('/Greeter/slow/send', 'attach-1');
    const id: string = sent.body.invocationId;
    const attached = get(`/invocations/${id}/attach`);
    const early = await get(`/invocations/${id}/output`);
    expect(early.status).toBe(202);
    expect(early.body).toMatchObject({
      code: 'not_ready',
      status: expect.any(String),
      message: expect.stringContaining(id),
    });
    expect(early.body.status).not.toBe('completed');
    expect((await get(`/invocations/${id}`)).body.status).not.toBe('completed');
    open();
    expect(await attached).toMatchObject({ status: 200, body: 'done attach-1' });
    expect(await get(`/invocations/${id}/output`)).toMatchObject({
      status: 200,
      body: 'done attach-1',
    });
    expect(await get(`/invocations/${id}`)).toMatchObject({
      status: 200,
      body: {
        id,
        target: expect.stringContaining('Greeter'),
        status: 'completed',
        completedAt: expect.any(String),
      },
    });
  });

  it.each(['', '/attach', '/output'])('GET /invocations/{unknown}%s is a 404', async (suffix) => {
    expect(await get(`/invocations/inv_doesnotexist${suffix}`)).toMatchObject({
      status: 404,
      body: { code: 'not_found' },
    });
  });

  it('a service named like a GET route is reached with POST; GET stays the invocation route', async () => {
    const Invocations = service({
      name: 'invocations',
      handlers: { list: async () => 'a user service' },
    });
    const other = new Engine({
      services: [Invocations],
      store: openSqliteStore({ path: join(dir, 'other.db'), durability: 'os' }),
      logger: () => undefined,
    });
    await other.start();
    const server = await serve(other, { port: 0 });
    try {
      const res = await fetch(`${server.url}/invocations/list`, { method: 'POST' });
      expect(await res.json()).toBe('a user service');
      expect((await fetch(`${server.url}/invocations/list`)).status).toBe(404);
    } finally {
      await server.close();
      await other.stop();
    }
  });
});

describe('errors', () => {
  it('a TerminalError answers with its status and code, on call, attach and output', async () => {
    expect(await post('/Greeter/fail')).toMatchObject({
      status: 409,
      body: { code: 'nope', message: 'nope' },
    });
    const sent = await post('/Greeter/fail/send');
    const id: string = sent.body.invocationId;
    expect(await get(`/invocations/${id}/attach`)).toMatchObject({
      status: 409,
      body: { code: 'nope', message: 'nope' },
    });
    expect(await get(`/invocations/${id}/output`)).toMatchObject({
      status: 409,
      body: { code: 'nope', message: 'nope' },
    });
    expect((await get(`/invocations/${id}`)).body).toMatchObject({
      status: 'failed',
      error: { code: 'nope', status: 409 },
    });
  });

  it('malformed JSON is a 400 invalid_json and creates nothing', async () => {
    const before = await countInvocations('Greeter');
    const r = await post('/Greeter/greet', '{"name":', { 'content-type': 'application/json' });
    expect(r).toMatchObject({ status: 400, body: { code: 'invalid_json' } });
    expect(await countInvocations('Greeter')).toBe(before);
  });

  it('input failing the handler schema is a 400 and creates nothing', async () => {
    const before = await countInvocations('Greeter');
    expect((await post('/Greeter/typed', { name: 'Ed', age: 40 })).body).toBe('Ed is 40');
    const r = await post('/Greeter/typed', { name: 'Ed', age: 'forty' });
    expect(r).toMatchObject({ status: 400, body: { code: 'validation_failed' } });
    expect(r.body.message).toContain('age');
    expect((await post('/Greeter/typed/send', { name: 1 })).status).toBe(400);
    expect(await countInvocations('Greeter')).toBe(before + 1);
  });

  it('a keyed target without a key is a 400', async () => {
    const r = await post('/Counter/add', 1);
    expect(r.status).toBe(400);
    expect(r.body.message).toContain('/Counter/{key}/add');
    expect((await post('/Counter//add', 1)).status).toBe(400);
    expect((await post('/Signup/run', 'x')).status).toBe(400);
  });

  it('an unknown service is a 404 naming what exists', async () => {
    const r = await post('/Nope/greet', 'x');
    expect(r).toMatchObject({ status: 404, body: { code: 'not_found' } });
    expect(r.body.message).toContain('Greeter');
    expect(r.body.message).toContain('Counter');
  });

  it('an unknown handler is a 404 naming the handlers', async () => {
    const r = await post('/Greeter/nope', 'x');
    expect(r).toMatchObject({ status: 404, body: { code: 'not_found' } });
    expect(r.body.message).toContain('greet');
    expect((await post('/Counter/k/nope', 1)).status).toBe(404);
  });

  it('a key on a service is a 404', async () => {
    expect((await post('/Greeter/k/greet', 'x')).status).toBe(404);
  });

  it.each([
    ['GET', '/'],
    ['GET', '/nothing-here/at/all/really/deep'],
    ['GET', '/invocations/x/foo'],
    ['POST', '/Greeter/greet/extra/more'],
    ['POST', '/Counter/k/add/sendx'],
  ])('%s %s is a 404', async (method, path) => {
    expect(await call(method, path)).toMatchObject({ status: 404, body: { code: 'not_found' } });
  });

  it.each([
    ['GET', '/Greeter/greet', 'POST'],
    ['PUT', '/Counter/k/add', 'POST'],
    ['POST', '/health', 'GET'],
    ['DELETE', '/invocations/inv_x', 'GET'],
    ['POST', '/invocations/inv_x/attach', 'GET'],
  ])('%s %s is a 405 with Allow: %s', async (method, path, allow) => {
    const r = await call(method, path);
    expect(r).toMatchObject({ status: 405, body: { code: 'method_not_allowed' } });
    expect(r.headers.get('allow')).toBe(allow);
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1'])(
    'Content-Type %s is a 415',
    async (type) => {
      const r = await post('/Greeter/greet', '"x"', { 'content-type': type });
      expect(r).toMatchObject({ status: 415, body: { code: 'unsupported_media_type' } });
    },
  );

  it('a body without a Content-Type is a 415', async () => {
    const res = await fetch(`${base}/Greeter/greet`, {
      method: 'POST',
      body: new Uint8Array(Buffer.from('"x"')),
    });
    expect(res.status).toBe(415);
    expect(((await res.json()) as { code: string }).code).toBe('unsupported_media_type');
  });

  it.each(['application/json; charset=UTF-8', 'application/vnd.keel+json', 'Application/JSON'])(
    'Content-Type %s is accepted',
    async (type) => {
      expect(await post('/Greeter/greet', '"Fi"', { 'content-type': type })).toMatchObject({
        status: 200,
        body: 'Hello, Fi!',
      });
    },
  );

  it('a body over the limit is a 413 and closes the connection; nothing is created', async () => {
    const small = await serve(engine, { port: 0, bodyLimit: 64 });
    try {
      const before = await countInvocations('Greeter');
      const big = JSON.stringify('x'.repeat(100));
      const declared = await fetch(`${small.url}/Greeter/greet`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: big,
      });
      expect(declared.status).toBe(413);
      expect(declared.headers.get('connection')).toBe('close');
      expect(((await declared.json()) as { code: string }).code).toBe('body_too_large');
      // Chunked (no Content-Length): refused while reading.
      const chunked = await fetch(`${small.url}/Greeter/greet`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: Readable.toWeb(
          Readable.from([Buffer.from('"'), Buffer.from('y'.repeat(100)), Buffer.from('"')]),
        ),
        duplex: 'half',
      });
      expect(chunked.status).toBe(413);
      // At the limit is fine.
      const fits = JSON.stringify('z'.repeat(62));
      expect(
        (
          await fetch(`${small.url}/Greeter/greet`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: fits,
          })
        ).status,
      ).toBe(200);
      expect(await countInvocations('Greeter')).toBe(before + 1);
    } finally {
      await small.close();
    }
  });

  it('a body over the default 1 MiB limit is a 413', async () => {
    const r = await post('/Greeter/greet', 'x'.repeat(2 * 1024 * 1024));
    expect(r).toMatchObject({ status: 413, body: { code: 'body_too_large' } });
  });

  it('an unexpected exception is a 500 internal that leaks nothing, and the server keeps serving', async () => {
    // The engine's own parts fail as a bug or a corrupt store would.
    const k = kernelOf(engine);
    const log = vi.spyOn(k, 'log').mockImplementation(() => undefined);
    vi.spyOn(engine, 'getInvocation').mockImplementation(() => {
      throw new Error('SQLITE_CORRUPT: secret detail');
    });
    vi.spyOn(k, 'invoke').mockImplementation(() =>
      Promise.reject(new TypeError('boom at /secret/path.ts:12')),
    );
    const server = await serve(engine, { port: 0 });
    try {
      for (const [method, path] of [
        ['GET', '/invocations/inv_x'],
        ['POST', '/Greeter/greet'],
      ] as const) {
        const res = await fetch(server.url + path, { method });
        const text = await res.text();
        expect(res.status).toBe(500);
        expect(JSON.parse(text)).toMatchObject({ code: 'internal' });
        expect(text).not.toContain('secret');
      }
      expect(log).toHaveBeenCalledTimes(2);
      expect(String(log.mock.calls[0]![1])).toContain('SQLITE_CORRUPT');
      expect((await fetch(`${server.url}/health`)).status).toBe(200);
    } finally {
      vi.restoreAllMocks();
      await server.close();
    }
  });

  it('malformed HTTP on a raw socket is answered 400 without crashing the server', async () => {
    const answer = await raw(ingress.port, ['GARBAGE \x00\x01 NOT-HTTP\r\n\r\n']);
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('"code":"bad_request"');
    const halfHeader = await raw(ingress.port, [
      'POST /Greeter/greet HTTP/1.1\r\nContent-Length: abc\r\n\r\n',
    ]);
    expect(halfHeader).toMatch(/^HTTP\/1\.1 400 /);
    expect((await get('/health')).status).toBe(200);
  });
});

describe('awakeables', () => {
  /** A well-formed awakeable id that names nothing. */
  const unknownAwakeable = 'awk_0000000000aaaaaaaaaaaaaaaa_1';

  async function waiting(name: string): Promise<{ invocationId: string; awakeableId: string }> {
    const sent = await post('/Approval/wait/send', name);
    expect(sent.status).toBe(202);
    const deadline = Date.now() + 10_000;
    while (!awakeables.has(name) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    return { invocationId: sent.body.invocationId, awakeableId: awakeables.get(name)! };
  }

  it('POST /awakeables/{id}/resolve completes it with the body; a second time is a 409', async () => {
    const open = gate('resolve-1');
    const { invocationId, awakeableId } = await waiting('resolve-1');
    expect(await post(`/awakeables/${awakeableId}/resolve`, { approved: true })).toMatchObject({
      status: 200,
      body: { resolved: awakeableId },
    });
    expect(await post(`/awakeables/${awakeableId}/resolve`, { approved: false })).toMatchObject({
      status: 409,
      body: { code: 'already_completed' },
    });
    expect(await post(`/awakeables/${awakeableId}/reject`, { message: 'late' })).toMatchObject({
      status: 409,
    });
    open();
    expect(await get(`/invocations/${invocationId}/attach`)).toMatchObject({
      status: 200,
      body: { value: { approved: true } },
    });
  });

  it('an empty resolve body resolves with null', async () => {
    const { invocationId, awakeableId } = await waiting('resolve-empty');
    const res = await fetch(`${base}/awakeables/${awakeableId}/resolve`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ resolved: awakeableId });
    expect((await get(`/invocations/${invocationId}/attach`)).body).toEqual({ value: null });
  });

  it('POST /awakeables/{id}/reject fails the waiting handler with the message', async () => {
    const { invocationId, awakeableId } = await waiting('reject-1');
    expect(await post(`/awakeables/${awakeableId}/reject`, { message: 'declined' })).toMatchObject({
      status: 200,
      body: { rejected: awakeableId },
    });
    const attached = await get(`/invocations/${invocationId}/attach`);
    expect(attached.body).toMatchObject({ code: 'rejected' });
    expect(attached.body.message).toContain('declined');
  });

  it.each([
    ['resolve', unknownAwakeable, 42],
    ['reject', unknownAwakeable, { message: 'no' }],
    ['resolve', 'not-an-awakeable', 42],
    ['reject', 'awk_short_1', { message: 'no' }],
    ['resolve', 'inv_0000000000aaaaaaaaaaaaaaaa', 42],
  ])('%s of an unknown id %s is a 404', async (action, id, body) => {
    expect(await post(`/awakeables/${id}/${action}`, body)).toMatchObject({
      status: 404,
      body: { code: 'not_found' },
    });
  });

  it.each([
    ['no body', undefined],
    ['no message', {}],
    ['a message that is not a string', { message: 5 }],
    ['a string', 'declined'],
    ['null', null],
    ['an array', ['declined']],
  ])('a reject body with %s is a 400 and completes nothing', async (what, body) => {
    const { awakeableId } = await waiting(`bad-reject-${what}`);
    const r = await post(`/awakeables/${awakeableId}/reject`, body);
    expect(r).toMatchObject({ status: 400, body: { code: 'validation_failed' } });
    expect(r.body.message).toContain('message');
    // Still waiting: it can be completed now.
    expect((await post(`/awakeables/${awakeableId}/resolve`, 1)).status).toBe(200);
  });

  it('malformed JSON is a 400 and a non-JSON content type a 415', async () => {
    const { awakeableId } = await waiting('bad-json');
    expect(
      await post(`/awakeables/${awakeableId}/resolve`, '{"a":', {
        'content-type': 'application/json',
      }),
    ).toMatchObject({ status: 400, body: { code: 'invalid_json' } });
    expect(
      await post(`/awakeables/${awakeableId}/resolve`, 'yes', { 'content-type': 'text/plain' }),
    ).toMatchObject({ status: 415 });
    expect((await post(`/awakeables/${awakeableId}/resolve`, 'yes')).status).toBe(200);
  });

  it('the ingress maps what the engine throws', async () => {
    const spy = vi
      .spyOn(engine, 'resolveAwakeable')
      .mockRejectedValueOnce(new ConflictError('completed before', 'already_completed'));
    try {
      expect(await post(`/awakeables/${unknownAwakeable}/resolve`, 1)).toMatchObject({
        status: 409,
        body: { code: 'already_completed', message: 'completed before' },
      });
      expect(spy).toHaveBeenCalledWith(unknownAwakeable, 1);
    } finally {
      spy.mockRestore();
    }
  });

  it.each([
    ['GET', '/awakeables/x/resolve', 405],
    ['PUT', '/awakeables/x/reject', 405],
    ['GET', '/awakeables', 404],
    ['POST', '/awakeables', 404],
    ['POST', '/awakeables/x', 404],
    ['POST', '/awakeables/x/complete', 404],
  ])('%s %s is a %i', async (method, path, status) => {
    const r = await call(method, path);
    expect(r.status).toBe(status);
    if (status === 405) expect(r.headers.get('allow')).toBe('POST');
  });

  it('an object named awakeables loses exactly the awakeable shape, and is warned about', async () => {
    const Shadowed = object({
      name: 'awakeables',
      handlers: {
        resolve: async (ctx, v: string) => `${ctx.key} resolved ${v}`,
        other: async (ctx) => `${ctx.key} other`,
      },
    });
    const logs: string[] = [];
    const other = new Engine({
      services: [Shadowed],
      store: openSqliteStore({ path: join(dir, 'shadowed.db'), durability: 'os' }),
      logger: (level, message) => logs.push(`${level} ${message}`),
    });
    await other.start();
    const server = await serve(other, { port: 0 });
    const to = (path: string, body: unknown): Promise<Response> =>
      fetch(server.url + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    try {
      expect(logs.some((l) => l.startsWith('warn') && l.includes('/send'))).toBe(true);
      // The awakeable route wins for its shape: "k" is no awakeable id.
      const shadowed = await to('/awakeables/k/resolve', 'x');
      expect(shadowed.status).toBe(404);
      expect(((await shadowed.json()) as { message: string }).message).toContain('awakeable');
      // Every other path still reaches the object, and /send reaches its `resolve`.
      expect(await (await to('/awakeables/k/other', null)).json()).toBe('k other');
      const sent = await to('/awakeables/k/resolve/send', 'x');
      expect(sent.status).toBe(202);
      const { invocationId } = (await sent.json()) as { invocationId: string };
      expect(await other.attach(invocationId)).toBe('k resolved x');
    } finally {
      await server.close();
      await other.stop();
    }
  });

  it('a service named awakeables cannot clash: its paths have another shape', async () => {
    const Named = service({
      name: 'awakeables',
      handlers: { resolve: async (_ctx, v: string) => `service resolved ${v}` },
    });
    const logs: string[] = [];
    const other = new Engine({
      services: [Named],
      store: openSqliteStore({ path: join(dir, 'named.db'), durability: 'os' }),
      logger: (level, message) => logs.push(`${level} ${message}`),
    });
    await other.start();
    const server = await serve(other, { port: 0 });
    try {
      expect(logs.filter((l) => l.startsWith('warn'))).toEqual([]);
      const res = await fetch(`${server.url}/awakeables/resolve`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '"y"',
      });
      expect(await res.json()).toBe('service resolved y');
    } finally {
      await server.close();
      await other.stop();
    }
  });
});

describe('Expect: 100-continue', () => {
  const head = (length: number): string =>
    `POST /Greeter/greet HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`;

  it('asks for the body of an acceptable request, then answers it', async () => {
    const answer = await raw(ingress.port, [head(4), '"Gu"'], '100 Continue');
    expect(answer).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /);
    expect(answer).toContain('"Hello, Gu!"');
  });

  it('refuses an oversized body without inviting the upload', async () => {
    const answer = await raw(ingress.port, [head(5 * 1024 * 1024)]);
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer).not.toContain('100 Continue');
  });
});

describe('close', () => {
  it('stops accepting and ends keep-alive sockets', async () => {
    const server = await serve(engine, { port: 0 });
    // fetch keeps the connection alive; close() must not wait for its 65 s idle timeout.
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    await server.close();
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();
  });

  it('lets a request in flight finish, answered with Connection: close', async () => {
    const server = await serve(engine, { port: 0 });
    const open = gate('closing');
    const inFlight = fetch(`${server.url}/Greeter/slow`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '"closing"',
    });
    // Wait until the invocation runs, so the request is surely in flight.
    const [row] = await waitFor(async () =>
      (
        await engine.store.listInvocations({ service: 'Greeter', status: 'running', limit: 100 })
      ).filter((r) => r.input === 'closing'),
    );
    expect(row).toBeDefined();
    const closed = server.close();
    open();
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.headers.get('connection')).toBe('close');
    expect(await res.json()).toBe('done closing');
    await closed;
  });

  it('answers requests still in flight after closeGrace with 503 shutting_down', async () => {
    const server = await serve(engine, { port: 0, closeGrace: 0 });
    gate('grace');
    const inFlight = fetch(`${server.url}/Greeter/slow`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '"grace"',
    });
    await waitFor(async () =>
      (
        await engine.store.listInvocations({ service: 'Greeter', status: 'running', limit: 100 })
      ).filter((r) => r.input === 'grace'),
    );
    await server.close();
    const res = await inFlight;
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ code: 'shutting_down' });
  });
});

/** Polls until `probe` returns a non-empty list (state changes, not time, end the wait). */
async function waitFor<T>(probe: () => Promise<T[]>): Promise<T[]> {
  for (;;) {
    const found = await probe();
    if (found.length > 0) return found;
    await new Promise((r) => setTimeout(r, 5));
  }
}
