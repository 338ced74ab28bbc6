import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startApp, type App } from '../src/app.js';
import { object, service, TerminalError } from '../src/index.js';
import { tempDir } from './helpers.js';

/**
 * `GET /invocations` filters over real HTTP, on SQLite and on PostgreSQL: handler, error code,
 * created time (ISO and epoch ms), several statuses, their combinations with cursor paging,
 * and a 400 naming the problem for every bad value.
 */
const Shop = service({
  name: 'Shop',
  handlers: {
    buy: async (_ctx, n: number) => n,
    refund: async (_ctx, n: number) => {
      throw new TerminalError(`refund ${n} refused`, { code: n % 2 ? 'too_late' : 'no_order' });
    },
  },
});
const Cart = object({
  name: 'Cart',
  handlers: { add: async (_ctx, n: number) => n },
});

interface Info {
  id: string;
  service: string;
  handler: string;
  key?: string;
  status: string;
  createdAt: string;
  error?: { code?: string };
}

for (const store of ['sqlite', 'postgres'] as const) {
  describe(`GET /invocations filters (${store})`, () => {
    const tmp = tempDir('keel-admin-list-');
    const schema = `keel_list_${randomBytes(4).toString('hex')}`;
    let app: App;
    let all: Info[] = [];

    beforeAll(async () => {
      app = await startApp({
        services: [Shop, Cart],
        ...(store === 'sqlite'
          ? { db: join(tmp.dir, 'keel.db') }
          : { databaseUrl: inject('postgresUrl'), databaseSchema: schema }),
        port: 0,
        adminPort: 0,
        logger: () => undefined,
      });
      const k = app.engine.client(Shop);
      for (let i = 0; i < 12; i++) {
        await k.buy(i);
        await k.refund(i).catch(() => undefined);
        await app.engine.client(Cart, `c${i % 3}`).add(i);
      }
      all = await list('?limit=1000').then((r) => r.body.invocations as Info[]);
    }, 120_000);
    afterAll(async () => {
      await app?.close();
      tmp.cleanup();
      if (store === 'postgres') {
        const c = new pg.Client({ connectionString: inject('postgresUrl') });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await c.end();
      }
    });

    async function list(query: string) {
      const res = await fetch(`${app.admin.url}/invocations${query}`);
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    }

    /** Every page of a query, through nextCursor. */
    async function pages(query: string, limit: number): Promise<string[]> {
      const ids: string[] = [];
      let cursor: string | undefined;
      for (let n = 0; n < 100; n++) {
        const r = await list(
          `?${query}${query ? '&' : ''}limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`,
        );
        expect(r.status).toBe(200);
        ids.push(...(r.body.invocations as Info[]).map((i) => i.id));
        cursor = r.body.nextCursor as string | undefined;
        if (cursor === undefined) break;
      }
      return ids;
    }

    it('has the mix the filters need', () => {
      expect(all).toHaveLength(36);
    });

    const cases: Array<[string, (i: Info) => boolean]> = [
      ['handler=refund', (i) => i.handler === 'refund'],
      ['service=Shop&handler=buy', (i) => i.service === 'Shop' && i.handler === 'buy'],
      ['error=too_late', (i) => i.error?.code === 'too_late'],
      ['status=failed,completed', (i) => i.status === 'failed' || i.status === 'completed'],
      [
        'status=failed&error=no_order',
        (i) => i.status === 'failed' && i.error?.code === 'no_order',
      ],
      ['service=Cart&key=c1', (i) => i.service === 'Cart' && i.key === 'c1'],
    ];
    for (const [query, keep] of cases) {
      it(`${query}, paged 4 at a time`, async () => {
        const expected = all.filter(keep).map((i) => i.id);
        expect(expected.length).toBeGreaterThan(0);
        expect(await pages(query, 4)).toEqual(expected);
      });
    }

    it('since and until bound createdAt, as ISO or epoch ms, inclusive', async () => {
      const times = all.map((i) => Date.parse(i.createdAt));
      const mid = times[Math.floor(times.length / 2)]!;
      const since = await pages(`since=${new Date(mid).toISOString()}`, 5);
      expect(since).toEqual(all.filter((i) => Date.parse(i.createdAt) >= mid).map((i) => i.id));
      const until = await pages(`until=${mid}&handler=buy`, 3);
      expect(until).toEqual(
        all.filter((i) => Date.parse(i.createdAt) <= mid && i.handler === 'buy').map((i) => i.id),
      );
      expect(until.length).toBeGreaterThan(0);
    });

    it('answers 400 naming the bad value', async () => {
      const bad: Array<[string, RegExp]> = [
        ['?status=failed,nope', /unknown status "nope"/],
        ['?status=failed,', /empty item/],
        ['?since=yesterday', /since "yesterday" is not a time/],
        ['?until=2026-12-07T10:00:00', /ISO date-time with its zone/],
        ['?since=2000&until=1000', /since \(2000\) is after until \(1000\)/],
        ['?error=', /"error" is empty/],
        ['?handler=a&handler=b', /"handler" is given 2 times/],
        ['?color=red', /unknown query parameter "color".*handler, key, error, since, until/],
        ['?cursor=abc', /cursor "abc" is not valid/],
      ];
      for (const [q, message] of bad) {
        const r = await list(q);
        expect({ q, status: r.status }).toEqual({ q, status: 400 });
        expect(r.body.message).toMatch(message);
      }
    });
  });
}
