/**
 * A flow with every step type, run by an app in a child process that is killed with SIGKILL
 * twice: once while an api step's request is in flight, once while a step waits in its
 * `onError: retry` backoff. Restarted on the same SQLite file, the run resumes by itself and
 * completes with every step once in its journal and every side effect done once (the api step
 * cut off mid-request is sent again with the same idempotency key, which the shop dedupes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as amqp from 'amqplib';
import pg from 'pg';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reachable } from '../buses/helpers.js';
import { available, PG_URL, REDIS_URL, uniqueName } from '../databases/helpers.js';
import { ShopServer } from '../fakes/shop-server.js';
import { killHard, tempDir } from '../helpers.js';

const AMQP_URL = process.env.KEEL_TEST_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const pgUp = await available('PostgreSQL', PG_URL, 5432, 'test/flows/crash.test.ts');
const redisUp = await available('Redis', REDIS_URL, 6379, 'test/flows/crash.test.ts');
const rabbitUp = await reachable(AMQP_URL, 5672);
if (!rabbitUp) console.log(`SKIPPED test/flows/crash.test.ts: RabbitMQ unreachable at ${AMQP_URL}`);

const tmp = tempDir('keel-flows-crash-');
const children: ChildProcess[] = [];
const table = uniqueName('flow_crash');
const counter = uniqueName('flow_crash');
const queue = uniqueName('keel_flow_crash');
let shop: ShopServer;

const FLOW = `
name: crashy
steps:
  - id: quote
    type: api
    integration: Shop
    operation: quote
    params: { sku: "{{input.sku}}" }
    storeAs: quote
  - id: price
    type: transform
    expression: quote.price * input.qty
    storeAs: amount
  - id: record
    type: database
    database: orders
    query: INSERT INTO ${table} (id, amount) VALUES ($1, $2) RETURNING id
    params: ["{{input.id}}", "{{amount}}"]
  - id: reserve
    type: api
    integration: Shop
    operation: reserve
    params: { sku: "{{input.sku}}", qty: "{{input.qty}}" }
    storeAs: reservation
  - id: charge
    type: api
    integration: Shop
    operation: charge
    params: { amount: "{{amount}}" }
    storeAs: payment
  - id: big order?
    type: conditional
    condition: amount > 5
    then:
      - id: count big
        type: database
        database: cache
        command: INCRBY
        args: ["${counter}", "{{amount}}"]
    else:
      - id: small
        type: transform
        expression: "'small'"
  - id: ship
    type: api
    integration: Shop
    operation: ship
    params: { address: "{{input.address}}" }
    onError: retry
    retries: 50
    backoff: { initial: 300ms, max: 600ms }
  - id: placed
    type: event
    bus: rabbitmq
    destination: ""
    routingKey: ${queue}
    payload: { id: "{{input.id}}", charge: "{{payment.chargeId}}" }
`;

function start(): Promise<{ child: ChildProcess; url: string; admin: string }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'fixtures/app.ts')],
    {
      env: {
        ...process.env,
        KEEL_DB: join(tmp.dir, 'keel.db'),
        KEEL_FLOWS_DIR: join(tmp.dir, 'flows'),
        SHOP_URL: shop.url,
        PG_URL,
        REDIS_URL,
        AMQP_URL,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const admin = /ADMIN (\S+)/.exec(out);
      const ready = /READY (\S+)/.exec(out);
      if (admin && ready) resolve({ child, url: ready[1]!, admin: admin[1]! });
    });
    child.on('exit', (code) => reject(new Error(`app exited early with code ${code}: ${out}`)));
  });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function poll(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await pause(25);
  }
}

const runFlow = (url: string) =>
  fetch(`${url}/flows/crashy/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': 'crash-1' },
    body: JSON.stringify({ id: 'o-1', sku: 'A', qty: 3, address: 'Dock 4' }),
  });

const up = pgUp && redisUp && rabbitUp;
let db: pg.Client;
let redis: Redis;
let conn: amqp.ChannelModel;
let channel: amqp.Channel;

beforeAll(async () => {
  shop = await ShopServer.start();
  mkdirSync(join(tmp.dir, 'flows'));
  writeFileSync(join(tmp.dir, 'flows', 'crashy.yaml'), FLOW);
  if (!up) return;
  db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  await db.query(`CREATE TABLE ${table} (id text, amount int)`);
  redis = new Redis(REDIS_URL);
  conn = await amqp.connect(AMQP_URL);
  channel = await conn.createChannel();
  await channel.assertQueue(queue, { durable: true });
});
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await shop.close();
  if (up) {
    await db.query(`DROP TABLE IF EXISTS ${table}`);
    await db.end();
    await redis.del(counter);
    redis.disconnect();
    await channel.deleteQueue(queue).catch(() => undefined);
    await conn.close();
  }
  tmp.cleanup();
});

describe.skipIf(!up)('a flow across kill -9', () => {
  it('resumes after two crashes with each step once in the journal and each effect once', async () => {
    // Crash 1: while the charge request is in flight.
    const held = shop.hold('/payments/charge');
    let app = await start();
    const pending = runFlow(app.url).catch(() => undefined);
    await held.arrived;
    await killHard(app.child);
    await pending;
    held.release();

    // Crash 2: while `ship` waits between retries.
    shop.failAlways('/shipping/ship', 503);
    app = await start();
    await poll('ship failing twice', () => shop.seen('/shipping/ship').length >= 2);
    await killHard(app.child);
    shop.failAlways('/shipping/ship', undefined);

    app = await start();
    // The run resumed on its own; the same Idempotency-Key attaches to it.
    const res = await runFlow(app.url);
    expect(res.status).toBe(200);
    const result = (await res.json()) as any;
    expect(result).toMatchObject({
      workflow: 'crashy',
      version: 1,
      success: true,
      status: 'completed',
    });
    expect(result.duration).toBe(Date.parse(result.endedAt) - Date.parse(result.startedAt));

    const journal = (await (
      await fetch(`${app.admin}/invocations/${result.invocationId}/journal`)
    ).json()) as any;
    const steps = journal.entries.filter((e: any) => e.kind === 'run').map((e: any) => e.name);
    expect(steps).toEqual([
      'flow definition',
      'quote',
      'price',
      'record',
      'reserve',
      'charge',
      'big order?',
      'count big',
      'ship',
      'placed',
    ]);
    // Steps completed before a crash were not run again.
    expect(shop.seen('/quote')).toHaveLength(1);
    expect(shop.seen('/inventory/reserve')).toHaveLength(1);
    // The charge cut off by the first crash was sent again with the same key: one charge.
    const charges = shop.seen('/payments/charge');
    expect(charges.length).toBeGreaterThanOrEqual(2);
    expect(new Set(charges.map((c) => c.key))).toEqual(new Set([`${result.invocationId}:charge`]));
    expect(shop.done('/payments/charge')).toBe(1);
    expect(shop.done('/shipping/ship')).toBe(1);
    expect((await db.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n).toBe(1);
    expect(await redis.get(counter)).toBe('30');
    const msg = await channel.get(queue, { noAck: true });
    expect(msg && JSON.parse(msg.content.toString())).toEqual({
      id: 'o-1',
      charge: result.outputs.charge.chargeId,
    });
    expect(await channel.get(queue, { noAck: true })).toBe(false);
    await killHard(app.child);
  }, 120_000);
});
