import type { IncomingMessage, ServerResponse } from 'node:http';
import { KeelError } from '../core/errors.js';

/**
 * A request handler an extension mounts on the ingress or the admin API under a first path
 * segment (`/webhooks/...`, `/integrations/...`). It answers every request under its prefix;
 * errors it throws are answered like the server's own (a `KeelError`'s status and code, else 500).
 */
export type Mount = (request: MountRequest) => Promise<void>;

/** One request, as a {@link Mount} sees it. */
export interface MountRequest {
  req: IncomingMessage;
  res: ServerResponse;
  /** The path's decoded segments after the mount's prefix. */
  segments: string[];
  /** The raw query string without `?` (empty when none). */
  query: string;
  /** The server is closing: answer with `connection: close`. */
  closing: boolean;
  /**
   * Who is asking, as the admin API authenticated them: `admin` (the admin token, or no token
   * configured on loopback) or `user` (the read-only user token). Undefined on a server without
   * roles (the ingress). A mount that changes anything calls {@link requireAdmin} first.
   */
  role?: MountRole;
}

/** The role of an admin API caller (see `AdminOptions.viewerToken`). */
export type MountRole = 'admin' | 'viewer';

/** The caller may read but not do this (the user token on an admin-only route). HTTP 403. */
export class ForbiddenError extends KeelError {
  constructor(message: string) {
    super(message, { code: 'forbidden', status: 403 });
  }
}

/**
 * Throws {@link ForbiddenError} unless the request was authenticated as `admin`. A request
 * without a role (a mount served outside the admin API) is refused too: changes are made only
 * through the admin API's authentication.
 *
 * @example
 * ```ts
 * const mount: Mount = async (r) => {
 *   if (r.req.method === 'POST') requireAdmin(r, 'resetting a circuit');
 *   // ...
 * };
 * ```
 */
export function requireAdmin(r: Pick<MountRequest, 'role'>, action: string): void {
  if (r.role === 'admin') return;
  throw new ForbiddenError(
    r.role === 'viewer'
      ? `${action} needs the admin token: a viewer token (KEEL_VIEWER_TOKEN) can only read. ` +
          'Send Authorization: Bearer <the token from KEEL_ADMIN_TOKEN>'
      : `${action} is only possible through the admin API (it is served here without its authentication)`,
  );
}

/** Mounts by first path segment. */
export type Mounts = Readonly<Record<string, Mount>>;

/**
 * Hands a request to the mount of its first path segment, if there is one. Resolves with
 * whether a mount answered it.
 */
export async function dispatchMount(
  mounts: Mounts | undefined,
  req: IncomingMessage,
  res: ServerResponse,
  segments: string[],
  query: string,
  closing: boolean,
  role?: MountRole,
): Promise<boolean> {
  const first = segments[0];
  // Own properties only: `/toString` or `/constructor` must not find Object.prototype's
  // functions and call them as mounts (a 500, or a request never answered).
  const mount =
    mounts === undefined || first === undefined || !Object.hasOwn(mounts, first)
      ? undefined
      : mounts[first];
  if (!mount) return false;
  await mount({
    req,
    res,
    segments: segments.slice(1),
    query,
    closing,
    ...(role === undefined ? {} : { role }),
  });
  return true;
}
