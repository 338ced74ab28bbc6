/**
 * The admin API's tokens: which ones exist (single values and lists, for rotation), their
 * checks at start, and the constant-time lookup of a request's role.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { checkToken, UnauthorizedError, type AdminRole } from './auth.js';

/** The token options of the admin API, as `serveAdmin` and `startApp` take them. */
export interface TokenOptions {
  /** An admin token (`KEEL_ADMIN_TOKEN`). */
  token?: string;
  /** More admin tokens (`KEEL_ADMIN_TOKENS`, comma-separated): rotation keeps the old one valid a while. */
  adminTokens?: readonly string[];
  /** A read-only token (`KEEL_VIEWER_TOKEN`). */
  viewerToken?: string;
  /** The former name of `viewerToken` (`KEEL_USER_TOKEN`); both set and different is refused. */
  userToken?: string;
  /** More read-only tokens (`KEEL_VIEWER_TOKENS`, comma-separated). */
  viewerTokens?: readonly string[];
}

/** Every token of each role, checked. */
export interface ResolvedTokens {
  admin: string[];
  viewer: string[];
}

const ADMIN_NAME = 'an admin token (KEEL_ADMIN_TOKEN / KEEL_ADMIN_TOKENS)';
const VIEWER_NAME = 'a viewer token (KEEL_VIEWER_TOKEN / KEEL_VIEWER_TOKENS)';

/**
 * Gathers and checks the tokens: each one's form (printable, no spaces, ≥ 32 characters), the
 * alias (`userToken` and `viewerToken` both set must be equal), that viewer tokens come with an
 * admin token (without one the API is open to every caller, so a read-only token would restrict
 * nothing), and that no token is both admin and viewer. Messages never contain a token.
 *
 * @example
 * ```ts
 * resolveTokens({ token: process.env.KEEL_ADMIN_TOKEN, viewerTokens: ['...', '...'] });
 * ```
 */
export function resolveTokens(o: TokenOptions): ResolvedTokens {
  if (o.userToken !== undefined && o.viewerToken !== undefined && o.userToken !== o.viewerToken) {
    throw new TypeError(
      'KEEL_VIEWER_TOKEN and KEEL_USER_TOKEN (the viewerToken and userToken options) are both set, to different values: ' +
        'KEEL_USER_TOKEN is the former name of KEEL_VIEWER_TOKEN. Set only KEEL_VIEWER_TOKEN (for several, KEEL_VIEWER_TOKENS)',
    );
  }
  const admin = [...(o.token === undefined ? [] : [o.token]), ...(o.adminTokens ?? [])];
  const single = o.viewerToken ?? o.userToken;
  const viewer = [...(single === undefined ? [] : [single]), ...(o.viewerTokens ?? [])];
  admin.forEach((t, i) => checkToken(t, nth(ADMIN_NAME, i, admin.length)));
  viewer.forEach((t, i) => checkToken(t, nth(VIEWER_NAME, i, viewer.length)));
  if (viewer.length > 0 && admin.length === 0) {
    throw new TypeError(
      `${VIEWER_NAME} is set without an admin token: without one the admin API is open to every caller, ` +
        'so a read-only token would restrict nothing. Set KEEL_ADMIN_TOKEN too (the token option of serveAdmin, ' +
        'adminToken of startApp)',
    );
  }
  if (viewer.some((t) => admin.includes(t))) {
    throw new TypeError(
      'a viewer token is the same as an admin token: a viewer could then do everything an admin can. Give them different values',
    );
  }
  return { admin: [...new Set(admin)], viewer: [...new Set(viewer)] };
}

function nth(name: string, i: number, count: number): string {
  return count === 1 ? name : `${name} (item ${i + 1} of ${count})`;
}

/**
 * Builds the check of the `Authorization` header: the role its token grants, or a 401. The
 * given token and every configured one are hashed, and the digests compared with
 * `timingSafeEqual`, every one every time: the time taken says nothing about any token, not its
 * length, nor which one matched.
 *
 * @example
 * ```ts
 * const roleOf = roleCheck({ admin: [adminToken], viewer: [] });
 * roleOf(req.headers.authorization); // 'admin', or throws UnauthorizedError
 * ```
 */
export function roleCheck(tokens: ResolvedTokens): (header: string | undefined) => AdminRole {
  const admin = tokens.admin.map(digest);
  const viewer = tokens.viewer.map(digest);
  const hint =
    viewer.length === 0
      ? 'the token from KEEL_ADMIN_TOKEN'
      : 'the token from KEEL_ADMIN_TOKEN, or for reads the one from KEEL_VIEWER_TOKEN';
  return (header) => {
    const space = header === undefined ? -1 : header.indexOf(' ');
    if (header === undefined || space === -1 || header.slice(0, space).toLowerCase() !== 'bearer') {
      throw new UnauthorizedError(
        `the admin API needs a token: send the header Authorization: Bearer <token>, with ${hint}`,
      );
    }
    const given = digest(header.slice(space + 1).trim());
    let isAdmin = false;
    let isViewer = false;
    for (const d of admin) isAdmin = timingSafeEqual(given, d) || isAdmin;
    for (const d of viewer) isViewer = timingSafeEqual(given, d) || isViewer;
    if (isAdmin) return 'admin';
    if (isViewer) return 'viewer';
    throw new UnauthorizedError(`the bearer token is not valid: use ${hint}`);
  };
}

/** Parses a comma-separated token list from the environment (`KEEL_ADMIN_TOKENS`, ...). */
export function tokenList(text: string, name: string): string[] {
  const items = text.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) {
    throw new TypeError(
      `${name} has an empty item: give the tokens separated by single commas, e.g. "$(openssl rand -hex 32),$(openssl rand -hex 32)"`,
    );
  }
  return items;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
