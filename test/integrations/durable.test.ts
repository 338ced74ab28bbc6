import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Engine, service, workflow, type Definition } from '../../src/index.js';
import {
  IntegrationCallError,
  createIntegrations,
  integration,
  use,
  type IntegrationEvent,
  type IntegrationRuntime,
} from '../../src/integrations/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { ProviderServer } from '../fakes/provider-server.js';
import { tempDir, until } from '../helpers.js';

/**
 * Calls from handlers: one journaled step per call, never fetched again once journaled, with
 * retries whose long waits are durable (the engine backs the invocation off; a restart in
 * between changes nothing) and the same idempotency key throughout.
 */
let api: ProviderServer;
beforeAll(async () => {
  api = await ProviderServer.start();
});
afterAll(async () => {
  await api.close();
});

interface Node {
  engine: Engine;
  runtime: IntegrationRuntime;
}
const tmp = tempDir('keel-durable-');
let nodes: Node[] = [];
afterEach(async () => {
  for (const n of nodes) {
    await n.engine.stop().catch(() => undefined);
    await n.runtime.close();
  }
  nodes = [];
  api.failAll(undefined);
});
afterAll(() => tmp.cleanup());

let dbCount = 0;
/** An engine factory on one database and clock: call it again for a "restart". */
function node(
  services: Definition[],
  clock: FakeClock,
  options: Parameters<typeof createIntegrations>[0] = {},
): () => Promise<Node> {
  const file = join(tmp.dir, `keel-${dbCount++}.db`);
  return async () => {
    const integrations = createIntegrations({ log: () => undefined, ...options });
    const engine = new Engine({
      services,
      store: openSqliteStore({ path: file }),
      clock,
      logger: () => undefined,
      extensions: [integrations],
    });
    await engine.start();
    const n = { engine, runtime: integrations.runtime };
    nodes.push(n);
    return n;
  };
}

describe('integration calls from handlers', () => {
  it('journals the result: a replay after a restart does not fetch again', async () => {
    const gh = integration({
      name: 'GitHubAPI',
      baseUrl: api.url,
      operations: { get_user: { path: '/users/{username}' } },
    });
    const Flow = workflow({
      name: 'Profile',
      run: async (ctx, username: string) => {
        const user = await use(ctx, gh).get_user<{ login: string }>({ username });
        await ctx.sleep('1h');
        return user.login;
      },
    });
    const clock = new FakeClock();
    const start = node([Flow], clock);
    let n = await start();
    const before = api.count('/users/ada');
    const { invocationId } = await n.engine.send({
      service: 'Profile',
      handler: 'run',
      key: 'k1',
      input: 'ada',
    });
    await until(async () => (await n.engine.getJournal(invocationId)).length >= 2, 'the sleep');
    await n.engine.stop();
    n = await start();
    const done = n.engine.attach(invocationId);
    await clock.advance('1h');
    expect(await done).toBe('ada');
    expect(api.count('/users/ada') - before).toBe(1);
    const journal = await n.engine.getJournal(invocationId);
    expect(journal[0]).toMatchObject({ kind: 'run', name: 'GitHubAPI.get_user', done: true });
  });

  it('retries on a schedule durably, across a restart, with one idempotency key', async () => {
    const scheduled = integration({
      name: 'ScheduledPayments',
      baseUrl: api.url,
      idempotency: true,
      retry: { schedule: ['1m', '5m'] },
      operations: { charge: { method: 'POST', path: '/charges', body: { amount: '{amount}' } } },
    });
    const Checkout = service({
      name: 'Checkout',
      handlers: {
        pay: async (ctx, amount: number) => use(ctx, scheduled).charge<{ id: string }>({ amount }),
      },
    });
    const clock = new FakeClock();
    const start = node([Checkout], clock);
    let n = await start();
    const before = api.count('/charges');
    api.script({ status: 503 }, { status: 502 });
    const { invocationId } = await n.engine.send({
      service: 'Checkout',
      handler: 'pay',
      input: 1200,
    });
    await api.waitForRequests(before + 1, '/charges');
    // Not retried in memory: the invocation backs off, holding nothing.
    await clock.advance('50s');
    expect(api.count('/charges') - before).toBe(1);
    expect((await n.engine.getInvocation(invocationId))?.status).toBe('backing-off');
    await clock.advance('10s');
    await api.waitForRequests(before + 2, '/charges');

    // The process restarts while the call waits five minutes for its last retry.
    await n.engine.stop();
    n = await start();
    const done = n.engine.attach(invocationId);
    await clock.advance('4m');
    expect(api.count('/charges') - before).toBe(2);
    await clock.advance('1m');
    expect(await done).toMatchObject({ id: expect.stringMatching(/^ch_/), amount: 1200 });
    const keys = api.idempotencyKeys('/charges').slice(-3);
    expect(keys).toEqual([keys[0], keys[0], keys[0]]);
    expect(keys[0]).toBe(`${invocationId}.0`);
    const journal = await n.engine.getJournal(invocationId);
    expect(journal.filter((e) => e.kind === 'run')).toHaveLength(1);
  });

  it('journals a terminal failure: the handler catches the same error live and on replay', async () => {
    const gh = integration({
      name: 'GitHubMissing',
      baseUrl: api.url,
      operations: { missing: { path: '/nothing/{id}' } },
    });
    const seen: string[] = [];
    const Flow = workflow({
      name: 'Lookup',
      run: async (ctx) => {
        let outcome: string;
        try {
          await use(ctx, gh).missing({ id: 7 });
          outcome = 'found';
        } catch (err) {
          outcome = `${(err as IntegrationCallError).code}:${(err as IntegrationCallError).httpStatus}`;
        }
        seen.push(outcome);
        await ctx.sleep('1m');
        return outcome;
      },
    });
    const clock = new FakeClock();
    const start = node([Flow], clock);
    let n = await start();
    const before = api.count('/nothing');
    const { invocationId } = await n.engine.send({ service: 'Lookup', handler: 'run', key: 'x' });
    await until(() => seen.length === 1, 'the first execution');
    await n.engine.stop();
    n = await start();
    const done = n.engine.attach(invocationId);
    await clock.advance('1m');
    expect(await done).toBe('integration_rejected:404');
    // Every execution (the first, and each replay) saw the same error; the server saw one request.
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(new Set(seen)).toEqual(new Set(['integration_rejected:404']));
    expect(api.count('/nothing') - before).toBe(1);
  });

  it('starts subscriber handlers durably with circuit events', async () => {
    const received: IntegrationEvent[] = [];
    const Alerts = service({
      name: 'Alerts',
      handlers: {
        circuit: async (_ctx, e: IntegrationEvent) => {
          received.push(e);
        },
      },
    });
    const fragile = integration({
      name: 'Fragile',
      baseUrl: api.url,
      retry: false,
      circuitBreaker: { failures: 2, window: '1m', reset: '30s' },
      operations: { ping: { path: '/ping' } },
    });
    const Caller = service({
      name: 'Caller',
      handlers: {
        go: async (ctx) =>
          use(ctx, fragile)
            .ping()
            .catch((e: IntegrationCallError) => e.code),
      },
    });
    const clock = new FakeClock();
    const n = await node([Alerts, Caller], clock, {
      subscribers: [{ service: 'Alerts', handler: 'circuit' }],
    })();
    api.failAll({ status: 500 });
    expect(await n.engine.invoke({ service: 'Caller', handler: 'go' })).toBe(
      'integration_unavailable',
    );
    expect(await n.engine.invoke({ service: 'Caller', handler: 'go' })).toBe(
      'integration_unavailable',
    );
    expect(await n.engine.invoke({ service: 'Caller', handler: 'go' })).toBe('circuit_open');
    await until(() => received.length === 1, 'the event handler');
    expect(received[0]).toMatchObject({
      type: 'IntegrationCircuitOpened',
      integration: 'Fragile',
      reason: 'failures',
      failures: 2,
    });
  });

  it('runs against the mock in mock mode, journaled like a real call', async () => {
    const sms = integration({
      name: 'Sms',
      baseUrl: { env: 'SMS_URL_THAT_IS_NOT_SET' },
      auth: { type: 'basic', username: 'u', password: { env: 'SMS_PASSWORD_NOT_SET' } },
      mock: (req) => ({ status: 201, body: { sid: `SM-${(req.body as { to: string }).to}` } }),
      operations: { send: { method: 'POST', path: '/messages' } },
    });
    const Notify = service({
      name: 'Notify',
      handlers: { text: async (ctx, to: string) => use(ctx, sms).send({ to, body: 'hi' }) },
    });
    const n = await node([Notify], new FakeClock(), { mock: true })();
    expect(await n.engine.invoke({ service: 'Notify', handler: 'text', input: '+1555' })).toEqual({
      sid: 'SM-+1555',
    });
  });
});
