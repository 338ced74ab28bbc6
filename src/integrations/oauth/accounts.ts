/**
 * Connected accounts: one Store row per (provider, account) with the granted scopes, the access
 * token's expiry, a status, and the tokens sealed with {@link TokenCipher} (never in clear, never
 * logged). Every process reads and writes the same rows, so a refresh happens once across
 * processes:
 *
 * - a caller whose access token is stale (or was just refused with a 401) takes a **refresh
 *   lease** on the row with compare-and-set (`refreshing: { by, until }`); the others wait for the
 *   row to change and then use the new token;
 * - the lease holder sends `grant_type=refresh_token` and writes the new tokens (a rotated
 *   refresh token replaces the old one) and clears the lease;
 * - an `invalid_grant` answer (revoked, expired, already used) marks the row
 *   `reconnect_required` and drops its tokens: callers get `oauth_reconnect_required` at once,
 *   without a request, until the user connects again. Any other failure (network, 5xx) releases
 *   the lease and is the call's to retry.
 *
 * A lease whose holder died expires after `leaseMs`. With refresh-token rotation, a holder that
 * died after the provider answered but before the write loses the new refresh token: the next
 * refresh is refused and the account needs reconnecting (providers' reuse grace periods, where
 * they have one, avoid that).
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Store } from '../../store/types.js';
import { OAuth2Error } from '../declarations/auth/oauth2.js';
import type { Env } from '../declarations/secrets.js';
import type { KvStore } from '../shared/shared-cell.js';
import { AccountUnusableError, TokenKeyError } from './errors.js';
import {
  ACCOUNT_NAME,
  parseGrant,
  refreshRequest,
  revokeRequest,
  type FormRequest,
  type Grant,
  type ProviderConfig,
} from './protocol.js';
import { TokenCipher, type Sealed } from './token-cipher.js';

/** The Store scope of account rows, keyed `{provider}/{account}`. */
export const ACCOUNTS_SCOPE = 'keel.oauth.accounts';

/** An account as stored. */
export interface AccountRecord {
  provider: string;
  account: string;
  status: 'connected' | 'reconnect_required';
  /** The scopes the user granted. */
  scopes: string[];
  /** When the access token expires (epoch ms), if the provider said. */
  expiresAt?: number;
  connectedAt: number;
  refreshedAt?: number;
  /** `{ a: accessToken, r?: refreshToken }`, sealed; absent once a reconnect is required. */
  tokens?: Sealed;
  /** A refresh in progress somewhere (see the module comment). */
  refreshing?: { by: string; until: number };
  /** Why a reconnect is required. */
  problem?: string;
}

/** What the admin API shows of an account: never a token. */
export interface AccountSummary {
  provider: string;
  account: string;
  status: AccountRecord['status'];
  scopes: string[];
  expiresAt?: string;
  connectedAt: string;
  refreshedAt?: string;
  /** The id of the key its tokens are encrypted with (see key rotation). */
  keyId?: string;
  problem?: string;
}

/** Sends a token-endpoint request; the body parsed as JSON when it is. */
export type TokenHttp = (
  req: FormRequest,
  timeoutMs: number,
) => Promise<{ status: number; body: unknown }>;

/** Options of {@link ConnectedAccounts}. */
export interface ConnectedAccountsOptions {
  store: KvStore & Partial<Pick<Store, 'listKv'>>;
  now: () => number;
  /** Where `KEEL_TOKEN_KEY` / `KEEL_TOKEN_KEYS` are read. Default `process.env`. */
  env?: Env;
  /** Default: `fetch`. */
  http?: TokenHttp;
  /** How long a refresh lease holds before another process may take over. Default 30 s. */
  leaseMs?: number;
  /** Token endpoint timeout. Default 10 s. */
  timeoutMs?: number;
}

interface Tokens {
  a: string;
  r?: string;
}

/**
 * The accounts of every provider, over one Store.
 *
 * @example
 * ```ts
 * const accounts = new ConnectedAccounts({ store, now: Date.now });
 * const token = await accounts.accessToken(provider, 'user-42', ['events.read']);
 * await accounts.list(); // [{ provider: 'Calendar', account: 'user-42', status: 'connected', ... }]
 * ```
 */
export class ConnectedAccounts {
  /** This instance's name on a refresh lease. */
  readonly owner = randomUUID();
  private readonly http: TokenHttp;
  private readonly leaseMs: number;
  private readonly timeoutMs: number;
  private cipherMemo: TokenCipher | undefined;
  /** Refreshes this instance runs, by row key: concurrent local callers share one. */
  private readonly inflight = new Map<string, Promise<unknown>>();

  constructor(private readonly o: ConnectedAccountsOptions) {
    this.http = o.http ?? fetchForm;
    this.leaseMs = o.leaseMs ?? 30_000;
    this.timeoutMs = o.timeoutMs ?? 10_000;
  }

  /** The cipher from the environment (read once); throws `TokenKeyError` when unusable. */
  cipher(): TokenCipher {
    return (this.cipherMemo ??= TokenCipher.fromEnv(this.o.env ?? process.env));
  }

  /** Records a fresh grant for `account` (after the code exchange), replacing what was there. */
  async connect(
    p: ProviderConfig,
    account: string,
    grant: Grant,
    requested: readonly string[],
  ): Promise<AccountRecord> {
    checkAccount(account);
    const now = this.o.now();
    const rec: AccountRecord = {
      provider: p.name,
      account,
      status: 'connected',
      scopes: grant.scopes ?? [...requested],
      connectedAt: now,
      tokens: this.seal(p.name, account, {
        a: grant.accessToken,
        ...(grant.refreshToken === undefined ? {} : { r: grant.refreshToken }),
      }),
    };
    if (grant.expiresAt !== undefined) rec.expiresAt = grant.expiresAt;
    await this.o.store.write([
      { op: 'kv.put', scope: ACCOUNTS_SCOPE, key: rowKey(p.name, account), value: rec },
    ]);
    return rec;
  }

  /** The stored record, or undefined. */
  async get(provider: string, account: string): Promise<AccountRecord | undefined> {
    const row = await this.o.store.getKv(ACCOUNTS_SCOPE, rowKey(provider, account));
    return row === undefined ? undefined : (row.value as AccountRecord);
  }

  /**
   * A valid access token for `account`: the stored one while fresh, else refreshed (once across
   * processes). `needs` are the scopes the call requires; `rejected` a token the API just
   * refused with 401, which is refreshed even if it looks fresh. Throws
   * {@link AccountUnusableError} when only the user can fix it.
   */
  async accessToken(
    p: ProviderConfig,
    account: string,
    needs: readonly string[] = [],
    rejected?: string,
  ): Promise<string> {
    checkAccount(account);
    const key = rowKey(p.name, account);
    const waitUntil = Date.now() + this.leaseMs + this.timeoutMs;
    for (let pause = 10; ; pause = Math.min(pause * 2, 200)) {
      const row = await this.o.store.getKv(ACCOUNTS_SCOPE, key);
      const rec = row?.value as AccountRecord | undefined;
      if (rec === undefined) {
        throw new AccountUnusableError(
          'not-connected',
          `account ${account} has not connected ${p.name}: send the user to /oauth/${p.name}/connect`,
        );
      }
      if (rec.status === 'reconnect_required' || rec.tokens === undefined) {
        throw new AccountUnusableError(
          'reconnect-required',
          `account ${account} must connect ${p.name} again (${rec.problem ?? 'its tokens are gone'}): send the user to /oauth/${p.name}/connect`,
        );
      }
      const missing = needs.filter((s) => !rec.scopes.includes(s));
      if (missing.length > 0) {
        throw new AccountUnusableError(
          'scope-missing',
          `account ${account} did not grant ${p.name} the scope${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (granted: ${rec.scopes.join(' ') || 'none'}); connect again to grant ${missing.length > 1 ? 'them' : 'it'}`,
        );
      }
      const tokens = this.open(rec);
      const now = this.o.now();
      if (tokens.a !== rejected && fresh(rec, now, p.refreshMarginMs)) return tokens.a;
      // Stale: refresh, unless someone here or elsewhere is doing it already.
      const local = this.inflight.get(key);
      const leased = rec.refreshing !== undefined && rec.refreshing.until > now;
      if (local !== undefined || leased) {
        if (Date.now() > waitUntil)
          throw new OAuth2Error(`the refresh of ${p.name}/${account} by another process is late`);
        if (local !== undefined) await local.catch(() => undefined);
        else await sleep(pause);
        continue;
      }
      if (tokens.r === undefined) {
        await this.requireReconnect(
          key,
          rec,
          'the access token expired and there is no refresh token',
        );
        continue;
      }
      const refreshing = { by: this.owner, until: now + this.leaseMs };
      const [taken] = (await this.o.store.write([
        {
          op: 'kv.put',
          scope: ACCOUNTS_SCOPE,
          key,
          value: { ...rec, refreshing },
          expectVersion: row!.version,
        },
      ])) as [{ ok: boolean; version: number }];
      if (!taken.ok) continue;
      const run = this.refresh(p, key, rec, tokens.r, taken.version);
      this.inflight.set(key, run);
      try {
        return await run;
      } finally {
        this.inflight.delete(key);
      }
    }
  }

  /** Every account (of `provider`, if given), as the admin API shows them. */
  async list(provider?: string): Promise<AccountSummary[]> {
    const out: AccountSummary[] = [];
    for await (const rec of this.rows(provider)) out.push(summary(rec));
    return out;
  }

  /**
   * Forgets an account, revoking its refresh token at the provider first when it declares a
   * `revokeUrl` (a failure to revoke is reported, and the account is forgotten anyway).
   */
  async disconnect(
    p: ProviderConfig,
    account: string,
  ): Promise<{ found: boolean; revoked: boolean }> {
    const key = rowKey(p.name, account);
    const rec = await this.get(p.name, account);
    if (rec === undefined) return { found: false, revoked: false };
    let revoked = false;
    if (rec.tokens !== undefined) {
      try {
        const t = this.open(rec);
        const req = revokeRequest(
          p,
          t.r ?? t.a,
          t.r === undefined ? 'access_token' : 'refresh_token',
        );
        if (req !== undefined) revoked = (await this.http(req, this.timeoutMs)).status === 200;
      } catch {
        // The account is forgotten anyway: the user asked for it.
      }
    }
    await this.o.store.write([{ op: 'kv.delete', scope: ACCOUNTS_SCOPE, key }]);
    return { found: true, revoked };
  }

  /**
   * Re-encrypts every record sealed with an old key with the current one (key rotation, see
   * docs/integrations.md). Records that change meanwhile are skipped; run it again.
   */
  async rekey(): Promise<{ rekeyed: number; total: number; skipped: number }> {
    const cipher = this.cipher();
    let rekeyed = 0;
    let total = 0;
    let skipped = 0;
    for await (const rec of this.rows(undefined)) {
      total++;
      if (rec.tokens === undefined || rec.tokens.kid === cipher.keyId) continue;
      const key = rowKey(rec.provider, rec.account);
      const row = await this.o.store.getKv(ACCOUNTS_SCOPE, key);
      if (row === undefined) continue;
      const cur = row.value as AccountRecord;
      if (cur.tokens === undefined) continue;
      const next = { ...cur, tokens: this.seal(cur.provider, cur.account, this.open(cur)) };
      const [res] = (await this.o.store.write([
        { op: 'kv.put', scope: ACCOUNTS_SCOPE, key, value: next, expectVersion: row.version },
      ])) as [{ ok: boolean }];
      if (res.ok) rekeyed++;
      else skipped++;
    }
    return { rekeyed, total, skipped };
  }

  private async refresh(
    p: ProviderConfig,
    key: string,
    rec: AccountRecord,
    refreshToken: string,
    version: number,
  ): Promise<string> {
    let grant: Grant;
    try {
      const res = await this.http(refreshRequest(p, refreshToken), this.timeoutMs);
      grant = parseGrant(res.status, res.body, this.o.now());
    } catch (err) {
      if (err instanceof OAuth2Error && err.error === 'invalid_grant') {
        await this.requireReconnect(
          key,
          rec,
          'the provider refused the refresh token (invalid_grant: revoked, expired or already used)',
        );
        throw new AccountUnusableError(
          'reconnect-required',
          `account ${rec.account} must connect ${p.name} again: the provider refused its refresh token (invalid_grant); send the user to /oauth/${p.name}/connect`,
        );
      }
      // Let another attempt (ours or another process's) try again now.
      const { refreshing: _, ...released } = rec;
      await this.o.store
        .write([
          { op: 'kv.put', scope: ACCOUNTS_SCOPE, key, value: released, expectVersion: version },
        ])
        .catch(() => undefined);
      throw err;
    }
    const now = this.o.now();
    const { refreshing: _, expiresAt: __, ...rest } = rec;
    const next: AccountRecord = {
      ...rest,
      scopes: grant.scopes ?? rec.scopes,
      refreshedAt: now,
      tokens: this.seal(p.name, rec.account, {
        a: grant.accessToken,
        // A provider that rotates sends a new refresh token; one that does not keeps the old valid.
        r: grant.refreshToken ?? refreshToken,
      }),
    };
    if (grant.expiresAt !== undefined) next.expiresAt = grant.expiresAt;
    // Written whatever the version now: after a rotation these are the only valid tokens, even
    // if our lease ran out and someone else took it meanwhile.
    await this.o.store.write([{ op: 'kv.put', scope: ACCOUNTS_SCOPE, key, value: next }]);
    return grant.accessToken;
  }

  private async requireReconnect(key: string, rec: AccountRecord, problem: string): Promise<void> {
    const { refreshing: _, tokens: __, ...rest } = rec;
    const next: AccountRecord = { ...rest, status: 'reconnect_required', problem };
    await this.o.store.write([{ op: 'kv.put', scope: ACCOUNTS_SCOPE, key, value: next }]);
  }

  private seal(provider: string, account: string, t: Tokens): Sealed {
    return this.cipher().seal(JSON.stringify(t), rowKey(provider, account));
  }

  private open(rec: AccountRecord): Tokens {
    return JSON.parse(this.cipher().open(rec.tokens!, rowKey(rec.provider, rec.account))) as Tokens;
  }

  private async *rows(provider: string | undefined): AsyncGenerator<AccountRecord> {
    const listKv = this.o.store.listKv?.bind(this.o.store);
    if (listKv === undefined) return;
    let after: string | undefined;
    for (;;) {
      const page = await listKv(ACCOUNTS_SCOPE, {
        ...(provider === undefined ? {} : { prefix: `${provider}/` }),
        ...(after === undefined ? {} : { after }),
        limit: 100,
      });
      for (const row of page) yield row.value as AccountRecord;
      if (page.length < 100) return;
      after = page[page.length - 1]!.key;
    }
  }
}

/**
 * Throws unless `account` is a usable account name (letters, digits, `._@:+-`, up to 128).
 *
 * @example
 * ```ts
 * checkAccount('user-42');
 * ```
 */
export function checkAccount(account: unknown): asserts account is string {
  if (typeof account !== 'string' || !ACCOUNT_NAME.test(account)) {
    throw new AccountUnusableError(
      'invalid-request',
      `an account name is 1 to 128 letters, digits and ._@:+- (starting with a letter or digit), got ${typeof account === 'string' ? JSON.stringify(account.slice(0, 40)) : typeof account}`,
    );
  }
}

function rowKey(provider: string, account: string): string {
  return `${provider}/${account}`;
}

function fresh(rec: AccountRecord, now: number, marginMs: number): boolean {
  if (rec.expiresAt === undefined) return true;
  const lifetime = rec.expiresAt - (rec.refreshedAt ?? rec.connectedAt);
  const margin = Math.min(marginMs, Math.max(0, lifetime / 2));
  return now < rec.expiresAt - margin;
}

function summary(rec: AccountRecord): AccountSummary {
  const s: AccountSummary = {
    provider: rec.provider,
    account: rec.account,
    status: rec.status,
    scopes: rec.scopes,
    connectedAt: new Date(rec.connectedAt).toISOString(),
  };
  if (rec.expiresAt !== undefined) s.expiresAt = new Date(rec.expiresAt).toISOString();
  if (rec.refreshedAt !== undefined) s.refreshedAt = new Date(rec.refreshedAt).toISOString();
  if (rec.tokens !== undefined) s.keyId = rec.tokens.kid;
  if (rec.problem !== undefined) s.problem = rec.problem;
  return s;
}

/**
 * Sends a form request with `fetch`.
 *
 * @example
 * ```ts
 * const res = await fetchForm(refreshRequest(provider, token), 10_000);
 * ```
 */
export async function fetchForm(
  req: FormRequest,
  timeoutMs: number,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(req.url, {
    method: req.method,
    headers: req.headers,
    body: req.body,
    redirect: 'error',
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: keep the text (parseGrant reports it as an answer without a token).
  }
  return { status: res.status, body };
}

/** `TokenKeyError` is a configuration problem, not the provider's: callers report it as such. */
export function isKeyError(err: unknown): err is TokenKeyError {
  return err instanceof TokenKeyError;
}
