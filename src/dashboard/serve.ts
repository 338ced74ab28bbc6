/**
 * Serves the dashboard on the admin server: `GET /` is the page, `GET /ui/{file}` its script,
 * stylesheet and icon. These need no token (they hold no data; every API call the page makes
 * carries the token the user logs in with). A strict Content-Security-Policy keeps the page to
 * its own origin: no CDN, no inline script, no request to anything but the admin server.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KeelError, NotFoundError } from '../core/errors.js';
import { MethodNotAllowedError } from '../http/respond.js';
import { dashboardAssets, type Asset } from './assets.js';

/** Sent with every dashboard file. */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/**
 * Answers the request if it is the dashboard's (`/`, `/index.html`, `/ui/...`); resolves
 * `false` for every other path, which the admin API then routes as usual.
 *
 * @example
 * ```ts
 * const route = async (req, res) => {
 *   if (await serveDashboard(req, res)) return;
 *   // ... the API's routes
 * };
 * ```
 */
export async function serveDashboard(
  req: IncomingMessage,
  res: ServerResponse,
  closing = false,
): Promise<boolean> {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  let name: string;
  if (path === '/' || path === '/index.html') name = 'index.html';
  else if (path.startsWith('/ui/')) name = path.slice(4);
  else return false;
  if (req.method !== 'GET' && req.method !== 'HEAD')
    throw new MethodNotAllowedError(req.method ?? '?', 'GET, HEAD');
  let assets: Map<string, Asset>;
  try {
    assets = await dashboardAssets();
  } catch (e) {
    throw new KeelError(
      `the dashboard is not built and could not be built here (${(e as Error).message}): ` +
        'run `npm run build`, which writes it into dist/src/dashboard/ui',
      { code: 'dashboard_unavailable', status: 503 },
    );
  }
  const asset = name.includes('/') ? undefined : assets.get(name);
  if (!asset) throw new NotFoundError(`no dashboard file "${name}"; open / for the dashboard`);
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'content-type': asset.type,
    'content-length': asset.body.length,
    // The page names the current hashed files, so it is revalidated; they never change.
    'cache-control': asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    ...(closing ? { connection: 'close' } : {}),
  });
  res.end(req.method === 'HEAD' ? undefined : asset.body);
  return true;
}
