import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connect,
  InvalidFlowControlError,
  ThrottledError,
  type KeelClient,
} from '../../src/client/index.js';
import type { Greeter, Ledger } from './fixture.js';
import { startClientApp } from './fixture.js';

/**
 * `keel/client` sends with debounce and throttle over real HTTP: the options travel as the
 * ingress's query parameters, a dropped send rejects with `ThrottledError`, and unusable options
 * are refused before any request.
 */
let server: Awaited<ReturnType<typeof startClientApp>>;
let keel: KeelClient;
let requests = 0;

beforeAll(async () => {
  server = await startClientApp();
  keel = connect({
    url: server.app.ingress.url,
    fetch: (input, init) => {
      requests++;
      return fetch(input, init);
    },
  });
});
afterAll(async () => {
  await server?.close();
});

describe('remote sends with debounce and throttle', () => {
  it('a debounced burst answers one scheduled invocation holding the last input', async () => {
    const ledger = keel.objectSendClient<typeof Ledger>('Ledger', 'debounced', {
      debounce: { key: 'totals', period: '1h', maxWait: '2h' },
    });
    const sent = [await ledger.add(1), await ledger.add(2), await ledger.add(3)];
    expect(new Set(sent.map((s) => s.invocationId)).size).toBe(1);
    expect(sent.map((s) => s.existing)).toEqual([false, true, true]);
    expect(sent[0]!.status).toBe('scheduled');
    const row = await server.app.engine.store.getInvocation(sent[0]!.invocationId);
    expect(row).toMatchObject({ status: 'scheduled', input: 3 });
  });

  it('a throttle in drop mode rejects the extra send with ThrottledError', async () => {
    const options = { throttle: { key: 'remote', limit: 1, period: '1h', mode: 'drop' as const } };
    await keel.send({ service: 'Greeter', handler: 'ping' }, undefined, options);
    const err = await keel.send({ service: 'Greeter', handler: 'ping' }, undefined, options).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ThrottledError);
    expect((err as ThrottledError).retryAfterMs).toBeGreaterThan(3_500_000);
  });

  it('refuses unusable options before sending anything', async () => {
    const before = requests;
    const greeter = keel.serviceSendClient<typeof Greeter>('Greeter', {
      throttle: { key: 'k', limit: 0, period: '1s' },
    });
    await expect(greeter.ping()).rejects.toBeInstanceOf(InvalidFlowControlError);
    await expect(
      keel.send({ service: 'Greeter', handler: 'ping' }, undefined, {
        debounce: { key: '', period: '1s' },
      }),
    ).rejects.toThrow(/debounce key is empty/);
    expect(requests).toBe(before);
  });

  it('an option the server refuses comes back as InvalidFlowControlError', async () => {
    // Checked by the server only: debounce with an idempotency key.
    const err = await keel
      .send({ service: 'Greeter', handler: 'ping' }, undefined, {
        debounce: { key: 'k', period: '1s' },
        idempotencyKey: 'i-1',
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(InvalidFlowControlError);
    expect((err as InvalidFlowControlError).code).toBe('invalid_debounce');
  });
});
