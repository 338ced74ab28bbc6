import { timingSafeEqual } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { service } from '../../src/index.js';
import { hashKey, matchDeclared, parseKeysEnv } from '../../src/gateway/index.js';
import { call, gatewayHarness, KEY_A, KEY_B, type GatewayHarness } from './helpers.js';

/**
 * API-key authentication: a missing, malformed, wrong or revoked key gets 401 with a JSON error
 * and `WWW-Authenticate`; keys from code/env and keys made through the admin API are accepted.
 */
const Hello = service({
  name: 'Hello',
  handlers: { hi: async (_ctx, input: { who: string }) => `hi ${input.who}` },
});

let h: GatewayHarness;
beforeAll(async () => {
  h = await gatewayHarness([Hello], {
    keys: [{ name: 'alpha', key: KEY_A }],
    env: { KEEL_GATEWAY_KEYS: `beta:${KEY_B}` },
    routes: [
      {
        method: 'GET',
        path: '/v1/hello/:who',
        target: { service: 'Hello', handler: 'hi' },
        requestMap: { who: 'path.who' },
      },
    ],
  });
});
afterAll(() => h.close());

describe('gateway authentication', () => {
  it('accepts a key from code and one from KEEL_GATEWAY_KEYS', async () => {
    expect(await call(h.base, 'GET', '/gateway/v1/hello/ada', { key: KEY_A })).toMatchObject({
      status: 200,
      body: 'hi ada',
    });
    expect((await call(h.base, 'GET', '/gateway/v1/hello/bob', { key: KEY_B })).body).toBe(
      'hi bob',
    );
  });

  it('refuses a request without a key: 401, a JSON error, WWW-Authenticate', async () => {
    const r = await call(h.base, 'GET', '/gateway/v1/hello/ada');
    expect(r.status).toBe(401);
    expect(r.body).toMatchObject({ code: 'unauthorized' });
    expect(r.body.message).toMatch(/Authorization: Bearer/);
    expect(r.headers.get('www-authenticate')).toBe('Bearer realm="gateway"');
  });

  it('refuses a wrong key (one character off, or another length) with the same answer', async () => {
    const off = KEY_A.slice(0, -1) + (KEY_A.endsWith('f') ? 'e' : 'f');
    const a = await call(h.base, 'GET', '/gateway/v1/hello/ada', { key: off });
    const b = await call(h.base, 'GET', '/gateway/v1/hello/ada', { key: 'x' });
    for (const r of [a, b]) {
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toBe(
        'Bearer realm="gateway", error="invalid_token"',
      );
    }
    expect(a.body).toEqual(b.body);
    expect(JSON.stringify(a.body)).not.toContain(off);
  });

  it('refuses a malformed Authorization header', async () => {
    for (const header of [
      'Basic abc',
      'Bearer',
      `Bearer ${KEY_A} extra`,
      `Bearer ${'k'.repeat(300)}`,
    ]) {
      const r = await call(h.base, 'GET', '/gateway/v1/hello/ada', {
        headers: { authorization: header },
      });
      expect(r.status, header).toBe(401);
      expect(r.body.code).toBe('unauthorized');
    }
  });

  it('authenticates before routing: an unknown route without a key is a 401, with a key a 404', async () => {
    expect((await call(h.base, 'GET', '/gateway/v1/nothing')).status).toBe(401);
    const r = await call(h.base, 'GET', '/gateway/v1/nothing', { key: KEY_A });
    expect(r).toMatchObject({ status: 404, body: { code: 'route_not_found' } });
  });

  it('makes a key through the admin API, shows it once, stores only its hash, and revokes it', async () => {
    const made = await call(h.adminBase, 'POST', '/gateway/keys', {
      body: { name: 'partner', rateLimit: { requests: 100, window: '1m' } },
    });
    expect(made.status).toBe(201);
    const { id, key } = made.body as { id: string; key: string };
    expect(key).toMatch(/^kgw_/);
    expect((await call(h.base, 'GET', '/gateway/v1/hello/p', { key })).body).toBe('hi p');

    const list = await call(h.adminBase, 'GET', '/gateway/keys');
    const listed = (list.body as Array<Record<string, unknown>>).find((k) => k.id === id)!;
    expect(listed).toMatchObject({ name: 'partner', source: 'store' });
    expect(JSON.stringify(list.body)).not.toContain(key);
    expect(JSON.stringify(list.body)).not.toContain(hashKey(key));
    // What the store holds is the hash, never the key.

    const revoked = await call(h.adminBase, 'DELETE', `/gateway/keys/${id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.body.revokedAt).toEqual(expect.any(String));
    const r = await call(h.base, 'GET', '/gateway/v1/hello/p', { key });
    expect(r.status).toBe(401);
    expect(r.body.message).toMatch(/revoked/);
  });

  it('refuses bad key requests on the admin API with 400, and an unknown id with 404', async () => {
    expect(
      (await call(h.adminBase, 'POST', '/gateway/keys', { body: { name: 'bad name!' } })).status,
    ).toBe(400);
    expect(
      (
        await call(h.adminBase, 'POST', '/gateway/keys', {
          body: { name: 'x', rateLimit: { requests: 0, window: '1m' } },
        })
      ).status,
    ).toBe(400);
    expect((await call(h.adminBase, 'DELETE', '/gateway/keys/key_nope')).status).toBe(404);
  });
});

describe('constant-time key matching', () => {
  it('compares the presented hash with every declared key, wherever the match is', () => {
    const keys = ['k1-0123456789abcdef', 'k2-0123456789abcdef', 'k3-0123456789abcdef'].map((k) => ({
      key: k,
      hash: Buffer.from(hashKey(k), 'hex'),
    }));
    for (const presented of [keys[0]!.key, keys[2]!.key, 'nobody-0123456789']) {
      let compared = 0;
      const found = matchDeclared(keys, Buffer.from(hashKey(presented), 'hex'), (a, b) => {
        compared++;
        return timingSafeEqual(a, b);
      });
      expect(compared).toBe(keys.length);
      expect(found?.key).toBe(keys.find((k) => k.key === presented)?.key);
    }
  });

  it('parses KEEL_GATEWAY_KEYS and refuses malformed entries', () => {
    expect(parseKeysEnv('a:secret-0123456789abcd:10/1m, b:other-0123456789abcd')).toEqual([
      { name: 'a', key: 'secret-0123456789abcd', rateLimit: { requests: 10, window: '1m' } },
      { name: 'b', key: 'other-0123456789abcd' },
    ]);
    expect(() => parseKeysEnv('just-a-key')).toThrow(/name:key/);
  });
});
