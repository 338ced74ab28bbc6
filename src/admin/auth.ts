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
export function checkToken(token: string | undefined, which: string = ADMIN): void {
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

/** The shortest admin token accepted: 32 characters (128 bits as hex, more in base64). */
export const MIN_TOKEN_LENGTH = 32;

/** Throws {@link AdminTokenRequiredError} for an IP literal off loopback when there is no token. */
export function checkExposure(host: string, token: string | readonly string[] | undefined): void {
  const none = token === undefined || (typeof token !== 'string' && token.length === 0);
  if (none && isIP(host) !== 0 && !isLoopback(host)) throw new AdminTokenRequiredError(host);
}

/**
 * What a caller of the admin API may do. `admin`: everything. `viewer` (a viewer token,
 * `KEEL_VIEWER_TOKEN`, formerly the user token): read only: status, health, lists, deliveries,
 * invocations; never a change (a circuit reset, webhook management, cancelling an invocation),
 * which is answered 403 `forbidden`.
 */
export type AdminRole = 'admin' | 'viewer';
