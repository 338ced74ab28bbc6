import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, KeelError, TerminalError } from '../../src/client/index.js';
import type { Greeter } from './fixture.js';
import { startClientApp } from './fixture.js';

/** `keel/client` against an ingress that requires API keys (`KEEL_INGRESS_KEYS`). */
const KEY = 'client-test-key-0123456789abcdef0123456789';
const OTHER = 'client-test-key-other-0123456789abcdef0123';

let server: Awaited<ReturnType<typeof startClientApp>>;

beforeAll(async () => {
  server = await startClientApp({ ingressKeys: [KEY, OTHER] });
});
afterAll(async () => {
  await server?.close();
});

describe('API keys', () => {
  it('apiKey is sent as a Bearer token: calls, sends and reads pass', async () => {
    const keel = connect({ url: server.app.ingress.url, apiKey: KEY });
    expect(await keel.serviceClient<typeof Greeter>('Greeter').greet('key')).toBe('Hello, key!');
    const sent = await keel.serviceSendClient<typeof Greeter>('Greeter').greet('sent');
    expect(await sent.attach()).toBe('Hello, sent!');
  });

  it('an X-API-Key header given in headers passes too', async () => {
    const keel = connect({ url: server.app.ingress.url, headers: { 'X-API-Key': OTHER } });
    expect(await keel.serviceClient<typeof Greeter>('Greeter').ping()).toBe('pong');
  });

  it('no key or a wrong one: a terminal error with code unauthorized and status 401, not retried', async () => {
    for (const apiKey of [undefined, 'z'.repeat(40)]) {
      let retried = 0;
      const keel = connect({
        url: server.app.ingress.url,
        ...(apiKey === undefined ? {} : { apiKey }),
        onRetry: () => retried++,
      });
      const err = await keel
        .serviceClient<typeof Greeter>('Greeter')
        .greet('x', { idempotencyKey: 'k' })
        .then(
          () => undefined,
          (e: unknown) => e as KeelError,
        );
      expect(err).toBeInstanceOf(TerminalError);
      expect(err).toMatchObject({ code: 'unauthorized', status: 401 });
      expect(err!.message).toContain('X-API-Key');
      expect(retried).toBe(0);
    }
  });
});
