import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appOptionsFromEnv, startApp, type App } from '../src/app.js';
import { service } from '../src/index.js';
import { tempDir } from './helpers.js';

/**
 * KEEL_INGRESS_KEYS over real HTTP: every ingress route needs a key (Bearer or X-API-Key) but
 * GET /health and the inbound webhook receivers, which verify their provider's signature.
 */
const K1 = 'ingress-key-one-0123456789abcdef012345';
const K2 = 'ingress-key-two-0123456789abcdef012345';
const HOOK_SECRET = 'github-hook-secret-for-the-test';

const Echo = service({ name: 'Echo', handlers: { say: async (_ctx, s: string) => s } });
const Inbox = service({ name: 'Inbox', handlers: { record: async () => undefined } });
const tmp = tempDir('keel-ingress-keys-');
let app: App;

beforeAll(async () => {
  app = await startApp({
    services: [Echo, Inbox],
    db: join(tmp.dir, 'keel.db'),
    port: 0,
    adminPort: 0,
    logger: () => undefined,
    webhooks: {
      receivers: {
        github: {
          provider: 'github',
          secret: HOOK_SECRET,
          route: () => ({ target: Inbox, handler: 'record' }),
        },
      },
    },
    ...appOptionsFromEnv({ KEEL_INGRESS_KEYS: `${K1}, ${K2}` }),
  });
});
afterAll(async () => {
  await app?.close();
  tmp.cleanup();
});

function call(method: string, path: string, headers: Record<string, string> = {}, body?: unknown) {
  return fetch(`${app.ingress.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

describe('ingress API keys', () => {
  it('refuses a request without a key or with a wrong one: 401 naming both headers', async () => {
    for (const headers of [
      {} as Record<string, string>,
      { authorization: `Bearer ${'z'.repeat(40)}` },
      { 'x-api-key': 'nope' },
    ]) {
      const r = await call('POST', '/Echo/say', headers, 'hi');
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe('Bearer');
      const body = (await r.json()) as { code: string; message: string };
      expect(body.code).toBe('unauthorized');
      expect(body.message).toContain('Authorization: Bearer <key>');
      expect(body.message).toContain('X-API-Key: <key>');
    }
  });

  it('accepts each key, as a Bearer token or as X-API-Key', async () => {
    const a = await call('POST', '/Echo/say', { authorization: `Bearer ${K1}` }, 'one');
    expect(await a.json()).toBe('one');
    const b = await call('POST', '/Echo/say', { 'x-api-key': K2 }, 'two');
    expect(await b.json()).toBe('two');
  });

  it('guards sends, invocation reads, awakeables and the OpenAPI document', async () => {
    const sent = await call('POST', '/Echo/say/send', { 'x-api-key': K1 }, 'later');
    expect(sent.status).toBe(202);
    const { invocationId } = (await sent.json()) as { invocationId: string };
    expect((await call('GET', `/invocations/${invocationId}`)).status).toBe(401);
    expect((await call('GET', `/invocations/${invocationId}`, { 'x-api-key': K1 })).status).toBe(
      200,
    );
    expect((await call('GET', `/invocations/${invocationId}/attach`)).status).toBe(401);
    expect((await call('POST', '/awakeables/awk_x/resolve', {}, 1)).status).toBe(401);
    expect((await call('GET', '/openapi.json')).status).toBe(401);
    expect((await call('GET', '/openapi.json', { authorization: `Bearer ${K2}` })).status).toBe(
      200,
    );
  });

  it('leaves GET /health and the webhook receivers (signature-verified) open', async () => {
    expect((await call('GET', '/health')).status).toBe(200);
    // Without a signature the receiver itself refuses it, saying nothing about ingress keys.
    const unsigned = await call('POST', '/webhooks/github', { 'x-github-event': 'ping' }, {});
    expect(unsigned.status).not.toBe(200);
    expect(await unsigned.text()).not.toContain('KEEL_INGRESS_KEYS');
    const body = JSON.stringify({ zen: 'ok' });
    const signed = await fetch(`${app.ingress.url}/webhooks/github`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'ping',
        'x-github-delivery': 'd-1',
        'x-hub-signature-256': `sha256=${createHmac('sha256', HOOK_SECRET).update(body).digest('hex')}`,
      },
      body,
    });
    expect(signed.status).toBeLessThan(300);
  });

  it('refuses a short key at start, without printing it', async () => {
    expect(() => appOptionsFromEnv({ KEEL_INGRESS_KEYS: `${K1},short-key` })).toThrow(
      /ingress key 2 of 2 .* is 9 characters long; it must be at least 32/,
    );
    await expect(
      startApp({ services: [Echo], db: ':memory:', port: 0, adminPort: 0, ingressKeys: ['tiny'] }),
    ).rejects.toThrow(/the ingress key .* is 4 characters long/);
  });
});
