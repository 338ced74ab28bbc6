import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, type EngineOptions } from '../src/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import { FakeClock, settle } from '../src/testing/index.js';

/** A temporary directory removed by `cleanup`. */
export function tempDir(prefix = 'keel-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface Harness {
  engine: Engine;
  clock: FakeClock;
  dbPath: string;
  logs: string[];
  /** Stops this engine and starts a fresh one on the same database and clock (a restart). */
  restart(): Promise<Engine>;
  close(): Promise<void>;
}

/** An engine on a fresh SQLite file with a fake clock. */
export async function harness(options: Omit<EngineOptions, 'store' | 'clock'>): Promise<Harness> {
  const { dir, cleanup } = tempDir();
  const dbPath = join(dir, 'keel.db');
  const clock = new FakeClock();
  const logs: string[] = [];
  const make = (): Engine =>
    new Engine({
      suspendAfter: '1s',
      logger: (level, message) => logs.push(`${level} ${message}`),
      ...options,
      store: openSqliteStore({ path: dbPath }),
      clock,
    });
  const h: Harness = {
    engine: make(),
    clock,
    dbPath,
    logs,
    async restart() {
      await h.engine.stop();
      h.engine = make();
      await h.engine.start();
      return h.engine;
    },
    async close() {
      await h.engine.stop().catch(() => undefined);
      cleanup();
    },
  };
  await h.engine.start();
  return h;
}

/** Waits until `cond` holds, letting I/O run; fails after `rounds` tries. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  rounds = 500,
): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    if (await cond()) return;
    await settle(1);
  }
  throw new Error(`timed out waiting for: ${what}`);
}

/** A promise with its resolve function, for steps the test releases by hand. */
export function gate<T = void>(): { promise: Promise<T>; open: (v: T) => void } {
  let open!: (v: T) => void;
  const promise = new Promise<T>((r) => (open = r));
  return { promise, open };
}

/**
 * Starts a test app (a fixture script that prints `READY <url>`) in a child process, so a test
 * can kill it with SIGKILL. Resolves once it serves.
 */
export function spawnApp(
  fixture: string,
  env: Record<string, string>,
  children: ChildProcess[],
): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture], {
    env: { ...process.env, KEEL_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /READY (\S+)/.exec(out);
      if (m) resolve({ child, url: m[1]! });
    });
    child.on('exit', (code) => reject(new Error(`app exited early with code ${code}: ${out}`)));
  });
}

/** Kills a child with SIGKILL and waits until it is gone. */
export async function killHard(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}
