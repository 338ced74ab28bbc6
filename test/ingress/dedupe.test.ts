import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Engine, object, workflow } from '../../src/index.js';
import { openPostgresStore } from '../../src/store/postgres/index.js';
import { ingressHarness, request, type IngressHarness } from './helpers.js';

/**
 * Deduplication on the ingress: a workflow's `run` executes once per workflow key whatever
 * `Idempotency-Key` it carries, and idempotency keys never collide across targets.
 */

/** Payments made by `Payment` runs, by workflow key (counted outside the engine). */
const payments = new Map<string, number>();
/** Executions of `Tally.add`, by object key. */
const adds = new Map<string, number>();

const Payment = workflow({
  name: 'Payment',
  run: async (ctx, amount: number) => {
    await ctx.run('charge', () => payments.set(ctx.key, (payments.get(ctx.key) ?? 0) + 1));
    return { charged: amount, key: ctx.key };
  },
  handlers: { peek: async (ctx) => ctx.key },
});

const Tally = object({
  name: 'Tally',
  handlers: {
    add: async (ctx, n: number) => {
      adds.set(ctx.key, (adds.get(ctx.key) ?? 0) + 1);
      const total = ((await ctx.get<number>('total')) ?? 0) + n;
      ctx.set('total', total);
      return { key: ctx.key, total };
    },
  },
});

let h: IngressHarness;
const post = (path: string, body: unknown, headers?: Record<string, string>) =>
  request(h.base, 'POST', path, body, headers);

beforeAll(async () => {
  h = await ingressHarness([Payment, Tally]);
});
afterAll(async () => {
  await h?.close();
});

describe("a workflow's run executes once per workflow key", () => {
  it('two calls with different Idempotency-Keys run once and answer the same result', async () => {
    const a = await post('/Payment/ow-1/run', 10, { 'idempotency-key': 'A' });
    const b = await post('/Payment/ow-1/run', 10, { 'idempotency-key': 'B' });
    expect(a).toMatchObject({ status: 200, body: { charged: 10, key: 'ow-1' } });
    expect(b).toMatchObject({ status: 200, body: a.body });
    expect(payments.get('ow-1')).toBe(1);
  });

  it('sends with different Idempotency-Keys answer the same invocation', async () => {
    const first = await post('/Payment/ow-2/run/send', 5, { 'idempotency-key': 'A' });
    const second = await post('/Payment/ow-2/run/send', 5, { 'idempotency-key': 'B' });
    const plain = await post('/Payment/ow-2/run/send', 5);
    expect(first.status).toBe(202);
    expect(second.body).toMatchObject({ invocationId: first.body.invocationId, existing: true });
    expect(plain.body).toMatchObject({ invocationId: first.body.invocationId, existing: true });
    await request(h.base, 'GET', `/invocations/${first.body.invocationId}/attach`);
    expect(payments.get('ow-2')).toBe(1);
  });

  it('five concurrent calls with five keys make one run', async () => {
    const answers = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => post('/Payment/ow-3/run', 7, { 'idempotency-key': `k-${i}` })),
    );
    for (const a of answers) expect(a).toMatchObject({ status: 200, body: { charged: 7 } });
    expect(payments.get('ow-3')).toBe(1);
    const runs = await h.engine.listInvocations({ service: 'Payment', key: 'ow-3' });
    expect(runs.invocations.filter((i) => i.handler === 'run')).toHaveLength(1);
  });

  it('the TS client obeys the same rule', async () => {
    const client = h.engine.client(Payment, 'ow-4');
    await client.run(1, { idempotencyKey: 'x' });
    await client.run(1, { idempotencyKey: 'y' });
    expect(payments.get('ow-4')).toBe(1);
  });
});

describe('idempotency keys are per target and never collide', () => {
  it('a key containing "/" does not collide with a key-plus-handler of another object', async () => {
    const a = await post('/Tally/a/add', 1, { 'idempotency-key': 'add/x' });
    const b = await post(`/Tally/${encodeURIComponent('a/add')}/add`, 100, {
      'idempotency-key': 'x',
    });
    expect(a).toMatchObject({ status: 200, body: { key: 'a', total: 1 } });
    expect(b).toMatchObject({ status: 200, body: { key: 'a/add', total: 100 } });
    expect(adds.get('a/add')).toBe(1);
  });

  it('GET /invocations/{id} shows an idempotency key containing "/" whole', async () => {
    const sent = await post('/Tally/show/add/send', 1, { 'idempotency-key': 'order/42/line/1' });
    const info = await request(h.base, 'GET', `/invocations/${sent.body.invocationId}`);
    expect(info.body.idempotencyKey).toBe('order/42/line/1');
  });

  it('the same key still deduplicates on the same target', async () => {
    const a = await post('/Tally/same/add', 3, { 'idempotency-key': 'k/1' });
    const b = await post('/Tally/same/add', 3, { 'idempotency-key': 'k/1' });
    expect(b.body).toEqual(a.body);
    expect(adds.get('same')).toBe(1);
  });
});

/** Sends a POST with raw headers (fetch would merge repeated ones itself). */
function rawPost(
  path: string,
  headers: Array<[string, string]>,
): Promise<{ status: number; body: any }> {
  const url = new URL(h.base + path);
  return new Promise((resolve, reject) => {
    const flat = headers.flat();
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        // Raw array headers: Node adds no Host header of its own then.
        headers: ['host', url.host, 'content-type', 'application/json', ...flat],
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode!, body: JSON.parse(text) }));
      },
    );
    req.on('error', reject);
    req.end('1');
  });
}

describe('the Idempotency-Key header', () => {
  it('given twice is a 400 and runs nothing', async () => {
    const r = await rawPost('/Tally/twice/add', [
      ['idempotency-key', 'a'],
      ['idempotency-key', 'b'],
    ]);
    expect(r).toMatchObject({ status: 400, body: { code: 'invalid_idempotency_key' } });
    expect(r.body.message).toContain('once');
    expect(adds.get('twice')).toBeUndefined();
  });

  it('one header whose value contains a comma is one key', async () => {
    const r = await rawPost('/Tally/comma/add', [['idempotency-key', 'a, b']]);
    expect(r.status).toBe(200);
  });

  it('longer than 256 characters is a 400; 256 is accepted', async () => {
    const long = await post('/Tally/long/add', 1, { 'idempotency-key': 'k'.repeat(257) });
    expect(long).toMatchObject({ status: 400, body: { code: 'invalid_idempotency_key' } });
    expect(long.body.message).toContain('256');
    expect(adds.get('long')).toBeUndefined();
    expect((await post('/Tally/long/add', 1, { 'idempotency-key': 'k'.repeat(256) })).status).toBe(
      200,
    );
  });

  it('empty is a 400', async () => {
    expect(await post('/Tally/empty/add', 1, { 'idempotency-key': '' })).toMatchObject({
      status: 400,
      body: { code: 'invalid_idempotency_key' },
    });
  });
});

describe('on PostgreSQL (the shared store answers a taken key from its insert)', () => {
  const url = inject('postgresUrl');
  const schema = `keel_dedupe_${randomBytes(4).toString('hex')}`;
  let engine: Engine | undefined;

  afterAll(async () => {
    await engine?.stop().catch(() => undefined);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  it("five concurrent runs with five Idempotency-Keys make one run; keys don't collide", async () => {
    engine = new Engine({
      services: [Payment, Tally],
      store: await openPostgresStore({ url, schema }),
      logger: () => undefined,
    });
    await engine.start();
    const e = engine;
    const results = await Promise.all(
      [1, 2, 3, 4, 5].map((i) =>
        e.invoke({
          service: 'Payment',
          handler: 'run',
          key: 'pg-1',
          input: 1,
          idempotencyKey: `k${i}`,
        }),
      ),
    );
    expect(new Set(results.map((r) => JSON.stringify(r))).size).toBe(1);
    expect(payments.get('pg-1')).toBe(1);
    const a = await e.invoke({
      service: 'Tally',
      handler: 'add',
      key: 'pg',
      input: 1,
      idempotencyKey: 'add/x',
    });
    const b = await e.invoke({
      service: 'Tally',
      handler: 'add',
      key: 'pg/add',
      input: 100,
      idempotencyKey: 'x',
    });
    expect(a).toEqual({ key: 'pg', total: 1 });
    expect(b).toEqual({ key: 'pg/add', total: 100 });
  });
});
