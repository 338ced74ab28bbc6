import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { service } from '../../src/index.js';
import {
  createOAuthConnect,
  env,
  integration,
  oauth2AuthorizationCode,
  use,
  type OAuthConnect,
} from '../../src/integrations/index.js';
import { FakeClock } from '../../src/testing/index.js';
import { FakeOAuthServer } from '../fakes/oauth-server.js';
import { tempDir } from '../helpers.js';

/**
 * Exercise 1.2 end to end, over real HTTP: a browser (fetch, `redirect: 'manual'`) connects two
 * accounts to two fake authorization servers through the app's connect and callback routes;
 * handlers then call the providers' APIs as those accounts. Covered: PKCE (a code without the
 * verifier is refused), state single use and forgery, expiry → refresh (once for concurrent
 * callers), a 401 → refresh, a revoked refresh token → `oauth_reconnect_required` without a retry
 * loop, scopes (granted ones recorded, a missing one refused before sending), tokens encrypted in
 * the raw SQLite rows, and the admin list without tokens.
 */
const KEY_A = randomBytes(32).toString('base64');
const tmp = tempDir('keel-oauth-');
let cal: FakeOAuthServer;
let drive: FakeOAuthServer;
let app: App;
let oauth: OAuthConnect;
const clock = new FakeClock(Date.parse('2026-01-05T09:00:00Z'));
/** Everything the app logs (engine and integrations), to check that no token is ever in it. */
const logs: string[] = [];
const logger = (level: string, message: string, fields?: Record<string, unknown>): void => {
  logs.push(JSON.stringify([level, message, fields ?? {}]));
};
/** The app's environment: the callback URLs are filled in once the ingress has a port. */
const vars: Record<string, string> = {
  KEEL_TOKEN_KEY: KEY_A,
  CAL_SECRET: 'cal-s3cret',
  DRIVE_SECRET: 'drive-s3cret',
};

const calendar = integration({
  name: 'Calendar',
  baseUrl: env('CAL_URL'),
  retry: false,
  auth: oauth2AuthorizationCode({
    authorizeUrl: env('CAL_AUTHORIZE'),
    tokenUrl: env('CAL_TOKEN'),
    revokeUrl: env('CAL_REVOKE'),
    clientId: 'keel-cal',
    clientSecret: env('CAL_SECRET'),
    scopes: ['events.read', 'events.write'],
    redirectUri: env('CAL_CALLBACK'),
    operationScopes: { list_events: ['events.read'], create_event: ['events.write'] },
  }),
  operations: {
    list_events: { path: '/api/events' },
    create_event: { method: 'POST', path: '/api/events' },
    me: { path: '/api/me' },
  },
});
const drive_ = integration({
  name: 'Drive',
  baseUrl: env('DRIVE_URL'),
  retry: false,
  auth: oauth2AuthorizationCode({
    authorizeUrl: env('DRIVE_AUTHORIZE'),
    tokenUrl: env('DRIVE_TOKEN'),
    clientId: 'keel-drive',
    clientSecret: env('DRIVE_SECRET'),
    clientAuth: 'body',
    scopes: ['profile'],
    redirectUri: env('DRIVE_CALLBACK'),
  }),
  operations: { me: { path: '/api/me' } },
});

const Agenda = service({
  name: 'Agenda',
  handlers: {
    events: async (ctx, account: string) => use(ctx, calendar).list_events({}, { account }),
    create: async (ctx, account: string) => use(ctx, calendar).create_event({}, { account }),
    calendarMe: async (ctx, account: string) => use(ctx, calendar).me({}, { account }),
    driveMe: async (ctx, account: string) => use(ctx, drive_).me({}, { account }),
    noAccount: async (ctx) => use(ctx, calendar).me(),
  },
});

beforeAll(async () => {
  cal = await FakeOAuthServer.start({
    clients: [],
    scopes: ['events.read', 'events.write', 'profile'],
    prefix: 'cal',
  });
  drive = await FakeOAuthServer.start({ clients: [], scopes: ['profile'], prefix: 'drive' });
  Object.assign(vars, {
    CAL_URL: cal.url,
    CAL_AUTHORIZE: `${cal.url}/authorize`,
    CAL_TOKEN: `${cal.url}/token`,
    CAL_REVOKE: `${cal.url}/revoke`,
    DRIVE_URL: drive.url,
    DRIVE_AUTHORIZE: `${drive.url}/authorize`,
    DRIVE_TOKEN: `${drive.url}/token`,
  });
  oauth = createOAuthConnect({ integrations: [calendar, drive_], env: vars });
  app = await startApp({
    services: [Agenda],
    integrations: { integrations: [calendar, drive_], env: vars, log: logger },
    extensions: [oauth],
    db: join(tmp.dir, 'keel.db'),
    port: 0,
    adminPort: 0,
    clock,
    logger,
  });
  vars.CAL_CALLBACK = `${app.ingress.url}/oauth/Calendar/callback`;
  vars.DRIVE_CALLBACK = `${app.ingress.url}/oauth/Drive/callback`;
  cal.addClient({ id: 'keel-cal', secret: 'cal-s3cret', redirectUris: [vars.CAL_CALLBACK] });
  drive.addClient({
    id: 'keel-drive',
    secret: 'drive-s3cret',
    redirectUris: [vars.DRIVE_CALLBACK],
  });
});
afterAll(async () => {
  await app?.close();
  await cal?.close();
  await drive?.close();
  tmp.cleanup();
});

/** The browser's side of a connect, one redirect at a time. */
async function startConnect(
  provider: string,
  account: string,
): Promise<{ authorize: URL; callback: string }> {
  const r1 = await fetch(`${app.ingress.url}/oauth/${provider}/connect?account=${account}`, {
    redirect: 'manual',
  });
  expect(r1.status).toBe(302);
  const authorize = new URL(r1.headers.get('location')!);
  const r2 = await fetch(authorize, { redirect: 'manual' });
  expect(r2.status).toBe(302);
  return { authorize, callback: r2.headers.get('location')! };
}

async function connect(provider: string, account: string): Promise<Response> {
  const { callback } = await startConnect(provider, account);
  return fetch(callback, { redirect: 'manual' });
}

async function call(handler: string, account?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${app.ingress.url}/Agenda/${handler}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(account ?? null),
  });
  return { status: res.status, body: await res.json() };
}

async function accounts(): Promise<{ text: string; list: any[] }> {
  const res = await fetch(`${app.admin.url}/oauth/accounts`);
  const text = await res.text();
  return { text, list: JSON.parse(text).accounts };
}

function lastGrant(server: FakeOAuthServer): { access_token?: string; refresh_token?: string } {
  // The fake records requests, not answers: the live tokens are found through the API log.
  return { access_token: server.apiRequests.at(-1)?.token };
}

describe('OAuth2 authorization code with PKCE, end to end', () => {
  it('connects through the redirects with PKCE and calls the API as the account', async () => {
    const { authorize, callback } = await startConnect('Calendar', 'user-42');
    expect(authorize.origin + authorize.pathname).toBe(`${cal.url}/authorize`);
    const q = authorize.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('client_id')).toBe('keel-cal');
    expect(q.get('redirect_uri')).toBe(vars.CAL_CALLBACK);
    expect(q.get('scope')).toBe('events.read events.write');
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('state')!.length).toBeGreaterThanOrEqual(43);
    expect(new URL(callback).searchParams.get('state')).toBe(q.get('state'));

    const page = await fetch(callback, { redirect: 'manual' });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('Connected Calendar for user-42');

    // The exchange: the code, the redirect URI, the verifier of the challenge, client Basic auth.
    const exchange = cal.tokenRequests.at(-1)!;
    expect(exchange.grantType).toBe('authorization_code');
    expect(exchange.status).toBe(200);
    expect(exchange.form.redirect_uri).toBe(vars.CAL_CALLBACK);
    const { createHash } = await import('node:crypto');
    expect(createHash('sha256').update(exchange.form.code_verifier!).digest('base64url')).toBe(
      q.get('code_challenge'),
    );
    expect(exchange.authorization).toBe(
      `Basic ${Buffer.from('keel-cal:cal-s3cret').toString('base64')}`,
    );

    const events = await call('events', 'user-42');
    expect(events.status).toBe(200);
    expect(events.body).toEqual({
      user: 'alice',
      events: [{ id: 'ev_1', title: "alice's standup" }],
    });
    expect(cal.apiRequests.at(-1)!.status).toBe(200);

    const { list } = await accounts();
    expect(list).toContainEqual(
      expect.objectContaining({
        provider: 'Calendar',
        account: 'user-42',
        status: 'connected',
        scopes: ['events.read', 'events.write'],
      }),
    );
  });

  it("connects through the provider's login form, as a browser would", async () => {
    cal.requireLogin = true;
    try {
      const r1 = await fetch(`${app.ingress.url}/oauth/Calendar/connect?account=user-form`, {
        redirect: 'manual',
      });
      const form = await fetch(r1.headers.get('location')!, { redirect: 'manual' });
      expect(form.status).toBe(200);
      const html = await form.text();
      // The browser posts the form's hidden fields with what the user typed.
      const fields = new URLSearchParams();
      for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g))
        fields.set(
          m[1]!,
          m[2]!.replace(/&#(\d+);/g, (_, n: string) => String.fromCharCode(Number(n))),
        );
      fields.set('username', 'carol');
      fields.set('password', 'wrong');
      const refused = await fetch(`${cal.url}/authorize`, {
        method: 'POST',
        body: fields,
        redirect: 'manual',
      });
      expect(refused.status).toBe(401);
      fields.set('password', 'password');
      const approved = await fetch(`${cal.url}/authorize`, {
        method: 'POST',
        body: fields,
        redirect: 'manual',
      });
      expect(approved.status).toBe(302);
      const page = await fetch(approved.headers.get('location')!, { redirect: 'manual' });
      expect(page.status).toBe(200);
    } finally {
      cal.requireLogin = false;
    }
    expect((await call('calendarMe', 'user-form')).body).toMatchObject({ user: 'carol' });
  });

  it('reports a denied authorization and connects nothing', async () => {
    cal.deny = true;
    try {
      const { callback } = await startConnect('Calendar', 'user-denied');
      expect(new URL(callback).searchParams.get('error')).toBe('access_denied');
      const res = await fetch(callback, { redirect: 'manual' });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ code: 'oauth_authorization_denied' });
    } finally {
      cal.deny = false;
    }
    expect((await call('calendarMe', 'user-denied')).body.code).toBe('oauth_not_connected');
  });

  it('refuses a code redeemed without the PKCE verifier; the app, which has it, succeeds', async () => {
    const { callback } = await startConnect('Calendar', 'user-pkce');
    const code = new URL(callback).searchParams.get('code')!;
    // An interceptor holding the code (and even the client secret) but not the verifier.
    const stolen = await fetch(`${cal.url}/token`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: `Basic ${Buffer.from('keel-cal:cal-s3cret').toString('base64')}`,
      },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code,
        redirect_uri: vars.CAL_CALLBACK!,
        code_verifier: randomBytes(32).toString('base64url'),
      }).toString(),
    });
    expect(stolen.status).toBe(400);
    expect(await stolen.json()).toMatchObject({ error: 'invalid_grant' });
    const page = await fetch(callback, { redirect: 'manual' });
    expect(page.status).toBe(200);
    expect((await call('calendarMe', 'user-pkce')).body).toMatchObject({ user: 'alice' });
  });

  it("refuses a replayed, a forged, an expired and another provider's state", async () => {
    const first = await startConnect('Calendar', 'user-state');
    expect((await fetch(first.callback, { redirect: 'manual' })).status).toBe(200);
    // The same callback again (a replay, or the back button).
    const replay = await fetch(first.callback, { redirect: 'manual' });
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ code: 'oauth_state_invalid' });

    const forged = new URL(first.callback);
    forged.searchParams.set('state', randomBytes(32).toString('base64url'));
    const f = await fetch(forged, { redirect: 'manual' });
    expect(f.status).toBe(400);
    expect(await f.json()).toMatchObject({ code: 'oauth_state_invalid' });
    const none = await fetch(`${app.ingress.url}/oauth/Calendar/callback?code=x`);
    expect(none.status).toBe(400);

    // A state issued for Calendar presented at Drive's callback.
    const other = await startConnect('Calendar', 'user-state');
    const crossed = new URL(other.callback);
    const atDrive = await fetch(`${app.ingress.url}/oauth/Drive/callback${crossed.search}`, {
      redirect: 'manual',
    });
    expect(atDrive.status).toBe(400);
    expect(await atDrive.json()).toMatchObject({ code: 'oauth_state_invalid' });

    // A state older than its 10 minutes.
    const late = await startConnect('Calendar', 'user-late');
    await clock.advance('11m');
    const expired = await fetch(late.callback, { redirect: 'manual' });
    expect(expired.status).toBe(400);
    expect(await expired.json()).toMatchObject({ code: 'oauth_state_invalid' });
    expect((await call('calendarMe', 'user-late')).body).toMatchObject({
      code: 'oauth_not_connected',
    });

    // Bad input at the edge.
    const bad = await fetch(
      `${app.ingress.url}/oauth/Calendar/connect?account=${encodeURIComponent('a b/c')}`,
      {
        redirect: 'manual',
      },
    );
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'oauth_invalid_account' });
    const unknown = await fetch(`${app.ingress.url}/oauth/Nope/connect?account=x`);
    expect(unknown.status).toBe(404);
  });

  it('refreshes an expired token once for concurrent callers, with rotation', async () => {
    expect((await connect('Calendar', 'user-exp')).status).toBe(200);
    expect((await call('calendarMe', 'user-exp')).status).toBe(200);
    const before = cal.count('refresh_token');
    const firstToken = lastGrant(cal).access_token!;
    // Past the token's hour (refreshed a minute early): every caller needs a new one.
    await clock.advance('59m30s');
    const results = await Promise.all(
      Array.from({ length: 8 }, () => call('calendarMe', 'user-exp')),
    );
    for (const r of results) expect(r.body).toMatchObject({ user: 'alice' });
    expect(cal.count('refresh_token')).toBe(before + 1);
    const used = new Set(cal.apiRequests.slice(-8).map((r) => r.token));
    expect(used.size).toBe(1);
    expect(used.has(firstToken)).toBe(false);
    // Rotation: the refresh token the app now holds is the new one (the old one is spent).
    expect(cal.tokenRequests.at(-1)!.status).toBe(200);
  });

  it('refreshes after a 401 and sends again', async () => {
    expect((await connect('Calendar', 'user-401')).status).toBe(200);
    const before = cal.count('refresh_token');
    cal.revokeAccessTokens('alice');
    const r = await call('calendarMe', 'user-401');
    expect(r.status).toBe(200);
    expect(cal.count('refresh_token')).toBe(before + 1);
    expect(cal.apiRequests.slice(-2).map((x) => x.status)).toEqual([401, 200]);
  });

  it('marks the account reconnect_required when the refresh token is revoked, without retrying', async () => {
    cal.user = 'bob';
    try {
      expect((await connect('Calendar', 'user-revoked')).status).toBe(200);
    } finally {
      cal.user = 'alice';
    }
    cal.revokeRefreshTokens('bob');
    cal.revokeAccessTokens('bob');
    const before = cal.count('refresh_token');
    const apiBefore = cal.apiRequests.length;
    const r = await call('calendarMe', 'user-revoked');
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('oauth_reconnect_required');
    expect(r.body.message).toContain('/oauth/Calendar/connect');
    expect(cal.count('refresh_token')).toBe(before + 1);
    // Later calls fail at once: no request to the API, no refresh attempt.
    const again = await call('calendarMe', 'user-revoked');
    expect(again.body.code).toBe('oauth_reconnect_required');
    expect(cal.count('refresh_token')).toBe(before + 1);
    expect(cal.apiRequests.length).toBe(apiBefore + 1);
    const { list } = await accounts();
    expect(list.find((a) => a.account === 'user-revoked')).toMatchObject({
      status: 'reconnect_required',
    });
    // Connecting again fixes it.
    cal.user = 'bob';
    try {
      expect((await connect('Calendar', 'user-revoked')).status).toBe(200);
    } finally {
      cal.user = 'alice';
    }
    expect((await call('calendarMe', 'user-revoked')).body).toMatchObject({ user: 'bob' });
  });

  it('records the granted scopes and refuses an operation needing a missing one before sending', async () => {
    cal.grantOnly = ['events.read'];
    try {
      expect((await connect('Calendar', 'user-ro')).status).toBe(200);
    } finally {
      cal.grantOnly = undefined;
    }
    const { list } = await accounts();
    expect(list.find((a) => a.account === 'user-ro')!.scopes).toEqual(['events.read']);
    expect((await call('events', 'user-ro')).status).toBe(200);
    const apiBefore = cal.apiRequests.length;
    const r = await call('create', 'user-ro');
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('oauth_scope_missing');
    expect(r.body.message).toContain('events.write');
    expect(cal.apiRequests.length).toBe(apiBefore);
    // With the scope granted, the same call goes through.
    expect((await call('create', 'user-42')).body).toMatchObject({ created: true });
  });

  it('serves two providers at once with independent accounts', async () => {
    drive.user = 'dora';
    expect((await connect('Drive', 'user-42')).status).toBe(200);
    drive.user = 'dan';
    expect((await connect('Drive', 'user-7')).status).toBe(200);
    // Drive's client authenticates in the form body.
    expect(drive.tokenRequests.at(-1)!.form.client_secret).toBe('drive-s3cret');
    expect((await call('driveMe', 'user-42')).body).toEqual({ user: 'dora', scopes: ['profile'] });
    expect((await call('driveMe', 'user-7')).body).toEqual({ user: 'dan', scopes: ['profile'] });
    expect((await call('calendarMe', 'user-42')).body).toMatchObject({ user: 'alice' });
    // user-7 has Drive only.
    const r = await call('calendarMe', 'user-7');
    expect(r.status).toBe(403);
    expect(r.body.code).toBe('oauth_not_connected');
    // Each server saw only its own tokens.
    expect(drive.apiRequests.every((x) => x.token?.startsWith('drive-'))).toBe(true);
    expect(cal.apiRequests.every((x) => x.token === undefined || x.token.startsWith('cal-'))).toBe(
      true,
    );
    const { list } = await accounts();
    expect(
      list
        .filter((a) => a.provider === 'Drive')
        .map((a) => a.account)
        .sort(),
    ).toEqual(['user-42', 'user-7']);
  });

  it('needs an account in the call options', async () => {
    const r = await call('noAccount');
    expect(r.status).toBe(500);
    expect(r.body.code).toBe('integration_invalid_request');
    expect(r.body.message).toContain('{ account:');
  });

  it('keeps tokens encrypted in the raw store rows and off the admin API', async () => {
    const live = cal.apiRequests.map((r) => r.token).filter((t): t is string => t !== undefined);
    const refresh = [...cal.liveRefreshTokens(), ...drive.liveRefreshTokens()];
    expect(live.length).toBeGreaterThan(0);
    expect(refresh.length).toBeGreaterThan(0);
    const db = new Database(join(tmp.dir, 'keel.db'), { readonly: true, fileMustExist: true });
    try {
      const rows = db
        .prepare(`SELECT key, value FROM kv WHERE scope = 'keel.oauth.accounts'`)
        .all() as Array<{ key: string; value: string }>;
      expect(rows.length).toBeGreaterThan(5);
      for (const row of rows) {
        for (const t of [...live, ...refresh]) expect(row.value).not.toContain(t);
        const rec = JSON.parse(row.value);
        if (rec.tokens) expect(rec.tokens.kid).toMatch(/^[0-9a-f]{12}$/);
      }
      // Nor anywhere in the database files (the WAL included), nor the PKCE verifiers.
      const verifiers = cal.tokenRequests.map((r) => r.form.code_verifier).filter(Boolean);
      for (const f of readdirSync(tmp.dir).filter((n) => n.startsWith('keel.db'))) {
        const bytes = readFileSync(join(tmp.dir, f)).toString('latin1');
        for (const t of [...live, ...refresh, ...(verifiers as string[])])
          expect(bytes.includes(t)).toBe(false);
      }
    } finally {
      db.close();
    }
    const { text } = await accounts();
    for (const t of [...live, ...refresh]) expect(text).not.toContain(t);
    expect(text).not.toContain('"tokens"');
    // Nor in any log line (connects are logged; requests are logged by path).
    expect(logs.some((l) => l.includes('connected Calendar'))).toBe(true);
    const all = logs.join('\n');
    for (const t of [...live, ...refresh]) expect(all).not.toContain(t);
  });

  it('disconnects an account through the admin API, revoking at the provider', async () => {
    expect((await connect('Calendar', 'user-bye')).status).toBe(200);
    const liveBefore = cal.liveRefreshTokens().length;
    const res = await fetch(`${app.admin.url}/oauth/accounts/Calendar/user-bye`, {
      method: 'DELETE',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ found: true, revoked: true });
    expect(cal.liveRefreshTokens().length).toBe(liveBefore - 1);
    expect((await call('calendarMe', 'user-bye')).body.code).toBe('oauth_not_connected');
  });

  it('rotates the key: the old key still decrypts, new writes and a rekey use the new one', async () => {
    const keyOf = async (account: string): Promise<string> =>
      (await accounts()).list.find((a) => a.provider === 'Calendar' && a.account === account).keyId;
    const oldId = await keyOf('user-42');
    const restart = async (): Promise<void> => {
      await app.close();
      oauth = createOAuthConnect({ integrations: [calendar, drive_], env: vars });
      app = await startApp({
        services: [Agenda],
        integrations: { integrations: [calendar, drive_], env: vars, log: logger },
        extensions: [oauth],
        db: join(tmp.dir, 'keel.db'),
        port: Number(new URL(app.ingress.url).port),
        adminPort: 0,
        clock,
        logger,
      });
    };
    // Step 1: the new key encrypts, the old one is kept for decryption.
    vars.KEEL_TOKEN_KEY = randomBytes(32).toString('base64');
    vars.KEEL_TOKEN_KEYS = KEY_A;
    await restart();
    expect((await call('calendarMe', 'user-42')).body).toMatchObject({ user: 'alice' });
    // A refresh writes with the new key; untouched records keep the old one until the rekey.
    cal.revokeAccessTokens('alice');
    expect((await call('events', 'user-42')).status).toBe(200);
    const newId = await keyOf('user-42');
    expect(newId).not.toBe(oldId);
    expect(await keyOf('user-exp')).toBe(oldId);
    // Step 2: re-encrypt the rest (admin API), then the old key can go.
    const rekey = await fetch(`${app.admin.url}/oauth/rekey`, { method: 'POST' });
    expect(rekey.status).toBe(200);
    expect(((await rekey.json()) as { rekeyed: number }).rekeyed).toBeGreaterThan(3);
    expect((await accounts()).list.filter((a) => a.keyId === oldId)).toEqual([]);
    delete vars.KEEL_TOKEN_KEYS;
    await restart();
    expect((await call('calendarMe', 'user-exp')).body).toMatchObject({ user: 'alice' });
    expect((await call('driveMe', 'user-7')).body).toMatchObject({ user: 'dan' });

    // Without the key that sealed a record, the call says which key is missing.
    const lost = vars.KEEL_TOKEN_KEY;
    vars.KEEL_TOKEN_KEY = randomBytes(32).toString('base64');
    await restart();
    const r = await call('calendarMe', 'user-exp');
    expect(r.body.code).toBe('integration_invalid_request');
    expect(r.body.message).toContain(newId);
    expect(r.body.message).toContain('KEEL_TOKEN_KEYS');
    vars.KEEL_TOKEN_KEY = lost;
  });
});
