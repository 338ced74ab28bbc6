/**
 * Builds the dashboard (Preact + TSX under `app/`) with esbuild into three files: one script,
 * one stylesheet (both named by their content hash, so they can be cached forever) and
 * `index.html` naming them. `npm run build` writes them next to the compiled server module
 * (`dist/src/dashboard/ui/`, which the package ships); run from source (tests, `tsx`), the
 * admin server builds them in memory on the first request instead (see assets.ts).
 *
 * esbuild is a devDependency: this module is imported only when no built copy exists.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One built file: its name under `/ui/` (or `index.html`) and its bytes. */
export interface BuiltFile {
  name: string;
  body: Buffer;
}

/**
 * Where the TSX sources are: `app/` beside this module when run from source; compiled (e.g. to
 * dist/src/dashboard/), `src/dashboard/app` of the checkout it was compiled in, found as the
 * nearest directory above with a package.json.
 */
function appDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, 'app', 'main.tsx'))) return join(here, 'app');
  for (let dir = here; dirname(dir) !== dir; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'src', 'dashboard', 'app');
  }
  throw new Error(`the dashboard's sources (src/dashboard/app) are not found above ${here}`);
}

/**
 * Bundles the dashboard. `minify` for the shipped build; tests use it too (it is fast).
 *
 * @example
 * ```ts
 * const files = await buildDashboard();
 * files.map((f) => f.name); // ['index.html', 'main-3QX7ZK2L.js', 'styles-PL4ECN5Q.css', 'favicon.svg']
 * ```
 */
export async function buildDashboard(options: { minify?: boolean } = {}): Promise<BuiltFile[]> {
  const esbuild = await import('esbuild');
  const result = await esbuild.build({
    // The stylesheet is an entry of its own, so the TSX needs no CSS module declarations.
    entryPoints: [join(appDir(), 'main.tsx'), join(appDir(), 'styles.css')],
    bundle: true,
    write: false,
    outdir: '/ui',
    entryNames: '[name]-[hash]',
    format: 'esm',
    target: ['es2022', 'chrome110', 'firefox110', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: options.minify ?? true,
    legalComments: 'none',
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  });
  const files: BuiltFile[] = result.outputFiles.map((f) => ({
    name: basename(f.path),
    body: Buffer.from(f.contents),
  }));
  const script = files.find((f) => f.name.endsWith('.js'))?.name;
  const style = files.find((f) => f.name.endsWith('.css'))?.name;
  if (script === undefined || style === undefined)
    throw new Error('the dashboard build produced no script or no stylesheet');
  files.unshift({ name: 'index.html', body: Buffer.from(indexHtml(script, style)) });
  files.push({ name: 'favicon.svg', body: Buffer.from(FAVICON) });
  return files;
}

/** A keel, in the accent colour. */
const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path d="M2 5h12l-3 6H5z" fill="#2f6fdb"/><path d="M8 1v4" stroke="#2f6fdb" stroke-width="1.5"/></svg>';

/** The page: no inline script or style (the CSP forbids them), everything from `/ui/`. */
function indexHtml(script: string, style: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Keel</title>
<link rel="icon" href="/ui/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/ui/${style}">
<script type="module" src="/ui/${script}"></script>
</head>
<body>
<div id="app"><noscript>The Keel dashboard needs JavaScript.</noscript></div>
</body>
</html>
`;
}

/** Writes a build into `dir` (emptied first). */
export async function writeDashboard(dir: string): Promise<BuiltFile[]> {
  const files = await buildDashboard({ minify: true });
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const f of files) writeFileSync(join(dir, f.name), f.body);
  return files;
}

// `node dist/src/dashboard/build.js [outDir]` (npm run build:dashboard): writes the shipped copy.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), 'ui'));
  const files = await writeDashboard(out);
  console.log(`dashboard: ${files.map((f) => f.name).join(', ')} in ${out}`);
}
