import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appOptionsFromEnv, startApp, type App } from '../src/app.js';
import { service } from '../src/index.js';
import { tempDir } from './helpers.js';

/**
 * The admin API's roles over real HTTP through startApp: admin and viewer tokens (single and
 * lists, for rotation), `GET /whoami`, 401 without a token, 403 for a viewer's action, the
 * KEEL_USER_TOKEN alias, and the refusal to bind beyond loopback without a token.
 */
const A1 = 'admin-one-0123456789abcdef0123456789ab';
const A2 = 'admin-two-0123456789abcdef0123456789ab';
const V1 = 'viewer-one-0123456789abcdef0123456789a';
const V2 = 'viewer-two-0123456789abcdef0123456789a';
const V3 = 'viewer-three-0123456789abcdef012345678';

const Echo = service({ name: 'Echo', handlers: { say: async (_ctx, s: string) => s } });
const tmp = tempDir('keel-admin-auth-');
let app: App;

beforeAll(async () => {
  app = await startApp({
    services: [Echo],
    db: join(tmp.dir, 'keel.db'),
    port: 0,
    adminPort: 0,
    logger: () => undefined,
    ...appOptionsFromEnv({
      KEEL_ADMIN_TOKEN: A1,
      KEEL_ADMIN_TOKENS: ` ${A2} `,
      KEEL_VIEWER_TOKEN: V1,
      KEEL_USER_TOKEN: V1, // the alias, same value: accepted
      KEEL_VIEWER_TOKENS: `${V2},${V3}`,
    }),
  });
});
afterAll(async () => {
  await app?.close();
  tmp.cleanup();
});

async function call(method: string, path: string, token?: string) {
  const res = await fetch(`${app.admin.url}${path}`, {
    method,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, res };
}

describe('admin roles', () => {
  it('answers 401 without a token or with a wrong one, naming the header', async () => {
    const none = await call('GET', '/invocations');
    expect(none.status).toBe(401);
    expect(none.body.code).toBe('unauthorized');
    expect(none.body.message).toContain('Authorization: Bearer');
    expect(none.res.headers.get('www-authenticate')).toBe('Bearer');
    const wrong = await call('GET', '/whoami', 'x'.repeat(40));
    expect(wrong.status).toBe(401);
    expect(JSON.stringify(wrong.body)).not.toContain('x'.repeat(40));
  });

  it('GET /whoami names the role of every configured token', async () => {
    for (const t of [A1, A2])
      expect((await call('GET', '/whoami', t)).body).toEqual({ role: 'admin' });
    for (const t of [V1, V2, V3])
      expect((await call('GET', '/whoami', t)).body).toEqual({ role: 'viewer' });
    expect((await call('POST', '/whoami', A1)).status).toBe(405);
  });

  it('lets a viewer read and answers 403 forbidden on an action', async () => {
    const inv = await app.engine.send({ service: 'Echo', handler: 'say', input: 'hi' });
    const read = await call('GET', `/invocations/${inv.invocationId}`, V2);
    expect(read.status).toBe(200);
    const cancel = await call('POST', `/invocations/${inv.invocationId}/cancel`, V3);
    expect(cancel.status).toBe(403);
    expect(cancel.body.code).toBe('forbidden');
    expect(cancel.body.message).toContain('KEEL_VIEWER_TOKEN');
    // The second admin token (rotation) may act.
    const purge = await call('POST', `/invocations/not-an-id/purge`, A2);
    expect(purge.status).toBe(404);
  });
});

describe('token configuration', () => {
  const base = { services: [Echo], port: 0, adminPort: 0, logger: () => undefined };

  it('refuses to bind the admin API to 0.0.0.0 without a token, with a clear message', async () => {
    const t = tempDir('keel-admin-auth-');
    try {
      await expect(
        startApp({ ...base, db: join(t.dir, 'k.db'), adminHost: '0.0.0.0' }),
      ).rejects.toThrow(
        /refusing to serve the admin API on 0\.0\.0\.0 without a token.*KEEL_ADMIN_TOKEN/,
      );
    } finally {
      t.cleanup();
    }
  });

  it('starts on 0.0.0.0 with an admin token from the list alone', async () => {
    const t = tempDir('keel-admin-auth-');
    const a = await startApp({
      ...base,
      db: join(t.dir, 'k.db'),
      adminHost: '0.0.0.0',
      ...appOptionsFromEnv({ KEEL_ADMIN_TOKENS: `${A1},${A2}` }),
    });
    try {
      const port = a.admin.port;
      const r = await fetch(`http://127.0.0.1:${port}/whoami`, {
        headers: { authorization: `Bearer ${A2}` },
      });
      expect(await r.json()).toEqual({ role: 'admin' });
    } finally {
      await a.close();
      t.cleanup();
    }
  });

  it('refuses KEEL_VIEWER_TOKEN and KEEL_USER_TOKEN set to different values', async () => {
    await expect(
      startApp({
        ...base,
        db: ':memory:',
        ...appOptionsFromEnv({ KEEL_ADMIN_TOKEN: A1, KEEL_VIEWER_TOKEN: V1, KEEL_USER_TOKEN: V2 }),
      }),
    ).rejects.toThrow(/KEEL_VIEWER_TOKEN and KEEL_USER_TOKEN .* both set, to different values/);
  });

  it('refuses short list items, empty items, viewers without an admin, and a token in both roles', async () => {
    const start = (env: Record<string, string>) =>
      startApp({ ...base, db: ':memory:', ...appOptionsFromEnv(env) });
    await expect(start({ KEEL_ADMIN_TOKENS: `${A1},short` })).rejects.toThrow(
      /item 2 of 2\) is 5 characters long; it must be at least 32/,
    );
    expect(() => appOptionsFromEnv({ KEEL_VIEWER_TOKENS: `${V1},,${V2}` })).toThrow(/empty item/);
    await expect(start({ KEEL_VIEWER_TOKENS: V1 })).rejects.toThrow(/without an admin token/);
    await expect(
      start({ KEEL_ADMIN_TOKEN: A1, KEEL_VIEWER_TOKENS: `${V1},${A1}` }),
    ).rejects.toThrow(/same as an admin token/);
    // No message repeats a token.
    try {
      await start({ KEEL_ADMIN_TOKENS: `${A1},short` });
    } catch (e) {
      expect((e as Error).message).not.toContain(A1);
    }
  });
});
