import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, inject, it } from 'vitest';
import { service } from '../../src/index.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { publish } from '../../src/webhooks/index.js';
import { until } from '../helpers.js';
import { hooked, receiver, verifiesIndependently, type Hooked, type Receiver } from './helpers.js';

/** The same outbound path on PostgreSQL: records, ordering, breaker state and retries. */
const url = inject('postgresUrl');
const schema = `keel_webhooks_${randomBytes(4).toString('hex')}`;
let h: Hooked | undefined;
let r: Receiver | undefined;
afterEach(async () => {
  await h?.close();
  await r?.close();
  h = undefined;
  r = undefined;
});
afterAll(async () => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

const Events = service({
  name: 'Events',
  handlers: { emit: async (ctx, n: number) => publish(ctx, 'thing.happened', { n }) },
});

describe('outbound webhooks on PostgreSQL', () => {
  it('delivers, logs newest first, opens the breaker, dead-letters and retries', async () => {
    h = await hooked(
      [Events],
      { retry: { schedule: [] }, breaker: { failures: 2 } },
      undefined,
      () => openPostgresStore({ url, schema }),
    );
    let up = false;
    r = await receiver(() => ({ status: up ? 200 : 503 }));
    const ep = (await h.api('POST', '/webhooks', { url: r.url })).json;
    for (let n = 0; n < 3; n++) {
      await h.engine.client(Events).emit(n);
      await h.clock.advance('1s');
      await until(
        async () =>
          (await h!.api('GET', `/webhooks/${ep.id}/deliveries`)).json.deliveries.length === n + 1,
        `event ${n}`,
      );
    }
    const log = (await h.api('GET', `/webhooks/${ep.id}/deliveries`)).json.deliveries;
    const ns: number[] = [];
    for (const d of log)
      ns.push((await h.api('GET', `/webhooks/deliveries/${d.id}`)).json.payload.data.n);
    expect(ns).toEqual([2, 1, 0]); // newest first
    expect(log.map((d: any) => d.status)).toEqual(['failed', 'failed', 'failed']);
    // Two failures opened the breaker: the third was not sent.
    expect(r.requests).toHaveLength(2);
    expect(log[0].attempts[0].error_code).toBe('circuit_open');
    expect((await h.api('GET', `/webhooks/${ep.id}`)).json.circuit_state).toBe('open');
    const state = await h.engine.store.getKv('keel.webhooks.breakers', ep.id);
    expect(state?.value).toMatchObject({ status: 'open' });

    up = true;
    const retried = await h.api('POST', `/webhooks/deliveries/${log[0].id}/retry`);
    expect(retried.json.status).toBe('delivered');
    expect((await h.api('GET', `/webhooks/${ep.id}`)).json.circuit_state).toBe('closed');
    expect(verifiesIndependently(ep.secret, r.requests[2]!)).toBe(true);
  });
});
