import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { Engine, service, TerminalError, workflow, type Definition } from '../src/index.js';
import { serve } from '../src/ingress/index.js';
import { createIntegrations, integration, use } from '../src/integrations/index.js';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { crash, FakeClock } from '../src/testing/index.js';
import { Sender } from '../src/webhooks/outbound/http.js';
import { producerSpan } from '../src/observability/tracing/messaging.js';
import { extractSpanContext, injectHeaders } from '../src/observability/tracing/propagation.js';
// Test only: the W3C propagator an SDK registers (the Node SDK's default), from the SDK's core.
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { tempDir, until } from './helpers.js';

/**
 * Tracing through `@opentelemetry/api` with the SDK's in-memory exporter registered globally,
 * as a user would register the Node SDK: the span tree of a workflow that runs steps, calls
 * another service and makes an integration request to a real HTTP server; the `traceparent`
 * taken at the ingress and carried everywhere; and no spans for steps a replay skips.
 */
const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();

// A fake provider API: records each request's headers and answers 201 with a label.
const received: IncomingHttpHeaders[] = [];
let api: Server;
let apiUrl: string;

const tmp = tempDir('keel-tracing-');
beforeAll(async () => {
  trace.setGlobalTracerProvider(provider);
  context.setGlobalContextManager(contextManager.enable());
  api = createServer((req, res) => {
    received.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ label: 'L-1' }));
    });
  });
  await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((r) => api.close(r));
  trace.disable();
  context.disable();
  propagation.disable();
  await provider.shutdown();
  tmp.cleanup();
});
beforeEach(() => {
  exporter.reset();
  received.length = 0;
});

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';

const spans = (): ReadableSpan[] => exporter.getFinishedSpans();
const named = (name: string): ReadableSpan[] => spans().filter((s) => s.name === name);
const one = (name: string, kind?: SpanKind): ReadableSpan => {
  const found = named(name).filter((s) => kind === undefined || s.kind === kind);
  expect(found, `one span named ${name}`).toHaveLength(1);
  return found[0]!;
};
const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;
const idOf = (s: ReadableSpan): string => s.spanContext().spanId;

describe('tracing', () => {
  it('builds the span tree of a workflow with a call and an integration request, under the ingress traceparent', async () => {
    const shipping = integration({
      name: 'Shipping',
      baseUrl: apiUrl,
      operations: { create_label: { method: 'POST', path: '/labels' } },
    });
    const Payments = service({
      name: 'Payments',
      handlers: {
        charge: async (ctx, amount: number) => ctx.run('charge card', () => `ch-${amount}`),
      },
    });
    const Order = workflow({
      name: 'Order',
      run: async (ctx, amount: number) => {
        await ctx.run('reserve', () => 'r-1');
        const charge = await ctx.serviceClient(Payments).charge(amount);
        const label = await use(ctx, shipping).create_label<{ label: string }>({
          body: { amount },
        });
        return { charge, label: label.label };
      },
    });
    const integrations = createIntegrations({ log: () => undefined });
    const engine = new Engine({
      services: [Payments, Order] as Definition[],
      store: openSqliteStore({ path: join(tmp.dir, 'tree.db') }),
      logger: () => undefined,
      extensions: [integrations],
    });
    await engine.start();
    const ingress = await serve(engine, { port: 0 });
    try {
      const res = await fetch(`${ingress.url}/Order/o1/run`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01`,
          tracestate: 'vendor=abc',
        },
        body: '42',
      });
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ charge: 'ch-42', label: 'L-1' });
      await until(() => named('Payments/charge').length === 2, 'the call spans end');
    } finally {
      await ingress.close();
      await engine.stop();
      await integrations.runtime.close();
    }

    // Every span is in the caller's trace.
    expect(spans()).toHaveLength(7);
    for (const s of spans()) expect(s.spanContext().traceId, s.name).toBe(TRACE_ID);

    const order = one('Order/run');
    expect(order.kind).toBe(SpanKind.SERVER);
    expect(parentOf(order)).toBe(CLIENT_SPAN);
    expect(order.attributes).toMatchObject({
      'keel.service': 'Order',
      'keel.handler': 'run',
      'keel.key': 'o1',
      'keel.attempt': 0,
    });
    expect(order.attributes['keel.invocation.id']).toMatch(/^inv_/);
    expect(order.spanContext().traceState?.get('vendor')).toBe('abc');

    const reserve = one('reserve');
    expect(parentOf(reserve)).toBe(idOf(order));
    expect(reserve.kind).toBe(SpanKind.INTERNAL);

    // The call: a CLIENT span under the workflow, the callee's SERVER span under it.
    const call = one('Payments/charge', SpanKind.CLIENT);
    expect(parentOf(call)).toBe(idOf(order));
    const callee = one('Payments/charge', SpanKind.SERVER);
    expect(parentOf(callee)).toBe(idOf(call));
    expect(callee.attributes['keel.service']).toBe('Payments');
    expect(callee.attributes['keel.invocation.id']).not.toBe(
      order.attributes['keel.invocation.id'],
    );
    expect(parentOf(one('charge card'))).toBe(idOf(callee));

    // The integration request: its step, and the HTTP CLIENT span inside it.
    const step = one('Shipping.create_label');
    expect(parentOf(step)).toBe(idOf(order));
    const http = one('POST', SpanKind.CLIENT);
    expect(parentOf(http)).toBe(idOf(step));
    expect(http.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.full': `${apiUrl}/labels`,
      'server.address': '127.0.0.1',
      'http.response.status_code': 201,
      'keel.integration': 'Shipping',
    });

    // The provider got the HTTP span's context.
    expect(received).toHaveLength(1);
    expect(received[0]!.traceparent).toBe(`00-${TRACE_ID}-${idOf(http)}-01`);
    expect(received[0]!.tracestate).toBe('vendor=abc');
  });

  it('emits no spans for steps a replay skips, and continues the trace after a restart', async () => {
    const ran: string[] = [];
    const Slow = workflow({
      name: 'Slow',
      run: async (ctx) => {
        await ctx.run('a', () => ran.push('a'));
        await ctx.sleep('1h');
        await ctx.run('b', () => ran.push('b'));
        return 'done';
      },
    });
    const clock = new FakeClock();
    const file = join(tmp.dir, 'replay.db');
    const open = async (): Promise<Engine> => {
      const engine = new Engine({
        services: [Slow] as Definition[],
        store: openSqliteStore({ path: file }),
        clock,
        logger: () => undefined,
      });
      await engine.start();
      return engine;
    };
    const first = await open();
    // Started without a traceparent: the first attempt's span roots the trace.
    const { invocationId } = await first.send({ service: 'Slow', handler: 'run', key: 'w1' });
    await until(
      async () => (await first.getJournal(invocationId)).some((e) => e.kind === 'sleep'),
      'the first attempt sleeps',
    );
    // The attempt ends here (in memory or suspended): its spans end with it.
    await first.stop();
    expect(ran).toEqual(['a']);
    const attempt1 = one('Slow/run');
    expect(attempt1.attributes['keel.suspended']).toBe(true);
    expect(one('sleep').attributes['keel.suspended']).toBe(true);
    expect(parentOf(one('a'))).toBe(idOf(attempt1));
    exporter.reset();

    // A new engine on the same file: the invocation resumes from its journal.
    const second = await open();
    try {
      await clock.advance('1h');
      expect(await second.attach(invocationId)).toBe('done');
      await until(() => named('b').length === 1, 'step b ends');
      await until(
        () => named('Slow/run').some((s) => s.attributes['keel.suspended'] === undefined),
        'the last attempt ends',
      );
    } finally {
      await second.stop();
    }
    expect(ran).toEqual(['a', 'b']);
    // Attempts of the new engine (one may have suspended while the timer was pending, one ran
    // to the end): only their live step "b", no span for the replayed "a" or the sleep.
    expect(
      spans()
        .filter((s) => s.name !== 'Slow/run')
        .map((s) => s.name),
    ).toEqual(['b']);
    const attempts = named('Slow/run');
    for (const a of attempts) {
      expect(a.spanContext().traceId).toBe(attempt1.spanContext().traceId);
      expect(parentOf(a)).toBe(idOf(attempt1));
    }
    const last = attempts.find((s) => s.attributes['keel.suspended'] === undefined)!;
    expect(last.status.code).not.toBe(SpanStatusCode.ERROR);
    expect(parentOf(one('b'))).toBe(idOf(last));
  });

  it('marks failed steps and invocations as errors', async () => {
    const Failing = service({
      name: 'Failing',
      handlers: {
        go: async (ctx) => {
          await ctx.run('boom', () => {
            throw new TerminalError('no stock', { code: 'no_stock' });
          });
        },
      },
    });
    const engine = new Engine({
      services: [Failing] as Definition[],
      store: openSqliteStore({ path: join(tmp.dir, 'errors.db') }),
      logger: () => undefined,
    });
    await engine.start();
    try {
      await expect(engine.invoke({ service: 'Failing', handler: 'go' })).rejects.toThrow(
        'no stock',
      );
      await until(() => named('Failing/go').length === 1, 'the attempt span ends');
    } finally {
      await engine.stop();
    }
    for (const name of ['boom', 'Failing/go']) {
      const s = one(name);
      expect(s.status.code, name).toBe(SpanStatusCode.ERROR);
      expect(
        s.events.some((e) => e.name === 'exception'),
        name,
      ).toBe(true);
      expect(s.attributes['keel.error.code'], name).toBe('no_stock');
    }
  });
});

describe('propagation', () => {
  const root = (): ReturnType<typeof trace.setSpan> =>
    trace.setSpan(
      context.active(),
      trace.wrapSpanContext({
        traceId: TRACE_ID,
        spanId: CLIENT_SPAN,
        traceFlags: 1,
        isRemote: true,
      }),
    );

  it("takes a send's traceparent at the ingress (a consumer) and ignores a malformed one", async () => {
    const Greeter = service({
      name: 'TracedGreeter',
      handlers: { greet: async (_ctx, name: string) => `Hello, ${name}!` },
    });
    const engine = new Engine({
      services: [Greeter] as Definition[],
      store: openSqliteStore({ path: join(tmp.dir, 'ingress.db') }),
      logger: () => undefined,
    });
    await engine.start();
    const ingress = await serve(engine, { port: 0 });
    try {
      const post = async (path: string, traceparent: string): Promise<string> => {
        const res = await fetch(`${ingress.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', traceparent },
          body: '"Ada"',
        });
        expect(res.status).toBeLessThan(300);
        return ((await res.json()) as { invocationId: string }).invocationId;
      };
      const sent = await post('/TracedGreeter/greet/send', `00-${TRACE_ID}-${CLIENT_SPAN}-01`);
      const bad = await post('/TracedGreeter/greet/send', `00-${TRACE_ID}-nothex-01`);
      await until(() => named('TracedGreeter/greet').length === 2, 'both attempts end');
      const byId = (id: string): ReadableSpan =>
        named('TracedGreeter/greet').find((s) => s.attributes['keel.invocation.id'] === id)!;
      expect(byId(sent).kind).toBe(SpanKind.CONSUMER);
      expect(byId(sent).spanContext().traceId).toBe(TRACE_ID);
      expect(parentOf(byId(sent))).toBe(CLIENT_SPAN);
      expect(byId(bad).spanContext().traceId).not.toBe(TRACE_ID);
      expect(parentOf(byId(bad))).toBeUndefined();
    } finally {
      await ingress.close();
      await engine.stop();
    }
  });

  it('uses the registered propagator when an SDK set one, and W3C headers otherwise', () => {
    const headers = { traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01`, tracestate: 'k=v' };
    const check = (): void => {
      const sc = extractSpanContext(headers);
      expect(sc).toMatchObject({ traceId: TRACE_ID, spanId: CLIENT_SPAN, isRemote: true });
      expect(sc?.traceState?.get('k')).toBe('v');
      const out: Record<string, string> = {};
      injectHeaders(out, root());
      expect(out.traceparent).toBe(`00-${TRACE_ID}-${CLIENT_SPAN}-01`);
      expect(extractSpanContext({})).toBeUndefined();
    };
    check(); // no propagator: Keel's own W3C reading and writing
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    try {
      expect(propagation.fields()).toContain('traceparent');
      check();
    } finally {
      propagation.disable();
    }
  });

  it("sends a webhook delivery's traceparent from its HTTP span", async () => {
    const sender = new Sender({
      allow: ['127.0.0.1'],
      timeoutMs: 5000,
      bodyLimit: 1024,
      connections: 1,
    });
    try {
      const outcome = await context.with(root(), () =>
        sender.post(`${apiUrl}/hook?token=secret`, ['webhook-id', 'msg_1'], '{}'),
      );
      expect(outcome.status).toBe(201);
    } finally {
      await sender.close();
    }
    const http = one('POST', SpanKind.CLIENT);
    expect(parentOf(http)).toBe(CLIENT_SPAN);
    expect(http.attributes['url.full']).toBe(`${apiUrl}/hook?token=REDACTED`);
    expect(http.attributes['http.response.status_code']).toBe(201);
    expect(received).toHaveLength(1);
    expect(received[0]!.traceparent).toBe(`00-${TRACE_ID}-${idOf(http)}-01`);
    expect(received[0]!['webhook-id']).toBe('msg_1');
  });

  it("puts the publish span's traceparent into a broker message's headers", async () => {
    let published: Record<string, string> | undefined;
    const given = { 'x-app': '1' };
    await context.with(root(), () =>
      producerSpan('nats', 'orders.created', 'm-1', given, async (h) => {
        published = h;
      }),
    );
    const span = one('send orders.created', SpanKind.PRODUCER);
    expect(parentOf(span)).toBe(CLIENT_SPAN);
    expect(span.attributes).toMatchObject({
      'messaging.system': 'nats',
      'messaging.destination.name': 'orders.created',
      'messaging.message.id': 'm-1',
    });
    expect(published).toEqual({
      'x-app': '1',
      traceparent: `00-${TRACE_ID}-${idOf(span)}-01`,
    });
    expect(given).toEqual({ 'x-app': '1' }); // the caller's headers are not changed
  });
});

describe('tracing on PostgreSQL', () => {
  const url = inject('postgresUrl');
  const schema = `keel_tracing_${randomBytes(4).toString('hex')}`;
  const engines: Engine[] = [];
  afterAll(async () => {
    for (const e of engines) await e.stop().catch(() => undefined);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  it('continues the trace in the process that takes an invocation over, through the stored field', async () => {
    const ran: string[] = [];
    const Callee = service({
      name: 'TracedCallee',
      handlers: { work: async (ctx) => ctx.run('work step', () => 'worked') },
    });
    const Caller = service({
      name: 'TracedCaller',
      handlers: {
        go: async (ctx) => {
          await ctx.run('one', () => ran.push('one'));
          await ctx.sleep('300ms');
          return ctx.serviceClient(Callee).work();
        },
      },
    });
    const open = async (): Promise<Engine> => {
      const engine = new Engine({
        services: [Callee, Caller] as Definition[],
        store: await openPostgresStore({ url, schema }),
        lease: '2s',
        logger: () => undefined,
      });
      engines.push(engine);
      await engine.start();
      return engine;
    };
    const a = await open();
    const b = await open();
    const { invocationId } = await a.send({
      service: 'TracedCaller',
      handler: 'go',
      traceparent: `00-${TRACE_ID}-${CLIENT_SPAN}-01`,
    });
    await until(() => named('one').length === 1, 'step one ran in a');
    // a stops without giving up its lease, as a crash would: b takes over once it ends.
    await crash(a);
    expect(await b.attach(invocationId)).toBe('worked');
    await until(() => named('TracedCallee/work').length === 2, 'the call spans end');
    expect(ran).toEqual(['one']);

    for (const s of spans()) expect(s.spanContext().traceId, s.name).toBe(TRACE_ID);
    // Every attempt of the caller, in a and in b, is a child of the client's span.
    const attempts = named('TracedCaller/go');
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    for (const at of attempts) {
      expect(parentOf(at)).toBe(CLIENT_SPAN);
      expect(at.kind).toBe(SpanKind.CONSUMER);
    }
    expect(named('one')).toHaveLength(1);
    const call = one('TracedCallee/work', SpanKind.CLIENT);
    expect(attempts.map(idOf)).toContain(parentOf(call));
    const callee = one('TracedCallee/work', SpanKind.SERVER);
    expect(parentOf(callee)).toBe(idOf(call));
    expect(parentOf(one('work step'))).toBe(idOf(callee));
  }, 60_000);
});
