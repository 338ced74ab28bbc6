import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, expect, inject, it } from 'vitest';
import { Engine, handler, queue, service, type Context } from '../../src/index.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import type { Store } from '../../src/store/types.js';
import { gate, until } from '../helpers.js';

/**
 * Torture seed f9caad8a (PostgreSQL, stalls): the start timer of a delayed send to a queued
 * handler fired in a process that, while it read the row, rejoined the cluster under a new id
 * (a stall put its lease in doubt). The row named the old id, the timer took it for another
 * process's and started it as an ordinary delayed start: `pending`, in no queue. Adopted back
 * as an orphan, it ran without admission, next to the invocation holding the only slot. The
 * timer must file it in its queue whoever owns the row.
 */
const url = inject('postgresUrl');
const schema = `keel_qrejoin_${randomBytes(4).toString('hex')}`;
const admin = new pg.Pool({ connectionString: url, max: 1 });
let engine: Engine | undefined;

afterAll(async () => {
  await engine?.stop().catch(() => undefined);
  await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await admin.end();
});

/** A store whose first read of a `scheduled` row, once armed, waits for `paused` after reading. */
function pausingScheduledRead(
  real: Store,
  armed: () => boolean,
  onRead: () => void,
  paused: Promise<void>,
): Store {
  let done = false;
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'getInvocation')
        return async (id: string) => {
          const row = await target.getInvocation(id);
          if (!done && armed() && row?.status === 'scheduled') {
            done = true;
            onRead();
            await paused;
          }
          return row;
        };
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

it('a delayed send to a queued handler whose timer fires across a rejoin waits in its queue', async () => {
  // Per invocation: an attempt the fence abandons never leaves, its next attempt is the same.
  const inside = new Set<string>();
  let peak = 0;
  const hold = gate();
  const Q = queue({ name: 'one', concurrency: 1 });
  const Svc = service({
    name: 'QRejoin',
    handlers: {
      work: handler({ queue: Q }, async (ctx: Context, input: { hold: boolean }) => {
        inside.add(ctx.invocationId);
        peak = Math.max(peak, inside.size);
        await ctx.run('body', () => (input.hold ? hold.promise : undefined));
        inside.delete(ctx.invocationId);
        return input.hold;
      }),
    },
  });
  let armed = false;
  const read = gate();
  const paused = gate();
  const real = await openPostgresStore({ url, schema });
  const store = pausingScheduledRead(real, () => armed, read.open, paused.promise);
  engine = new Engine({ services: [Svc], store, lease: '2s', logger: () => undefined });
  await engine.start();
  const holder = await engine.send({ service: 'QRejoin', handler: 'work', input: { hold: true } });
  await until(async () => inside.size === 1, 'the holder to take the only slot');
  armed = true;
  const delayed = await engine.send({
    service: 'QRejoin',
    handler: 'work',
    input: { hold: false },
    delayMs: 200,
  });
  // Its start timer fired and read the row (scheduled, this process's id): held there while
  // the process loses its registration and joins again under a new id.
  await read.promise;
  const before = engine.processId;
  await admin.query(`DELETE FROM ${schema}.processes WHERE id = $1`, [before]);
  await until(async () => engine!.processId !== before, 'a rejoin under a new id');
  paused.open();
  const status = async () =>
    (
      await admin.query<{ status: string }>(
        `SELECT status FROM ${schema}.invocations WHERE id = $1`,
        [delayed.invocationId],
      )
    ).rows[0]?.status;
  await until(async () => (await status()) !== 'scheduled', 'the timer to go on');
  expect(await status()).toBe('queued');
  hold.open();
  await until(
    async () => (await engine!.getInvocation(delayed.invocationId))?.status === 'completed',
    'the delayed invocation to run once the slot is free',
  );
  expect((await engine.getInvocation(holder.invocationId))?.status).toBe('completed');
  expect(peak).toBe(1);
}, 60_000);
