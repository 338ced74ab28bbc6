/**
 * `keel start <app file>` and `keel dev <app file>`.
 *
 * An app file is an ES module in one of two forms:
 * - it **default-exports the options of `startApp`** (at least `services`), or a function
 *   (maybe async) returning them: `keel start` starts the app, with `KEEL_*` variables and its
 *   own flags on top, closes it on SIGTERM/SIGINT, and prints where it listens;
 * - or it **starts itself** (calls `startApp` at the top level, like examples/app.ts) and
 *   default-exports nothing: `keel start` imports it, with its flags turned into `KEEL_*`
 *   variables the module reads through `appOptionsFromEnv()`.
 *
 * TypeScript files load with the `tsx` package when it can be found (from the app's directory
 * or Keel's), or natively on a Node that strips types.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { watch, type FSWatcher } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import type { App, AppOptions } from '../../app.js';
import type { Definition } from '../../core/definitions.js';
import { act, leaveRunning } from '../command.js';
import type { Ctx } from '../context.js';
import { CliError, EXIT, usage } from '../errors.js';
import type { Output } from '../output.js';

interface StartOptions {
  port?: string;
  adminPort?: string;
  host?: string;
  db?: string;
  databaseUrl?: string;
  schema?: string;
}

/** The flags of `start` and `dev` as the `KEEL_*` variables apps read. */
const FLAG_ENV: Array<[keyof StartOptions, string, string, string]> = [
  ['port', '--port <port>', 'KEEL_PORT', 'ingress port (0: any free one)'],
  ['adminPort', '--admin-port <port>', 'KEEL_ADMIN_PORT', 'admin API port (0: any free one)'],
  ['host', '--host <address>', 'KEEL_HOST', 'ingress address'],
  ['db', '--db <file>', 'KEEL_DB', 'SQLite file'],
  ['databaseUrl', '--database-url <url>', 'KEEL_DATABASE_URL', 'PostgreSQL URL'],
  ['schema', '--schema <name>', 'KEEL_DATABASE_SCHEMA', 'PostgreSQL schema'],
];

type AppModule = { default?: unknown };
type StartOptionsOf = AppOptions & { services: Definition[] };

async function start(ctx: Ctx, [file]: string[], o: StartOptions): Promise<void> {
  for (const [key, , name] of FLAG_ENV) if (o[key] !== undefined) process.env[name] = o[key];
  const path = resolve(file!);
  const mod = await loadModule(path);
  let exported = mod.default;
  if (typeof exported === 'function') exported = await (exported as () => unknown)();
  if (exported === undefined) {
    // The module started itself; its servers keep the process alive.
    ctx.out.note(`keel: ${relative(process.cwd(), path)} loaded (it starts itself)`);
    if (ctx.out.json)
      ctx.out.line(JSON.stringify({ event: 'loaded', file: path, pid: process.pid }));
    leaveRunning();
    return;
  }
  let app: App;
  if (isApp(exported)) app = exported;
  else if (isStartOptions(exported)) {
    // Loaded here, not at the top: every other command starts without the engine.
    const { appOptionsFromEnv, startApp } = await import('../../app.js');
    app = await startApp({ ...exported, ...appOptionsFromEnv() });
  } else
    throw usage(
      `${file}'s default export is neither the options of startApp (an object with services), a function returning them, nor an app: see docs/cli.md`,
    );
  app.closeOnSignals();
  const { out } = ctx;
  if (out.json)
    out.line(
      JSON.stringify({
        event: 'started',
        ingress: app.ingress.url,
        admin: app.admin.url,
        pid: process.pid,
      }),
    );
  else {
    out.line(`keel: ingress on ${app.ingress.url}`);
    out.line(`keel: admin API on ${app.admin.url}`);
  }
  // The servers keep the process alive until a signal closes the app.
  leaveRunning();
}

function isApp(v: unknown): v is App {
  return typeof v === 'object' && v !== null && 'engine' in v && 'close' in v;
}

function isStartOptions(v: unknown): v is StartOptionsOf {
  return (
    typeof v === 'object' && v !== null && Array.isArray((v as { services?: unknown }).services)
  );
}

const TS = new Set(['.ts', '.mts', '.cts', '.tsx']);

/** Imports the app file, registering a TypeScript loader first when it needs one. */
async function loadModule(path: string): Promise<AppModule> {
  const url = pathToFileURL(path).href;
  if (TS.has(extname(path)) && !typescriptLoads()) await registerTsx(path);
  try {
    return (await import(url)) as AppModule;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && (err as Error).message.includes(path))
      throw usage(`no app file ${path}`);
    throw err;
  }
}

/** Whether this process already loads TypeScript (run under tsx, or a Node that strips types). */
function typescriptLoads(): boolean {
  if ((process.features as { typescript?: unknown }).typescript) return true;
  return process.execArgv.some((a) => a.includes('tsx'));
}

async function registerTsx(appPath: string): Promise<void> {
  const candidates: Array<() => Promise<unknown>> = [
    async () => {
      const resolved = createRequire(join(dirname(appPath), 'noop.js')).resolve('tsx/esm/api');
      return import(pathToFileURL(resolved).href);
    },
    // A variable specifier: tsx is optional, not a dependency of the built package.
    async () => import(['tsx', 'esm', 'api'].join('/')),
  ];
  for (const load of candidates) {
    try {
      const api = (await load()) as {
        register?: () => unknown;
        default?: { register?: () => unknown };
      };
      const register = api.register ?? api.default?.register;
      if (register) {
        register();
        return;
      }
    } catch {
      // try the next place
    }
  }
  throw usage(
    `${basename(appPath)} is TypeScript and this Node cannot load it: install tsx (npm install --save-dev tsx), ` +
      'or compile the app and give keel start its .js file',
  );
}

/** Files whose change restarts the app under `keel dev`: not the database, not dependencies. */
export function watched(file: string): boolean {
  const parts = file.split(/[\\/]/);
  if (
    parts.some((p) => p === 'node_modules' || p === 'dist' || (p.startsWith('.') && p.length > 1))
  )
    return false;
  return !/(\.db|\.sqlite3?|-wal|-shm|-journal|~)$/.test(file);
}

async function dev(ctx: Ctx, [file]: string[], o: StartOptions, cmd: Command): Promise<void> {
  const path = resolve(file!);
  const dir = dirname(path);
  const { out } = ctx;
  // The child runs this very CLI (and loader: under tsx the child is too) with `start`.
  const script = process.argv[1]!;
  const args = [...process.execArgv, script, 'start', path];
  for (const [key, flag] of FLAG_ENV)
    if (o[key] !== undefined) args.push(flag.split(' ')[0]!, o[key]);
  const globals = cmd.optsWithGlobals<{ json?: boolean }>();
  if (globals.json) args.push('--json');

  let child: ChildProcess | undefined;
  let stopping = false;
  const launch = () => {
    const c = spawn(process.execPath, args, { stdio: 'inherit', env: process.env });
    child = c;
    c.on('exit', (code, signal) => {
      if (child === c) child = undefined;
      if (!stopping && !c.killed)
        event(
          out,
          'exited',
          `the app exited (${signal ?? `code ${code}`}); waiting for a change to start it again`,
          { code, signal },
        );
    });
  };
  const stopChild = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  let timer: NodeJS.Timeout | undefined;
  let restarting = Promise.resolve();
  const changed: string[] = [];
  let watcher: FSWatcher;
  try {
    watcher = watch(dir, { recursive: true }, (_type, name) => {
      if (name === null || !watched(name.toString())) return;
      changed.push(name.toString());
      clearTimeout(timer);
      // Editors write a file in several steps: one restart for a burst of changes.
      timer = setTimeout(() => {
        const files = [...new Set(changed.splice(0))];
        restarting = restarting.then(async () => {
          event(out, 'restarting', `${files.join(', ')} changed: restarting`, { files });
          await stopChild();
          if (!stopping) launch();
        });
      }, 200);
    });
  } catch (err) {
    throw new CliError(
      'watch_failed',
      `cannot watch ${dir}: ${(err as Error).message}`,
      EXIT.failed,
    );
  }
  event(out, 'watching', `watching ${dir} (the database is kept across restarts)`, { dir });
  launch();
  await new Promise<void>((done) => {
    const onSignal = () => {
      if (stopping) process.exit(130);
      stopping = true;
      watcher.close();
      clearTimeout(timer);
      void restarting.then(stopChild).then(done);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** A line about what `dev` does: for humans on stderr, for scripts as a JSON line on stdout. */
function event(out: Output, name: string, text: string, data: Record<string, unknown>): void {
  if (out.json) out.line(JSON.stringify({ event: name, ...data }));
  else process.stderr.write(`keel dev: ${text}\n`);
}

export function registerStart(program: Command): void {
  const startCmd = program
    .command('start <app>')
    .description(
      'run an app file: a module default-exporting the options of startApp (or a function returning them), or one that starts itself',
    );
  const devCmd = program
    .command('dev <app>')
    .description(
      'run an app file and restart it when a file under its directory changes, keeping the database',
    );
  for (const c of [startCmd, devCmd])
    for (const [, flag, name, description] of FLAG_ENV) c.option(flag, `${description} (${name})`);
  startCmd.action(act<StartOptions>(start));
  devCmd.action(act<StartOptions>(dev));
}
