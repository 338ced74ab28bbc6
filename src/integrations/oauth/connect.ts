/**
 * The connect flow, as an engine extension named `oauth`:
 *
 * Ingress (the browser):
 * - `GET /oauth/{provider}/connect?account=user-42` → 302 to the provider's authorization URL
 *   with a `state` (32 random bytes, single-use, expiring after `stateTtl`, kept in the Store
 *   under its SHA-256) and an S256 `code_challenge` (its verifier sealed next to the state);
 * - `GET /oauth/{provider}/callback?code=...&state=...` → the state is consumed (compare-and-set
 *   delete: a second use, a forged or an expired state is refused with 400 `oauth_state_invalid`),
 *   the code is exchanged with the verifier, the tokens are stored encrypted, and the browser
 *   gets a "connected" page (or a 302 to `connectedRedirect`).
 *
 * Admin API:
 * - `GET /oauth/accounts[?provider=Calendar]` → `{ accounts: [{ provider, account, status, scopes,
 *   expiresAt, connectedAt, refreshedAt, keyId, problem }] }`: never a token;
 * - `DELETE /oauth/accounts/{provider}/{account}` → revokes at the provider (when it declares a
 *   `revokeUrl`) and forgets the account (admin only);
 * - `POST /oauth/rekey` → re-encrypts records sealed with an old key (admin only).
 *
 * The account a browser connects is, by default, the `account` query parameter: fine for a demo
 * and for a connect link your app signs or serves behind its own login, but a real app should
 * pass `accountOf` to take it from its session, or anyone could connect their provider account
 * to someone else's account name.
 */
import { describeMount } from '../../http/mount-doc.js';
import { parseDuration, type Duration } from '../../core/duration.js';
import { NotFoundError, UsageError } from '../../core/errors.js';
import type { EngineExtension, ExtensionHost } from '../../engine/extension.js';
import { requireAdmin, type Mount, type MountRequest } from '../../http/mount.js';
import { MethodNotAllowedError, sendJson } from '../../http/respond.js';
import type { Integration } from '../declarations/config.js';
import type { Env } from '../declarations/secrets.js';
import { checkAccount, ConnectedAccounts, fetchForm, type TokenHttp } from './accounts.js';
import { OAuthConnectError } from './errors.js';
import {
  authorizationUrl,
  codeChallenge,
  codeExchangeRequest,
  parseGrant,
  providerConfig,
  randomToken,
  stateKey,
} from './protocol.js';
import type { Sealed } from './token-cipher.js';

/** The Store scope of pending connects, keyed by the SHA-256 of their `state`. */
export const STATE_SCOPE = 'keel.oauth.state';

/** A pending connect, as stored. */
interface PendingConnect {
  provider: string;
  account: string;
  scopes: string[];
  /** The PKCE verifier, sealed (bound to the state's key). */
  verifier: Sealed;
  expiresAt: number;
}

/** Options of {@link createOAuthConnect}. */
export interface OAuthConnectOptions {
  /** The providers: integrations with `oauth2_authorization_code` auth. */
  integrations: readonly Integration[];
  /** Where client secrets and `KEEL_TOKEN_KEY(S)` are read. Default `process.env`. */
  env?: Env;
  /**
   * Who is connecting. Default: the `account` query parameter of the connect URL (see the
   * module comment: a real app takes it from its session).
   */
  accountOf?: (request: MountRequest) => string | undefined | Promise<string | undefined>;
  /** After connecting, redirect here (`{provider}` and `{account}` are filled in) instead of a page. */
  connectedRedirect?: string;
  /** How long a connect may take between the redirect and the callback. Default `10m`. */
  stateTtl?: Duration;
  /** Sends token requests. Default `fetch`. */
  http?: TokenHttp;
}

/** The `oauth` extension (see {@link createOAuthConnect}). */
export interface OAuthConnect extends EngineExtension {
  readonly name: 'oauth';
  readonly mounts: { readonly ingress: Mount; readonly admin: Mount };
  /** The connected accounts (after the engine started). */
  readonly accounts: ConnectedAccounts;
}

/**
 * The connect routes for `integrations` (see the module comment).
 *
 * @example
 * ```ts
 * const app = await startApp({
 *   services: [Agenda],
 *   integrations: [calendar],
 *   extensions: [createOAuthConnect({ integrations: [calendar] })],
 * });
 * // browser: GET {ingress}/oauth/Calendar/connect?account=user-42
 * // handler: await use(ctx, calendar).list_events({}, { account: 'user-42' });
 * ```
 */
export function createOAuthConnect(options: OAuthConnectOptions): OAuthConnect {
  const providers = new Map<string, Integration>();
  for (const i of options.integrations) {
    if (i.auth.type !== 'oauth2_authorization_code') {
      throw new UsageError(
        `createOAuthConnect: integration ${i.name} has ${i.auth.type} auth; only oauth2_authorization_code integrations connect accounts`,
      );
    }
    providers.set(i.name, i);
  }
  const stateTtlMs = parseDuration(options.stateTtl ?? '10m');
  const http = options.http ?? fetchForm;
  let host: ExtensionHost | undefined;
  let accounts: ConnectedAccounts | undefined;
  const started = (): { host: ExtensionHost; accounts: ConnectedAccounts } => {
    if (host === undefined || accounts === undefined)
      throw new UsageError('oauth: the engine has not started yet');
    return { host, accounts };
  };
  const providerOf = (name: string | undefined): Integration => {
    const i = name === undefined ? undefined : providers.get(name);
    if (i === undefined)
      throw new OAuthConnectError(
        'oauth_unknown_provider',
        `no OAuth2 provider is named ${JSON.stringify(name ?? '')}; known: ${[...providers.keys()].join(', ')}`,
        404,
      );
    return i;
  };

  const connect = async (r: MountRequest, integration: Integration): Promise<void> => {
    const { host, accounts } = started();
    const q = new URLSearchParams(r.query);
    const account = options.accountOf
      ? await options.accountOf(r)
      : (q.get('account') ?? undefined);
    checkAccount(account);
    const p = providerConfig(integration, options.env);
    const state = randomToken();
    const verifier = randomToken();
    const key = stateKey(state);
    const expiresAt = host.clock.now() + stateTtlMs;
    const pending: PendingConnect = {
      provider: p.name,
      account,
      scopes: [...p.scopes],
      verifier: accounts.cipher().seal(verifier, `state:${key}`),
      expiresAt,
    };
    await host.store.write([{ op: 'kv.put', scope: STATE_SCOPE, key, value: pending, expiresAt }]);
    redirect(r, authorizationUrl(p, { state, challenge: codeChallenge(verifier) }));
  };

  const callback = async (r: MountRequest, integration: Integration): Promise<void> => {
    const { host, accounts } = started();
    const q = new URLSearchParams(r.query);
    const state = q.get('state');
    const invalid = (why: string): OAuthConnectError =>
      new OAuthConnectError(
        'oauth_state_invalid',
        `${why}; start again at /oauth/${integration.name}/connect`,
      );
    if (state === null || state === '' || state.length > 512)
      throw invalid('the callback has no state');
    const key = stateKey(state);
    const row = await host.store.getKv(STATE_SCOPE, key);
    if (row === undefined) throw invalid('unknown or already used state');
    // Single use: whoever deletes it first goes on; a replay of the same callback is refused.
    const [gone] = (await host.store.write([
      { op: 'kv.delete', scope: STATE_SCOPE, key, expectVersion: row.version },
    ])) as [{ ok: boolean }];
    if (!gone.ok) throw invalid('unknown or already used state');
    const pending = row.value as PendingConnect;
    if (pending.provider !== integration.name)
      throw invalid(`the state was issued for ${pending.provider}`);
    if (host.clock.now() > pending.expiresAt) throw invalid('the state expired');
    const error = q.get('error');
    if (error !== null) {
      throw new OAuthConnectError(
        'oauth_authorization_denied',
        `${integration.name} answered ${error.replace(/[^A-Za-z0-9_.-]/g, '').slice(0, 64)}: the account was not connected`,
      );
    }
    const code = q.get('code');
    if (code === null || code === '') throw invalid('the callback has no code');
    const p = providerConfig(integration, options.env);
    const verifier = accounts.cipher().open(pending.verifier, `state:${key}`);
    const res = await http(codeExchangeRequest(p, code, verifier), 10_000);
    const grant = parseGrant(res.status, res.body, host.clock.now());
    const rec = await accounts.connect(p, pending.account, grant, pending.scopes);
    host.log('info', `oauth: account ${rec.account} connected ${rec.provider}`, {
      scopes: rec.scopes.join(' '),
    });
    if (options.connectedRedirect !== undefined) {
      redirect(
        r,
        options.connectedRedirect
          .replaceAll('{provider}', encodeURIComponent(rec.provider))
          .replaceAll('{account}', encodeURIComponent(rec.account)),
      );
      return;
    }
    const page =
      `<!doctype html><meta charset="utf-8"><title>Connected</title>` +
      `<p>Connected ${escapeHtml(rec.provider)} for ${escapeHtml(rec.account)}.</p>` +
      `<p>Granted scopes: ${escapeHtml(rec.scopes.join(' ') || 'none')}</p>`;
    r.res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'content-length': Buffer.byteLength(page),
      'cache-control': 'no-store',
    });
    r.res.end(page);
  };

  const ingress: Mount = async (r) => {
    const [name, action, ...rest] = r.segments;
    const integration = providerOf(name);
    if (rest.length > 0 || (action !== 'connect' && action !== 'callback'))
      throw new NotFoundError(
        `no route /oauth/${r.segments.join('/')}: use /oauth/${integration.name}/connect or /callback`,
      );
    if (r.req.method !== 'GET') throw new MethodNotAllowedError(r.req.method ?? '', 'GET');
    await (action === 'connect' ? connect(r, integration) : callback(r, integration));
  };

  const admin: Mount = async (r) => {
    const { accounts } = started();
    const [what, provider, account, ...rest] = r.segments;
    const method = r.req.method ?? '';
    if (what === 'accounts' && provider === undefined) {
      if (method !== 'GET') throw new MethodNotAllowedError(method, 'GET');
      const only = new URLSearchParams(r.query).get('provider') ?? undefined;
      if (only !== undefined) providerOf(only);
      sendJson(r.res, 200, { accounts: await accounts.list(only) });
      return;
    }
    if (what === 'accounts' && account !== undefined && rest.length === 0) {
      if (method !== 'DELETE') throw new MethodNotAllowedError(method, 'DELETE');
      requireAdmin(r, 'disconnecting an account');
      const p = providerConfig(providerOf(provider), options.env);
      const out = await accounts.disconnect(p, account);
      if (!out.found) throw new NotFoundError(`account ${account} has not connected ${p.name}`);
      sendJson(r.res, 200, out);
      return;
    }
    if (what === 'rekey' && provider === undefined) {
      if (method !== 'POST') throw new MethodNotAllowedError(method, 'POST');
      requireAdmin(r, 're-encrypting tokens');
      sendJson(r.res, 200, await accounts.rekey());
      return;
    }
    throw new NotFoundError(
      'no such route: GET /oauth/accounts, DELETE /oauth/accounts/{provider}/{account}, POST /oauth/rekey',
    );
  };

  return {
    name: 'oauth',
    install(h) {
      host = h;
      accounts = new ConnectedAccounts({
        store: h.store,
        now: () => h.clock.now(),
        ...(options.env === undefined ? {} : { env: options.env }),
        http,
      });
    },
    mounts: {
      ingress: describeMount(ingress, [
        {
          method: 'GET',
          path: '/{provider}/connect',
          summary: "Starts connecting an account: redirects to the provider's consent page",
          responses: { '302': 'To the provider' },
        },
        {
          method: 'GET',
          path: '/{provider}/callback',
          summary: 'Where the provider sends the user back; stores the encrypted tokens',
          responses: { '200': 'An HTML page saying the account is connected' },
        },
      ]),
      admin,
    },
    get accounts() {
      return started().accounts;
    },
  };
}

function redirect(r: MountRequest, location: string): void {
  r.res.writeHead(302, {
    location,
    'content-length': 0,
    'cache-control': 'no-store',
    // The authorization URL carries the state: do not leak it to the next site.
    'referrer-policy': 'no-referrer',
  });
  r.res.end();
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
