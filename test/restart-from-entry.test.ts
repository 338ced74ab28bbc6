/**
 * Issue 16, item 5: restart from a journal prefix. A new invocation starts with a copy of the
 * old one's entries 0..N-1, replays them (their bodies do not run again) and runs the rest
 * anew. Real engines on real SQLite files, one PostgreSQL schema, the admin API on a real
 * socket; step bodies count their executions outside the engine, so "not run again" is
 * observed, not assumed.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { serveAdmin, type AdminServer } from '../src/admin/index.js';
import {
  ConflictError,
  Engine,
  object,
  RestartPrefixError,
  service,
  TerminalError,
  ValidationError,
  workflow,
  type Definition,
  type Store,
  type WriteOp,
} from '../src/index.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { gate, tempDir, until } from './helpers.js';

const ADMIN = 'r'.repeat(40);

const counts = new Map<string, number>();
const bump = (name: string): number => {
  const n = (counts.get(name) ?? 0) + 1;
  counts.set(name, n);
  return n;
};
const count = (name: string): number => counts.get(name) ?? 0;

/** Tags whose third step fails (terminally) while they are in here. */
const failing = new Set<string>();
/** Gates step bodies wait on, by name. */
const gates = new Map<string, ReturnType<typeof gate<void>>>();
const waitGate = (name: string): Promise<void> => gates.get(name)?.promise ?? Promise.resolve();

/**
 * Four steps; the third fails while its tag is in `failing`. The first returns how many times
 * its body ran, so an output built from a replayed value shows it was not run again.
 */
async function fourSteps(
  ctx: { run: <T>(name: string, fn: () => T | Promise<T>) => PromiseLike<T> },
  tag: string,
): Promise<string> {
  const a = await ctx.run('fetch', () => bump(`fetch:${tag}`));
  const b = await ctx.run('parse', () => {
    bump(`parse:${tag}`);
    return a * 10;
  });
  const c = await ctx.run('store', () => {
    bump(`store:${tag}`);
    if (failing.has(tag)) throw new TerminalError('the warehouse is down', { code: 'down' });
    return b + 1;
  });
  const d = await ctx.run('notify', () => {
    bump(`notify:${tag}`);
    return c + 1;
  });
  return `${tag}: ${a} ${b} ${c} ${d}`;
}

const Pipeline = service({
  name: 'Pipeline',
  handlers: { run: async (ctx, tag: string) => fourSteps(ctx, tag) },
});

const OrderFlow = workflow({
  name: 'OrderFlow',
  run: async (ctx, tag: string) => fourSteps(ctx, tag),
});

/** An awakeable waited for (entry 1) after a step (entry 0), then a step (entry 2). */
const Waiter = service({
  name: 'Waiter',
  handlers: {
    wait: async (ctx, tag: string) => {
      await ctx.run('before', () => bump(`before:${tag}`));
      const awk = ctx.awakeable<string>();
      await ctx.run('hand out', () => bump(`hand out:${tag}`));
      return awk.promise;
    },
    /** A step under `orTimeout` (entries 0-2: its run, the losing sleep, the race), then one that may fail. */
    timed: async (ctx, tag: string) => {
      const v = await ctx.run('quick', () => bump(`quick:${tag}`)).orTimeout('1h');
      await ctx.run('last', () => {
        bump(`last:${tag}`);
        if (failing.has(tag)) throw new TerminalError('not yet', { code: 'down' });
      });
      return v;
    },
    /** A cancellation requested while 'one' runs is delivered at entry 1, in place of 'two'. */
    cancellable: async (ctx, tag: string) => {
      await ctx.run('one', async () => {
        bump(`one:${tag}`);
        await waitGate(tag);
      });
      await ctx.run('two', () => bump(`two:${tag}`));
      return 'done';
    },
  },
});

/** An exclusive handler (entry 0 a step, entry 1 a gated step) and its object key. */
const Account = object({
  name: 'Account',
  handlers: {
    touch: async (ctx, tag: string) => {
      await ctx.run('read', () => bump(`read:${tag}`));
      await ctx.run('write', async () => {
        bump(`write:${tag}`);
        await waitGate(`account:${tag}`);
      });
      return `touched ${tag}`;
    },
  },
});

const services: Definition[] = [Pipeline, OrderFlow, Waiter, Account];

let cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
  cleanups = [];
});

/** Every write the engine made, in order (the store itself is the real one). */
const writes: WriteOp[][] = [];
function recorded(store: Store): Store {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'write')
        return (ops: WriteOp[]) => {
          writes.push(ops);
          return target.write(ops);
        };
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** The one write that inserted invocation `id`. */
function insertOf(id: string): WriteOp[] {
  const found = writes.filter((ops) =>
    ops.some((o) => o.op === 'invocation.insert' && o.row.id === id),
  );
  expect(found).toHaveLength(1);
  return found[0]!;
}

async function sqliteEngine(): Promise<Engine> {
  const tmp = tempDir('keel-restart-prefix-');
  const engine = new Engine({
    services,
    store: recorded(openSqliteStore({ path: join(tmp.dir, 'keel.db') })),
    logger: () => undefined,
  });
  cleanups.push(tmp.cleanup);
  cleanups.push(() => engine.stop());
  await engine.start();
  return engine;
}

/** A sent invocation of `Pipeline/run` whose third step failed. */
async function failedPipeline(engine: Engine, tag: string): Promise<string> {
  failing.add(tag);
  const { invocationId } = await engine.send({ service: 'Pipeline', handler: 'run', input: tag });
  await expect(engine.attach(invocationId)).rejects.toThrow('the warehouse is down');
  failing.delete(tag);
  return invocationId;
}

/** The refusal `p` rejects with. */
async function refusal(p: Promise<unknown>): Promise<Error & { code: string; status: number }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e as Error & { code: string; status: number },
  );
  expect(err, 'the restart was refused').toBeDefined();
  return err!;
}

describe('restart from a journal prefix (SQLite)', () => {
  it('replays entries 0-1 of a run that failed at entry 2 and runs 2 and 3 anew', async () => {
    const engine = await sqliteEngine();
    const id = await failedPipeline(engine, 'p1');
    const old = await engine.getJournal(id);
    expect(old.map((e) => e.name)).toEqual(['fetch', 'parse', 'store']);

    const fresh = await engine.restart(id, { fromEntry: 2 });
    expect(fresh.id).not.toBe(id);
    expect(fresh.target).toBe('Pipeline/run');
    // fetch ran once (its recorded result, 1, is what the new run sees), parse once.
    expect(await engine.attach(fresh.id)).toBe('p1: 1 10 11 12');
    expect(count('fetch:p1')).toBe(1);
    expect(count('parse:p1')).toBe(1);
    expect(count('store:p1')).toBe(2);
    expect(count('notify:p1')).toBe(1);
    const journal = await engine.getJournal(fresh.id);
    expect(journal.map((e) => e.name)).toEqual(['fetch', 'parse', 'store', 'notify']);
    // The copied entries are the old ones, values and timing included.
    expect(journal.slice(0, 2)).toEqual(old.slice(0, 2));
    expect((await engine.getInvocation(id))?.status).toBe('failed');
    // The copy rode in the insert's own write: never an invocation with half a prefix.
    const puts = insertOf(fresh.id).filter((o) => o.op === 'journal.put');
    expect(puts.map((o) => (o.op === 'journal.put' ? o.index : -1))).toEqual([0, 1]);
  });

  it('a copied failed step fails the new run again without running', async () => {
    const engine = await sqliteEngine();
    const id = await failedPipeline(engine, 'p2');
    // fromEntry 3 = the journal's length: every entry is kept, the failure included.
    const fresh = await engine.restart(id, { fromEntry: 3 });
    await expect(engine.attach(fresh.id)).rejects.toThrow('the warehouse is down');
    expect(count('store:p2')).toBe(1);
    expect(count('fetch:p2')).toBe(1);
    expect(count('notify:p2')).toBe(0);
  });

  it('fromEntry 0 is a plain restart: every step runs again', async () => {
    const engine = await sqliteEngine();
    const id = await failedPipeline(engine, 'p3');
    const plain = await engine.restart(id);
    expect(await engine.attach(plain.id)).toBe('p3: 2 20 21 22');
    const zero = await engine.restart(id, { fromEntry: 0 });
    expect(zero.id).not.toBe(plain.id);
    expect(await engine.attach(zero.id)).toBe('p3: 3 30 31 32');
    expect(count('fetch:p3')).toBe(3);
    expect(count('parse:p3')).toBe(3);
    const names = async (i: string) => (await engine.getJournal(i)).map((e) => e.name);
    expect(await names(zero.id)).toEqual(await names(plain.id));
  });

  it('refuses a bad fromEntry, an unfinished invocation and an unknown one, writing nothing', async () => {
    const engine = await sqliteEngine();
    const id = await failedPipeline(engine, 'p4');
    const before = (await engine.listInvocations({ service: 'Pipeline' })).invocations.length;

    const past = await refusal(engine.restart(id, { fromEntry: 4 }));
    expect(past).toBeInstanceOf(RestartPrefixError);
    expect(past.code).toBe('entry_out_of_range');
    expect(past.status).toBe(400);
    expect((past as RestartPrefixError).entry).toBe(4);
    expect(past.message).toContain('give 0 to 3');
    for (const bad of [-1, 1.5, Number.NaN]) {
      const err = await refusal(engine.restart(id, { fromEntry: bad }));
      expect(err).toBeInstanceOf(ValidationError);
      expect(err.status).toBe(400);
    }

    gates.set('p4-running', gate());
    const { invocationId: running } = await engine.send({
      service: 'Waiter',
      handler: 'cancellable',
      input: 'p4-running',
    });
    await until(() => count('one:p4-running') === 1, 'the step to start');
    const busy = await refusal(engine.restart(running, { fromEntry: 1 }));
    expect(busy).toBeInstanceOf(ConflictError);
    expect(busy.code).toBe('not_finished');
    expect(busy.status).toBe(409);
    gates.get('p4-running')!.open();
    await engine.attach(running);

    const unknown = await refusal(
      engine.restart('inv_00000000000000000000000000', { fromEntry: 1 }),
    );
    expect(unknown.status).toBe(404);
    expect((await engine.listInvocations({ service: 'Pipeline' })).invocations.length).toBe(before);
  });

  it('refuses a prefix holding an entry that never completed, and restarts from before it', async () => {
    const engine = await sqliteEngine();
    const { invocationId: id } = await engine.send({
      service: 'Waiter',
      handler: 'wait',
      input: 'w1',
    });
    await until(async () => (await engine.getJournal(id)).length === 3, 'the awakeable');
    await engine.kill(id);
    const journal = await engine.getJournal(id);
    expect(journal[1]).toMatchObject({ kind: 'awakeable', done: false });

    for (const n of [2, 3]) {
      const err = await refusal(engine.restart(id, { fromEntry: n }));
      expect(err).toBeInstanceOf(RestartPrefixError);
      expect(err.code).toBe('entry_unfinished');
      expect(err.status).toBe(409);
      expect((err as RestartPrefixError).entry).toBe(1);
      expect(err.message).toContain('entry 1 (awakeable)');
      // Its id is a capability: not in the message.
      expect(err.message).not.toContain(journal[1]!.name);
      expect(err.message).toContain('restart from entry 1 or before');
    }
    // From entry 1 the awakeable is created anew, with an id of the new invocation.
    const fresh = await engine.restart(id, { fromEntry: 1 });
    await until(async () => (await engine.getJournal(fresh.id)).length === 3, 'the new awakeable');
    expect(count('before:w1')).toBe(1);
    const awk = (await engine.getJournal(fresh.id))[1]!;
    expect(awk.name).not.toBe(journal[1]!.name);
    await engine.resolveAwakeable(awk.name, 'approved');
    expect(await engine.attach(fresh.id)).toBe('approved');
    expect(count('hand out:w1')).toBe(2);
  });

  it('refuses to carry a delivered cancellation over', async () => {
    const engine = await sqliteEngine();
    gates.set('c1', gate());
    const { invocationId: id } = await engine.send({
      service: 'Waiter',
      handler: 'cancellable',
      input: 'c1',
    });
    await until(() => count('one:c1') === 1, 'step one');
    await engine.cancel(id);
    gates.get('c1')!.open();
    await expect(engine.attach(id)).rejects.toThrow('cancelled');
    expect((await engine.getJournal(id))[1]).toMatchObject({ kind: 'cancel' });

    const err = await refusal(engine.restart(id, { fromEntry: 2 }));
    expect(err.code).toBe('entry_not_portable');
    expect((err as RestartPrefixError).entry).toBe(1);
    const fresh = await engine.restart(id, { fromEntry: 1 });
    expect(await engine.attach(fresh.id)).toBe('done');
    expect(count('one:c1')).toBe(1);
    expect(count('two:c1')).toBe(1);
  });

  it("carries an orTimeout's losing sleep over, keeping its wake-up time", async () => {
    const engine = await sqliteEngine();
    failing.add('t1');
    const { invocationId: id } = await engine.send({
      service: 'Waiter',
      handler: 'timed',
      input: 't1',
    });
    await expect(engine.attach(id)).rejects.toThrow('not yet');
    failing.delete('t1');
    const old = await engine.getJournal(id);
    expect(old.map((e) => e.kind)).toEqual(['run', 'sleep', 'combinator', 'run']);
    expect(old[1]!.done).toBe(false);

    const fresh = await engine.restart(id, { fromEntry: 3 });
    expect(await engine.attach(fresh.id)).toBe(1);
    expect(count('quick:t1')).toBe(1);
    expect(count('last:t1')).toBe(2);
    expect((await engine.getJournal(fresh.id))[1]).toMatchObject({
      kind: 'sleep',
      wakeAt: old[1]!.wakeAt,
    });
    // Its timer was written with the insert, at the recorded wake-up time.
    const timers = insertOf(fresh.id).filter((o) => o.op === 'timer.put');
    expect(timers).toEqual([
      { op: 'timer.put', timer: { invocationId: fresh.id, index: 1, fireAt: old[1]!.wakeAt } },
    ]);
  });

  it('an exclusive handler restarts from a prefix only while its object key is free', async () => {
    const engine = await sqliteEngine();
    const { invocationId: id } = await engine.send({
      service: 'Account',
      handler: 'touch',
      key: 'acct-1',
      input: 'a1',
    });
    expect(await engine.attach(id)).toBe('touched a1');
    gates.set('account:holder', gate());
    const { invocationId: holder } = await engine.send({
      service: 'Account',
      handler: 'touch',
      key: 'acct-1',
      input: 'holder',
    });
    await until(() => count('write:holder') === 1, 'the holder inside the key');
    const err = await refusal(engine.restart(id, { fromEntry: 1 }));
    expect(err.code).toBe('key_busy');
    expect(err.status).toBe(409);
    expect((await engine.listInvocations({ service: 'Account' })).invocations).toHaveLength(2);
    gates.get('account:holder')!.open();
    await engine.attach(holder);
    const fresh = await engine.restart(id, { fromEntry: 1 });
    expect(await engine.attach(fresh.id)).toBe('touched a1');
    expect(count('read:a1')).toBe(1);
    expect(count('write:a1')).toBe(2);
  });
});

describe('POST /invocations/{id}/restart with { fromEntry } (SQLite, real socket)', () => {
  async function withAdmin(engine: Engine): Promise<AdminServer> {
    const admin = await serveAdmin(engine, { port: 0, token: ADMIN });
    cleanups.push(() => admin.close());
    return admin;
  }

  async function post(
    admin: AdminServer,
    path: string,
    body?: string,
  ): Promise<{ status: number; body: any }> {
    const res = await fetch(`${admin.url}${path}`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${ADMIN}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body }),
    });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
  }

  it('restarts a workflow run from entry 2: its key passes on, steps 0-1 are not run again', async () => {
    const engine = await sqliteEngine();
    const admin = await withAdmin(engine);
    failing.add('o1');
    const { invocationId: id } = await engine.send({
      service: 'OrderFlow',
      handler: 'run',
      key: 'order-1',
      input: 'o1',
    });
    await expect(engine.attach(id)).rejects.toThrow('the warehouse is down');
    failing.delete('o1');

    const r = await post(admin, `/invocations/${id}/restart`, JSON.stringify({ fromEntry: 2 }));
    expect(r.status).toBe(202);
    const fresh = r.body.invocation;
    expect(fresh.id).not.toBe(id);
    expect(fresh.target).toBe('OrderFlow/order-1/run');
    expect(await engine.attach(fresh.id)).toBe('o1: 1 10 11 12');
    expect(count('fetch:o1')).toBe(1);
    expect(count('parse:o1')).toBe(1);
    expect(count('store:o1')).toBe(2);
    // The workflow key now names the new run: a send with it attaches there.
    const again = await engine.send({
      service: 'OrderFlow',
      handler: 'run',
      key: 'order-1',
      input: 'o1',
    });
    expect(again).toMatchObject({ invocationId: fresh.id, existing: true });
  });

  it('answers clear 400s and 409s for bad bodies and prefixes; no body is a plain restart', async () => {
    const engine = await sqliteEngine();
    const admin = await withAdmin(engine);
    const id = await failedPipeline(engine, 'h1');
    const path = `/invocations/${id}/restart`;

    const cases: Array<[string, number, string, string]> = [
      ['{"fromEntry":"2"}', 400, 'validation_failed', '"fromEntry" is the journal index'],
      ['{"fromEntry":-1}', 400, 'validation_failed', 'a whole number from 0'],
      ['{"from":2}', 400, 'validation_failed', 'unknown field "from"'],
      ['[2]', 400, 'validation_failed', 'a JSON object'],
      ['{"fromEntry":', 400, 'invalid_json', 'not valid JSON'],
      ['{"fromEntry":9}', 400, 'entry_out_of_range', 'give 0 to 3'],
    ];
    for (const [body, status, code, text] of cases) {
      const r = await post(admin, path, body);
      expect({ body, status: r.status, code: r.body?.code }).toEqual({ body, status, code });
      expect(r.body.message).toContain(text);
    }
    expect((await engine.listInvocations({ service: 'Pipeline' })).invocations).toHaveLength(1);

    const ok = await post(admin, path, '{"fromEntry":2}');
    expect(ok.status).toBe(202);
    expect(await engine.attach(ok.body.invocation.id)).toBe('h1: 1 10 11 12');

    const plain = await post(admin, path);
    expect(plain.status).toBe(202);
    expect(await engine.attach(plain.body.invocation.id)).toBe('h1: 2 20 21 22');
    const empty = await post(admin, path, '{}');
    expect(empty.status).toBe(202);
    expect(await engine.attach(empty.body.invocation.id)).toBe('h1: 3 30 31 32');
  });
});

describe('restart from a journal prefix (PostgreSQL)', () => {
  const url = inject('postgresUrl');

  async function pgEngine(): Promise<{ engine: Engine; store: Store }> {
    const schema = `keel_restartprefix_${randomBytes(4).toString('hex')}`;
    const store = await openPostgresStore({ url, schema });
    const engine = new Engine({ services, store, lease: '3s', logger: () => undefined });
    cleanups.push(async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    });
    cleanups.push(() => engine.stop());
    await engine.start();
    return { engine, store };
  }

  it('replays the prefix, runs the rest, and leaves nothing behind when the key is busy', async () => {
    const { engine, store } = await pgEngine();
    const id = await failedPipeline(engine, 'pg1');
    const fresh = await engine.restart(id, { fromEntry: 2 });
    expect(await engine.attach(fresh.id)).toBe('pg1: 1 10 11 12');
    expect(count('fetch:pg1')).toBe(1);
    expect(count('parse:pg1')).toBe(1);
    expect(count('store:pg1')).toBe(2);
    const past = await refusal(engine.restart(id, { fromEntry: 4 }));
    expect(past.code).toBe('entry_out_of_range');

    // An exclusive handler: the insert takes the key in the store; a busy key refuses it and
    // the inserted row is deleted again (it was never queued).
    const { invocationId: done } = await engine.send({
      service: 'Account',
      handler: 'touch',
      key: 'pg-acct',
      input: 'pga',
    });
    expect(await engine.attach(done)).toBe('touched pga');
    gates.set('account:pg-holder', gate());
    const { invocationId: holder } = await engine.send({
      service: 'Account',
      handler: 'touch',
      key: 'pg-acct',
      input: 'pg-holder',
    });
    await until(() => count('write:pg-holder') === 1, 'the holder inside the key');
    const busy = await refusal(engine.restart(done, { fromEntry: 1 }));
    expect(busy.code).toBe('key_busy');
    const rows = await store.listInvocations({ service: 'Account' });
    expect(rows.map((r) => r.id).sort()).toEqual([done, holder].sort());
    gates.get('account:pg-holder')!.open();
    await engine.attach(holder);
    const again = await engine.restart(done, { fromEntry: 1 });
    expect(await engine.attach(again.id)).toBe('touched pga');
    expect(count('read:pga')).toBe(1);
    expect(count('write:pga')).toBe(2);
  });
});
