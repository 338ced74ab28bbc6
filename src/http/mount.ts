import type { IncomingMessage, ServerResponse } from 'node:http';

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
): Promise<boolean> {
  const first = segments[0];
  // Own properties only: `/toString` or `/constructor` must not find Object.prototype's
  // functions and call them as mounts (a 500, or a request never answered).
  const mount =
    mounts === undefined || first === undefined || !Object.hasOwn(mounts, first)
      ? undefined
      : mounts[first];
  if (!mount) return false;
  await mount({ req, res, segments: segments.slice(1), query, closing });
  return true;
}
