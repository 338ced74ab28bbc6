import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { serveAdmin, type AdminServer } from '../src/admin/index.js';
import { object, service, workflow, type Definition } from '../src/core/definitions.js';
import { Engine } from '../src/engine/engine.js';
import { kernelOf } from '../src/engine/kernel.js';
import { openPostgresStore } from '../src/store/postgres/index.js';

// Operator actions across processes: two engines (as two processes would) share one
// PostgreSQL schema; the action is asked of the one that does not run the invocation.

const url = inject('postgresUrl');
const schema = `keel_actions_${randomBytes(4).toString('hex')}`;

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

const Flaky = service({
  name: 'Flaky',
  retry: { initialInterval: '1h', maxAttempts: 5 },
  handlers: {
    go: async (ctx, tag: string) => {
      await ctx.run('call', () => {
        if (bump(`flaky:${tag}`) === 1) throw new Error('the provider is down');
      });
      return `ok ${tag}`;
    },
  },
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

const services: Definition[] = [Flow, Flaky, Counter];

let engines: Engine[] = [];
let admins: AdminServer[] = [];

beforeAll(async () => {
  const store = await openPostgresStore({ url, schema });
  await store.close();
});

afterEach(async () => {
  for (const a of admins) await a.close();
  for (const e of engines) await e.stop().catch(() => undefined);
  engines = [];
  admins = [];
});

afterAll(async () => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

async function node(): Promise<{ engine: Engine; admin: AdminServer }> {
  const engine = new Engine({
    services,
    store: await openPostgresStore({ url, schema }),
    lease: '5s',
    logger: () => undefined,
  });
  engines.push(engine);
  await engine.start();
  const admin = await serveAdmin(engine, { port: 0 });
  admins.push(admin);
  return { engine, admin };
}

async function post(admin: AdminServer, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${admin.url}${path}`, { method: 'POST' });
  return { status: res.status, body: await res.json() };
}

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 30_000;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('operator actions on a cluster', () => {
  it('a pause asked of another process stops the attempt where it runs; resume completes it', async () => {
    const a = await node();
    const b = await node();
    const key = `w${randomBytes(3).toString('hex')}`;
    gate(key);
    const { invocationId: id } = await a.engine.send({
      service: 'Flow',
      handler: 'run',
      key,
      input: 'x',
    });
    await until(() => count(`one:${key}`) === 1, 'step one on a');
    expect((await a.engine.getInvocation(id))?.status).toBe('running');
    const paused = await post(b.admin, `/invocations/${id}/pause`);
    expect(paused.status).toBe(202);
    expect(paused.body.invocation.status).toBe('paused');
    // a hears of it and stops before step two.
    await until(
      () => kernelOf(a.engine).active.get(id)?.pauseRequested === true,
      'a to hear of the pause',
    );
    gates.get(key)!.open();
    await until(() => !kernelOf(a.engine).active.has(id), 'the attempt on a to stop');
    await new Promise((r) => setTimeout(r, 300));
    expect((await b.engine.getInvocation(id))?.status).toBe('paused');
    expect(count(`two:${key}`)).toBe(0);

    const resumed = await post(b.admin, `/invocations/${id}/resume`);
    expect(resumed.status).toBe(202);
    expect(await b.engine.attach(id)).toBe('done x');
    expect(count(`one:${key}`)).toBe(1);
    expect(count(`two:${key}`)).toBe(1);
  });

  it('retry-now asked of another process runs the backing-off invocation now', async () => {
    const a = await node();
    const b = await node();
    const tag = randomBytes(3).toString('hex');
    const { invocationId: id } = await a.engine.send({
      service: 'Flaky',
      handler: 'go',
      input: tag,
    });
    await until(
      async () => (await a.engine.getInvocation(id))?.status === 'backing-off',
      'the backoff',
    );
    const r = await post(b.admin, `/invocations/${id}/retry-now`);
    expect(r.status).toBe(202);
    expect(await b.engine.attach(id)).toBe(`ok ${tag}`);
    expect(count(`flaky:${tag}`)).toBe(2);
  });

  it('a state edit through another process waits for the key held in the first', async () => {
    const a = await node();
    const b = await node();
    const key = `c${randomBytes(3).toString('hex')}`;
    gate(`hold:${key}`);
    const holder = (await a.engine.send({ service: 'Counter', handler: 'hold', key })).invocationId;
    await until(async () => (await a.engine.store.getState('Counter', key, 'n')) === 1, 'n=1');
    let answered = false;
    const put = fetch(`${b.admin.url}/state/Counter/${key}/n`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: '100',
    }).then(async (res) => {
      answered = true;
      return { status: res.status, body: await res.json() };
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(answered).toBe(false);
    expect(await b.engine.store.getState('Counter', key, 'n')).toBe(1);
    gates.get(`hold:${key}`)!.open();
    const r = await put;
    expect(r.status).toBe(200);
    expect(await a.engine.attach(holder)).toBe('held');
    expect(await b.engine.store.getState('Counter', key, 'n')).toBe(100);
    const keys = (await (await fetch(`${b.admin.url}/state/Counter?limit=1000`)).json()) as {
      keys: Array<{ key: string }>;
    };
    expect(keys.keys).toContainEqual({ key });
  });
});
