import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connect,
  KeelError,
  NetworkError,
  UnexpectedAnswerError,
  type ConnectOptions,
  type RetryInfo,
} from '../../src/client/index.js';
import { tcpProxy } from '../tcp-proxy.js';
import type { Greeter, Ledger, Signup } from './fixture.js';
import { executions, startClientApp } from './fixture.js';
import { flakyProxy, type Fault, type FlakyProxy } from './flaky-proxy.js';

/**
 * The client's retries over real sockets: a proxy between the client and a real app loses
 * answers (a TCP reset after the app ran the request), answers 502/503 for it, or refuses
 * connections. Only idempotent requests are repeated, and a repeated one runs once.
 */

let server: Awaited<ReturnType<typeof startClientApp>>;
const proxies: FlakyProxy[] = [];
/** Short waits between attempts: the tests wait for the retries, not for the backoff. */
const FAST = { initialInterval: 10, maxInterval: 50 } as const;

beforeAll(async () => {
  server = await startClientApp();
});
afterAll(async () => {
  for (const p of proxies) await p.close();
  await server?.close();
});

async function through(
  faults: Fault[],
  options: Partial<ConnectOptions> = {},
): Promise<{ proxy: FlakyProxy; keel: ReturnType<typeof connect>; retries: RetryInfo[] }> {
  const proxy = await flakyProxy(server.app.ingress.port, faults);
  proxies.push(proxy);
  const retries: RetryInfo[] = [];
  const keel = connect({
    url: proxy.url,
    retry: FAST,
    onRetry: (info) => retries.push(info),
    ...options,
  });
  return { proxy, keel, retries };
}

async function rejection(p: Promise<unknown>): Promise<KeelError> {
  const outcome = await p.then(
    (value) => ({ value }),
    (err: unknown) => ({ err }),
  );
  if (!('err' in outcome)) throw new Error(`expected a rejection, got ${JSON.stringify(outcome)}`);
  return outcome.err as KeelError;
}

describe('a lost answer (connection reset after the app ran the request)', () => {
  it('with an idempotency key: retried, answered with the same result, run once', async () => {
    const { proxy, keel, retries } = await through(['reset-after-request']);
    const result = await keel
      .serviceClient<typeof Greeter>('Greeter')
      .tally('reset-keyed', { idempotencyKey: 'reset-keyed-1' });
    expect(result).toBe('tallied reset-keyed');
    expect(executions.get('reset-keyed')).toBe(1);
    expect(proxy.connections).toBe(2);
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ method: 'POST', path: '/Greeter/tally', attempt: 1 });
    expect(retries[0]!.error).toBeInstanceOf(NetworkError);
  });

  it('a send with a key: retried, one invocation, the same id as a later send with the key', async () => {
    const { proxy, keel } = await through(['reset-after-request']);
    const sender = keel.objectSendClient<typeof Ledger>('Ledger', 'reset-send');
    const sent = await sender.add(3, { idempotencyKey: 'reset-send-1' });
    expect(proxy.connections).toBe(2);
    // The first attempt created it; the retry found it.
    expect(sent.existing).toBe(true);
    expect(await sent.attach()).toBe(3);
    const again = await sender.add(3, { idempotencyKey: 'reset-send-1' });
    expect(again.invocationId).toBe(sent.invocationId);
    expect(executions.get('Ledger/reset-send/add')).toBe(1);
  });

  it("a workflow's run without a key: retried (one run per key), run once", async () => {
    const { proxy, keel } = await through(['reset-after-request']);
    const result = await keel
      .workflowClient<typeof Signup>('Signup', 'reset-run')
      .run({ email: 'r@example.com' });
    expect(result).toEqual({ account: 'acct-reset-run', email: 'r@example.com' });
    expect(proxy.connections).toBe(2);
    expect(executions.get('Signup/reset-run')).toBe(1);
  });

  it('without a key: not retried, a NetworkError saying so; the app did run it', async () => {
    const { proxy, keel, retries } = await through(['reset-after-request']);
    const err = await rejection(keel.serviceClient<typeof Greeter>('Greeter').tally('reset-bare'));
    expect(err).toBeInstanceOf(NetworkError);
    expect(err).toMatchObject({ code: 'network_error', attempts: 1 });
    expect(err.message).toContain('idempotencyKey');
    expect(retries).toEqual([]);
    expect(proxy.connections).toBe(1);
    expect(executions.get('reset-bare')).toBe(1);
  });
});

describe('gateway answers', () => {
  it('a 502 page then the app: an idempotent read is retried and answered', async () => {
    const direct = connect({ url: server.app.ingress.url });
    const sent = await direct.serviceSendClient<typeof Greeter>('Greeter').greet('gw');
    const { proxy, keel, retries } = await through(['answer-502']);
    expect(await keel.invocation<string>(sent.invocationId).attach()).toBe('Hello, gw!');
    expect(proxy.connections).toBe(2);
    expect(retries[0]!.error).toBeInstanceOf(UnexpectedAnswerError);
  });

  it('a 503 with Retry-After then the app: a keyed call is retried', async () => {
    const { proxy, keel } = await through(['answer-503-json']);
    expect(
      await keel
        .serviceClient<typeof Greeter>('Greeter')
        .tally('gw-503', { idempotencyKey: 'gw-503-1' }),
    ).toBe('tallied gw-503');
    expect(proxy.connections).toBe(2);
    expect(executions.get('gw-503')).toBe(1);
  });

  it('a 502 page for a call without a key: not retried, an UnexpectedAnswerError with status 502', async () => {
    const { proxy, keel } = await through(['answer-502']);
    const err = await rejection(keel.serviceClient<typeof Greeter>('Greeter').greet('no'));
    expect(err).toBeInstanceOf(UnexpectedAnswerError);
    expect(err).toMatchObject({ code: 'unexpected_answer', status: 502 });
    expect(proxy.connections).toBe(1);
  });

  it('a 503 { code } for a call without a key: a plain, non-terminal KeelError with its code', async () => {
    const { keel } = await through(['answer-503-json']);
    const err = await rejection(keel.serviceClient<typeof Greeter>('Greeter').greet('no'));
    expect(err.constructor).toBe(KeelError);
    expect(err).toMatchObject({ code: 'unavailable', status: 503, message: 'restarting' });
  });

  it('a 200 that is not JSON is an UnexpectedAnswerError', async () => {
    const { keel } = await through(['answer-200-text']);
    const err = await rejection(keel.serviceClient<typeof Greeter>('Greeter').greet('x'));
    expect(err).toBeInstanceOf(UnexpectedAnswerError);
    expect(err.message).toContain('not JSON');
  });
});

describe('refused connections', () => {
  it('retries a keyed call until the app is reachable again', async () => {
    const proxy = await tcpProxy({ host: '127.0.0.1', port: server.app.ingress.port });
    await proxy.stop(); // refused from now on
    const retries: RetryInfo[] = [];
    const keel = connect({
      url: `http://127.0.0.1:${proxy.port}`,
      retry: { ...FAST, maxAttempts: 20 },
      onRetry: (info) => {
        retries.push(info);
        if (retries.length === 2) void proxy.start();
      },
    });
    try {
      expect(
        await keel
          .objectClient<typeof Ledger>('Ledger', 'refused')
          .add(4, { idempotencyKey: 'refused-1' }),
      ).toBe(4);
      expect(retries.length).toBeGreaterThanOrEqual(2);
      const first = retries[0]!.error as NetworkError;
      expect(first).toBeInstanceOf(NetworkError);
      expect(first.message).toContain('ECONNREFUSED');
    } finally {
      await proxy.close();
    }
  });

  it('gives up after maxAttempts with a NetworkError counting them', async () => {
    const proxy = await tcpProxy({ host: '127.0.0.1', port: server.app.ingress.port });
    await proxy.close();
    const retries: RetryInfo[] = [];
    const keel = connect({
      url: `http://127.0.0.1:${proxy.port}`,
      retry: { ...FAST, maxAttempts: 3 },
      onRetry: (info) => retries.push(info),
    });
    const err = await rejection(keel.invocation('inv_x').info());
    expect(err).toBeInstanceOf(NetworkError);
    expect(err).toMatchObject({ attempts: 3 });
    expect(retries.map((r) => r.attempt)).toEqual([1, 2]);
  });

  it('retry: false tries once, even a read', async () => {
    const proxy = await tcpProxy({ host: '127.0.0.1', port: server.app.ingress.port });
    await proxy.close();
    const keel = connect({ url: `http://127.0.0.1:${proxy.port}`, retry: false });
    const err = await rejection(keel.invocation('inv_x').info());
    expect(err).toMatchObject({ code: 'network_error', attempts: 1 });
  });

  it('an abort during the wait between attempts rejects with the signal’s reason', async () => {
    const proxy = await tcpProxy({ host: '127.0.0.1', port: server.app.ingress.port });
    await proxy.close();
    const controller = new AbortController();
    const reason = new Error('the caller gave up');
    const keel = connect({
      url: `http://127.0.0.1:${proxy.port}`,
      retry: { initialInterval: '1h', maxAttempts: 5 },
      onRetry: () => controller.abort(reason),
    });
    await expect(keel.invocation('inv_x').attach({ signal: controller.signal })).rejects.toBe(
      reason,
    );
  });
});
