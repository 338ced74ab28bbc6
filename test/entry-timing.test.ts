import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { serveAdmin, type AdminServer } from '../src/admin/index.js';
import type { JournalEntry } from '../src/core/journal.js';
import { Engine, service, workflow } from '../src/index.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { Store } from '../src/store/types.js';
import { FakeClock } from '../src/testing/index.js';
import { tempDir, until } from './helpers.js';

// Journal entries' timing (issue 15's timeline): a step's start, duration and attempts, a
// wait's start kept through its completion, and what completed it. Presence, types and order
// only: no duration is compared with a threshold.

const url = inject('postgresUrl');
const schema = `keel_timing_${randomBytes(4).toString('hex')}`;

const failures = new Map<string, number>();
const published = new Map<string, string>();

const Callee = service({
  name: 'TimingCallee',
  handlers: { echo: async (_ctx, x: string) => `echo ${x}` },
});

const Flow = workflow({
  name: 'TimingFlow',
  retry: { initialInterval: '1s', maxInterval: '1s', maxAttempts: 5 },
  run: async (ctx) => {
    const n = await ctx.run('flaky', () => {
      const seen = (failures.get(ctx.key) ?? 0) + 1;
      failures.set(ctx.key, seen);
      if (seen === 1) throw new Error('fails once');
      return seen;
    });
    await ctx.sleep('1m');
    const echoed = await ctx.serviceClient(Callee).echo('hi');
    const awk = ctx.awakeable<string>();
    await ctx.run('publish', () => {
      published.set(ctx.key, awk.id);
    });
    const answer = await awk.promise;
    return `${n} ${echoed} ${answer}`;
  },
});

const Sleeper = service({
  name: 'TimingSleeper',
  handlers: {
    nap: async (ctx) => {
      await ctx.sleep('1h');
    },
  },
});

type Entry = JournalEntry & { index: number };

interface Backend {
  name: string;
  open(): Promise<Store>;
  cleanup(): Promise<void>;
}

const sqliteDir = tempDir('keel-timing-');
const backends: Backend[] = [
  {
    name: 'sqlite',
    open: async () => openSqliteStore({ path: join(sqliteDir.dir, 'keel.db') }),
    cleanup: async () => sqliteDir.cleanup(),
  },
  {
    name: 'postgres',
    open: () => openPostgresStore({ url, schema }),
    cleanup: async () => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await client.end();
    },
  },
];

afterAll(async () => {
  for (const b of backends) await b.cleanup();
});

describe.each(backends)('journal entry timing on $name', (backend) => {
  let engine: Engine | undefined;
  let admin: AdminServer | undefined;
  afterEach(async () => {
    await admin?.close();
    await engine?.stop().catch(() => undefined);
    engine = admin = undefined;
  });

  async function start(clock: FakeClock): Promise<Engine> {
    engine = new Engine({
      services: [Flow, Callee, Sleeper],
      store: await backend.open(),
      clock,
      suspendAfter: '1s',
      logger: () => undefined,
    });
    await engine.start();
    return engine;
  }

  it('records a retried step, a sleep, a call and an awakeable with their timing, through the admin API', async () => {
    const clock = new FakeClock();
    const e = await start(clock);
    const key = `k${randomBytes(3).toString('hex')}`;
    const { invocationId: id } = await e.send({ service: 'TimingFlow', handler: 'run', key });
    // The fake clock moves only when told: through the step's backoff and the sleep.
    await until(async () => {
      if (published.has(key)) return true;
      await clock.advance('10s');
      return false;
    }, 'the awakeable to be published');
    await e.resolveAwakeable(published.get(key)!, 'yes');
    expect(await e.attach(id)).toBe('2 echo hi yes');

    admin = await serveAdmin(e, { port: 0 });
    const res = await fetch(`${admin.url}/invocations/${id}/journal`);
    expect(res.status).toBe(200);
    const { entries } = (await res.json()) as { entries: Entry[] };
    const at = (kind: string, name?: string): Entry => {
      const found = entries.find((x) => x.kind === kind && (name === undefined || x.name === name));
      expect(found, `${kind} ${name ?? ''}`).toBeDefined();
      return found!;
    };

    // The step that failed once: two attempts, the last one's start and duration.
    const flaky = at('run', 'flaky');
    expect(flaky).toMatchObject({ done: true, value: 2, attempts: 2 });
    expect(Number.isInteger(flaky.startedAt)).toBe(true);
    expect(typeof flaky.durationMs).toBe('number');
    expect(flaky.durationMs).toBeGreaterThanOrEqual(0);
    // A step that succeeded at once says nothing about attempts.
    const publish = at('run', 'publish');
    expect(publish.attempts).toBeUndefined();
    expect(typeof publish.startedAt).toBe('number');
    expect(typeof publish.durationMs).toBe('number');

    // The sleep kept the start recorded with it through its completion by the timer.
    const sleep = at('sleep');
    expect(sleep).toMatchObject({ done: true, completedBy: 'timer' });
    expect(Number.isInteger(sleep.startedAt)).toBe(true);
    expect(sleep.startedAt).toBeLessThan(sleep.wakeAt!);
    expect(sleep.completedAt).toBeGreaterThanOrEqual(sleep.startedAt!);
    expect(sleep.completedAt).toBeGreaterThanOrEqual(sleep.wakeAt!);

    // The call names its callee as what completed it.
    const call = at('call', 'TimingCallee/echo');
    expect(call.calleeId).toMatch(/^inv_/);
    expect(call).toMatchObject({
      done: true,
      value: 'echo hi',
      completedBy: `call ${call.calleeId}`,
    });
    expect(typeof call.startedAt).toBe('number');
    expect(call.completedAt).toBeGreaterThanOrEqual(call.startedAt!);

    // The awakeable, resolved from outside.
    const awk = at('awakeable');
    expect(awk).toMatchObject({ done: true, value: 'yes', completedBy: 'awakeable' });
    expect(typeof awk.startedAt).toBe('number');
    expect(awk.completedAt).toBeGreaterThanOrEqual(awk.startedAt!);

    // Entries follow each other in time.
    expect(flaky.startedAt).toBeLessThanOrEqual(sleep.startedAt!);
    expect(sleep.completedAt).toBeLessThanOrEqual(call.startedAt!);
    expect(call.completedAt).toBeLessThanOrEqual(awk.startedAt!);
  });

  it('records a cancellation as what completed a wait, keeping its start', async () => {
    const clock = new FakeClock();
    const e = await start(clock);
    const { invocationId: id } = await e.send({ service: 'TimingSleeper', handler: 'nap' });
    await until(
      async () => (await e.getJournal(id)).some((x) => x.kind === 'sleep'),
      'the sleep to be recorded',
    );
    await clock.advance('5s'); // suspended: the completion is the store's alone to keep
    await e.cancel(id);
    await until(
      async () => (await e.getInvocation(id))?.status === 'failed',
      'the cancellation to end it',
    );
    const sleep = (await e.getJournal(id)).find((x) => x.kind === 'sleep')!;
    expect(sleep).toMatchObject({ done: true, completedBy: 'cancel' });
    expect(sleep.error?.code).toBe('cancelled');
    expect(Number.isInteger(sleep.startedAt)).toBe(true);
    expect(sleep.completedAt).toBeGreaterThanOrEqual(sleep.startedAt!);
  });
});
