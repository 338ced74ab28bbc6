import { afterEach, describe, expect, it } from 'vitest';
import { Engine, handler, object, queue, service, type Context } from '../../src/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { harness, tempDir, until, type Harness } from '../helpers.js';

/**
 * Flow-control queues on SQLite: the limits hold (recorded enter and exit of every run), rates
 * follow a sliding window on the engine's clock, keys take turns, priority orders a key's
 * items, and queued work survives a restart.
 */

interface Job {
  tenant: string;
  n: number;
  prio?: number;
}

/** Records who runs at once: enter/exit of each job body, with the peaks seen. */
function recorder() {
  const running = new Map<string, number>();
  let total = 0;
  const peak = { total: 0, perKey: 0 };
  const order: string[] = [];
  return {
    peak,
    order,
    async run(job: Job, ms: number): Promise<void> {
      total++;
      const k = (running.get(job.tenant) ?? 0) + 1;
      running.set(job.tenant, k);
      peak.total = Math.max(peak.total, total);
      peak.perKey = Math.max(peak.perKey, k);
      order.push(`${job.tenant}${job.n}`);
      await new Promise((r) => setTimeout(r, ms));
      total--;
      running.set(job.tenant, running.get(job.tenant)! - 1);
    },
  };
}

let h: Harness | undefined;
afterEach(async (ctx) => {
  if (ctx.task.result?.state === 'fail') console.log(h?.logs.slice(-20).join('\n'));
  await h?.close();
  h = undefined;
});

describe('a queue with concurrency 3, per-key concurrency 1 and 100 starts/s', () => {
  it('never runs more than 3 at once nor 2 of one key, and runs everything', async () => {
    const rec = recorder();
    const Q = queue({
      name: 'limits',
      concurrency: 3,
      rateLimit: { limit: 100, period: '1s' },
      perKey: { concurrency: 1 },
    });
    const Jobs = service({
      name: 'Jobs',
      handlers: {
        work: handler(
          { queue: Q, queueKey: (j: Job) => j.tenant },
          async (ctx: Context, j: Job) => {
            await ctx.run('work', () => rec.run(j, 3));
            return j.n;
          },
        ),
      },
    });
    h = await harness({ services: [Jobs] });
    const ids: string[] = [];
    for (let n = 0; n < 60; n++) {
      const r = await h.engine.send({
        service: 'Jobs',
        handler: 'work',
        input: { tenant: `t${n % 6}`, n },
      });
      ids.push(r.invocationId);
    }
    await until(async () => {
      const done = await h!.engine.listInvocations({ status: 'completed', limit: 100 });
      return done.invocations.length === 60;
    }, 'all 60 jobs completed');
    expect(rec.order).toHaveLength(60);
    expect(rec.peak.total).toBeLessThanOrEqual(3);
    expect(rec.peak.perKey).toBe(1);
    // The limit was used, not just respected.
    expect(rec.peak.total).toBe(3);
  });
});

describe('a rate limit', () => {
  it('starts at most `limit` in any window of the period, on the engine clock', async () => {
    const starts: number[] = [];
    const Q = queue({ name: 'rated', rateLimit: { limit: 5, period: '1s' } });
    const Svc = service({
      name: 'Rated',
      handlers: {
        go: handler({ queue: Q }, async (ctx: Context) => {
          await ctx.run('start', () => starts.push(h!.clock.now()));
        }),
      },
    });
    h = await harness({ services: [Svc] });
    for (let n = 0; n < 12; n++) await h.engine.send({ service: 'Rated', handler: 'go', input: n });
    await until(async () => starts.length === 5, 'the first 5 started');
    // Nothing more starts while the window is full.
    await h.clock.advance('500ms');
    await new Promise((r) => setTimeout(r, 50));
    expect(starts).toHaveLength(5);
    await h.clock.advance('500ms');
    await until(async () => starts.length === 10, '10 started');
    await h.clock.advance('1s');
    await until(async () => starts.length === 12, 'all 12 started');
    for (let i = 5; i < starts.length; i++) {
      expect(starts[i]! - starts[i - 5]!).toBeGreaterThanOrEqual(1000);
    }
    const stats = await h.engine.queues();
    expect(stats).toEqual([
      expect.objectContaining({ name: 'rated', waiting: 0, running: 0, keys: 0 }),
    ]);
  });
});

describe('fairness between keys', () => {
  it("finishes tenant B's 10 items early although tenant A queued 10,000 before them", async () => {
    const finished: string[] = [];
    const Q = queue({ name: 'fair', concurrency: 16 });
    const Svc = service({
      name: 'Fair',
      handlers: {
        go: handler({ queue: Q, queueKey: (j: Job) => j.tenant }, async (_ctx: Context, j: Job) => {
          finished.push(j.tenant);
        }),
      },
    });
    h = await harness({ services: [Svc] });
    const sends: Array<Promise<unknown>> = [];
    for (let n = 0; n < 10_000; n++)
      sends.push(h.engine.send({ service: 'Fair', handler: 'go', input: { tenant: 'A', n } }));
    await Promise.all(sends);
    const bSent = finished.length;
    await Promise.all(
      Array.from({ length: 10 }, (_, n) =>
        h!.engine.send({ service: 'Fair', handler: 'go', input: { tenant: 'B', n } }),
      ),
    );
    await until(async () => finished.length === 10_010, 'all 10,010 finished', 20_000);
    const lastB = finished.lastIndexOf('B');
    // A had thousands left when B's items arrived; B's ten finished within a few dozen finishes
    // (the 16 running, then turns alternate A, B, A, B...), not after A's backlog.
    expect(bSent).toBeLessThan(5000);
    expect(lastB - bSent).toBeLessThan(80);
    expect(finished.slice(lastB + 1).filter((t) => t === 'A').length).toBeGreaterThan(4000);
  }, 120_000);
});

describe('priority', () => {
  it('runs the higher priority of one key first', async () => {
    const order: number[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const Q = queue({ name: 'prio', concurrency: 1 });
    const Svc = service({
      name: 'Prio',
      handlers: {
        go: handler(
          { queue: Q, priority: (j: Job) => j.prio ?? 0 },
          async (ctx: Context, j: Job) => {
            await ctx.run('go', async () => {
              order.push(j.n);
              if (j.n === 0) await held;
            });
          },
        ),
      },
    });
    h = await harness({ services: [Svc] });
    await h.engine.send({ service: 'Prio', handler: 'go', input: { tenant: '', n: 0 } });
    await until(async () => order.length === 1, 'the first started');
    for (const [n, prio] of [
      [1, 0],
      [2, 5],
      [3, -1],
      [4, 5],
    ] as const)
      await h.engine.send({ service: 'Prio', handler: 'go', input: { tenant: '', n, prio } });
    release();
    await until(async () => order.length === 5, 'all 5 ran');
    expect(order).toEqual([0, 2, 4, 1, 3]);
  });
});

describe('queued work and a restart', () => {
  it('keeps waiting invocations in the store and runs them after a restart, within the limit', async () => {
    const rec = recorder();
    const Q = queue({ name: 'durable', concurrency: 2 });
    let block = true;
    const Svc = service({
      name: 'Durable',
      handlers: {
        go: handler({ queue: Q }, async (ctx: Context, j: Job) => {
          await ctx.run('go', async () => {
            if (block) await new Promise(() => undefined); // hangs until the engine stops
            await rec.run(j, 2);
          });
          return j.n;
        }),
      },
    });
    h = await harness({ services: [Svc] });
    for (let n = 0; n < 10; n++)
      await h.engine.send({ service: 'Durable', handler: 'go', input: { tenant: '', n } });
    await until(async () => (await h!.engine.queues())[0]?.running === 2, '2 running');
    const before = (await h.engine.queues())[0]!;
    expect(before).toMatchObject({ waiting: 8, running: 2 });
    expect(before.oldestWaitingSince).toBeTypeOf('number');
    block = false;
    await h.restart();
    await until(async () => {
      const done = await h!.engine.listInvocations({ status: 'completed' });
      return done.invocations.length === 10;
    }, 'all 10 completed');
    expect(rec.peak.total).toBeLessThanOrEqual(2);
    expect(rec.order).toHaveLength(10);
  });
});

describe('a delayed send to a queued handler', () => {
  it('waits for its time, then for its turn in the queue', async () => {
    const ran: number[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const Q = queue({ name: 'later', concurrency: 1 });
    const Svc = service({
      name: 'Later',
      handlers: {
        go: handler({ queue: Q }, async (ctx: Context, n: number) => {
          await ctx.run('go', async () => {
            ran.push(n);
            if (n === 0) await held;
          });
        }),
      },
    });
    h = await harness({ services: [Svc] });
    await h.engine.send({ service: 'Later', handler: 'go', input: 0 });
    const later = await h.engine.send({
      service: 'Later',
      handler: 'go',
      input: 1,
      delayMs: 60_000,
    });
    await until(async () => ran.length === 1, 'the first ran');
    expect((await h.engine.getInvocation(later.invocationId))?.status).toBe('scheduled');
    await h.clock.advance('1m');
    await until(
      async () => (await h!.engine.getInvocation(later.invocationId))?.status === 'queued',
      'the delayed one queued once due',
    );
    expect(ran).toEqual([0]);
    release();
    await until(async () => ran.length === 2, 'the delayed one ran');
    expect(ran).toEqual([0, 1]);
  });
});

describe('operator actions on queued work', () => {
  it('pauses a queued invocation out of the queue, and a resume and a retry-now file it again', async () => {
    const ran: number[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const Q = queue({ name: 'ops', concurrency: 1 });
    const Svc = service({
      name: 'Ops',
      handlers: {
        go: handler({ queue: Q }, async (ctx: Context, n: number) => {
          await ctx.run('go', async () => {
            ran.push(n);
            if (n === 0) await held;
          });
        }),
      },
    });
    h = await harness({ services: [Svc] });
    await h.engine.send({ service: 'Ops', handler: 'go', input: 0 });
    const paused = await h.engine.send({ service: 'Ops', handler: 'go', input: 1 });
    const delayed = await h.engine.send({
      service: 'Ops',
      handler: 'go',
      input: 2,
      delayMs: 3_600_000,
    });
    await until(async () => ran.length === 1, 'the first ran');
    expect((await h.engine.pause(paused.invocationId)).status).toBe('paused');
    expect((await h.engine.retryNow(delayed.invocationId)).status).toBe('queued');
    release();
    await until(async () => ran.length === 2, 'the retried one ran');
    expect(ran).toEqual([0, 2]);
    expect((await h.engine.getInvocation(paused.invocationId))?.status).toBe('paused');
    expect((await h.engine.resumePaused(paused.invocationId)).status).toBe('queued');
    await until(async () => ran.length === 3, 'the resumed one ran');
    expect(ran).toEqual([0, 2, 1]);
  });
});

describe('cancelling a queued invocation', () => {
  it('ends it without running it, and the queue goes on', async () => {
    const ran: number[] = [];
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const Q = queue({ name: 'cancel', concurrency: 1 });
    const Svc = service({
      name: 'Cancel',
      handlers: {
        go: handler({ queue: Q }, async (ctx: Context, n: number) => {
          await ctx.run('go', async () => {
            ran.push(n);
            if (n === 0) await held;
          });
        }),
      },
    });
    h = await harness({ services: [Svc] });
    await h.engine.send({ service: 'Cancel', handler: 'go', input: 0 });
    const second = await h.engine.send({ service: 'Cancel', handler: 'go', input: 1 });
    await h.engine.send({ service: 'Cancel', handler: 'go', input: 2 });
    await until(async () => ran.length === 1, 'the first ran');
    expect((await h.engine.getInvocation(second.invocationId))?.status).toBe('queued');
    await h.engine.cancel(second.invocationId);
    release();
    await until(async () => ran.length === 2, 'the third ran');
    await until(async () => (await h!.engine.queues())[0]?.running === 0, 'nothing running');
    expect(ran).toEqual([0, 2]);
    const info = await h.engine.getInvocation(second.invocationId);
    expect(info?.status).toBe('failed');
    expect(info?.error?.code).toBe('cancelled');
  });
});

describe('bad declarations and inputs', () => {
  it('refuses a queue on an exclusive object handler, naming the handler', () => {
    const { dir, cleanup } = tempDir();
    try {
      const Q = queue({ name: 'objects', concurrency: 1 });
      const Obj = object({
        name: 'Obj',
        handlers: { add: handler({ queue: Q }, async () => 1) },
      });
      expect(
        () => new Engine({ services: [Obj], store: openSqliteStore({ path: `${dir}/k.db` }) }),
      ).toThrow(/Obj\.add is an exclusive object handler/);
    } finally {
      cleanup();
    }
  });

  it('refuses bad limits with a message naming the queue', () => {
    expect(() => queue({ name: 'q', concurrency: 0 })).toThrow(/queue "q": concurrency/);
    expect(() => queue({ name: 'q', rateLimit: { limit: 5, period: 'soon' } })).toThrow(
      /queue "q": rateLimit.period/,
    );
    expect(() => queue({ name: '' })).toThrow(/needs a name/);
  });

  it('answers a queueKey that throws as a validation error, storing nothing', async () => {
    const Q = queue({ name: 'keys' });
    const Svc = service({
      name: 'Keys',
      handlers: {
        go: handler(
          {
            queue: Q,
            queueKey: (j: Job) => {
              if (!j.tenant) throw new Error('no tenant');
              return j.tenant;
            },
          },
          async () => 1,
        ),
      },
    });
    h = await harness({ services: [Svc] });
    await expect(
      h.engine.send({ service: 'Keys', handler: 'go', input: { n: 1 } }),
    ).rejects.toMatchObject({
      code: 'validation_failed',
      message: expect.stringMatching(/no tenant/),
    });
    const all = await h.engine.listInvocations({});
    expect(all.invocations).toHaveLength(0);
  });
});

describe('the admin API', () => {
  it('lists the queues with their limits and figures, and answers 404 for an unknown one', async () => {
    const { serveAdmin } = await import('../../src/index.js');
    const Q = queue({
      name: 'seen',
      concurrency: 2,
      perKey: { rateLimit: { limit: 3, period: '1m' } },
    });
    const Svc = service({
      name: 'Seen',
      handlers: { go: handler({ queue: Q }, async () => new Promise<never>(() => undefined)) },
    });
    h = await harness({ services: [Svc] });
    for (let n = 0; n < 3; n++) await h.engine.send({ service: 'Seen', handler: 'go', input: n });
    await until(async () => (await h!.engine.queues())[0]?.running === 2, '2 running');
    const server = await serveAdmin(h.engine, { port: 0 });
    try {
      const all = await fetch(`${server.url}/queues`);
      expect(all.status).toBe(200);
      const body = (await all.json()) as { queues: unknown[] };
      expect(body.queues).toEqual([
        {
          name: 'seen',
          limits: { concurrency: 2, perKey: { rateLimit: { limit: 3, periodMs: 60_000 } } },
          waiting: 1,
          running: 2,
          keys: 1,
          oldestWaitingSince: expect.any(Number),
        },
      ]);
      const one = await fetch(`${server.url}/queues/seen`);
      expect(((await one.json()) as { name: string }).name).toBe('seen');
      const missing = await fetch(`${server.url}/queues/nope`);
      expect(missing.status).toBe(404);
      expect(((await missing.json()) as { message: string }).message).toMatch(/queues are seen/);
      const post = await fetch(`${server.url}/queues`, { method: 'POST' });
      expect(post.status).toBe(405);
    } finally {
      await server.close();
    }
  });
});
