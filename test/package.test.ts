/**
 * Keel as a user gets it from npm: the tarball `npm pack` makes, installed into a fresh project,
 * used from plain JavaScript (ESM) and type-checked from TypeScript against the shipped `.d.ts`.
 *
 * The package is built into a temporary staging directory (`tsc -p tsconfig.build.json` with
 * another `--outDir`, then `package.json` and README copied beside it), never into the shared
 * `dist/`: the tarball holds only this build's output (no file left behind by an older build of
 * a since deleted source), and no `npm start` or `npm run bench` running from `dist/` at the
 * same time sees its files rewritten. The dashboard is built there as `npm run build` builds it
 * (`npm run build:dashboard` in the stage, while links to the checkout's `src/` and
 * `node_modules/` give the compiled build script its sources and esbuild), into the stage's
 * `dist/src/dashboard/ui/`: the package must ship it, since it does not ship that build script.
 * `npm pack --ignore-scripts` there skips `prepack` (the build, already done).
 *
 * The install resolves from the machine's npm cache where it can (`--prefer-offline`), and
 * skips install scripts: the only one is better-sqlite3's native build (a prebuilt download,
 * else minutes of C++ compiling), so the project pins better-sqlite3 to the repository's
 * version and gets a copy of the repository's compiled binary of that same version instead.
 */
import { execFile, execFileSync, type ExecFileOptions } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';

const ROOT = resolve(import.meta.dirname, '..');
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  exports: Record<string, string | { types: string; import: string }>;
  dependencies: Record<string, string>;
};
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
/** The dashboard's script in the tarball, named by its content hash (esbuild's `[name]-[hash]`). */
const HASHED_JS = /^dist\/src\/dashboard\/ui\/([^/]+-[A-Z0-9]{8}\.js)$/;

function npmVersion(): string | undefined {
  try {
    return execFileSync(NPM, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    return undefined;
  }
}

/** Runs a command; its output goes into the error when it fails. */
function run(file: string, args: string[], options: ExecFileOptions): Promise<string> {
  return new Promise((resolveRun, reject) => {
    execFile(
      file,
      args,
      { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8', ...options },
      (err, stdout, stderr) => {
        if (err) {
          reject(
            new Error(
              `${file} ${args.join(' ')} failed: ${err.message}\n${String(stdout)}\n${String(stderr)}`,
            ),
          );
        } else {
          resolveRun(String(stdout));
        }
      },
    );
  });
}

const npm = npmVersion();
if (!npm) console.log('test/package.test.ts skipped: npm is not on the PATH');

/** The plain-JavaScript program of the installed project. */
const APP_JS = `
import { createRequire } from 'node:module';

// pg, better-sqlite3 and undici are CommonJS: importing them, from ESM too, goes through the
// CommonJS loader, which records every file it loads in require.cache.
const require = createRequire(import.meta.url);
const HEAVY = /[\\\\/]node_modules[\\\\/](pg|pg-pool|better-sqlite3|undici)[\\\\/]/;
const loaded = () =>
  [...new Set(Object.keys(require.cache).flatMap((p) => p.match(HEAVY)?.[1] ?? []))].sort();

const before = loaded();
// The remote client first: it must load no driver (it uses the global fetch only).
const { connect } = await import('keel/client');
const afterClient = loaded();
const keel = await import('keel');
const afterKeel = loaded();
const { startApp } = await import('keel/app');
const afterApp = loaded();

const Greeter = keel.service({
  name: 'Greeter',
  handlers: {
    greet: async (ctx, name) => {
      const upper = await ctx.run('upper', () => name.toUpperCase());
      if (upper === '') throw new keel.TerminalError('no name');
      return 'Hello, ' + upper + '!';
    },
  },
});
const app = await startApp({
  services: [Greeter],
  db: process.argv[2],
  port: 0,
  adminPort: 0,
  storeWait: 0,
});
let result;
let viaClient;
let dashboard;
try {
  const res = await fetch('http://127.0.0.1:' + app.ingress.port + '/Greeter/greet', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify('Ada'),
  });
  result = { status: res.status, body: await res.json() };
  // The same handler through keel/client.
  viaClient = await connect({ url: app.ingress.url }).serviceClient('Greeter').greet('Bob');
  // The dashboard on the admin port: the page, and the script it names.
  const admin = 'http://127.0.0.1:' + app.admin.port;
  const page = await fetch(admin + '/');
  const html = await page.text();
  const script = html.match(/<script type="module" src="[/]ui[/]([^"]+)"/)?.[1] ?? null;
  const js = script === null ? undefined : await fetch(admin + '/ui/' + script);
  dashboard = {
    status: page.status,
    type: page.headers.get('content-type'),
    script,
    scriptStatus: js?.status ?? null,
    error: page.status === 200 ? undefined : html,
  };
} finally {
  await app.close();
}
console.log(JSON.stringify({ before, afterClient, afterKeel, afterApp, result, viaClient, dashboard }));
`;

/** TypeScript against the installed types; the @ts-expect-error lines fail if a type is `any`. */
const CONSUMER_TS = `
import {
  Engine,
  RetriesExhaustedError,
  TerminalError,
  object,
  service,
  shared,
  workflow,
  type Context,
  type KeelErrorCode,
  type ObjectContext,
  type WorkflowContext,
} from 'keel';
import { appOptionsFromEnv, startApp, type App } from 'keel/app';
import { openSqliteStore } from 'keel/sqlite';
import { openPostgresStore } from 'keel/postgres';
import { FakeClock } from 'keel/testing';
import { publish } from 'keel/webhooks';
import { bearer, env, integration, use } from 'keel/integrations';
import { stripeMock, type MockHandler } from 'keel/integrations/mocks';
import { parseIntegrations } from 'keel/integrations/dsl';
import { createGateway, type GatewayRoute } from 'keel/gateway';
import { connect, NetworkError } from 'keel/client';

const Greeter = service({
  name: 'Greeter',
  handlers: {
    greet: async (ctx: Context, name: string) => ctx.run('greet', () => 'Hello, ' + name),
  },
});
const Counter = object({
  name: 'Counter',
  handlers: {
    add: async (ctx: ObjectContext, n: number) => {
      const total = ((await ctx.get<number>('total')) ?? 0) + n;
      ctx.set('total', total);
      return total;
    },
    get: shared(async (ctx) => (await ctx.get<number>('total')) ?? 0),
  },
});
const Signup = workflow({
  name: 'Signup',
  run: async (ctx: WorkflowContext, email: string) => {
    const greeting: string = await ctx.serviceClient(Greeter).greet(email);
    return greeting;
  },
});
const github = integration({
  name: 'GitHubAPI',
  baseUrl: 'https://api.github.com',
  auth: bearer(env('GITHUB_TOKEN')),
  operations: { get_user: { method: 'GET', path: '/users/{username}' } },
});
const Profiles = service({
  name: 'Profiles',
  handlers: { show: async (ctx: Context, username: string) => use(ctx, github).get_user({ username }) },
});

export async function main(): Promise<number> {
  const engine = new Engine({
    services: [Greeter, Counter, Signup, Profiles],
    store: openSqliteStore({ path: 'keel.db' }),
    clock: new FakeClock(),
  });
  await engine.start();
  await engine.stop();
  const app: App = await startApp({ services: [Greeter], integrations: [github], ...appOptionsFromEnv() });
  await app.close();
  const pgStore = await openPostgresStore({ url: 'postgres://127.0.0.1/test' });
  await pgStore.close();
  const attemptsOf = (e: unknown): number | undefined =>
    e instanceof RetriesExhaustedError ? e.attempts : undefined;
  const code: KeelErrorCode = 'retries_exhausted';
  void [publish, attemptsOf, code];
  // The integrations' other subpaths resolve, with their types.
  const mock: MockHandler = stripeMock();
  void [mock, parseIntegrations];
  // The gateway's subpath resolves, with its types.
  const route: GatewayRoute = { method: 'GET', path: '/v1/hi', target: { service: 'Greeter', handler: 'greet' } };
  void createGateway({ env: false, routes: [route] });
  // The remote client's subpath resolves, typed by the definitions.
  const remote = connect({ url: 'http://127.0.0.1:9080' });
  const greeting: string = await remote.serviceClient<typeof Greeter>('Greeter').greet('Ada');
  const total: number = await remote.objectClient<typeof Counter>('Counter', 'c').add(1);
  void [greeting, total, NetworkError];
  // @ts-expect-error greet takes a string
  await remote.serviceClient<typeof Greeter>('Greeter').greet(42);
  // @ts-expect-error not a workflow
  remote.workflowClient<typeof Counter>('Counter', 'c');
  // @ts-expect-error not a code Keel raises
  const wrong: KeelErrorCode = 'no_such_code';
  void wrong;
  // @ts-expect-error a port is a number
  await startApp({ services: [Greeter], port: '9080' });
  // @ts-expect-error TerminalError takes a message
  new TerminalError(42);
  // @ts-expect-error not an option of openSqliteStore
  openSqliteStore({ path: 'keel.db', colour: 'blue' });
  return 0;
}
`;

describe.skipIf(!npm)('the npm package', () => {
  const tmp = tempDir('keel-package-');
  const stage = join(tmp.dir, 'stage');
  const project = join(tmp.dir, 'project');
  let packed: { filename: string; size: number; files: { path: string }[] };

  beforeAll(async () => {
    mkdirSync(stage);
    await run(
      join(ROOT, 'node_modules/.bin/tsc'),
      ['-p', 'tsconfig.build.json', '--outDir', join(stage, 'dist')],
      { cwd: ROOT },
    );
    for (const f of ['package.json', 'README.md', 'LICENSE']) {
      if (existsSync(join(ROOT, f))) copyFileSync(join(ROOT, f), join(stage, f));
    }
    // The stage laid out as the checkout (dist/ beside src/ and node_modules/) for the
    // dashboard's build script only: the links go before `npm pack`.
    const links = ['src', 'node_modules'].map((d) => join(stage, d));
    try {
      for (const l of links) symlinkSync(join(ROOT, basename(l)), l, 'junction');
      await run(NPM, ['run', 'build:dashboard', '--silent'], { cwd: stage });
    } finally {
      for (const l of links) if (existsSync(l)) unlinkSync(l);
    }
    const out = await run(
      NPM,
      ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp.dir],
      { cwd: stage },
    );
    packed = (JSON.parse(out) as (typeof packed)[])[0]!;
    console.log(`npm ${npm}: packed ${packed.filename}, ${packed.size} bytes`);

    mkdirSync(project);
    const sqlite = JSON.parse(
      readFileSync(join(ROOT, 'node_modules/better-sqlite3/package.json'), 'utf8'),
    ) as { version: string };
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({
        name: 'keel-consumer',
        private: true,
        type: 'module',
        overrides: { 'better-sqlite3': sqlite.version },
      }),
    );
    await run(
      NPM,
      [
        'install',
        join(tmp.dir, packed.filename),
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        '--ignore-scripts',
      ],
      { cwd: project },
    );
    const binary = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node';
    mkdirSync(join(project, binary, '..'), { recursive: true });
    copyFileSync(join(ROOT, binary), join(project, binary));
  }, 300_000);

  afterAll(() => tmp.cleanup());

  it('ships the build output, its types and README, and no sources or tests', () => {
    const files = packed.files.map((f) => f.path);
    for (const target of Object.values(PKG.exports)) {
      const paths = typeof target === 'string' ? [target] : [target.import, target.types];
      for (const p of paths) expect(files).toContain(p.replace(/^\.\//, ''));
    }
    expect(files).toContain('README.md');
    // The built dashboard: the admin server serves it from there (the build script is not shipped).
    expect(files).toContain('dist/src/dashboard/ui/index.html');
    expect(files.filter((f) => HASHED_JS.test(f))).not.toEqual([]);
    expect(
      files.filter((f) => /^dist\/src\/dashboard\/ui\/[^/]+-[A-Z0-9]{8}\.css$/.test(f)),
    ).not.toEqual([]);
    // Only the library's build output: not examples/ or bench/, no TypeScript sources, no tests
    // and no test suites (the store conformance suite imports vitest).
    expect(
      files.filter((f) => !/^(dist\/src\/|package\.json$|README\.md$|LICENSE)/.test(f)),
    ).toEqual([]);
    expect(files.filter((f) => /\.test\.|\/conformance|(?<!\.d)\.ts$/.test(f))).toEqual([]);
  });

  it('installs with its dependencies', () => {
    for (const dep of ['keel', ...Object.keys(PKG.dependencies)]) {
      expect(existsSync(join(project, 'node_modules', dep, 'package.json')), dep).toBe(true);
    }
  });

  it('runs an app on SQLite from plain JavaScript, `keel` alone loads no driver, and the admin port serves the shipped dashboard', async () => {
    writeFileSync(join(project, 'app.mjs'), APP_JS);
    const out = await run(process.execPath, ['app.mjs', join(project, 'keel.db')], {
      cwd: project,
      timeout: 60_000,
    });
    const line = out.trim().split('\n').at(-1)!;
    console.log(`app.mjs printed ${line}`);
    const report = JSON.parse(line) as Record<string, unknown>;
    expect(report).toEqual({
      before: [],
      afterClient: [],
      afterKeel: [],
      // The same check sees them once something does load them: it would catch `keel`.
      afterApp: ['better-sqlite3', 'pg', 'pg-pool', 'undici'],
      result: { status: 200, body: 'Hello, ADA!' },
      viaClient: 'Hello, BOB!',
      // The page names the script the tarball holds, and serves it.
      dashboard: {
        status: 200,
        type: 'text/html; charset=utf-8',
        script: packed.files.map((f) => HASHED_JS.exec(f.path)?.[1]).find((n) => n !== undefined),
        scriptStatus: 200,
      },
    });
  });

  it('type-checks TypeScript against the installed types (nodenext, no skipLibCheck)', async () => {
    writeFileSync(join(project, 'consumer.ts'), CONSUMER_TS);
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2023'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    await run(join(ROOT, 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: project });
  });
});
