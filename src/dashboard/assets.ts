/**
 * The dashboard's files as the admin server serves them: read once from the shipped build
 * (`ui/` beside this module: `npm run build` writes it), or, when running from source (tests,
 * `tsx`), built in memory with esbuild on the first request. Either way they are kept in memory.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One file of the dashboard, ready to send. */
export interface Asset {
  body: Buffer;
  type: string;
  /** Named by its content hash: cacheable forever. */
  immutable: boolean;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** esbuild's `[name]-[hash]`: the hash is 8 upper-case base32 characters. */
const HASHED = /-[A-Z0-9]{8}\.(js|css)$/;

let loading: Promise<Map<string, Asset>> | undefined;

/** The dashboard's files by name (`index.html`, `main-XXXXXXXX.js`, ...), loaded once. */
export function dashboardAssets(): Promise<Map<string, Asset>> {
  loading ??= load().catch((e: unknown) => {
    loading = undefined; // a failed build is tried again on the next request
    throw e;
  });
  return loading;
}

async function load(): Promise<Map<string, Asset>> {
  const shipped = join(dirname(fileURLToPath(import.meta.url)), 'ui');
  const files: Array<{ name: string; body: Buffer }> = existsSync(join(shipped, 'index.html'))
    ? readdirSync(shipped).map((name) => ({ name, body: readFileSync(join(shipped, name)) }))
    : await (await import('./build.js')).buildDashboard();
  const out = new Map<string, Asset>();
  for (const f of files) {
    out.set(f.name, {
      body: f.body,
      type: TYPES[extname(f.name)] ?? 'application/octet-stream',
      immutable: HASHED.test(f.name),
    });
  }
  return out;
}
