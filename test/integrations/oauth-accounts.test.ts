import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  ConnectedAccounts,
  OAuth2Error,
  TokenCipher,
  TokenKeyError,
  codeChallenge,
  codeExchangeRequest,
  fetchForm,
  integration,
  oauth2AuthorizationCode,
  parseGrant,
  providerConfig,
  randomToken,
  type ProviderConfig,
} from '../../src/integrations/index.js';
import { openPostgresStore, type PostgresStore } from '../../src/store/postgres/index.js';
import { until } from '../buses/helpers.js';
import { FakeOAuthServer } from '../fakes/oauth-server.js';
import { killHard } from '../helpers.js';

/**
 * The pieces under the connect flow: the token cipher (AES-256-GCM, key ids, rotation), PKCE, and
 * connected accounts shared by two "processes" — two stores with their own connection pools on
 * one PostgreSQL schema, each with its own ConnectedAccounts — that refresh once between them,
 * take over a dead holder's lease, and survive a token endpoint outage.
 */
describe('TokenCipher', () => {
  const a = randomBytes(32);
  const b = randomBytes(32);

  it('seals with AES-256-GCM bound to the record, and names the key', () => {
    const c = new TokenCipher(a);
    const sealed = c.seal('{"a":"secret-token"}', 'Calendar/user-42');
    expect(sealed.kid).toMatch(/^[0-9a-f]{12}$/);
    expect(JSON.stringify(sealed)).not.toContain('secret-token');
    expect(c.open(sealed, 'Calendar/user-42')).toBe('{"a":"secret-token"}');
    // Two seals of the same text differ (fresh IV).
    expect(c.seal('x', 'k').data).not.toBe(c.seal('x', 'k').data);
    // Moved to another account's row, or changed: refused.
    expect(() => c.open(sealed, 'Calendar/user-7')).toThrow(TokenKeyError);
    const tampered = {
      ...sealed,
      data: Buffer.from('AAAA' + sealed.data.slice(4), 'base64url').toString('base64url'),
    };
    expect(() => c.open(tampered, 'Calendar/user-42')).toThrow(/does not decrypt/);
  });

  it('rotates: the old key decrypts, the new one encrypts, an unknown key is named', () => {
    const old = new TokenCipher(a);
    const sealedOld = old.seal('t', 'p/a');
    const rotated = TokenCipher.fromEnv({
      KEEL_TOKEN_KEY: b.toString('base64'),
      KEEL_TOKEN_KEYS: ` ${a.toString('base64url')} `,
    });
    expect(rotated.open(sealedOld, 'p/a')).toBe('t');
    expect(rotated.seal('t', 'p/a').kid).toBe(rotated.keyId);
    expect(rotated.keyId).not.toBe(old.keyId);
    const only = new TokenCipher(b);
    expect(() => only.open(sealedOld, 'p/a')).toThrow(
      new RegExp(`key ${old.keyId}.*KEEL_TOKEN_KEYS`),
    );
  });

  it('refuses a missing or malformed key without echoing it', () => {
    expect(() => TokenCipher.fromEnv({})).toThrow(/KEEL_TOKEN_KEY is not set/);
    const short = randomBytes(16).toString('base64');
    let err: unknown;
    try {
      TokenCipher.fromEnv({ KEEL_TOKEN_KEY: short });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TokenKeyError);
    expect((err as Error).message).toContain('decodes to 16 bytes');
    expect((err as Error).message).not.toContain(short);
    expect(() =>
      TokenCipher.fromEnv({ KEEL_TOKEN_KEY: b.toString('base64'), KEEL_TOKEN_KEYS: 'not base64!' }),
    ).toThrow(/KEEL_TOKEN_KEYS \(entry 1\).*not base64/);
  });
});

describe('the oauth2_authorization_code declaration', () => {
  const auth = (extra: object = {}) =>
    oauth2AuthorizationCode({
      authorizeUrl: 'https://auth.example.com/authorize',
      tokenUrl: 'https://auth.example.com/token',
      clientId: 'id',
      scopes: ['read'],
      redirectUri: 'https://app.example.com/oauth/A/callback',
      ...extra,
    });
  const declare = (
    a: ReturnType<typeof auth>,
    operations: object = { me: { path: '/me' } },
    extra: object = {},
  ) =>
    integration({
      name: 'A',
      baseUrl: 'https://api.example.com',
      auth: a,
      operations,
      ...extra,
    } as never);

  it('accepts a public client (no secret) and refuses what cannot work, naming the field', () => {
    expect(declare(auth()).auth.type).toBe('oauth2_authorization_code');
    expect(() => declare(auth({ scopes: 'read write' }))).toThrow(/auth.scopes must be a list/);
    expect(() => declare(auth({ scopes: ['has space'] }))).toThrow(/auth.scopes/);
    expect(() => declare(auth({ tokenUrl: 'ftp://x' }))).toThrow(/auth.tokenUrl/);
    expect(() => declare(auth({ operationScopes: { nope: ['read'] } }))).toThrow(
      /auth.operationScopes.nope names no operation/,
    );
    expect(() =>
      declare(
        auth(),
        { send: { method: 'POST', path: '/n', batch: true } },
        { batching: { maxBatchSize: 10, maxDelay: '1s' } },
      ),
    ).toThrow(/operations.send.batch cannot be used with oauth2_authorization_code/);
  });
});

describe('PKCE and token answers', () => {
  it('computes the RFC 7636 S256 challenge', () => {
    expect(codeChallenge('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk')).toBe(
      'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    );
    expect(randomToken()).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('reads granted scopes and provider errors', () => {
    expect(
      parseGrant(
        200,
        { access_token: 'a', refresh_token: 'r', expires_in: 60, scope: 'x y' },
        1000,
      ),
    ).toEqual({ accessToken: 'a', refreshToken: 'r', expiresAt: 61_000, scopes: ['x', 'y'] });
    let err: unknown;
    try {
      parseGrant(400, { error: 'invalid_grant', error_description: 'used' }, 0);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OAuth2Error);
    expect((err as OAuth2Error).error).toBe('invalid_grant');
  });
});

const url = inject('postgresUrl');
const schema = `keel_oauth_${randomBytes(4).toString('hex')}`;

describe('connected accounts across two processes (PostgreSQL)', () => {
  let auth: FakeOAuthServer;
  const stores: PostgresStore[] = [];
  let provider: ProviderConfig;
  let now = Date.parse('2026-01-05T09:00:00Z');
  const env = { KEEL_TOKEN_KEY: randomBytes(32).toString('base64'), SECRET: 's' };
  const redirect = 'http://127.0.0.1:9/callback';

  beforeAll(async () => {
    auth = await FakeOAuthServer.start({
      clients: [{ id: 'keel', secret: 's', redirectUris: [redirect] }],
      scopes: ['read'],
    });
    const api = integration({
      name: 'Partner',
      baseUrl: auth.url,
      auth: oauth2AuthorizationCode({
        authorizeUrl: `${auth.url}/authorize`,
        tokenUrl: `${auth.url}/token`,
        clientId: 'keel',
        clientSecret: { env: 'SECRET' },
        scopes: ['read'],
        redirectUri: redirect,
      }),
      operations: { me: { path: '/api/me' } },
    });
    provider = providerConfig(api, env);
    for (let i = 0; i < 2; i++) stores.push(await openPostgresStore({ url, schema }));
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await auth?.close();
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });

  const processes = (): ConnectedAccounts[] =>
    stores.map((store) => new ConnectedAccounts({ store, now: () => now, env, leaseMs: 5_000 }));

  /** A connect without a browser: authorize, then exchange the code with its verifier. */
  async function connectDirect(accounts: ConnectedAccounts, account: string): Promise<void> {
    const verifier = randomToken();
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: 'keel',
      redirect_uri: redirect,
      scope: 'read',
      state: 'st',
      code_challenge: createHash('sha256').update(verifier).digest('base64url'),
      code_challenge_method: 'S256',
    });
    const res = await fetch(`${auth.url}/authorize?${q.toString()}`, { redirect: 'manual' });
    const code = new URL(res.headers.get('location')!).searchParams.get('code')!;
    const answer = await fetchForm(codeExchangeRequest(provider, code, verifier), 5_000);
    await accounts.connect(provider, account, parseGrant(answer.status, answer.body, now), [
      'read',
    ]);
  }

  it('refreshes once for twenty concurrent callers in two processes', async () => {
    const [p1, p2] = processes();
    await connectDirect(p1!, 'u1');
    const first = await p2!.accessToken(provider, 'u1', ['read']);
    expect(auth.isLive(first)).toBe(true);
    now += 3_600_000;
    const before = auth.count('refresh_token');
    const tokens = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? p1! : p2!).accessToken(provider, 'u1', ['read']),
      ),
    );
    expect(auth.count('refresh_token')).toBe(before + 1);
    expect(new Set(tokens).size).toBe(1);
    expect(tokens[0]).not.toBe(first);
    expect(auth.isLive(tokens[0]!)).toBe(true);
    const rec = await p1!.get('Partner', 'u1');
    expect(rec!.refreshing).toBeUndefined();
  });

  it('takes over the lease of a process that died mid-refresh', async () => {
    const [p1, p2] = processes();
    await connectDirect(p1!, 'u2');
    now += 3_600_000;
    // Process "dead" took the lease and was killed before it wrote anything.
    const row = await stores[0]!.getKv('keel.oauth.accounts', 'Partner/u2');
    await stores[0]!.write([
      {
        op: 'kv.put',
        scope: 'keel.oauth.accounts',
        key: 'Partner/u2',
        value: { ...(row!.value as object), refreshing: { by: 'dead', until: now + 5_000 } },
      },
    ]);
    const before = auth.count('refresh_token');
    const waiting = p2!.accessToken(provider, 'u2');
    await new Promise((r) => setTimeout(r, 100));
    // Still waiting for the dead holder: nothing sent.
    expect(auth.count('refresh_token')).toBe(before);
    now += 5_001;
    const token = await waiting;
    expect(auth.isLive(token)).toBe(true);
    expect(auth.count('refresh_token')).toBe(before + 1);
  });

  it('releases the lease after a token endpoint outage; the next call refreshes', async () => {
    const [p1, p2] = processes();
    await connectDirect(p1!, 'u3');
    now += 3_600_000;
    auth.tokenOutages = 1;
    await expect(p1!.accessToken(provider, 'u3')).rejects.toThrow(/503 temporarily_unavailable/);
    expect((await p1!.get('Partner', 'u3'))!.refreshing).toBeUndefined();
    expect(auth.isLive(await p2!.accessToken(provider, 'u3'))).toBe(true);
  });

  /**
   * Another process (a real child) takes the lease and sends the refresh; the provider holds the
   * request (`hold`), and the child is killed with SIGKILL while it waits.
   */
  async function childDiesMidRefresh(account: string, hold: 'before' | 'after'): Promise<void> {
    const before = auth.count('refresh_token');
    auth.holdRefresh = hold;
    let child: ChildProcess | undefined;
    try {
      child = spawn(
        process.execPath,
        ['--import', 'tsx', join(import.meta.dirname, 'fixtures/oauth-refresher.ts')],
        {
          env: {
            ...process.env,
            KEEL_TEST_DATABASE_URL: url,
            OAUTH_SCHEMA: schema,
            OAUTH_URL: auth.url,
            OAUTH_REDIRECT: redirect,
            KEEL_TOKEN_KEY: env.KEEL_TOKEN_KEY,
            OAUTH_NOW: String(now),
            OAUTH_LEASE_MS: '5000',
            OAUTH_ACCOUNT: account,
          },
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      await until('the child sent its refresh', () => auth.count('refresh_token') > before);
      await killHard(child);
    } finally {
      auth.holdRefresh = undefined;
      if (child && child.exitCode === null && child.signalCode === null) await killHard(child);
    }
  }

  it('a process killed while its refresh waits at the provider: another takes over after the lease', async () => {
    const [p1] = processes();
    await connectDirect(p1!, 'u5');
    now += 3_600_000;
    await childDiesMidRefresh('u5', 'before');
    const leased = (await p1!.get('Partner', 'u5'))!.refreshing;
    expect(leased).toMatchObject({ until: now + 5_000 });
    expect(leased!.by).not.toBe(p1!.owner);
    const before = auth.count('refresh_token');
    const waiting = p1!.accessToken(provider, 'u5');
    await new Promise((r) => setTimeout(r, 100));
    expect(auth.count('refresh_token')).toBe(before);
    now += 5_001;
    const token = await waiting;
    expect(auth.isLive(token)).toBe(true);
    expect(auth.count('refresh_token')).toBe(before + 1);
    expect((await p1!.get('Partner', 'u5'))!.status).toBe('connected');
  });

  it('a process killed after the provider rotated the token: the account needs reconnecting (the documented window)', async () => {
    const [p1] = processes();
    await connectDirect(p1!, 'u6');
    now += 3_600_000;
    await childDiesMidRefresh('u6', 'after');
    now += 5_001;
    await expect(p1!.accessToken(provider, 'u6')).rejects.toMatchObject({
      code: 'oauth_reconnect_required',
    });
    expect((await p1!.get('Partner', 'u6'))!.status).toBe('reconnect_required');
  });

  it('a refresh token used elsewhere (rotation) is invalid_grant: reconnect required, once', async () => {
    const [p1] = processes();
    await connectDirect(p1!, 'u4');
    auth.revokeRefreshTokens();
    now += 3_600_000;
    const before = auth.count('refresh_token');
    await expect(p1!.accessToken(provider, 'u4')).rejects.toMatchObject({
      code: 'oauth_reconnect_required',
    });
    await expect(p1!.accessToken(provider, 'u4')).rejects.toMatchObject({
      code: 'oauth_reconnect_required',
    });
    expect(auth.count('refresh_token')).toBe(before + 1);
    const rec = await p1!.get('Partner', 'u4');
    expect(rec).toMatchObject({ status: 'reconnect_required' });
    expect(rec!.tokens).toBeUndefined();
  });
});
