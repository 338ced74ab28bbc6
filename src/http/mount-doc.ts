import type { Mount } from './mount.js';

/**
 * What a {@link Mount} serves, for `GET /openapi.json`. A mount is a function that answers
 * every path under its prefix, so the server cannot see its routes; an extension that wants
 * them listed describes them here. An undescribed mount is listed as one catch-all route.
 */
export interface MountRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Below the mount's prefix, with `{param}` segments: `/{name}/run` under `/flows`. */
  path: string;
  summary: string;
  description?: string;
  /** The statuses it answers with, and what each means (default: 200 and `{ code, message }` errors). */
  responses?: Record<string, string>;
}

const described = new WeakMap<Mount, readonly MountRoute[]>();

/**
 * Attaches the description of its routes to a mount and returns the same mount.
 *
 * @example
 * ```ts
 * const ingress = describeMount(async (r) => { ... }, [
 *   { method: 'POST', path: '/{name}', summary: 'Receives a webhook from provider {name}' },
 * ]);
 * ```
 */
export function describeMount<M extends Mount>(mount: M, routes: readonly MountRoute[]): M {
  described.set(mount, routes);
  return mount;
}

/** The routes a mount was described with, if it was. */
export function mountRoutes(mount: Mount): readonly MountRoute[] | undefined {
  return described.get(mount);
}
