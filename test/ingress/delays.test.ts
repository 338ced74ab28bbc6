import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveAdmin, service, type AdminServer } from '../../src/index.js';
import { newInvocationId } from '../../src/engine/ids.js';
import { MAX_DELAY_MS } from '../../src/core/duration.js';
import { ingressHarness, request, type IngressHarness } from './helpers.js';

/**
 * Delays are bounded (365 days): a send beyond that is refused on the ingress and the TS API
 * alike, and a stored row with an absurd run-at (from an older version) never breaks a read.
 */

const Reminder = service({
  name: 'Reminder',
  handlers: {
    remind: async (_ctx, text: string) => text,
  },
});

/** Sends from inside a handler take the same bound. */
const Scheduler = service({
  name: 'Scheduler',
  handlers: {
    later: async (ctx, delay: string) =>
      ctx.serviceSendClient(Reminder, { delay }).remind('later').invocationId,
  },
});

let h: IngressHarness;
let admin: AdminServer;

beforeAll(async () => {
  h = await ingressHarness([Reminder, Scheduler]);
  admin = await serveAdmin(h.engine, { port: 0 });
});
afterAll(async () => {
  await admin?.close();
  await h?.close();
});

const count = async (): Promise<number> =>
  (await h.engine.store.listInvocations({ service: 'Reminder', limit: 100_000 })).length;

describe('the delay bound', () => {
  it('is 365 days', () => {
    expect(MAX_DELAY_MS).toBe(365 * 86_400_000);
  });

  it.each([
    ['99999999999d', '99999999999d'],
    ['a 400-digit number (Infinity)', '9'.repeat(400)],
    ['366d', '366d'],
    ['P400D', 'P400D'],
  ])('a delay of %s is a 400 invalid_delay and creates nothing', async (_what, delay) => {
    const before = await count();
    const r = await request(h.base, 'POST', `/Reminder/remind/send?delay=${delay}`, 'x');
    expect(r).toMatchObject({ status: 400, body: { code: 'invalid_delay' } });
    expect(r.body.message).toContain('365 days');
    expect(await count()).toBe(before);
  });

  it('365 days is accepted', async () => {
    const r = await request(h.base, 'POST', '/Reminder/remind/send?delay=365d', 'x');
    expect(r).toMatchObject({ status: 202, body: { status: 'scheduled' } });
  });

  it('a delay given twice is a 400 invalid_delay and creates nothing', async () => {
    const before = await count();
    const r = await request(h.base, 'POST', '/Reminder/remind/send?delay=1s&delay=1e309', 'x');
    expect(r).toMatchObject({ status: 400, body: { code: 'invalid_delay' } });
    expect(r.body.message).toContain('more than once');
    expect(await count()).toBe(before);
  });

  it('the TS API refuses it too, with code invalid_delay', async () => {
    const before = await count();
    await expect(
      h.engine.send({ service: 'Reminder', handler: 'remind', input: 'x', delayMs: 1e20 }),
    ).rejects.toMatchObject({ code: 'invalid_delay', status: 400 });
    await expect(
      h.engine.send({ service: 'Reminder', handler: 'remind', input: 'x', delayMs: -1 }),
    ).rejects.toMatchObject({ code: 'invalid_delay' });
    await expect(
      h.engine.sendClient(Reminder, undefined, { delay: '400d' }).remind('x').invocationId,
    ).rejects.toMatchObject({ code: 'invalid_delay' });
    expect(await count()).toBe(before);
  });

  it('a handler sending beyond the bound fails terminally with invalid_delay, not retried', async () => {
    const r = await request(h.base, 'POST', '/Scheduler/later', '1000d');
    expect(r).toMatchObject({ status: 400, body: { code: 'invalid_delay' } });
  });
});

describe('a stored row with an absurd run-at', () => {
  it('never breaks GET /invocations/{id} or an admin listing', async () => {
    const now = Date.now();
    const id = newInvocationId(now);
    // What an older version stored for ?delay=99999999999d.
    await h.engine.store.write([
      {
        op: 'invocation.insert',
        row: {
          id,
          service: 'Reminder',
          handler: 'remind',
          key: '',
          exclusive: false,
          status: 'scheduled',
          input: 'x',
          attempt: 0,
          retryIndex: -1,
          runAt: 8.64e18,
          createdAt: now,
          modifiedAt: now,
        },
      },
    ]);
    const got = await request(h.base, 'GET', `/invocations/${id}`);
    expect(got).toMatchObject({ status: 200, body: { id, status: 'scheduled' } });
    expect(typeof got.body.nextAttemptAt).toBe('string');
    const adminGot = await request(admin.url, 'GET', `/invocations/${id}`);
    expect(adminGot.status).toBe(200);
    const listed = await request(admin.url, 'GET', '/invocations?service=Reminder');
    expect(listed.status).toBe(200);
    expect(listed.body.invocations.map((i: { id: string }) => i.id)).toContain(id);
  });
});
