import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { serveAdmin, type AdminServer } from '../../src/admin/index.js';
import {
  handler,
  object,
  service,
  workflow,
  type Context,
  type ObjectContext,
} from '../../src/index.js';
import { invocationsOf, scheduleHarness, Tick, type ScheduleHarness } from './helpers.js';

/**
 * The schedules' admin API over real HTTP: create, list, get, pause, resume, trigger, delete;
 * every bad request answers 400 (or 409, 415, 403, 405) with a clear message and stores nothing.
 */

const ADMIN = 'a'.repeat(40);
const VIEWER = 'v'.repeat(40);

const Typed = service({
  name: 'Typed',
  handlers: {
    run: handler({ input: z.object({ n: z.number() }) }, async (_ctx: Context, i) => i.n),
  },
});
const Counter = object({
  name: 'Counter',
  handlers: { add: async (_ctx: ObjectContext, n: number) => n },
});

const Report = workflow({ name: 'Report', run: async () => 'done' });

let h: ScheduleHarness;
let admin: AdminServer;
beforeEach(async () => {
  h = await scheduleHarness([], Date.UTC(2026, 0, 5, 0, 0, 10), [Tick, Typed, Counter, Report]);
  admin = await serveAdmin(h.engine, { port: 0, token: ADMIN, viewerToken: VIEWER });
});
afterEach(async () => {
  await admin.close();
  await h.close();
});

async function call(
  method: string,
  path: string,
  body?: unknown,
  options: { token?: string; type?: string | null; raw?: string } = {},
): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = { authorization: `Bearer ${options.token ?? ADMIN}` };
  if (options.type !== null && (body !== undefined || options.raw !== undefined))
    headers['content-type'] = options.type ?? 'application/json';
  const res = await fetch(`${admin.url}${path}`, {
    method,
    headers,
    ...(options.raw !== undefined
      ? { body: options.raw }
      : body === undefined
        ? {}
        : { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: await res.json() };
}

const valid = {
  name: 'hourly-report',
  cron: '0 * * * *',
  timezone: 'Europe/Berlin',
  target: { service: 'Tick', handler: 'hit' },
  input: { report: 'sales' },
  missed: { all: 3 },
  jitter: '30s',
};

describe('the schedules admin API', () => {
  it('creates, lists, reads, pauses, resumes, triggers and deletes', async () => {
    const created = await call('POST', '/schedules', valid);
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'hourly-report',
      cron: '0 * * * *',
      timezone: 'Europe/Berlin',
      target: { service: 'Tick', handler: 'hit' },
      input: { report: 'sales' },
      missed: { all: 3 },
      jitterMs: 30_000,
      paused: false,
      source: 'api',
      createdAt: '2026-01-05T00:00:10.000Z',
      nextTick: '2026-01-05T01:00:00.000Z',
    });
    const fireAt = Date.parse(created.body.nextFireAt);
    expect(fireAt - Date.parse(created.body.nextTick)).toBeGreaterThanOrEqual(0);
    expect(fireAt - Date.parse(created.body.nextTick)).toBeLessThan(30_000);

    const list = await call('GET', '/schedules', undefined, { token: VIEWER });
    expect(list.status).toBe(200);
    expect(list.body.schedules).toEqual([created.body]);
    expect((await call('GET', '/schedules/hourly-report')).body).toEqual(created.body);

    const paused = await call('POST', '/schedules/hourly-report/pause');
    expect(paused.status).toBe(200);
    expect(paused.body.paused).toBe(true);
    expect(paused.body.nextTick).toBeUndefined();
    const resumed = await call('POST', '/schedules/hourly-report/resume');
    expect(resumed.body).toMatchObject({ paused: false, nextTick: '2026-01-05T01:00:00.000Z' });

    const fired = await call('POST', '/schedules/hourly-report/trigger');
    expect(fired.status).toBe(202);
    expect(fired.body.idempotencyKey).toMatch(/^schedule:hourly-report:manual:[0-9a-f-]{36}$/);
    expect(fired.body.existing).toBe(false);
    await h.clock.advance(0);
    const runs = await invocationsOf(h.engine);
    expect(runs.map((r) => [r.id, r.idempotencyKey, r.status])).toEqual([
      [fired.body.invocationId, fired.body.idempotencyKey, 'completed'],
    ]);
    // A manual trigger leaves the schedule's ticks alone.
    expect((await call('GET', '/schedules/hourly-report')).body.lastTick).toBeUndefined();

    expect(await call('DELETE', '/schedules/hourly-report')).toEqual({
      status: 200,
      body: { deleted: true, name: 'hourly-report' },
    });
    const gone = await call('GET', '/schedules/hourly-report');
    expect(gone.status).toBe(404);
    expect(gone.body.code).toBe('schedule_not_found');
    expect((await call('GET', '/schedules')).body.schedules).toEqual([]);
  });

  it('refuses bad schedules with 400 and a message naming the field, storing nothing', async () => {
    const bad: Array<[unknown, string, string, RegExp]> = [
      [{ ...valid, cron: 'every hour' }, 'invalid_cron', 'cron', /five or six/],
      [{ ...valid, cron: '61 * * * *' }, 'invalid_cron', 'cron', /minute/],
      [{ ...valid, cron: '0 0 31 2 *' }, 'invalid_cron', 'cron', /never fires/],
      [{ ...valid, cron: 7 }, 'invalid_cron', 'cron', /pattern/],
      [{ ...valid, timezone: 'Mars/Olympus' }, 'invalid_timezone', 'timezone', /IANA/],
      [
        { ...valid, target: { service: 'Nope', handler: 'hit' } },
        'unknown_target',
        'target',
        /no service, object or workflow named "Nope".*Tick/,
      ],
      [
        { ...valid, target: { service: 'Tick', handler: 'miss' } },
        'unknown_target',
        'target',
        /has no handler "miss"; its handlers are: hit/,
      ],
      [
        { ...valid, target: { service: 'Counter', handler: 'add' } },
        'unknown_target',
        'target',
        /key is required/,
      ],
      [
        { ...valid, target: { service: 'Tick', handler: 'hit', key: 'k' } },
        'unknown_target',
        'target',
        /takes no key/,
      ],
      [
        { ...valid, target: { service: 'Typed', handler: 'run' }, input: { n: 'x' } },
        'invalid_input',
        'input',
        /n:/,
      ],
      [{ ...valid, missed: 'sometimes' }, 'invalid_schedule', 'missed', /"skip", "once"/],
      [{ ...valid, missed: { all: 0 } }, 'invalid_schedule', 'missed', /1 to 1000/],
      [{ ...valid, jitter: '2h' }, 'invalid_schedule', 'jitter', /at most 1h/],
      [{ ...valid, jitter: 'soon' }, 'invalid_schedule', 'jitter', /duration/],
      [{ ...valid, name: 'has space' }, 'invalid_schedule', 'name', /letters, digits/],
      [{ ...valid, name: '' }, 'invalid_schedule', 'name', /letters, digits/],
      [{ ...valid, paused: 'yes' }, 'invalid_schedule', 'paused', /true or false/],
      [{ ...valid, every: '1h' }, 'invalid_schedule', 'every', /unknown field "every"/],
      [[valid], 'invalid_schedule', '', /JSON object/],
      [null, 'invalid_schedule', '', /JSON object/],
    ];
    for (const [body, code, field, message] of bad) {
      const res = await call('POST', '/schedules', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.code, JSON.stringify(body)).toBe(code);
      if (field) expect(res.body.field).toBe(field);
      expect(res.body.message).toMatch(message);
    }
    const malformed = await call('POST', '/schedules', undefined, { raw: '{"name":' });
    expect([malformed.status, malformed.body.code]).toEqual([400, 'invalid_json']);
    const untyped = await call('POST', '/schedules', undefined, { raw: '{}', type: 'text/plain' });
    expect([untyped.status, untyped.body.code]).toEqual([415, 'unsupported_media_type']);
    expect(await h.engine.store.listKv('keel.schedules')).toEqual([]);
    expect(await invocationsOf(h.engine)).toEqual([]);
  });

  it('answers conflicts, unknown names, wrong methods and the read-only token as such', async () => {
    expect((await call('POST', '/schedules', valid)).status).toBe(201);
    const again = await call('POST', '/schedules', { ...valid, cron: '*/5 * * * *' });
    expect([again.status, again.body.code]).toEqual([409, 'schedule_exists']);
    expect((await call('GET', '/schedules/hourly-report')).body.cron).toBe('0 * * * *');
    for (const [method, path] of [
      ['POST', '/schedules/nope/pause'],
      ['POST', '/schedules/nope/resume'],
      ['POST', '/schedules/nope/trigger'],
      ['DELETE', '/schedules/nope'],
      ['GET', '/schedules/nope'],
    ] as const) {
      const res = await call(method, path);
      expect([res.status, res.body.code], `${method} ${path}`).toEqual([404, 'schedule_not_found']);
    }
    expect((await call('POST', '/schedules/hourly-report/explode')).status).toBe(404);
    expect((await call('GET', '/schedules/hourly-report/pause')).status).toBe(405);
    expect((await call('PUT', '/schedules')).status).toBe(405);
    const viewer = await call('POST', '/schedules/hourly-report/pause', undefined, {
      token: VIEWER,
    });
    expect([viewer.status, viewer.body.code]).toEqual([403, 'forbidden']);
    const created = await call('POST', '/schedules', { ...valid, name: 'x' }, { token: VIEWER });
    expect(created.status).toBe(403);
    expect((await call('GET', '/schedules/hourly-report')).body.paused).toBe(false);
    expect((await call('GET', '/schedules')).body.schedules).toHaveLength(1);
  });

  it('gives a workflow run a key per tick, so every tick starts a run; an object keeps its key', async () => {
    for (const target of [
      { service: 'Report', handler: 'run' },
      { service: 'Report', handler: 'run', key: 'daily' },
    ]) {
      const res = await call('POST', '/schedules', {
        name: `wf-${target.key ?? 'plain'}`,
        cron: '*/20 * * * * *',
        target,
      });
      expect(res.status).toBe(201);
    }
    expect(
      (
        await call('POST', '/schedules', {
          name: 'obj',
          cron: '*/20 * * * * *',
          target: { service: 'Counter', handler: 'add', key: 'c1' },
          input: 2,
        })
      ).status,
    ).toBe(201);
    await h.clock.advance('30s'); // 00:00:20, 00:00:40
    const runs = await invocationsOf(h.engine, 'Counter');
    expect(runs.map((r) => [r.key, r.idempotencyKey])).toEqual([
      ['c1', 'schedule:obj:2026-01-05T00:00:20.000Z'],
      ['c1', 'schedule:obj:2026-01-05T00:00:40.000Z'],
    ]);
    const reports = await invocationsOf(h.engine, 'Report');
    expect(reports.map((r) => [r.key, r.status]).sort()).toEqual([
      ['daily@2026-01-05T00:00:20.000Z', 'completed'],
      ['daily@2026-01-05T00:00:40.000Z', 'completed'],
      ['wf-plain@2026-01-05T00:00:20.000Z', 'completed'],
      ['wf-plain@2026-01-05T00:00:40.000Z', 'completed'],
    ]);
  });
});
