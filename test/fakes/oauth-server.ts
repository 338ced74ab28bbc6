/**
 * A fake OAuth2 authorization server with a protected API, on 127.0.0.1 over real HTTP, for the
 * authorization-code tests and the oauth-connect example:
 *
 * - `GET /authorize` (response_type=code, a registered client and redirect_uri, S256
 *   code_challenge): auto-approves as `user` (302 back with `code` and `state`), or with
 *   `requireLogin` answers a login form that `POST /authorize` submits (`username`, `password`);
 *   `grantOnly` lets the "user" grant fewer scopes than asked; `deny` answers `error=access_denied`;
 * - `POST /token`: `authorization_code` (single-use code, redirect_uri match, PKCE S256 check:
 *   a wrong verifier is `invalid_grant`) and `refresh_token` with rotation (the old refresh token
 *   dies; a used or revoked one is `invalid_grant`); client auth by Basic or form body;
 * - `POST /revoke` (RFC 7009): revokes an access or refresh token;
 * - the API: `GET /api/me` (any valid token) → `{ user, scopes }`; `GET /api/events` needs
 *   `events.read`, `POST /api/events` needs `events.write` (403 `insufficient_scope`
 *   otherwise); an unknown, expired or revoked token is 401.
 *
 * Everything it issued and saw is inspectable (`grants`, `requests`), and tests revoke tokens
 * behind the client's back (`revokeAccessTokens`, `revokeRefreshTokens`).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A registered client. */
export interface FakeClient {
  id: string;
  /** Undefined: a public client (PKCE only). */
  secret?: string;
  redirectUris: string[];
}

interface Code {
  clientId: string;
  redirectUri: string;
  challenge: string;
  scopes: string[];
  user: string;
  used: boolean;
  expiresAt: number;
}

interface Token {
  kind: 'access' | 'refresh';
  clientId: string;
  user: string;
  scopes: string[];
  revoked: boolean;
  /** Access tokens: epoch ms. */
  expiresAt?: number;
  /** Refresh tokens: replaced by a rotation. */
  used?: boolean;
}

/** A token request as the server saw it (secrets included: it is a test double). */
export interface SeenTokenRequest {
  grantType: string;
  form: Record<string, string>;
  authorization?: string;
  status: number;
  error?: string;
}

/** Options of {@link FakeOAuthServer.start}. */
export interface FakeOAuthOptions {
  clients: FakeClient[];
  /** Scopes it knows; others are `invalid_scope`. */
  scopes: string[];
  /** A name for its tokens (`cal` → `cal-at-1`), so two servers' tokens differ. */
  prefix?: string;
}

/**
 * The fake authorization server.
 *
 * @example
 * ```ts
 * const auth = await FakeOAuthServer.start({ clients: [{ id: 'keel', secret: 's', redirectUris: [cb] }], scopes: ['events.read'] });
 * auth.accessTtlS = 2;
 * auth.revokeRefreshTokens();
 * await auth.close();
 * ```
 */
export class FakeOAuthServer {
  /** The user the next authorization approves as. */
  user = 'alice';
  /** Answer `/authorize` with a login form instead of approving at once. */
  requireLogin = false;
  /** Grant only these of the requested scopes (the user unticked the others). */
  grantOnly: string[] | undefined;
  /** Answer `/authorize` with `error=access_denied`. */
  deny = false;
  /** Access token lifetime, seconds. */
  accessTtlS = 3600;
  /** Rotate refresh tokens on use (default on). */
  rotate = true;
  /** Answer this many next token requests with 503 (an outage). */
  tokenOutages = 0;
  /**
   * Park refresh requests: `before` never processes them (the client is killed while its request
   * waits), `after` rotates the refresh token and then never answers (the client is killed after
   * the provider did its part, before it could store the new token).
   */
  holdRefresh: 'before' | 'after' | undefined;
  /** Token requests, in order. */
  readonly tokenRequests: SeenTokenRequest[] = [];
  /** API requests: path, the bearer token and the status answered. */
  readonly apiRequests: Array<{ method: string; path: string; token?: string; status: number }> =
    [];
  readonly url: string;
  private readonly codes = new Map<string, Code>();
  private readonly tokens = new Map<string, Token>();
  private seq = 0;
  private readonly clients: Map<string, FakeClient>;

  private constructor(
    private readonly server: Server,
    private readonly o: FakeOAuthOptions,
  ) {
    const { port } = server.address() as AddressInfo;
    this.url = `http://127.0.0.1:${port}`;
    this.clients = new Map(o.clients.map((c) => [c.id, c]));
  }

  /** Starts a server on a free port of 127.0.0.1 (or `port`). */
  static async start(o: FakeOAuthOptions, port = 0): Promise<FakeOAuthServer> {
    const holder: { self?: FakeOAuthServer } = {};
    const server = createServer((req, res) => {
      void holder.self!.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent)
          json(res, 500, { error: 'server_error', error_description: String(err) });
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    holder.self = new FakeOAuthServer(server, o);
    return holder.self;
  }

  /** Registers (or replaces) a client, e.g. once the app's callback URL is known. */
  addClient(c: FakeClient): void {
    this.clients.set(c.id, c);
  }

  /** Token requests of one grant type. */
  count(grantType: string): number {
    return this.tokenRequests.filter((r) => r.grantType === grantType).length;
  }

  /** Whether `token` is a live access token it issued. */
  isLive(token: string): boolean {
    const t = this.tokens.get(token);
    return t !== undefined && !t.revoked && (t.expiresAt ?? Infinity) > Date.now();
  }

  /** Revokes every access token (of `user`): the API answers 401 until a refresh. */
  revokeAccessTokens(user?: string): void {
    for (const t of this.tokens.values())
      if (t.kind === 'access' && (user === undefined || t.user === user)) t.revoked = true;
  }

  /** Revokes every refresh token (of `user`): a refresh is `invalid_grant`. */
  revokeRefreshTokens(user?: string): void {
    for (const t of this.tokens.values())
      if (t.kind === 'refresh' && (user === undefined || t.user === user)) t.revoked = true;
  }

  /** The live refresh tokens (a rotation leaves exactly one per connection). */
  liveRefreshTokens(): string[] {
    return [...this.tokens.entries()]
      .filter(([, t]) => t.kind === 'refresh' && !t.revoked && !t.used)
      .map(([k]) => k);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const body = await readBody(req);
    if (url.pathname === '/authorize' && req.method === 'GET')
      return this.authorize(url.searchParams, res);
    if (url.pathname === '/authorize' && req.method === 'POST')
      return this.login(new URLSearchParams(body), res);
    if (url.pathname === '/token' && req.method === 'POST')
      return this.token(req, new URLSearchParams(body), res);
    if (url.pathname === '/revoke' && req.method === 'POST') {
      const t = this.tokens.get(new URLSearchParams(body).get('token') ?? '');
      if (t !== undefined) t.revoked = true;
      return json(res, 200, {});
    }
    if (url.pathname.startsWith('/api/')) return this.api(req, url.pathname, res);
    json(res, 404, { error: 'not_found' });
  }

  private authorize(q: URLSearchParams, res: ServerResponse): void {
    const client = this.clients.get(q.get('client_id') ?? '');
    const redirectUri = q.get('redirect_uri') ?? '';
    // RFC 6749 §4.1.2.1: never redirect to an unverified URI.
    if (client === undefined || !client.redirectUris.includes(redirectUri)) {
      return json(res, 400, {
        error: 'invalid_request',
        error_description: 'unknown client or redirect_uri',
      });
    }
    const back = (params: Record<string, string>): void => {
      const to = new URL(redirectUri);
      for (const [k, v] of Object.entries(params)) to.searchParams.set(k, v);
      const state = q.get('state');
      if (state !== null) to.searchParams.set('state', state);
      res.writeHead(302, { location: to.toString() }).end();
    };
    if (q.get('response_type') !== 'code') return back({ error: 'unsupported_response_type' });
    const challenge = q.get('code_challenge');
    if (challenge === null || q.get('code_challenge_method') !== 'S256') {
      return back({ error: 'invalid_request', error_description: 'PKCE S256 is required' });
    }
    const scopes = (q.get('scope') ?? '').split(' ').filter((s) => s !== '');
    if (scopes.some((s) => !this.o.scopes.includes(s))) return back({ error: 'invalid_scope' });
    if (this.deny) return back({ error: 'access_denied' });
    if (this.requireLogin) {
      const hidden = [...q.entries()]
        .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`)
        .join('');
      const page = `<!doctype html><form method="post" action="/authorize">${hidden}<input name="username"><input name="password" type="password"><button>Allow</button></form>`;
      res.writeHead(200, { 'content-type': 'text/html' }).end(page);
      return;
    }
    back({ code: this.issueCode(client.id, redirectUri, challenge, scopes, this.user) });
  }

  private login(form: URLSearchParams, res: ServerResponse): void {
    const user = form.get('username') ?? '';
    if (user === '' || form.get('password') !== 'password') {
      res.writeHead(401, { 'content-type': 'text/html' }).end('wrong user name or password');
      return;
    }
    const client = this.clients.get(form.get('client_id') ?? '');
    const redirectUri = form.get('redirect_uri') ?? '';
    if (client === undefined || !client.redirectUris.includes(redirectUri)) {
      return json(res, 400, { error: 'invalid_request' });
    }
    const scopes = (form.get('scope') ?? '').split(' ').filter((s) => s !== '');
    const code = this.issueCode(
      client.id,
      redirectUri,
      form.get('code_challenge') ?? '',
      scopes,
      user,
    );
    const to = new URL(redirectUri);
    to.searchParams.set('code', code);
    to.searchParams.set('state', form.get('state') ?? '');
    res.writeHead(302, { location: to.toString() }).end();
  }

  private issueCode(
    clientId: string,
    redirectUri: string,
    challenge: string,
    requested: string[],
    user: string,
  ): string {
    const code = randomBytes(16).toString('base64url');
    const scopes = this.grantOnly
      ? requested.filter((s) => this.grantOnly!.includes(s))
      : requested;
    this.codes.set(code, {
      clientId,
      redirectUri,
      challenge,
      scopes,
      user,
      used: false,
      expiresAt: Date.now() + 60_000,
    });
    return code;
  }

  private token(req: IncomingMessage, form: URLSearchParams, res: ServerResponse): void {
    const seen: SeenTokenRequest = {
      grantType: form.get('grant_type') ?? '',
      form: Object.fromEntries(form),
      status: 200,
      ...(req.headers.authorization === undefined
        ? {}
        : { authorization: req.headers.authorization }),
    };
    this.tokenRequests.push(seen);
    const fail = (status: number, error: string, description: string): void => {
      seen.status = status;
      seen.error = error;
      json(res, status, { error, error_description: description });
    };
    if (this.tokenOutages > 0) {
      this.tokenOutages--;
      return fail(503, 'temporarily_unavailable', 'try again later');
    }
    // Client authentication: Basic, or client_id (+ client_secret) in the form.
    let clientId = form.get('client_id') ?? undefined;
    let secret = form.get('client_secret') ?? undefined;
    const basic = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    if (basic) {
      const [id, s] = Buffer.from(basic[1]!, 'base64').toString().split(':');
      clientId = decodeURIComponent((id ?? '').replace(/\+/g, ' '));
      secret = decodeURIComponent((s ?? '').replace(/\+/g, ' '));
    }
    const client = this.clients.get(clientId ?? '');
    if (client === undefined || (client.secret !== undefined && client.secret !== secret)) {
      return fail(401, 'invalid_client', 'unknown client or wrong secret');
    }
    if (seen.grantType === 'authorization_code') {
      const code = this.codes.get(form.get('code') ?? '');
      if (
        code === undefined ||
        code.used ||
        code.expiresAt < Date.now() ||
        code.clientId !== client.id
      ) {
        return fail(400, 'invalid_grant', 'unknown, used or expired code');
      }
      if (form.get('redirect_uri') !== code.redirectUri)
        return fail(400, 'invalid_grant', 'redirect_uri does not match');
      // Checked before the code is spent, so an interceptor without the verifier cannot burn it.
      const verifier = form.get('code_verifier') ?? '';
      const computed = createHash('sha256').update(verifier, 'ascii').digest('base64url');
      if (verifier.length < 43 || computed !== code.challenge)
        return fail(400, 'invalid_grant', 'PKCE verification failed');
      code.used = true;
      return json(res, 200, this.issueTokens(client.id, code.user, code.scopes, true));
    }
    if (seen.grantType === 'refresh_token') {
      if (this.holdRefresh === 'before') return;
      const t = this.tokens.get(form.get('refresh_token') ?? '');
      if (
        t === undefined ||
        t.kind !== 'refresh' ||
        t.revoked ||
        t.used ||
        t.clientId !== client.id
      ) {
        return fail(400, 'invalid_grant', 'unknown, revoked or already used refresh token');
      }
      if (this.rotate) t.used = true;
      const issued = this.issueTokens(client.id, t.user, t.scopes, this.rotate);
      if (this.holdRefresh === 'after') return;
      return json(res, 200, issued);
    }
    fail(400, 'unsupported_grant_type', seen.grantType);
  }

  private issueTokens(
    clientId: string,
    user: string,
    scopes: string[],
    withRefresh: boolean,
  ): object {
    const n = ++this.seq;
    const prefix = this.o.prefix ?? 'fake';
    const access = `${prefix}-at-${n}-${randomBytes(6).toString('hex')}`;
    this.tokens.set(access, {
      kind: 'access',
      clientId,
      user,
      scopes,
      revoked: false,
      expiresAt: Date.now() + this.accessTtlS * 1000,
    });
    const out: Record<string, unknown> = {
      access_token: access,
      token_type: 'Bearer',
      expires_in: this.accessTtlS,
      scope: scopes.join(' '),
    };
    if (withRefresh) {
      const refresh = `${prefix}-rt-${n}-${randomBytes(6).toString('hex')}`;
      this.tokens.set(refresh, { kind: 'refresh', clientId, user, scopes, revoked: false });
      out.refresh_token = refresh;
    }
    return out;
  }

  private api(req: IncomingMessage, path: string, res: ServerResponse): void {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const seen: { method: string; path: string; token?: string; status: number } = {
      method: req.method ?? '',
      path,
      status: 200,
      ...(token === undefined ? {} : { token }),
    };
    this.apiRequests.push(seen);
    const t = token === undefined ? undefined : this.tokens.get(token);
    if (t === undefined || t.kind !== 'access' || !this.isLive(token!)) {
      seen.status = 401;
      res.setHeader('www-authenticate', 'Bearer error="invalid_token"');
      return json(res, 401, { error: 'invalid_token' });
    }
    const need =
      path === '/api/events' ? (req.method === 'POST' ? 'events.write' : 'events.read') : undefined;
    if (need !== undefined && !t.scopes.includes(need)) {
      seen.status = 403;
      res.setHeader('www-authenticate', `Bearer error="insufficient_scope", scope="${need}"`);
      return json(res, 403, { error: 'insufficient_scope', scope: need });
    }
    if (path === '/api/me') return json(res, 200, { user: t.user, scopes: t.scopes });
    if (path === '/api/events' && req.method === 'POST')
      return json(res, 201, { created: true, user: t.user });
    if (path === '/api/events')
      return json(res, 200, {
        user: t.user,
        events: [{ id: 'ev_1', title: `${t.user}'s standup` }],
      });
    seen.status = 404;
    json(res, 404, { error: 'not_found' });
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
