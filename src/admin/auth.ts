import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { KeelError } from '../core/errors.js';
import { isLoopback } from '../http/listen.js';

/**
 * Who may use the admin API. It can cancel, kill and purge any invocation, so it is closed by
 * default: it binds to loopback, and anywhere else it demands a bearer token.
 */

/** A request without the right `Authorization: Bearer <token>` header. HTTP 401. */
export class UnauthorizedError extends KeelError {
  constructor(message: string) {
    super(message, { code: 'unauthorized', status: 401 });
  }
}

/**
 * The admin API was asked to listen beyond loopback without a token. Thrown before anything
 * is bound, except for hostnames, which are judged by the address they bound to.
 */
export class AdminTokenRequiredError extends KeelError {
  constructor(host: string) {
    super(
      `refusing to serve the admin API on ${host} without a token: anyone who can reach that address could ` +
        'cancel, kill and purge invocations. Set KEEL_ADMIN_TOKEN (the adminToken option of startApp, the token ' +
        'option of serveAdmin) to a long random secret, e.g. the output of `openssl rand -hex 32`, or bind the ' +
        'admin API to 127.0.0.1',
      { code: 'admin_token_required' },
    );
  }
}

/**
 * Checks a token's form (never its value in a message: it is a secret). A token must be usable
 * in a header as is, so whitespace (e.g. a newline read from a file) is refused here rather
 * than turning every request into a puzzling 401. `which` names the token in messages.
 */
export function checkToken(token: string | undefined, which: TokenName = ADMIN): void {
  if (token === undefined) return;
  if (!/^[\x21-\x7e]+$/.test(token)) {
    throw new TypeError(
      `${which} must be non-empty printable ASCII without spaces or newlines, ` +
        'e.g. the output of `openssl rand -hex 32`',
    );
  }
  // On any host: a token is set for an exposed API, and a short one falls to guessing.
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new TypeError(
      `${which} is ${token.length} characters long; it must be at least ` +
        `${MIN_TOKEN_LENGTH} characters of random, e.g. the output of \`openssl rand -hex 32\``,
    );
  }
}

const ADMIN = 'the admin token (KEEL_ADMIN_TOKEN)';
const USER = 'the user token (KEEL_USER_TOKEN)';
type TokenName = typeof ADMIN | typeof USER;

/**
 * Checks the pair of tokens: each one's form, and that a user token comes with a different
 * admin token. Without an admin token the API is open to whoever reaches it (loopback), so a
 * user token would restrict nothing: refused rather than giving a false sense of safety.
 */
export function checkTokens(token: string | undefined, userToken: string | undefined): void {
  checkToken(token, ADMIN);
  checkToken(userToken, USER);
  if (userToken === undefined) return;
  if (token === undefined)
    throw new TypeError(
      `${USER} is set without ${ADMIN}: without an admin token the admin API is open to every caller, ` +
        'so a read-only user token would restrict nothing. Set KEEL_ADMIN_TOKEN too (the token option of serveAdmin, ' +
        'adminToken of startApp)',
    );
  if (userToken === token)
    throw new TypeError(
      `${USER} is the same as ${ADMIN}: a user could then do everything an admin can. Give them different values`,
    );
}

/** The shortest admin token accepted: 32 characters (128 bits as hex, more in base64). */
export const MIN_TOKEN_LENGTH = 32;

/** Throws {@link AdminTokenRequiredError} for an IP literal off loopback when there is no token. */
export function checkExposure(host: string, token: string | undefined): void {
  if (token === undefined && isIP(host) !== 0 && !isLoopback(host))
    throw new AdminTokenRequiredError(host);
}

/**
 * What a caller of the admin API may do. `admin`: everything. `user` (the user token): read
 * only: status, health, lists, deliveries, invocations; never a change (a circuit reset,
 * webhook management, cancelling an invocation), which is answered 403 `forbidden`.
 */
export type AdminRole = 'admin' | 'user';

/**
 * Builds the check of the `Authorization` header: the role its token grants, or a 401. Both
 * sides are hashed first, so the comparisons are constant-time over equal-length digests and
 * the time taken says nothing about either token, not even its length; both are compared
 * every time, so the time does not tell which one matched either.
 */
export function bearerCheck(
  token: string,
  userToken?: string,
): (header: string | undefined) => AdminRole {
  const expected = digest(token);
  const expectedUser = userToken === undefined ? undefined : digest(userToken);
  const hint =
    expectedUser === undefined
      ? 'the token from KEEL_ADMIN_TOKEN'
      : 'the token from KEEL_ADMIN_TOKEN, or for reads the one from KEEL_USER_TOKEN';
  return (header) => {
    const space = header === undefined ? -1 : header.indexOf(' ');
    if (header === undefined || space === -1 || header.slice(0, space).toLowerCase() !== 'bearer') {
      throw new UnauthorizedError(
        `the admin API needs a token: send the header Authorization: Bearer <token>, with ${hint}`,
      );
    }
    const given = digest(header.slice(space + 1).trim());
    const isAdmin = timingSafeEqual(given, expected);
    const isUser = expectedUser !== undefined && timingSafeEqual(given, expectedUser);
    if (isAdmin) return 'admin';
    if (isUser) return 'user';
    throw new UnauthorizedError(`the bearer token is not valid: use ${hint}`);
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}
