/**
 * Flows through HTTP on a real app (startApp with flowsDir): definitions registered from files
 * at start and through the admin API, versioned (a run in flight keeps its version), runs
 * through `POST /flows/{name}/run` with Idempotency-Key, run state, and the admin token rules.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appOptionsFromEnv, startApp, type App } from '../../src/app.js';
import { createFlows } from '../../src/flows/index.js';
import { ShopServer } from '../fakes/shop-server.js';
import { tempDir } from '../helpers.js';
import { shopApi } from './helpers.js';

const ORDER_V1 = `
name: order
description: reserve, then charge
steps:
  - id: reserve
    type: api
    integration: Shop
    operation: reserve
    params: { sku: "{{input.sku}}", qty: 1 }
    storeAs: reservation
  - id: charge
    type: api
    integration: Shop
    operation: charge
    params: { amount: "{{input.amount}}" }
`;

const ORDER_V2 = `${ORDER_V1}
  - id: ship
    type: api
    integration: Shop
    operation: ship
    params: { address: "{{input.address}}" }
`;

const ADMIN = 'a'.repeat(32);
const USER = 'u'.repeat(32);
let shop: ShopServer;
let app: App;
const tmp = tempDir('keel-flows-http-');
const flowsDir = join(tmp.dir, 'flows');
const start = () =>
  startApp({
    services: [],
    db: join(tmp.dir, 'keel.db'),
    port: 0,
    adminPort: 0,
    adminToken: ADMIN,
    userToken: USER,
    flowsDir,
    integrations: { integrations: [shopApi(shop.url)], log: () => undefined },
    logger: () => undefined,
  });

beforeAll(async () => {
  shop = await ShopServer.start();
  mkdirSync(flowsDir);
  writeFileSync(join(flowsDir, 'order.yaml'), ORDER_V1);
  app = await start();
});
afterAll(async () => {
  await app?.close();
  await shop.close();
  tmp.cleanup();
});

const admin = (path: string, init: RequestInit & { token?: string } = {}) =>
  fetch(`${app.admin.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${init.token ?? ADMIN}`, ...(init.headers ?? {}) },
  });

const run = (name: string, input: unknown, headers: Record<string, string> = {}) =>
  fetch(`${app.ingress.url}/flows/${name}/run`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(input),
  });

describe('flows over HTTP', () => {
  it('registers the files at start, and lists and shows definitions on the admin API', async () => {
    const list = await admin('/flows/definitions');
    expect(list.status).toBe(200);
    expect(await list.json()).toEqual({ flows: [{ name: 'order', version: 1 }] });
    const one = (await (await admin('/flows/definitions/order')).json()) as any;
    expect(one).toMatchObject({ name: 'order', version: 1, versions: [1] });
    expect(one.definition.steps.map((s: any) => s.id)).toEqual(['reserve', 'charge']);
    expect((await admin('/flows/definitions/nope')).status).toBe(404);
  });

  it('runs a flow through the ingress, and an Idempotency-Key answers the same run', async () => {
    const first = await run('order', { sku: 'A', amount: 5 }, { 'idempotency-key': 'order-77' });
    expect(first.status).toBe(200);
    const a = (await first.json()) as any;
    expect(a).toMatchObject({ workflow: 'order', version: 1, success: true, status: 'completed' });
    const charges = shop.done('/payments/charge');
    const b = (await (
      await run('order', { sku: 'A', amount: 5 }, { 'idempotency-key': 'order-77' })
    ).json()) as any;
    expect(b.invocationId).toBe(a.invocationId);
    expect(b.outputs).toEqual(a.outputs);
    expect(shop.done('/payments/charge')).toBe(charges);
    const state = (await (
      await fetch(`${app.ingress.url}/flows/runs/${encodeURIComponent(a.runId)}`)
    ).json()) as any;
    expect(state).toMatchObject({
      flow: 'order',
      version: 1,
      status: 'completed',
      completed: ['reserve', 'charge'],
    });
    const inv = (await (await admin(`/invocations/${a.invocationId}`)).json()) as any;
    expect(inv).toMatchObject({ service: 'keel.flows', status: 'completed' });
    const journal = (await (await admin(`/invocations/${a.invocationId}/journal`)).json()) as any;
    const names = journal.entries.filter((e: any) => e.kind === 'run').map((e: any) => e.name);
    expect(names).toEqual(['flow definition', 'reserve', 'charge']);
  });

  it('answers the state of a run that has not saved one yet: running, then cancelled', async () => {
    // A run saves its state once its first step read the definition; one that has not started
    // (here: delayed an hour) or was cancelled before it did answered 404 "no flow run".
    const runId = 'early-run-1';
    const sent = await app.engine.send({
      service: 'keel.flows',
      handler: 'run',
      key: runId,
      input: { flow: 'order', input: { sku: 'A', amount: 1 } },
      delayMs: 3_600_000,
    });
    const state = async () => {
      const res = await fetch(`${app.ingress.url}/flows/runs/${runId}`);
      return { status: res.status, body: (await res.json()) as any };
    };
    expect(await state()).toEqual({
      status: 200,
      body: { runId, flow: 'order', status: 'running', completed: [], failed: [], compensated: [] },
    });
    await app.engine.cancel(sent.invocationId);
    await expect(app.engine.attach(sent.invocationId)).rejects.toMatchObject({ code: 'cancelled' });
    expect((await state()).body).toMatchObject({ runId, flow: 'order', status: 'cancelled' });
    // A run id nobody used is still unknown.
    const none = await fetch(`${app.ingress.url}/flows/runs/never-started`);
    expect(none.status).toBe(404);
  });

  it('answers unknown flows and bad input with typed errors', async () => {
    const missing = await run('nope', {});
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'flow_not_found' });
    const badJson = await fetch(`${app.ingress.url}/flows/order/run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{',
    });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as any).code).toBe('invalid_json');
    const get = await fetch(`${app.ingress.url}/flows/order/run`);
    expect(get.status).toBe(405);
  });

  it('refuses an invalid definition naming the step, and the user token cannot register', async () => {
    const bad = await admin('/flows/definitions', {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: 'name: broken\nsteps:\n  - id: pay\n    type: api\n    integration: Stripe\n    operation: charge\n',
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({
      code: 'unknown_integration',
      step: 'pay',
      field: 'integration',
    });
    const user = await admin('/flows/definitions', {
      method: 'POST',
      token: USER,
      headers: { 'content-type': 'application/yaml' },
      body: ORDER_V2,
    });
    expect(user.status).toBe(403);
    expect((await admin('/flows/definitions', { token: USER })).status).toBe(200);
    expect((await admin('/flows/definitions/broken')).status).toBe(404);
  });

  it('versions registrations; a run in flight keeps the version it started with', async () => {
    const hold = shop.hold('/inventory/reserve');
    const inFlight = run('order', { sku: 'V', amount: 7, address: 'Main St' });
    await hold.arrived;
    const v2 = await admin('/flows/definitions', {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: ORDER_V2,
    });
    expect(v2.status).toBe(201);
    expect(await v2.json()).toEqual({ name: 'order', version: 2, created: true });
    const same = await admin('/flows/definitions', {
      method: 'POST',
      headers: { 'content-type': 'application/yaml' },
      body: ORDER_V2,
    });
    expect(same.status).toBe(200);
    expect(await same.json()).toEqual({ name: 'order', version: 2, created: false });
    hold.release();
    const old = (await (await inFlight).json()) as any;
    expect(old.version).toBe(1);
    expect(Object.keys(old.outputs)).toEqual(['reserve', 'charge']);
    const fresh = (await (
      await run('order', { sku: 'W', amount: 7, address: 'Main St' })
    ).json()) as any;
    expect(fresh.version).toBe(2);
    expect(Object.keys(fresh.outputs)).toEqual(['reserve', 'charge', 'ship']);
    const v1 = (await (await admin('/flows/definitions/order/versions/1')).json()) as any;
    expect(v1.definition.steps).toHaveLength(2);
    expect(((await (await admin('/flows/definitions/order')).json()) as any).versions).toEqual([
      1, 2,
    ]);
  });

  it('a restart with a changed file registers the next version, an unchanged one nothing', async () => {
    await app.close();
    app = await start(); // order.yaml is still v1's text, which differs from the latest (v2)
    expect(((await (await admin('/flows/definitions/order')).json()) as any).version).toBe(3);
    await app.close();
    app = await start();
    expect(((await (await admin('/flows/definitions/order')).json()) as any).version).toBe(3);
  });

  it('reads KEEL_FLOWS_DIR, and gives flowsDir to a flows extension the app already has', async () => {
    expect(appOptionsFromEnv({ KEEL_FLOWS_DIR: '/srv/flows' }).flowsDir).toBe('/srv/flows');
    const other = await startApp({
      services: [],
      db: join(tmp.dir, 'other.db'),
      port: 0,
      adminPort: 0,
      flowsDir,
      extensions: [createFlows({ transforms: { double: (x) => (x as number) * 2 } })],
      integrations: { integrations: [shopApi(shop.url)], log: () => undefined },
      logger: () => undefined,
    });
    try {
      const list = (await (await fetch(`${other.admin.url}/flows/definitions`)).json()) as any;
      expect(list.flows).toEqual([{ name: 'order', version: 1 }]);
    } finally {
      await other.close();
    }
  });

  it('refuses to start with an invalid definition file, naming the file and the step', async () => {
    const bad = join(tmp.dir, 'bad-flows');
    mkdirSync(bad);
    writeFileSync(
      join(bad, 'broken.yaml'),
      'name: broken\nsteps:\n  - id: total\n    type: transform\n    expression: missing + 1\n',
    );
    const err = await startApp({
      services: [],
      db: join(tmp.dir, 'bad.db'),
      port: 0,
      adminPort: 0,
      flowsDir: bad,
      logger: () => undefined,
    }).then(
      async (a) => {
        await a.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'undefined_variable', step: 'total' });
    expect((err as Error).message).toContain('broken.yaml');
  });
});
