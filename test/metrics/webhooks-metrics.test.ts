import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { service } from '../../src/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { publish } from '../../src/webhooks/index.js';
import { tempDir, until } from '../helpers.js';
import { receiver, type Receiver } from '../webhooks/helpers.js';
import { scrape, series, value, type Sample } from './prom.js';

/**
 * The outbound webhooks' metrics after known work, over real HTTP: an app on a SQLite file with
 * one endpoint pointing at a local receiver that answers 200 to OK events, 500 to BAD ones, and
 * 500 then 200 to the FLAKY one. Retries follow a fixed 10 s schedule (3 attempts in all) on a
 * fake clock, so the BAD deliveries are dead-lettered in seconds of test time. Every count
 * checked is exact.
 */
const ADMIN = 'admin-token-0123456789abcdef0123456789';
const OK = 4;
const BAD = 2;
const ATTEMPTS = 3;

let r: Receiver;
let app: App;
let endpoint: { id: string; secret: string };
const clock = new FakeClock();
const tmp = tempDir('keel-webhook-metrics-');
/** Attempts the receiver saw per webhook-id: the FLAKY event fails its first only. */
const seen = new Map<string, number>();

const Events = service({
  name: 'Events',
  handlers: {
    emit: async (ctx, kind: 'ok' | 'bad' | 'flaky') => publish(ctx, 'thing.happened', { kind }),
  },
});

async function admin(method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${app.admin.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

async function deliveries(status: string): Promise<Array<{ id: string }>> {
  return (await admin('GET', `/webhooks/${endpoint.id}/deliveries?status=${status}`)).deliveries;
}

beforeAll(async () => {
  r = await receiver((_n, got) => {
    const id = String(got.headers['webhook-id']);
    const n = (seen.get(id) ?? 0) + 1;
    seen.set(id, n);
    const kind = (JSON.parse(got.body) as { data: { kind: string } }).data.kind;
    return kind === 'ok' || (kind === 'flaky' && n > 1) ? { status: 200 } : { status: 500 };
  });
  app = await startApp({
    services: [Events],
    db: join(tmp.dir, 'keel.db'),
    clock,
    port: 0,
    adminPort: 0,
    adminToken: ADMIN,
    webhooks: {
      allow: ['127.0.0.1'],
      retry: { schedule: ['10s', '10s'] },
      // Seven failures in a minute would open the default breaker (5): attempts would then be
      // refused (circuit_open) rather than sent, and the counts would depend on timing.
      breaker: { failures: 1000 },
    },
    logger: () => undefined,
  });
  endpoint = await admin('POST', '/webhooks', {
    name: 'metrics',
    url: r.url,
    events: ['thing.*'],
  });
}, 60_000);
afterAll(async () => {
  await app?.close();
  await r?.close();
  tmp.cleanup();
});

describe('webhook metrics', () => {
  let samples: Sample[];

  beforeAll(async () => {
    const kinds = [
      ...Array<'ok'>(OK).fill('ok'),
      ...Array<'bad'>(BAD).fill('bad'),
      'flaky' as const,
    ];
    for (const kind of kinds)
      await app.engine.invoke({ service: 'Events', handler: 'emit', input: kind });
    await until(() => r.requests.length === OK + BAD + 1, 'the first attempts');
    // Retry 1 of BAD and FLAKY, then retry 2 of BAD (FLAKY is delivered by then).
    await clock.advance('11s');
    await until(() => r.requests.length === OK + 2 * BAD + 2, 'the second attempts');
    await clock.advance('11s');
    await until(() => r.requests.length === OK + ATTEMPTS * BAD + 2, 'the third attempts');
    // The attempts are counted when they end; the records show them once committed.
    await until(async () => (await deliveries('failed')).length === BAD, 'dead-lettered');
    await until(async () => (await deliveries('delivered')).length === OK + 1, 'delivered');
    samples = await scrape(app.admin.url, ADMIN);
  }, 60_000);

  it('counts attempts by outcome, exactly', () => {
    expect(value(samples, 'keel_webhook_attempts_total', { outcome: 'success' })).toBe(OK + 1);
    expect(value(samples, 'keel_webhook_attempts_total', { outcome: 'http_status' })).toBe(
      ATTEMPTS * BAD + 1,
    );
    // No other outcome (no timeout, no refused connection, no open breaker).
    expect(series(samples, 'keel_webhook_attempts_total')).toHaveLength(2);
  });

  it('times every attempt that was sent', () => {
    const attempts = OK + 1 + ATTEMPTS * BAD + 1;
    expect(r.requests).toHaveLength(attempts);
    expect(value(samples, 'keel_webhook_attempt_duration_seconds_count')).toBe(attempts);
    expect(value(samples, 'keel_webhook_attempt_duration_seconds_bucket', { le: '+Inf' })).toBe(
      attempts,
    );
    expect(value(samples, 'keel_webhook_attempt_duration_seconds_sum')).toBeGreaterThanOrEqual(0);
  });

  it('counts the dead-lettered deliveries and the dead-letter queue', () => {
    expect(value(samples, 'keel_webhook_dead_lettered_total')).toBe(BAD);
    expect(value(samples, 'keel_webhook_dlq_size')).toBe(BAD);
  });

  it('labels no series with a secret, an endpoint, a message or a delivery id', async () => {
    const dead = (await deliveries('failed')).map((d) => d.id);
    expect(dead).toHaveLength(BAD);
    const forbidden = [endpoint.secret, endpoint.id, ...dead, ...seen.keys(), r.url];
    for (const s of samples)
      for (const v of Object.values(s.labels)) {
        expect(v).not.toMatch(/^(whsec_|ep_|dlv_|msg_)/);
        for (const f of forbidden) expect(v).not.toContain(f);
      }
  });
});
