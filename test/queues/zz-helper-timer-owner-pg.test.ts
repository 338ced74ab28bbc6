import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, expect, inject, it } from 'vitest';
import { Engine, handler, queue, service, type Context } from '../../src/index.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { until } from '../helpers.js';

/**
 * TEMPORARY repro (torture seed f9caad8a): a delayed send to a queued handler whose start
 * timer fires in a process that is no longer the row's owner (it rejoined under a new id, or
 * the row was adopted) is started as an ordinary delayed start (pending, no queue item), and
 * later runs without admission, past the queue's concurrency.
 */
const url = inject('postgresUrl');
const schema = `keel_qtimer_${randomBytes(4).toString('hex')}`;
const admin = new pg.Pool({ connectionString: url, max: 1 });
let engine: Engine | undefined;

afterAll(async () => {
  await engine?.stop().catch(() => undefined);
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

it('a delayed queued send whose timer fires in a process that no longer owns it is not started outside the queue', async () => {
  let inside = 0;
  let peak = 0;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const Q = queue({ name: 'one', concurrency: 1 });
  const Svc = service({
    name: 'QTimer',
    handlers: {
      work: handler({ queue: Q }, async (ctx: Context, input: { hold: boolean }) => {
        inside++;
        peak = Math.max(peak, inside);
        try {
          if (input.hold) await ctx.run('hold', () => held);
          else await ctx.run('quick', () => 1);
        } finally {
          inside--;
        }
        return input.hold;
      }),
    },
  });
  const store = await openPostgresStore({ url, schema });
  engine = new Engine({ services: [Svc], store, lease: '2s', logger: () => undefined });
  await engine.start();
  const holder = await engine.send({ service: 'QTimer', handler: 'work', input: { hold: true } });
  await until(async () => inside === 1, 'the holder to run');
  await admin.query(
    `INSERT INTO ${schema}.processes (id, lease_until) VALUES ('proc_other', $1)`,
    [Date.now() + 600_000],
  );
  const delayed = await engine.send({
    service: 'QTimer',
    handler: 'work',
    input: { hold: false },
    delay: '1500ms',
  });
  // Another (live) process owns the delayed row now, as after an adoption or this process's
  // own rejoin under a new id.
  await admin.query(`UPDATE ${schema}.invocations SET owner = 'proc_other' WHERE id = $1`, [
    delayed.invocationId,
  ]);
  await new Promise((r) => setTimeout(r, 2500));
  const after = await admin.query(`SELECT status, owner FROM ${schema}.invocations WHERE id = $1`, [
    delayed.invocationId,
  ]);
  console.log('after the timer fired in the non-owner:', after.rows[0]);
  // proc_other dies: this process reaps it and takes over the delayed invocation.
  await admin.query(`DELETE FROM ${schema}.processes WHERE id = 'proc_other'`);
  await new Promise((r) => setTimeout(r, 3000));
  const later = await admin.query(`SELECT status, owner FROM ${schema}.invocations WHERE id = $1`, [
    delayed.invocationId,
  ]);
  console.log('after the takeover:', later.rows[0], 'peak inside', peak);
  expect(peak).toBe(1);
  release();
  await until(
    async () => (await engine!.getInvocation(holder.invocationId))?.status === 'completed',
    'the holder to finish',
  );
});
