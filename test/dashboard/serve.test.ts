import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../../src/app.js';
import { service } from '../../src/index.js';
import { tempDir } from '../helpers.js';

/**
 * The dashboard's files as the admin server serves them (no browser): the page and its assets
 * without a token, the right types and caching, a Content-Security-Policy that keeps the page
 * to its own origin, and no inline script. The API itself still needs the token.
 */
const ADMIN = 'admin-token-dashboard-0123456789abcdef';
const tmp = tempDir('keel-dashboard-serve-');
let app: App;

beforeAll(async () => {
  const Greeter = service({ name: 'Greeter', handlers: { hi: async (_ctx, n: string) => n } });
  app = await startApp({
    services: [Greeter],
    db: join(tmp.dir, 'keel.db'),
    port: 0,
    adminPort: 0,
    adminToken: ADMIN,
    logger: () => undefined,
  });
}, 60_000);
afterAll(async () => {
  await app?.close();
  tmp.cleanup();
});

const get = (path: string, init?: RequestInit) => fetch(`${app.admin.url}${path}`, init);

/** The asset names the page references. */
async function assetsOf(html: string): Promise<string[]> {
  return [...html.matchAll(/(?:src|href)="(\/ui\/[^"]+)"/g)].map((m) => m[1]!);
}

describe('dashboard files on the admin server', () => {
  it('GET / is the page, without a token, with a strict CSP and no inline script', async () => {
    const res = await get('/');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('cache-control')).toBe('no-cache');
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await res.text();
    const scripts = [...html.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBe(1);
    for (const s of scripts) {
      expect(s[0]).toMatch(/\ssrc="\/ui\//);
      expect(s[1]!.trim()).toBe('');
    }
    expect(html).not.toMatch(/<style\b|\sstyle="/);
    // Nothing from anywhere else: every reference is the server's own.
    expect(html).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
    expect(await assetsOf(html)).toHaveLength(3);
  });

  it('serves the hashed script and stylesheet with their types and a long cache', async () => {
    const html = await (await get('/')).text();
    const names = await assetsOf(html);
    const js = names.find((n) => n.endsWith('.js'))!;
    const css = names.find((n) => n.endsWith('.css'))!;
    expect(js).toMatch(/^\/ui\/main-[A-Z0-9]{8}\.js$/);
    expect(css).toMatch(/^\/ui\/styles-[A-Z0-9]{8}\.css$/);
    for (const [path, type] of [
      [js, 'text/javascript; charset=utf-8'],
      [css, 'text/css; charset=utf-8'],
    ] as const) {
      const res = await get(path);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
      expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(1000);
    }
    const icon = await get('/ui/favicon.svg');
    expect(icon.headers.get('content-type')).toBe('image/svg+xml');
  });

  it('HEAD / answers the headers without a body', async () => {
    const res = await get('/', { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(Number(res.headers.get('content-length'))).toBeGreaterThan(100);
    expect(await res.text()).toBe('');
  });

  it('an unknown asset is a 404, a change is a 405', async () => {
    const missing = await get('/ui/nope.js');
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { code: string }).code).toBe('not_found');
    const traversal = await get('/ui/..%2Fbuild.ts');
    expect(traversal.status).toBe(404);
    const post = await get('/', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('the API behind it still needs the token', async () => {
    expect((await get('/invocations')).status).toBe(401);
    const ok = await get('/invocations', { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(ok.status).toBe(200);
  });
});
