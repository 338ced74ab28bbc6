import { afterEach, describe, expect, it } from 'vitest';
import { object, service, type ObjectContext } from '../../src/index.js';
import { publish, type WebhookDeliveryFailed } from '../../src/webhooks/index.js';
import { until } from '../helpers.js';
import { hooked, receiver, verifiesIndependently, type Hooked, type Receiver } from './helpers.js';

let h: Hooked | undefined;
const receivers: Receiver[] = [];
afterEach(async () => {
  await h?.close();
  h = undefined;
  await Promise.all(receivers.splice(0).map((r) => r.close()));
});

async function listen(answer?: Receiver['answer']): Promise<Receiver> {
  const r = await receiver(answer);
  receivers.push(r);
  return r;
}

const failures: WebhookDeliveryFailed[] = [];
const Ops = service({
  name: 'Ops',
  handlers: {
    deliveryFailed: async (_ctx, e: WebhookDeliveryFailed) => {
      failures.push(e);
    },
  },
});

const Orders = object({
  name: 'Orders',
  handlers: {
    ship: async (ctx: ObjectContext, tracking: string) => {
      ctx.set('status', 'shipped');
      return publish(ctx, 'order.shipped', { orderId: ctx.key, tracking });
    },
    note: async (ctx: ObjectContext, type: string) => publish(ctx, type, { orderId: ctx.key }),
  },
});

const ship = (key: string, tracking = 'T1') => h!.engine.client(Orders, key).ship(tracking);

async function endpoint(
  url: string,
  events = ['order.*'],
): Promise<{ id: string; secret: string }> {
  const res = await h!.api('POST', '/webhooks', { name: 'test', url, events });
  expect(res.status).toBe(201);
  return res.json as { id: string; secret: string };
}

describe('outbound delivery', () => {
  it('delivers a published event once, signed per Standard Webhooks, and logs it', async () => {
    h = await hooked([Orders, Ops]);
    const r = await listen();
    const ep = await endpoint(r.url);
    const published = await ship('o-1', 'TRACK-9');
    expect(published.deliveries).toBe(1);
    await until(() => r.requests.length === 1, 'the delivery');

    const got = r.requests[0]!;
    expect(verifiesIndependently(ep.secret, got)).toBe(true);
    expect(
      verifiesIndependently(ep.secret, { ...got, body: got.body.replace('TRACK-9', 'TRACK-8') }),
    ).toBe(false);
    expect(got.headers['webhook-id']).toBe(published.id);
    expect(got.headers['webhook-timestamp']).toBe(String(Math.floor(h.clock.now() / 1000)));
    expect(got.headers['content-type']).toBe('application/json');
    expect(JSON.parse(got.body)).toEqual({
      type: 'order.shipped',
      timestamp: new Date(h.clock.now()).toISOString(),
      data: { orderId: 'o-1', tracking: 'TRACK-9' },
    });

    await until(
      async () =>
        (await h!.api('GET', `/webhooks/${ep.id}/deliveries`)).json.deliveries[0]?.status ===
        'delivered',
      'the log',
    );
    const log = (await h.api('GET', `/webhooks/${ep.id}/deliveries`)).json;
    expect(log.deliveries).toHaveLength(1);
    expect(log.deliveries[0]).toMatchObject({
      endpoint_id: ep.id,
      event_id: published.id,
      event_type: 'order.shipped',
      status: 'delivered',
      attempts: [{ attempt: 1, response_status_code: 200, response_body: 'ok' }],
    });
    expect(typeof log.deliveries[0].attempts[0].duration_ms).toBe('number');
  });

  it('only delivers to active endpoints subscribed to the type', async () => {
    h = await hooked([Orders, Ops]);
    const all = await listen();
    const shipped = await listen();
    const other = await listen();
    await endpoint(all.url, ['*']);
    await endpoint(shipped.url, ['order.shipped']);
    await endpoint(other.url, ['invoice.paid']);
    const off = await endpoint(other.url, ['order.*']);
    expect((await h.api('PUT', `/webhooks/${off.id}`, { is_active: false })).status).toBe(200);
    await h.engine.client(Orders, 'o-2').note('order.cancelled');
    await ship('o-2');
    await until(() => all.requests.length === 2 && shipped.requests.length === 1, 'deliveries');
    expect(other.requests).toHaveLength(0);
    expect(JSON.parse(shipped.requests[0]!.body).type).toBe('order.shipped');
  });

  it('retries a failing endpoint on the schedule, dead-letters it, then a manual retry delivers it', async () => {
    failures.length = 0;
    h = await hooked([Orders, Ops], {
      onDeliveryFailed: { target: Ops, handler: 'deliveryFailed' },
    });
    let up = false;
    const r = await listen(() =>
      up ? { status: 200 } : { status: 500, body: 'boom'.repeat(1000) },
    );
    const ep = await endpoint(r.url);
    const published = await ship('o-3');
    await until(() => r.requests.length === 1, 'attempt 1');

    // Default schedule 1m, 5m, 30m, 2h, 8h, each ±10%, measured from the attempt before (its
    // webhook-timestamp is the fake clock's time when it was sent).
    const delays = [60_000, 300_000, 1_800_000, 7_200_000, 28_800_000];
    const sentAt = (i: number) => Number(r.requests[i]!.headers['webhook-timestamp']) * 1000;
    for (const [i, delay] of delays.entries()) {
      await h.clock.advance(sentAt(i) + delay * 0.9 - 2000 - h.clock.now());
      expect(r.requests.length, `no attempt ${i + 2} before 90% of ${delay} ms`).toBe(i + 1);
      await h.clock.advance(sentAt(i) + delay * 1.1 + 2000 - h.clock.now());
      await until(() => r.requests.length === i + 2, `attempt ${i + 2}`);
      const gap = sentAt(i + 1) - sentAt(i);
      expect(gap).toBeGreaterThanOrEqual(delay * 0.9 - 1000);
      expect(gap).toBeLessThanOrEqual(delay * 1.1 + 1000);
    }
    await until(() => failures.length === 1, 'the WebhookDeliveryFailed event');
    const [failed] = failures;
    expect(failed).toMatchObject({
      type: 'WebhookDeliveryFailed',
      endpoint_id: ep.id,
      endpoint_url: r.url,
      event_id: published.id,
      event_type: 'order.shipped',
      reason: 'exhausted',
      attempts: 6,
      last_status_code: 500,
    });
    // No seventh automatic attempt.
    await h.clock.advance('1d');
    expect(r.requests).toHaveLength(6);

    const dead = (await h.api('GET', `/webhooks/${ep.id}/deliveries?status=failed`)).json;
    expect(dead.deliveries).toHaveLength(1);
    expect(dead.deliveries[0].failure_reason).toBe('exhausted');
    expect(dead.deliveries[0].attempts[0].response_body).toHaveLength(1024);
    const deliveryId = dead.deliveries[0].id as string;

    up = true;
    const retried = await h.api('POST', `/webhooks/deliveries/${deliveryId}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.json).toMatchObject({ id: deliveryId, status: 'delivered' });
    expect(retried.json.attempts).toHaveLength(7);
    expect(retried.json.attempts[6]).toMatchObject({
      attempt: 7,
      manual: true,
      response_status_code: 200,
    });
    expect(retried.json.failure_reason).toBeUndefined();

    // Every attempt: the same webhook-id, a fresh timestamp, a valid signature.
    expect(new Set(r.requests.map((q) => q.headers['webhook-id']))).toEqual(
      new Set([published.id]),
    );
    expect(new Set(r.requests.map((q) => q.headers['webhook-timestamp'])).size).toBe(7);
    for (const q of r.requests) expect(verifiesIndependently(ep.secret, q)).toBe(true);
  });

  it('honours a longer Retry-After, and 410 Gone disables the endpoint', async () => {
    failures.length = 0;
    h = await hooked([Orders, Ops], {
      onDeliveryFailed: { target: Ops, handler: 'deliveryFailed' },
    });
    const r = await listen((n) =>
      n === 0 ? { status: 503, headers: { 'retry-after': '600' } } : { status: 410 },
    );
    const ep = await endpoint(r.url);
    await ship('o-4');
    await until(() => r.requests.length === 1, 'attempt 1');
    await h.clock.advance('599s');
    expect(r.requests).toHaveLength(1);
    await h.clock.advance('2s');
    await until(() => r.requests.length === 2, 'attempt 2, after Retry-After');
    await until(
      async () => (await h!.api('GET', `/webhooks/${ep.id}`)).json.is_active === false,
      'disabled',
    );
    const view = (await h.api('GET', `/webhooks/${ep.id}`)).json;
    expect(view).toMatchObject({
      is_active: false,
      is_healthy: false,
      disabled_reason: 'answered 410 Gone',
    });
    await until(() => failures.length === 1, 'the failure event');
    expect(failures[0]!.reason).toBe('gone');

    // A disabled endpoint receives nothing more.
    await ship('o-5');
    await h.clock.advance('1h');
    expect(r.requests).toHaveLength(2);
    // Re-enabling it works (and is what a manual retry asks for first).
    const log = (await h.api('GET', `/webhooks/${ep.id}/deliveries?status=failed`)).json;
    const refused = await h.api('POST', `/webhooks/deliveries/${log.deliveries[0].id}/retry`);
    expect(refused.status).toBe(409);
    expect(refused.json.code).toBe('endpoint_disabled');
    expect((await h.api('PUT', `/webhooks/${ep.id}`, { is_active: true })).json.is_active).toBe(
      true,
    );
  });

  it('opens the breaker of a failing endpoint without delaying a healthy one', async () => {
    h = await hooked([Orders, Ops], { breaker: { failures: 3, window: '1m', reset: '30s' } });
    let aUp = false;
    const a = await listen(() => ({ status: aUp ? 200 : 500 }));
    const b = await listen();
    const epA = await endpoint(a.url);
    const epB = await endpoint(b.url);
    const logged = async (id: string) =>
      (await h!.api('GET', `/webhooks/${id}/deliveries`)).json.deliveries as any[];
    for (let i = 0; i < 3; i++) {
      await ship(`b-${i}`);
      // The log is written after the breaker has counted the attempt.
      await until(async () => (await logged(epA.id)).length === i + 1, `event ${i}`);
    }
    const status = async (id: string) => (await h!.api('GET', `/webhooks/${id}`)).json;
    expect(await status(epA.id)).toMatchObject({ is_healthy: false, circuit_state: 'open' });
    expect(await status(epB.id)).toMatchObject({ is_healthy: true, circuit_state: 'closed' });

    // Open: deliveries to A are refused without a request; B gets each at once.
    for (let i = 3; i < 10; i++) await ship(`b-${i}`);
    await until(() => b.requests.length === 10, 'B gets every event');
    await until(async () => (await logged(epA.id)).length === 10, 'A logs every delivery');
    expect(a.requests).toHaveLength(3);
    const logA = await logged(epA.id);
    expect(logA.filter((d: any) => d.attempts[0].error_code === 'circuit_open')).toHaveLength(7);

    // A recovers: the probe closes the circuit and every delivery gets through.
    aUp = true;
    await h.clock.advance('70s');
    await h.clock.advance('6m');
    await h.clock.advance('31m');
    const ids = async () =>
      new Set(a.requests.filter((_, i) => i >= 3).map((q) => q.headers['webhook-id']));
    await until(async () => (await ids()).size === 10, 'A gets every event after recovering');
    expect(await status(epA.id)).toMatchObject({ is_healthy: true, circuit_state: 'closed' });
  });

  it('publishes exactly once when the publishing handler is retried or replayed', async () => {
    let failOnce = true;
    const Flaky = service({
      name: 'Flaky',
      handlers: {
        run: async (ctx) => {
          const p = await publish(ctx, 'order.flaky', { n: 1 });
          await ctx.run('after', () => {
            if (failOnce) {
              failOnce = false;
              throw new Error('transient');
            }
          });
          await ctx.sleep('1m');
          return p.id;
        },
      },
    });
    h = await hooked([Flaky, Ops]);
    const r = await listen();
    await endpoint(r.url);
    const sent = await h.engine.send({ service: 'Flaky', handler: 'run' });
    await until(() => r.requests.length === 1, 'the delivery');
    await h.clock.advance('1s'); // the step's retry backoff
    await h.clock.advance('5s'); // asleep for more than suspendAfter
    await until(
      async () => (await h!.engine.getInvocation(sent.invocationId))?.status === 'suspended',
      'asleep',
    );
    await h.restart(); // the handler replays its journal after the restart
    await h.clock.advance('2m');
    const id = await h.engine.attach(sent.invocationId);
    await h.clock.advance('1h');
    expect(r.requests).toHaveLength(1);
    expect(r.requests[0]!.headers['webhook-id']).toBe(id);
  });

  it('does not route to the internal delivery service from the ingress', async () => {
    h = await hooked([Ops]);
    const r = await listen();
    const endpoint = await h.hooks.createEndpoint({ url: r.url, events: ['*'] });
    const input = { d: 'dlv_x', e: endpoint.id, m: 'msg_x', t: 'x', b: '{}', c: 0 };
    const post = (path: string) =>
      fetch(`${h!.ingress.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(input),
      });
    // Answered as a name the engine does not serve, and the list of what it serves (shown to
    // this loopback client) leaves the internal service out.
    const unknown = await post('/NoSuchService/deliver');
    const unknownBody = (await unknown.json()) as { code: string; message: string };
    expect(unknown.status).toBe(404);
    expect(unknownBody.message).toContain('this engine serves: Ops');
    for (const path of [
      '/keel.webhooks/deliver',
      '/keel.webhooks/deliver/send',
      '/keel.webhooks/fanout/send',
      '/keel.webhooks/retry',
    ]) {
      const res = await post(path);
      expect(res.status, path).toBe(404);
      expect(await res.json(), path).toEqual({
        ...unknownBody,
        message: unknownBody.message.replace('NoSuchService', 'keel.webhooks'),
      });
    }
    // Nothing was started or sent.
    expect((await h.api('GET', '/invocations?service=keel.webhooks')).json.invocations).toEqual([]);
    expect(r.requests).toHaveLength(0);
  });
});
