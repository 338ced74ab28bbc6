import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { serveAdmin, type AdminServer } from '../src/admin/index.js';
import { object, service, workflow, type Definition } from '../src/core/definitions.js';
import { TerminalError } from '../src/core/errors.js';
import { Engine } from '../src/engine/engine.js';
import { kernelOf } from '../src/engine/kernel.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { crash, FakeClock } from '../src/testing/index.js';

// Operator actions end to end: a real engine on a real SQLite file, the admin API on a real
// socket. Executions are counted outside the engine, so "ran once" is observed, not assumed.

const ADMIN = 'a'.repeat(40);
const VIEWER = 'v'.repeat(40);

const counts = new Map<string, number>();
const bump = (name: string): number => {
  const n = (counts.get(name) ?? 0) + 1;
  counts.set(name, n);
  return n;
};
const count = (name: string): number => counts.get(name) ?? 0;

const gates = new Map<string, { open: () => void; opened: Promise<void> }>();
function gate(name: string): void {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  gates.set(name, { open, opened });
}
const waitGate = (name: string): Promise<void> => gates.get(name)?.opened ?? Promise.resolve();

const Flow = workflow({
  name: 'Flow',
  run: async (ctx, input: string) => {
    await ctx.run('one', async () => {
      bump(`one:${ctx.key}`);
      await waitGate(ctx.key);
    });
    await ctx.run('two', () => bump(`two:${ctx.key}`));
    return `done ${input}`;
  },
});

const Sleeper = service({
  name: 'Sleeper',
  handlers: {
    nap: async (ctx, tag: string) => {
      await ctx.run('before', () => bump(`before:${tag}`));
      await ctx.sleep('1h');
      await ctx.run('after', () => bump(`after:${tag}`));
      return tag;
    },
  },
});

const Flaky = service({
  name: 'Flaky',
  retry: { initialInterval: '1h', maxAttempts: 5 },
  handlers: {
    go: async (ctx, tag: string) => {
      await ctx.run('call', () => {
        if (bump(`flaky:${tag}`) === 1) throw new Error('the provider is down');
        return 'ok';
      });
      return `ok ${tag}`;
    },
  },
});

const Mailer = service({
  name: 'Mailer',
  handlers: {
    send: async (_ctx, to: string) => {
      if (bump(`mail:${to}`) === 1) throw new TerminalError('bounced', { code: 'bounced' });
      return `sent to ${to}`;
    },
  },
});

const Napper = service({
  name: 'Napper',
  handlers: { nap: async (ctx) => void (await ctx.sleep('1h')) },
});

const Counter = object({
  name: 'Counter',
  handlers: {
    hold: async (ctx) => {
      ctx.set('n', 1);
      await ctx.run('wait', () => waitGate(`hold:${ctx.key}`));
      ctx.set('n', ((await ctx.get<number>('n')) ?? 0) + 1);
      return 'held';
    },
  },
});

const services: Definition[] = [Flow, Sleeper, Flaky, Mailer, Napper, Counter];

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Env {
  engine: Engine;
  admin: AdminServer;
  path: string;
  clock?: FakeClock;
}
const open: Env[] = [];
afterEach(async () => {
  for (const e of open.splice(0)) {
    await e.admin.close();
    await e.engine.stop().catch(() => undefined);
  }
});

async function start(options: { clock?: FakeClock; path?: string } = {}): Promise<Env> {
  let path = options.path;
  if (!path) {
    const dir = mkdtempSync(join(tmpdir(), 'keel-actions-'));
    dirs.push(dir);
    path = join(dir, 'keel.db');
  }
  const engine = new Engine({
    services,
    store: openSqliteStore({ path }),
    clock: options.clock,
    logger: () => undefined,
  });
  await engine.start();
  const admin = await serveAdmin(engine, { port: 0, token: ADMIN, userToken: VIEWER });
  const env = { engine, admin, path, clock: options.clock };
  open.push(env);
  return env;
}

async function api(
  env: Env,
  method: string,
  path: string,
  options: { body?: string; token?: string } = {},
): Promise<{ status: number; body: any }> {
  const res = await fetch(`${env.admin.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${options.token ?? ADMIN}`,
      ...(options.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    body: options.body,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Polls until `cond` holds (a bound for a broken engine, not a timing assertion). */
async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 20_000;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const statusOf = async (env: Env, id: string): Promise<string | undefined> =>
  (await env.engine.getInvocation(id))?.status;

describe('pause and resume', () => {
  it('pauses a running workflow between its steps; resume completes it, each step once', async () => {
    const env = await start();
    gate('w1');
    const { invocationId: id } = await env.engine.send({
      service: 'Flow',
      handler: 'run',
      key: 'w1',
      input: 'x',
    });
    await until(() => count('one:w1') === 1, 'step one to start');
    const paused = await api(env, 'POST', `/invocations/${id}/pause`);
    expect(paused.status).toBe(202);
    expect(paused.body.invocation).toMatchObject({ id, status: 'paused' });
    // Step one was running: it finishes and is recorded; step two must not start.
    gates.get('w1')!.open();
    const k = kernelOf(env.engine);
    await until(() => !k.active.has(id), 'the attempt to stop');
    await new Promise((r) => setTimeout(r, 200));
    expect(await statusOf(env, id)).toBe('paused');
    expect(count('two:w1')).toBe(0);
    const journal = await env.engine.getJournal(id);
    expect(journal.filter((e) => e.kind === 'run' && e.done).map((e) => e.name)).toEqual(['one']);
    // Pausing again answers it as it is.
    expect((await api(env, 'POST', `/invocations/${id}/pause`)).body.invocation.status).toBe(
      'paused',
    );

    const resumed = await api(env, 'POST', `/invocations/${id}/resume`);
    expect(resumed.status).toBe(202);
    expect(await env.engine.attach(id)).toBe('done x');
    expect(count('one:w1')).toBe(1);
    expect(count('two:w1')).toBe(1);
    // Finished: nothing to pause.
    const late = await api(env, 'POST', `/invocations/${id}/pause`);
    expect(late.status).toBe(409);
    expect(late.body.code).toBe('already_finished');
  });

  it('pauses a sleeping invocation: its timer fires but does not run it until resumed', async () => {
    const clock = new FakeClock();
    const env = await start({ clock });
    const { invocationId: id } = await env.engine.send({
      service: 'Sleeper',
      handler: 'nap',
      input: 's1',
    });
    await until(() => count('before:s1') === 1, 'the first step');
    await clock.advance('2s'); // past suspendAfter
    await until(async () => (await statusOf(env, id)) === 'suspended', 'the suspension');
    expect((await api(env, 'POST', `/invocations/${id}/pause`)).status).toBe(202);
    await clock.advance('2h'); // the sleep's timer fires
    await new Promise((r) => setTimeout(r, 100));
    expect(await statusOf(env, id)).toBe('paused');
    expect(count('after:s1')).toBe(0);
    // The sleep itself is over (recorded), so resuming runs the rest at once.
    const sleep = (await env.engine.getJournal(id)).find((e) => e.kind === 'sleep');
    expect(sleep?.done).toBe(true);
    await env.engine.resumePaused(id);
    expect(await env.engine.attach(id)).toBe('s1');
    expect(count('before:s1')).toBe(1);
    expect(count('after:s1')).toBe(1);
  });

  it('a pause survives a crash: still paused after a restart on the same file, then resumes', async () => {
    const clock = new FakeClock();
    const env = await start({ clock });
    const { invocationId: id } = await env.engine.send({
      service: 'Sleeper',
      handler: 'nap',
      input: 's2',
    });
    await until(() => count('before:s2') === 1, 'the first step');
    await env.engine.pause(id);
    await until(() => !kernelOf(env.engine).active.has(id), 'the attempt to stop');
    await env.admin.close();
    await crash(env.engine);
    open.splice(open.indexOf(env), 1);

    const again = await start({ clock, path: env.path });
    await clock.advance('2h');
    await new Promise((r) => setTimeout(r, 100));
    expect(await statusOf(again, id)).toBe('paused');
    expect(count('after:s2')).toBe(0);
    expect((await api(again, 'POST', `/invocations/${id}/resume`)).status).toBe(202);
    await clock.advance('2h');
    expect(await again.engine.attach(id)).toBe('s2');
    expect(count('before:s2')).toBe(1);
    expect(count('after:s2')).toBe(1);
  });

  it('pauses a scheduled invocation before it starts; resume starts it', async () => {
    const clock = new FakeClock();
    const env = await start({ clock });
    const { invocationId: id } = await env.engine.send({
      service: 'Mailer',
      handler: 'send',
      input: 'late@example.com',
      delayMs: 60_000,
    });
    counts.set('mail:late@example.com', 1); // its first run succeeds
    expect((await api(env, 'POST', `/invocations/${id}/pause`)).status).toBe(202);
    await clock.advance('2m'); // its start time passes: it must not start
    expect(await statusOf(env, id)).toBe('paused');
    expect(count('mail:late@example.com')).toBe(1);
    const resumed = await api(env, 'POST', `/invocations/${id}/resume`);
    // Its start time has passed: it starts at once (pending, or already running).
    expect(['pending', 'running']).toContain(resumed.body.invocation.status);
    expect(await env.engine.attach(id)).toBe('sent to late@example.com');
  });
});

describe('retry-now and restart', () => {
  it('retry-now runs a backing-off invocation without waiting out its backoff', async () => {
    const clock = new FakeClock();
    const env = await start({ clock });
    const { invocationId: id } = await env.engine.send({
      service: 'Flaky',
      handler: 'go',
      input: 'r1',
    });
    await until(async () => (await statusOf(env, id)) === 'backing-off', 'the backoff');
    const info = await env.engine.getInvocation(id);
    expect(info?.nextAttemptAt).toBeDefined();
    const r = await api(env, 'POST', `/invocations/${id}/retry-now`);
    expect(r.status).toBe(202);
    expect(r.body.invocation.status).toBe('running');
    // No clock advance: only retry-now can have started the second attempt.
    expect(await env.engine.attach(id)).toBe('ok r1');
    expect(count('flaky:r1')).toBe(2);
    const again = await api(env, 'POST', `/invocations/${id}/retry-now`);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('not_waiting');
  });

  it('restart starts a new invocation of a failed one with the same input', async () => {
    const env = await start();
    const { invocationId: id } = await env.engine.send({
      service: 'Mailer',
      handler: 'send',
      input: 'ann@example.com',
    });
    await expect(env.engine.attach(id)).rejects.toThrow('bounced');
    const r = await api(env, 'POST', `/invocations/${id}/restart`);
    expect(r.status).toBe(202);
    const fresh = r.body.invocation;
    expect(fresh.id).not.toBe(id);
    expect(fresh.target).toBe('Mailer/send');
    expect(await env.engine.attach(fresh.id)).toBe('sent to ann@example.com');
    expect((await env.engine.getInvocation(id))?.status).toBe('failed');
  });

  it('a workflow run is restarted only once finished; its key passes to the new run', async () => {
    const env = await start();
    gate('w2');
    const { invocationId: id } = await env.engine.send({
      service: 'Flow',
      handler: 'run',
      key: 'w2',
      input: 'y',
    });
    await until(() => count('one:w2') === 1, 'step one');
    const refused = await api(env, 'POST', `/invocations/${id}/restart`);
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('workflow_running');
    gates.get('w2')!.open();
    expect(await env.engine.attach(id)).toBe('done y');
    const r = await api(env, 'POST', `/invocations/${id}/restart`);
    expect(r.status).toBe(202);
    expect(r.body.invocation.id).not.toBe(id);
    expect(await env.engine.attach(r.body.invocation.id)).toBe('done y');
    expect(count('two:w2')).toBe(2);
    // The old run stays readable.
    expect((await env.engine.getInvocation(id))?.status).toBe('completed');
  });
});

describe('bulk actions', () => {
  it('cancels the 50 invocations a filter matches, reporting progress until done', async () => {
    const env = await start();
    const ids: string[] = [];
    for (let i = 0; i < 50; i++)
      ids.push((await env.engine.send({ service: 'Napper', handler: 'nap' })).invocationId);
    const other = (await env.engine.send({ service: 'Sleeper', handler: 'nap', input: 'b' }))
      .invocationId;
    const started = await api(env, 'POST', '/invocations/bulk', {
      body: JSON.stringify({
        action: 'cancel',
        filter: { service: 'Napper', status: ['pending', 'running', 'suspended'] },
      }),
    });
    expect(started.status).toBe(202);
    const jobId = started.body.job.id as string;
    expect(jobId).toMatch(/^bulk_[0-9a-f]{32}$/);
    let job: any;
    await until(async () => {
      job = (await api(env, 'GET', `/invocations/bulk/${jobId}`)).body.job;
      return job.status === 'done';
    }, 'the job');
    expect(job).toMatchObject({ action: 'cancel', matched: 50, done: 50, failed: 0, errors: [] });
    for (const id of ids) {
      await expect(env.engine.attach(id)).rejects.toMatchObject({ code: 'cancelled' });
    }
    expect(await statusOf(env, other)).not.toBe('failed');
  });

  it('reports per-invocation failures and refuses bad requests', async () => {
    const env = await start();
    counts.set('mail:ok@example.com', 1); // its first run succeeds
    const { invocationId: done } = await env.engine.send({
      service: 'Mailer',
      handler: 'send',
      input: 'ok@example.com',
    });
    await env.engine.attach(done);
    const started = await api(env, 'POST', '/invocations/bulk', {
      body: JSON.stringify({ action: 'cancel', ids: [done] }),
    });
    let job: any;
    await until(async () => {
      job = (await api(env, 'GET', `/invocations/bulk/${started.body.job.id}`)).body.job;
      return job.status === 'done';
    }, 'the job');
    expect(job).toMatchObject({ matched: 1, done: 0, failed: 1 });
    expect(job.errors[0]).toMatchObject({ id: done, code: 'already_finished' });

    for (const body of [
      {},
      { action: 'explode', ids: [done] },
      { action: 'cancel' },
      { action: 'cancel', filter: {} },
      { action: 'cancel', filter: { status: 'sleepy' } },
      { action: 'cancel', filter: { colour: 'red' } },
      { action: 'cancel', ids: ['nope'] },
      { action: 'cancel', ids: [done], filter: { status: 'failed' } },
    ]) {
      const r = await api(env, 'POST', '/invocations/bulk', { body: JSON.stringify(body) });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe('invalid_request');
      expect(r.body.message.length).toBeGreaterThan(10);
    }
    expect((await api(env, 'POST', '/invocations/bulk', { body: '{' })).status).toBe(400);
    const unknown = await api(env, 'GET', `/invocations/bulk/bulk_${'0'.repeat(32)}`);
    expect(unknown.status).toBe(404);
  });
});

describe('object state', () => {
  it('edits wait for the handler holding the key, are journaled, and can be read and deleted', async () => {
    const env = await start();
    gate('hold:c1');
    const holder = (await env.engine.send({ service: 'Counter', handler: 'hold', key: 'c1' }))
      .invocationId;
    await until(async () => (await env.engine.store.getState('Counter', 'c1', 'n')) === 1, 'n=1');
    let answered = false;
    const put = api(env, 'PUT', '/state/Counter/c1/n', { body: '100' }).then((r) => {
      answered = true;
      return r;
    });
    await new Promise((r) => setTimeout(r, 300));
    // The holder still runs: the edit has not happened.
    expect(answered).toBe(false);
    expect(await env.engine.store.getState('Counter', 'c1', 'n')).toBe(1);
    gates.get('hold:c1')!.open();
    const r = await put;
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ service: 'Counter', key: 'c1', name: 'n', value: 100 });
    expect(await env.engine.attach(holder)).toBe('held');
    // After the holder's own final write (2), not interleaved with it.
    expect(await env.engine.store.getState('Counter', 'c1', 'n')).toBe(100);
    const edit = await env.engine.getInvocation(r.body.invocationId);
    expect(edit).toMatchObject({ target: 'Counter/c1/keel.admin.setState', status: 'completed' });
    const journal = await env.engine.getJournal(r.body.invocationId);
    expect(journal.some((e) => e.kind === 'set' && e.name === 'n')).toBe(true);

    const keys = await api(env, 'GET', '/state/Counter');
    expect(keys).toMatchObject({ status: 200, body: { keys: [{ key: 'c1' }] } });
    const state = await api(env, 'GET', '/state/Counter/c1');
    expect(state.body).toEqual({ service: 'Counter', key: 'c1', state: { n: 100 } });

    const del = await api(env, 'DELETE', '/state/Counter/c1/n');
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ name: 'n', deleted: true });
    expect((await api(env, 'GET', '/state/Counter/c1')).body.state).toEqual({});
  });

  it("edits a workflow's state only while its run is not running", async () => {
    const env = await start();
    gate('w3');
    const { invocationId: id } = await env.engine.send({
      service: 'Flow',
      handler: 'run',
      key: 'w3',
      input: 'z',
    });
    await until(() => count('one:w3') === 1, 'step one');
    const refused = await api(env, 'PUT', '/state/Flow/w3/note', { body: '"hi"' });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('workflow_running');
    expect(await env.engine.store.getStateKeys('Flow', 'w3')).toEqual([]);
    gates.get('w3')!.open();
    await env.engine.attach(id);
    expect((await api(env, 'PUT', '/state/Flow/w3/note', { body: '"hi"' })).status).toBe(200);
    expect((await api(env, 'GET', '/state/Flow/w3')).body.state).toEqual({ note: 'hi' });
  });

  it('pages through the keys that have state', async () => {
    const env = await start();
    for (const key of ['k3', 'k1', 'k2'])
      expect((await api(env, 'PUT', `/state/Counter/${key}/x`, { body: '"v"' })).status).toBe(200);
    const first = await api(env, 'GET', '/state/Counter?limit=2');
    expect(first.body.keys).toEqual([{ key: 'k1' }, { key: 'k2' }]);
    const second = await api(env, 'GET', `/state/Counter?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body).toEqual({ keys: [{ key: 'k3' }] });
  });

  it('refuses bad input with a 4xx and changes nothing', async () => {
    const env = await start();
    expect((await api(env, 'PUT', '/state/Counter/c2/n', { body: '7' })).status).toBe(200);
    const cases: Array<[string, string, string | undefined, number, string]> = [
      ['PUT', '/state/Counter/c2/n', '{not json', 400, 'invalid_json'],
      ['PUT', '/state/Counter/c2/n', '', 400, 'invalid_request'],
      ['PUT', `/state/Counter/c2/${'x'.repeat(300)}`, '1', 400, 'validation_failed'],
      ['PUT', '/state/Counter/c2/%01bad', '1', 400, 'validation_failed'],
      ['PUT', '/state/Mailer/c2/n', '1', 400, 'validation_failed'],
      ['PUT', '/state/Nobody/c2/n', '1', 404, 'not_found'],
      [
        'PUT',
        '/state/Counter/c2/n',
        JSON.stringify('x'.repeat(1024 * 1024 + 10)),
        413,
        'body_too_large',
      ],
      ['GET', '/state/Counter?limit=0', undefined, 400, 'invalid_query'],
      ['GET', '/state/Counter?color=red', undefined, 400, 'invalid_query'],
      ['POST', '/state/Counter/c2/n', '1', 405, 'method_not_allowed'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const r = await api(env, method, path, { body });
      expect(r.status, `${method} ${path.slice(0, 60)}`).toBe(status);
      expect(r.body.code).toBe(code);
    }
    expect((await api(env, 'GET', '/state/Counter/c2')).body.state).toEqual({ n: 7 });
  });
});

describe('roles', () => {
  it('the viewer token may read but every action is 403 forbidden', async () => {
    const env = await start();
    counts.set('mail:v@example.com', 1); // its first run succeeds
    const { invocationId: id } = await env.engine.send({
      service: 'Mailer',
      handler: 'send',
      input: 'v@example.com',
    });
    await env.engine.attach(id);
    const before = await env.engine.getInvocation(id);
    const changes: Array<[string, string, string | undefined]> = [
      ['POST', `/invocations/${id}/pause`, undefined],
      ['POST', `/invocations/${id}/retry-now`, undefined],
      ['POST', `/invocations/${id}/restart`, undefined],
      ['POST', '/invocations/bulk', JSON.stringify({ action: 'purge', ids: [id] })],
      ['PUT', '/state/Counter/c3/n', '1'],
      ['DELETE', '/state/Counter/c3/n', undefined],
    ];
    for (const [method, path, body] of changes) {
      const r = await api(env, method, path, { body, token: VIEWER });
      expect(r.status, `${method} ${path}`).toBe(403);
      expect(r.body.code).toBe('forbidden');
    }
    expect(await env.engine.getInvocation(id)).toEqual(before);
    expect((await env.engine.listInvocations({ service: 'Mailer' })).invocations).toHaveLength(1);
    expect(await env.engine.store.getStateKeys('Counter', 'c3')).toEqual([]);
    // Reads are the viewer's.
    expect((await api(env, 'GET', '/state/Counter', { token: VIEWER })).status).toBe(200);
    expect((await api(env, 'GET', '/state/Counter/c3', { token: VIEWER })).status).toBe(200);
  });
});
