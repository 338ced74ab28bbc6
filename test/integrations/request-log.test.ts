import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine, service } from '../../src/index.js';
import {
  apiKey,
  bearer,
  createIntegrations,
  integration,
  IntegrationRuntime,
  use,
} from '../../src/integrations/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { tempDir } from '../helpers.js';
import { logPath, redactBody } from '../../src/integrations/runtime/request-log.js';
import { ProviderServer } from '../fakes/provider-server.js';

/**
 * Every API request carries an `X-Request-ID` (fresh per attempt; the caller's own wins) and is
 * logged on the engine logger as a request and a response line, with no secret in either.
 */
let api: ProviderServer;
beforeAll(async () => {
  api = await ProviderServer.start();
});
afterAll(async () => {
  await api.close();
});

interface Line {
  level: string;
  message: string;
  fields: Record<string, unknown>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const TOKEN = 'sk_live_SECRET_token_4242';
const KEY = 'qk_SECRET_query_key_777';

function runtimeWithLog(lines: Line[], logBodies = false): IntegrationRuntime {
  return new IntegrationRuntime({
    log: () => undefined,
    logger: (level, message, fields) => void lines.push({ level, message, fields }),
    logBodies,
    env: { API_TOKEN: TOKEN, QUERY_KEY: KEY },
  });
}

describe('X-Request-ID', () => {
  it('is sent on every attempt, distinct per attempt, and the caller’s own wins', async () => {
    const lines: Line[] = [];
    const runtime = runtimeWithLog(lines);
    const svc = integration({
      name: 'Rid',
      baseUrl: api.url,
      retry: { maxAttempts: 3, initialInterval: '1ms', jitter: 0 },
      operations: { ping: { path: '/ping' } },
    });
    const client = runtime.client(svc);
    try {
      const from = api.requests.length;
      api.script({ status: 503 }, { status: 502 });
      expect(await client.ping()).toEqual({ ok: true });
      const ids = api.requests.slice(from).map((r) => r.headers['x-request-id']);
      expect(ids).toHaveLength(3);
      for (const id of ids) expect(id).toMatch(UUID);
      expect(new Set(ids).size).toBe(3);
      // The log lines carry the same ids, attempt by attempt.
      const answered = lines.filter((l) => l.message.includes('←'));
      expect(answered.map((l) => l.fields.requestId)).toEqual(ids);
      expect(answered.map((l) => l.fields.status)).toEqual([503, 502, 200]);
      expect(answered.map((l) => l.fields.attempt)).toEqual([1, 2, 3]);
      expect(answered.map((l) => l.level)).toEqual(['warn', 'warn', 'debug']);

      const own = api.requests.length;
      api.script({ status: 503 });
      await client.ping({}, { headers: { 'X-Request-ID': 'caller-chosen-1' } });
      expect(api.requests.slice(own).map((r) => r.headers['x-request-id'])).toEqual([
        'caller-chosen-1',
        'caller-chosen-1',
      ]);
    } finally {
      await runtime.close();
    }
  });
});

describe('request/response log lines', () => {
  it('name method, path, status, duration, request id and operation, and no secret', async () => {
    const lines: Line[] = [];
    const runtime = runtimeWithLog(lines);
    const withBearer = integration({
      name: 'Logged',
      baseUrl: api.url,
      auth: bearer({ env: 'API_TOKEN' }),
      operations: { get_user: { path: '/users/{username}', query: { q: '{q}' } } },
    });
    const withQueryKey = integration({
      name: 'QueryKeyed',
      baseUrl: api.url,
      auth: apiKey({ env: 'QUERY_KEY' }, { query: 'api_key' }),
      operations: { ping: { path: '/ping' } },
    });
    try {
      const from = api.requests.length;
      await runtime.client(withBearer).get_user({ username: 'ada', q: 'private-search' });
      await runtime.client(withQueryKey).ping();
      const seen = api.requests.slice(from);
      // The secrets did go out (so the test would see them if they were logged).
      expect(seen[0]?.headers.authorization).toBe(`Bearer ${TOKEN}`);
      expect(seen[1]?.query.api_key).toBe(KEY);

      const user = lines.filter((l) => l.fields.integration === 'Logged');
      expect(user.map((l) => l.message)).toEqual([
        expect.stringMatching(
          /^Logged\.get_user → GET \/users\/ada\?q=\*\*\* \(attempt 1, request [0-9a-f-]{36}\)$/,
        ),
        expect.stringMatching(
          /^Logged\.get_user ← GET \/users\/ada\?q=\*\*\* 200 in [\d.]+ ms \(attempt 1, request [0-9a-f-]{36}\)$/,
        ),
      ]);
      expect(user[1]?.fields).toMatchObject({
        integration: 'Logged',
        operation: 'get_user',
        method: 'GET',
        path: '/users/ada?q=***',
        status: 200,
        requestId: seen[0]?.headers['x-request-id'],
        durationMs: expect.any(Number),
      });
      const all = JSON.stringify(lines);
      expect(all).not.toContain(TOKEN);
      expect(all).not.toContain(KEY);
      expect(all).not.toContain('private-search');
      expect(all).not.toMatch(/authorization/i);
      expect(all).not.toContain('"body"');
    } finally {
      await runtime.close();
    }
  });

  it('an engine’s handlers log through the engine’s logger', async () => {
    const lines: Line[] = [];
    const gh = integration({
      name: 'EngineLogged',
      baseUrl: api.url,
      auth: bearer({ env: 'API_TOKEN' }),
      operations: { get_user: { path: '/users/{username}' } },
    });
    const Profile = service({
      name: 'Profile',
      handlers: { load: async (ctx, u: string) => use(ctx, gh).get_user({ username: u }) },
    });
    const tmp = tempDir('keel-reqlog-');
    const engine = new Engine({
      services: [Profile],
      store: openSqliteStore({ path: join(tmp.dir, 'keel.db') }),
      logger: (level, message, fields) => void lines.push({ level, message, fields }),
      extensions: [createIntegrations({ integrations: [gh], env: { API_TOKEN: TOKEN } })],
    });
    await engine.start();
    try {
      const from = api.requests.length;
      await engine.client(Profile).load('grace');
      const rid = api.requests[from]?.headers['x-request-id'];
      expect(rid).toMatch(UUID);
      const mine = lines.filter((l) => l.fields.integration === 'EngineLogged');
      expect(mine.map((l) => [l.level, l.fields.requestId, l.fields.status ?? null])).toEqual([
        ['debug', rid, null],
        ['debug', rid, 200],
      ]);
      expect(JSON.stringify(lines)).not.toContain(TOKEN);
    } finally {
      await engine.stop();
      tmp.cleanup();
    }
  });

  it('logBodies adds bodies with secret-looking fields replaced', async () => {
    const lines: Line[] = [];
    const runtime = runtimeWithLog(lines, true);
    const svc = integration({
      name: 'Bodies',
      baseUrl: api.url,
      operations: {
        charge: {
          method: 'POST',
          path: '/charges',
          body: { amount: '{amount}', card_number: '{card}', password: '{pw}' },
        },
      },
    });
    try {
      await runtime.client(svc).charge({ amount: 5, card: '4242424242424242', pw: 'hunter2' });
      const sent = lines.find((l) => l.message.includes('→'));
      expect(sent?.fields.body).toEqual({ amount: 5, card_number: '***', password: '***' });
      const answered = lines.find((l) => l.message.includes('←'));
      expect(answered?.fields.body).toBeDefined();
      const all = JSON.stringify(lines);
      expect(all).not.toContain('4242424242424242');
      expect(all).not.toContain('hunter2');
    } finally {
      await runtime.close();
    }
  });

  it('redaction helpers: query values, form bodies, long bodies', () => {
    expect(logPath('/search', { q: 'cats', api_key: 'x' })).toBe('/search?q=***&api_key=***');
    expect(logPath('/health?token=abc', {})).toBe('/health?token=***');
    expect(logPath('', {})).toBe('/');
    expect(redactBody('grant_type=client_credentials&client_secret=s3cr3t')).toBe(
      'grant_type=client_credentials&client_secret=***',
    );
    expect(redactBody({ nested: { Authorization: 'Bearer x', ok: 'Bearer y' } })).toEqual({
      nested: { Authorization: '***', ok: '***' },
    });
    expect(String(redactBody({ big: 'x'.repeat(5000) }))).toMatch(/… \(\d+ characters\)$/);
  });
});
