import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { appOptionsFromEnv } from '../src/app.js';
import {
  Engine,
  handler,
  object,
  queue,
  service,
  TerminalError,
  workflow,
  type Context,
} from '../src/index.js';
import { serve } from '../src/ingress/index.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store, WriteOp } from '../src/store/types.js';
import { FakeClock } from '../src/testing/index.js';
import { harness, tempDir, until, type Harness } from './helpers.js';

/**
 * Large payloads (docs/payloads.md): a 50 MB step result round-trips on SQLite and PostgreSQL
 * (through the store and through a replay), blobs are written atomically with their rows and
 * freed with them, values above `maxPayloadBytes` are refused with `payload_too_large` (a
 * step's terminally, a request's with 413), and waiting invocations with large results hold no
 * memory (a child process measures RSS after full garbage collections).
 */

const url = inject('postgresUrl');
const MiB = 1024 * 1024;
/** The size of the PostgreSQL two-process round trip (see its test). */
const PG_MB = Number(process.env.KEEL_LARGE_PG_MB ?? 16);
const FIXTURE = path.join(import.meta.dirname, 'fixtures', 'large-payloads-rss.ts');

const admin = new pg.Pool({ connectionString: url, max: 2 });
admin.on('error', () => {});
afterAll(() => admin.end());

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** About `mb` MB of JSON, with escapes and non-ASCII text, different per `tag`. */
function payload(mb: number, tag = 'p'): string {
  const unit = `${tag}|é😀"\\\u0000|`.padEnd(1000, 'x');
  return unit.repeat(Math.ceil((mb * 1000 * 1000) / 1024));
}
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

interface Opened {
  store: Store;
  /** Rows of a blob table (white box: the tests below look inside the database). */
  blobs(table: 'invocation_blobs' | 'state_blobs'): Promise<number>;
  /** The longest `data` of the journal, in bytes. */
  journalRowBytes(): Promise<number>;
}

async function openSqlite(options: { maxPayloadBytes?: number } = {}): Promise<Opened> {
  const { dir, cleanup } = tempDir('keel-lp-');
  const file = path.join(dir, 'keel.db');
  const store = openSqliteStore({ path: file, ...options });
  cleanups.push(async () => {
    await store.close();
    cleanup();
  });
  const query = (sql: string): number => {
    const db = new Database(file, { readonly: true });
    try {
      return (db.prepare(sql).pluck().get() as number | null) ?? 0;
    } finally {
      db.close();
    }
  };
  return {
    store,
    blobs: async (table) => query(`SELECT count(*) FROM ${table}`),
    journalRowBytes: async () => query('SELECT max(length(CAST(data AS BLOB))) FROM journal'),
  };
}

async function openPg(options: { maxPayloadBytes?: number } = {}): Promise<Opened> {
  const schema = `keel_lp_${randomBytes(5).toString('hex')}`;
  const store = await openPostgresStore({ url, schema, poolSize: 4, ...options });
  cleanups.push(async () => {
    await store.close();
    await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  });
  const query = async (sql: string): Promise<number> =>
    Number((await admin.query<{ n: string | null }>(sql)).rows[0]?.n ?? 0);
  return {
    store,
    blobs: (table) => query(`SELECT count(*) AS n FROM "${schema}".${table}`),
    journalRowBytes: () => query(`SELECT max(octet_length(data)) AS n FROM "${schema}".journal`),
  };
}

const row = (id: string, input: unknown) => ({
  id,
  service: 'Big',
  handler: 'run',
  key: '',
  exclusive: false,
  status: 'running' as const,
  input,
  attempt: 0,
  retryIndex: -1,
  createdAt: 1,
  modifiedAt: 1,
});

// The 50 MB round trip on PostgreSQL runs through the engine below (two processes); here its
// store takes a smaller one, for time.
for (const [name, open, mb] of [
  ['sqlite', openSqlite, 50],
  ['postgres', openPg, 8],
] as const) {
  // Timeouts for slow machines, not expectations: megabytes take their time through a database.
  describe(`large payloads in the store (${name})`, { timeout: 120_000 }, () => {
    it(`round-trips a ${mb} MB step result, keeping the journal row small, and frees it with its invocation`, async () => {
      const o = await open();
      const value = payload(mb);
      await o.store.write([
        { op: 'invocation.insert', row: row('a', 1) },
        {
          op: 'journal.put',
          invocationId: 'a',
          index: 0,
          entry: { kind: 'run', name: 'make', done: true, value, startedAt: 5 },
        },
      ]);
      expect(await o.journalRowBytes()).toBeLessThan(100);
      expect(await o.blobs('invocation_blobs')).toBe(1);
      const [[index, entry]] = (await o.store.getJournal('a')) as unknown as [
        [number, { value: string }],
      ];
      expect(index).toBe(0);
      // Compared as strings: a diff of 50 MB would be useless anyway.
      expect(entry.value.length).toBe(value.length);
      expect(entry.value === value).toBe(true);
      expect(entry).toMatchObject({ kind: 'run', name: 'make', done: true, startedAt: 5 });
      await o.store.write([{ op: 'invocation.delete', id: 'a' }]);
      expect(await o.blobs('invocation_blobs')).toBe(0);
    });

    it('frees a state blob when the value is overwritten by a small one, deleted or cleared', async () => {
      const o = await open();
      const set = (name: string, value: unknown): WriteOp => ({
        op: 'state.set',
        service: 'S',
        key: 'k',
        name,
        value,
      });
      await o.store.write([set('a', payload(1, 'a')), set('b', payload(1, 'b'))]);
      await o.store.write([set('c', payload(1, 'c'))]);
      expect(await o.blobs('state_blobs')).toBe(3);
      await o.store.write([set('a', 'small')]);
      expect(await o.blobs('state_blobs')).toBe(2);
      await o.store.write([set('b', payload(1, 'b2'))]); // replaced in place
      expect(await o.blobs('state_blobs')).toBe(2);
      expect(await o.store.getState('S', 'k', 'b')).toBe(payload(1, 'b2'));
      await o.store.write([{ op: 'state.delete', service: 'S', key: 'k', name: 'b' }]);
      expect(await o.blobs('state_blobs')).toBe(1);
      await o.store.write([{ op: 'state.clear', service: 'S', key: 'k' }]);
      expect(await o.blobs('state_blobs')).toBe(0);
      expect(await o.store.getState('S', 'k', 'a')).toBeUndefined();
    });

    it('writes a blob in the same transaction as its row: a failed write leaves neither', async () => {
      const o = await open();
      await o.store.write([{ op: 'invocation.insert', row: row('dup', 1) }]);
      // The second insert of id `dup` raises inside the transaction, after the large one ran.
      await expect(
        o.store.write([
          { op: 'invocation.insert', row: row('new', payload(1)) },
          { op: 'state.set', service: 'S', key: 'k', name: 'n', value: payload(1) },
          { op: 'invocation.insert', row: row('dup', 2) },
        ]),
      ).rejects.toMatchObject({ code: 'write_failed' });
      expect(await o.store.getInvocation('new')).toBeUndefined();
      expect(await o.blobs('invocation_blobs')).toBe(0);
      expect(await o.blobs('state_blobs')).toBe(0);
    });

    it('refuses a value above maxPayloadBytes with payload_too_large (413), applying nothing', async () => {
      const o = await open({ maxPayloadBytes: 1 * MiB });
      const write = o.store.write([
        { op: 'invocation.insert', row: row('ok', 1) },
        { op: 'state.set', service: 'S', key: 'k', name: 'n', value: payload(2) },
      ]);
      await expect(write).rejects.toMatchObject({ code: 'payload_too_large', status: 413 });
      await expect(write).rejects.toThrow(/state "n" of S\/k.*above the limit of 1048576 bytes/);
      await expect(write).rejects.toThrow(/maxPayloadBytes \(KEEL_MAX_PAYLOAD_BYTES\)/);
      expect(await o.store.getInvocation('ok')).toBeUndefined();
      // At the limit is accepted (a JSON string of exactly 1 MiB).
      const atLimit = 'x'.repeat(MiB - 2);
      await o.store.write([{ op: 'invocation.insert', row: row('at', atLimit) }]);
      expect((await o.store.getInvocation('at'))?.input === atLimit).toBe(true);
    });
  });
}

/** A workflow whose step makes a large result, then sleeps; its output is the result's hash. */
function bigWorkflow(made: { count: number }, mb: number) {
  return workflow({
    name: 'BigFlow',
    run: async (ctx, tag: string) => {
      const data = await ctx.run('make', () => {
        made.count++;
        return payload(mb, tag);
      });
      await ctx.sleep('1h');
      return { length: data.length, hash: sha(data) };
    },
  });
}

describe('large payloads through the engine', { timeout: 120_000 }, () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('replays a 50 MB step result identical after a restart (sqlite)', async () => {
    const made = { count: 0 };
    h = await harness({ services: [bigWorkflow(made, 50)] });
    const { invocationId } = await h.engine.send({
      service: 'BigFlow',
      handler: 'run',
      key: 'w1',
      input: 'w1',
    });
    // The 50 MB step is durable and the sleep recorded (its fdatasync runs off the event loop
    // and takes a while): only then is the handler idle, and the clock can pass suspendAfter.
    await until(
      async () => (await h!.engine.getJournal(invocationId)).some((e) => e.kind === 'sleep'),
      'the step durable and the sleep recorded',
    );
    await h.clock.advance('2s'); // past suspendAfter: suspended, held nowhere in memory
    await until(
      async () => (await h!.engine.getInvocation(invocationId))?.status === 'suspended',
      'suspended',
    );
    await h.restart();
    await h.clock.advance('1h');
    const expected = payload(50, 'w1');
    expect(await h.engine.attach(invocationId)).toEqual({
      length: expected.length,
      hash: sha(expected),
    });
    expect(made.count).toBe(1);
    // The admin list shows it without loading anything large.
    const { invocations } = await h.engine.listInvocations({ service: 'BigFlow' });
    expect(invocations.map((i) => i.status)).toEqual(['completed']);
  });

  // 16 MB in `npm test` (time: 50 MB through PostgreSQL takes ~13 s even on a quiet machine);
  // KEEL_LARGE_PG_MB=50 runs the acceptance size, as bench/large-payloads.ts does.
  it(`round-trips a ${PG_MB} MB step result between two processes on PostgreSQL`, async () => {
    const schema = `keel_lp_${randomBytes(5).toString('hex')}`;
    cleanups.push(() => admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).then(() => {}));
    const made = { count: 0 };
    const Flow = workflow({
      name: 'PgBig',
      run: async (ctx, tag: string) => {
        const data = await ctx.run('make', () => {
          made.count++;
          return payload(PG_MB, tag);
        });
        await ctx.promise<string>('go').get();
        return { length: data.length, hash: sha(data) };
      },
      handlers: {
        go: async (ctx) => {
          await ctx.promise<string>('go').resolve('go');
        },
      },
    });
    const engines: Engine[] = [];
    for (let i = 0; i < 2; i++) {
      const engine = new Engine({
        services: [Flow],
        store: await openPostgresStore({ url, schema, poolSize: 4 }),
        suspendAfter: '10ms',
        logger: () => {},
      });
      engines.push(engine);
      cleanups.push(() => engine.stop());
      await engine.start();
    }
    const [a, b] = engines as [Engine, Engine];
    const { invocationId } = await a.send({
      service: 'PgBig',
      handler: 'run',
      key: 'k',
      input: 'k',
    });
    // Not `until`: writing 50 MB through PostgreSQL takes seconds, more on a loaded machine.
    for (const deadline = Date.now() + 90_000; ;) {
      if ((await b.getInvocation(invocationId))?.status === 'suspended') break;
      if (Date.now() > deadline) throw new Error('the run did not suspend within 90 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    // The other process reads the journal, then resolves the promise: the owner replays.
    const [entry] = await b.getJournal(invocationId);
    const expected = payload(PG_MB, 'k');
    expect((entry!.value as string).length).toBe(expected.length);
    expect(entry!.value === expected).toBe(true);
    await b.client(Flow, 'k').go();
    expect(await b.attach(invocationId)).toEqual({
      length: expected.length,
      hash: sha(expected),
    });
    expect(made.count).toBe(1);
  }, 180_000);

  it('frees the blobs of a finished invocation when its retention ends', async () => {
    const Flow = workflow({
      name: 'Kept',
      run: async (ctx) => {
        const data = await ctx.run('make', () => payload(1, 'kept'));
        return data; // a large output too
      },
    });
    h = await harness({ services: [Flow], retention: '1h' });
    const blobs = () => {
      const db = new Database(h!.dbPath, { readonly: true });
      try {
        return db.prepare('SELECT count(*) FROM invocation_blobs').pluck().get() as number;
      } finally {
        db.close();
      }
    };
    const output = await h.engine.invoke({ service: 'Kept', handler: 'run', key: 'a' });
    expect(output === payload(1, 'kept')).toBe(true);
    expect(blobs()).toBe(2); // the step's entry and the output
    await h.clock.advance('2h');
    await until(() => blobs() === 0, 'the blobs deleted with the invocation');
  });

  it('starts a queued invocation with its large input, read back from the store', async () => {
    const Q = queue({ name: 'one-at-a-time', concurrency: 1 });
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const seen: Array<{ n: number; hash: string }> = [];
    const Svc = service({
      name: 'Queued',
      handlers: {
        go: handler({ queue: Q }, async (ctx: Context, input: { n: number; data: string }) => {
          await ctx.run('see', async () => {
            seen.push({ n: input.n, hash: sha(input.data) });
            if (input.n === 0) await held;
          });
        }),
      },
    });
    h = await harness({ services: [Svc] });
    const data = (n: number) => payload(1, `q${n}`);
    await h.engine.send({ service: 'Queued', handler: 'go', input: { n: 0, data: data(0) } });
    await until(async () => seen.length === 1, 'the first started');
    // Waits in the store ('queued'), then starts from the row the store hands back.
    await h.engine.send({ service: 'Queued', handler: 'go', input: { n: 1, data: data(1) } });
    release();
    await until(async () => seen.length === 2, 'the queued one ran');
    expect(seen[1]).toEqual({ n: 1, hash: sha(data(1)) });
  });

  /** An engine on a store with a small hard limit, and a fake clock. */
  async function limited(services: Parameters<typeof harness>[0]['services']) {
    const { dir, cleanup } = tempDir('keel-lp-');
    const engine = new Engine({
      services,
      store: openSqliteStore({ path: path.join(dir, 'keel.db'), maxPayloadBytes: MiB }),
      clock: new FakeClock(),
      logger: () => {},
    });
    cleanups.push(async () => {
      await engine.stop();
      cleanup();
    });
    await engine.start();
    return engine;
  }

  it('fails a step whose result is above the limit terminally, naming the step and the limit', async () => {
    const runs = { count: 0 };
    const Flow = workflow({
      name: 'TooBig',
      run: async (ctx) => {
        try {
          await ctx.run('export', () => {
            runs.count++;
            return payload(2);
          });
          return 'stored';
        } catch (err) {
          return { code: (err as TerminalError).code, message: (err as Error).message };
        }
      },
    });
    const Uncaught = workflow({
      name: 'TooBigUncaught',
      run: async (ctx) => ctx.run('export', () => payload(2)),
    });
    const engine = await limited([Flow, Uncaught]);
    const caught = (await engine.invoke({ service: 'TooBig', handler: 'run', key: 'a' })) as {
      code: string;
      message: string;
    };
    expect(caught.code).toBe('payload_too_large');
    expect(caught.message).toMatch(/step "export" is too large to store/);
    expect(caught.message).toMatch(/above the limit of 1048576 bytes/);
    expect(runs.count).toBe(1); // not retried
    const { invocationId } = await engine.send({
      service: 'TooBigUncaught',
      handler: 'run',
      key: 'b',
    });
    await expect(engine.attach(invocationId)).rejects.toMatchObject({
      code: 'payload_too_large',
    });
    expect(await engine.getInvocation(invocationId)).toMatchObject({
      status: 'failed',
      attempt: 0,
    });
  });

  it('fails an invocation whose output is above the limit, rather than running it again', async () => {
    const Flow = workflow({ name: 'BigOut', run: async () => payload(2) });
    const engine = await limited([Flow]);
    const { invocationId } = await engine.send({ service: 'BigOut', handler: 'run', key: 'a' });
    await expect(engine.attach(invocationId)).rejects.toThrow(
      /output of BigOut\/a\/run is too large to store.*limit of 1048576 bytes/,
    );
    expect(await engine.getInvocation(invocationId)).toMatchObject({
      status: 'failed',
      error: { code: 'payload_too_large' },
    });
  });

  it('fails an invocation that sets a state value above the limit, without retrying it', async () => {
    const attempts = { count: 0 };
    const Box = object({
      name: 'Box',
      handlers: {
        put: async (ctx) => {
          attempts.count++;
          ctx.set('big', payload(2));
          await ctx.run('after', () => 1);
          return 'stored';
        },
      },
    });
    const engine = await limited([Box]);
    const { invocationId } = await engine.send({ service: 'Box', handler: 'put', key: 'b' });
    await expect(engine.attach(invocationId)).rejects.toThrow(
      /journal entry 0 \(set "big"\) of invocation .* above the limit of 1048576 bytes/,
    );
    expect(await engine.getInvocation(invocationId)).toMatchObject({
      status: 'failed',
      error: { code: 'payload_too_large' },
    });
    expect(attempts.count).toBe(1);
  });

  it('answers 413 at the ingress: above bodyLimit, and above maxPayloadBytes', async () => {
    const Echo = workflow({ name: 'Echo', run: async (_ctx, input: string) => input.length });
    const engine = await limited([Echo]);
    const server = await serve(engine, { port: 0, bodyLimit: 4 * MiB });
    cleanups.push(() => server.close());
    const post = (body: string) =>
      fetch(`${server.url}/Echo/k${body.length}/run`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
    const over = await post(JSON.stringify('x'.repeat(5 * MiB)));
    expect(over.status).toBe(413);
    expect(await over.json()).toMatchObject({
      code: 'body_too_large',
      message: expect.stringMatching(/limit of 4194304 bytes.*bodyLimit.*KEEL_BODY_LIMIT/),
    });
    const aboveStore = await post(JSON.stringify('x'.repeat(2 * MiB)));
    expect(aboveStore.status).toBe(413);
    expect(await aboveStore.json()).toMatchObject({
      code: 'payload_too_large',
      message: expect.stringMatching(/limit of 1048576 bytes.*maxPayloadBytes/),
    });
    const fine = await post(JSON.stringify('x'.repeat(MiB / 2)));
    expect(fine.status).toBe(200);
    expect(await fine.json()).toBe(MiB / 2);
  });

  it('reads the limits from KEEL_* variables', () => {
    expect(
      appOptionsFromEnv({
        KEEL_LARGE_PAYLOAD_THRESHOLD: '65536',
        KEEL_MAX_PAYLOAD_BYTES: '134217728',
        KEEL_BODY_LIMIT: '67108864',
      }),
    ).toMatchObject({
      largePayloadThreshold: 65536,
      maxPayloadBytes: 134217728,
      bodyLimit: 67108864,
    });
    expect(() => appOptionsFromEnv({ KEEL_MAX_PAYLOAD_BYTES: '64MB' })).toThrow(RangeError);
    expect(() => openSqliteStore({ path: '/tmp/x.db', maxPayloadBytes: 2 ** 30 })).toThrow(
      /maxPayloadBytes/,
    );
  });
});

interface RssResult {
  n: number;
  mb: number;
  before: number;
  waiting: number;
  totalBytes: number;
  identical: boolean;
}

/** Runs the memory fixture in a child process with --expose-gc; resolves with its result line. */
function measureRss(env: Record<string, string>): Promise<RssResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', FIXTURE], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`fixture exited with ${code}: ${err}`));
      else resolve(JSON.parse(out.trim().split('\n').pop()!) as RssResult);
    });
  });
}

/**
 * The full acceptance size (100 runs × 50 MiB, and PostgreSQL) is `bench/large-payloads.ts`:
 * minutes of writing, too long for `npm test`.
 */
describe('memory while invocations with large results wait', () => {
  it('keeps RSS flat: 12 runs with a 10 MB result each, suspended (sqlite)', async () => {
    const { dir, cleanup } = tempDir('keel-lp-rss-');
    cleanups.push(cleanup);
    const r = await measureRss({ LP_N: '12', LP_MB: '10', LP_DB: path.join(dir, 'keel.db') });
    expect(r.identical).toBe(true);
    // Held in memory, 120 MB of results would add at least 120 MB (twice that as UTF-16).
    expect(r.waiting - r.before).toBeLessThan(r.totalBytes / 4);
  }, 120_000);

  it('would see the results if they were kept: the control run that leaks them grows', async () => {
    const { dir, cleanup } = tempDir('keel-lp-rss-');
    cleanups.push(cleanup);
    const r = await measureRss({
      LP_N: '4',
      LP_MB: '10',
      LP_PAR: '2',
      LP_DB: path.join(dir, 'keel.db'),
      LP_LEAK: '1',
    });
    expect(r.waiting - r.before).toBeGreaterThan(r.totalBytes);
  }, 120_000);
});
