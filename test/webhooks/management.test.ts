import { afterEach, describe, expect, it } from 'vitest';
import { service } from '../../src/index.js';
import { publish } from '../../src/webhooks/index.js';
import { until } from '../helpers.js';
import { hooked, receiver, verifiesIndependently, type Hooked, type Receiver } from './helpers.js';

let h: Hooked | undefined;
const receivers: Receiver[] = [];
afterEach(async () => {
  await h?.close();
  h = undefined;
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

const Events = service({
  name: 'Events',
  handlers: {
    emit: async (ctx, input: { type: string; n: number }) =>
      publish(ctx, input.type, { n: input.n }),
  },
});

describe('management API', () => {
  it('creates endpoints with a secret shown once, lists, reveals, updates and deletes them', async () => {
    h = await hooked([Events]);
    const created = await h.api('POST', '/webhooks', {
      name: 'Order Notifications',
      url: 'http://127.0.0.1:9/orders',
      events: ['order.created', 'order.shipped', 'order.delivered'],
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({
      name: 'Order Notifications',
      url: 'http://127.0.0.1:9/orders',
      events: ['order.created', 'order.shipped', 'order.delivered'],
      is_active: true,
      is_healthy: true,
      circuit_state: 'closed',
    });
    const { id, secret } = created.json as { id: string; secret: string };
    expect(id).toMatch(/^ep_[0-9a-f]{20}$/);
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);

    const list = await h.api('GET', '/webhooks');
    expect(list.json.endpoints).toHaveLength(1);
    expect(JSON.stringify(list.json)).not.toContain(secret);
    expect(JSON.stringify((await h.api('GET', `/webhooks/${id}`)).json)).not.toContain(secret);
    expect((await h.api('GET', `/webhooks/${id}/secret`)).json).toEqual({ secret });
    expect(h.logs.join('\n')).not.toContain(secret);

    const updated = await h.api('PUT', `/webhooks/${id}`, {
      events: ['order.*'],
      name: 'All orders',
    });
    expect(updated.status).toBe(200);
    expect(updated.json).toMatchObject({ id, name: 'All orders', events: ['order.*'] });
    expect(updated.json.secret).toBeUndefined();

    expect((await h.api('DELETE', `/webhooks/${id}`)).json).toEqual({ deleted: id });
    expect((await h.api('GET', `/webhooks/${id}`)).status).toBe(404);
    expect((await h.api('DELETE', `/webhooks/${id}`)).status).toBe(404);
    expect((await h.api('GET', '/webhooks')).json.endpoints).toEqual([]);
  });

  it('answers bad input with 400 and a message naming what is wrong', async () => {
    h = await hooked([Events]);
    const cases: Array<[unknown, string, RegExp]> = [
      [{ events: ['a'] }, 'validation_failed', /url is required/],
      [{ url: 'ftp://example.com/x' }, 'unsupported_scheme', /http or https/],
      [{ url: 'not a url' }, 'invalid_url', /not an absolute URL/],
      [{ url: 'http://127.0.0.1:9/', active: true }, 'validation_failed', /unknown field "active"/],
      [{ url: 'http://127.0.0.1:9/', events: [] }, 'validation_failed', /non-empty array/],
      [{ url: 'http://127.0.0.1:9/', events: ['bad type!'] }, 'validation_failed', /events\[0\]/],
      [
        { url: 'http://127.0.0.1:9/', is_active: 'yes' },
        'validation_failed',
        /is_active must be a boolean/,
      ],
      [[1, 2], 'validation_failed', /JSON object/],
    ];
    for (const [body, code, message] of cases) {
      const res = await h.api('POST', '/webhooks', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.code).toBe(code);
      expect(res.json.message).toMatch(message);
    }
    const wrongType = await fetch(`${h.admin.url}/webhooks`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: 'url=x',
    });
    expect(wrongType.status).toBe(415);
    expect((await h.api('PATCH', '/webhooks')).status).toBe(405);
    expect(
      (await h.api('GET', '/webhooks/ep_00000000000000000000/deliveries?limit=0')).status,
    ).toBe(404);
    const ep = (await h.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/' })).json;
    const bad = await h.api('GET', `/webhooks/${ep.id}/deliveries?status=lost`);
    expect(bad.status).toBe(400);
    expect(bad.json.message).toMatch(/status must be one of pending, delivered, failed/);
    expect((await h.api('POST', `/webhooks/${ep.id}/replay`, {})).status).toBe(400);
    expect((await h.api('POST', '/webhooks/deliveries/dlv_nope/retry')).status).toBe(404);
  });

  it('sends a test event and reports how it went', async () => {
    h = await hooked([Events]);
    const r = await receiver();
    receivers.push(r);
    const ep = (await h.api('POST', '/webhooks', { url: r.url, events: ['order.shipped'] })).json;
    const test = await h.api('POST', `/webhooks/${ep.id}/test`);
    expect(test.status).toBe(200);
    expect(test.json).toMatchObject({
      event_type: 'webhook.test',
      status: 'delivered',
      test: true,
    });
    expect(test.json.attempts[0].response_status_code).toBe(200);
    expect(r.requests).toHaveLength(1);
    expect(verifiesIndependently(ep.secret, r.requests[0]!)).toBe(true);
    expect(JSON.parse(r.requests[0]!.body)).toMatchObject({ type: 'webhook.test' });
  });

  it('lists deliveries newest first with paging and a status filter, and replays failures since a time', async () => {
    h = await hooked([Events], { retry: { schedule: [] } }); // one attempt, then dead-lettered
    let up = false;
    const r = await receiver(() => ({ status: up ? 200 : 500 }));
    receivers.push(r);
    const ep = (await h.api('POST', '/webhooks', { url: r.url })).json;
    const emit = (n: number) => h!.engine.client(Events).emit({ type: 'thing.happened', n });
    await emit(0);
    await h.clock.advance('2h');
    for (let n = 1; n <= 4; n++) {
      await emit(n);
      await h.clock.advance('1m');
    }
    await until(async () => {
      const page = (await h!.api('GET', `/webhooks/${ep.id}/deliveries?status=failed`)).json;
      return page.deliveries.length === 5;
    }, 'five dead letters');

    const first = (await h.api('GET', `/webhooks/${ep.id}/deliveries?limit=2`)).json;
    expect(first.deliveries.map((d: any) => d.status)).toEqual(['failed', 'failed']);
    const bodies = async (cursor?: string) => {
      const page = (
        await h!.api(
          'GET',
          `/webhooks/${ep.id}/deliveries?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        )
      ).json;
      return page as { deliveries: any[]; next_cursor?: string };
    };
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await bodies(cursor);
      seen.push(...page.deliveries.map((d) => d.created_at as string));
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toHaveLength(5);
    expect([...seen].sort().reverse()).toEqual(seen); // newest first

    // Replay only the failures of the last hour: the four recent ones, not the first.
    up = true;
    const replay = await h.api('POST', `/webhooks/${ep.id}/replay`, { since: '1h' });
    expect(replay.status).toBe(202);
    expect(replay.json.replayed).toBe(4);
    await until(async () => {
      const page = (await h!.api('GET', `/webhooks/${ep.id}/deliveries?status=delivered`)).json;
      return page.deliveries.length === 4;
    }, 'four replayed');
    const stillFailed = (await h.api('GET', `/webhooks/${ep.id}/deliveries?status=failed`)).json;
    expect(stillFailed.deliveries).toHaveLength(1);
    expect(JSON.parse(r.requests[0]!.body).data).toEqual({ n: 0 });
    const one = (await h.api('GET', `/webhooks/deliveries/${stillFailed.deliveries[0].id}`)).json;
    expect(one.payload).toMatchObject({ type: 'thing.happened', data: { n: 0 } });
  });

  it('refuses a manual retry while the delivery is still being retried', async () => {
    h = await hooked([Events]);
    const r = await receiver(() => ({ status: 500 }));
    receivers.push(r);
    const ep = (await h.api('POST', '/webhooks', { url: r.url })).json;
    await h.engine.client(Events).emit({ type: 'x.y', n: 1 });
    await until(
      async () =>
        (await h!.api('GET', `/webhooks/${ep.id}/deliveries`)).json.deliveries.length === 1,
      'logged',
    );
    const d = (await h.api('GET', `/webhooks/${ep.id}/deliveries`)).json.deliveries[0];
    expect(d.status).toBe('pending');
    expect(Date.parse(d.next_attempt_at) - h.clock.now()).toBeGreaterThan(50_000);
    const res = await h.api('POST', `/webhooks/deliveries/${d.id}/retry`);
    expect(res.status).toBe(409);
    expect(res.json.code).toBe('delivery_pending');
  });
});
