import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine, type EngineOptions } from '../src/index.js';
import { openSqliteStore } from '../src/store/sqlite/index.js';
import type { OpResult, Store, WriteOp } from '../src/store/types.js';
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
      // A restart here stands for a crash unless a test asks for a clean stop's grace: most
      // restart with a body held forever, which the default grace would wait 5 s for.
      stopGrace: 0,
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

/**
 * Waits until `cond` holds, letting I/O run; fails after `rounds` tries, but never before
 * `UNTIL_MIN_MS` have passed: on a loaded machine (the suite shares two cores with long runs)
 * the same work takes many more rounds. A deadline to report a hang, not a speed assertion.
 */
export async function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  rounds = 500,
): Promise<void> {
  const started = Date.now();
  for (let i = 0; ; i++) {
    if (await cond()) return;
    if (i >= rounds && Date.now() - started >= UNTIL_MIN_MS) break;
    await settle(1);
  }
  throw new Error(`timed out waiting for: ${what}`);
}

const UNTIL_MIN_MS = 15_000;

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

/** A real store whose writes a test can hold back, to crash between an answer and a commit. */
export interface HoldingStore extends Store {
  /**
   * Holds back the next write for which `which(ops)` is true (default: any) and every write
   * after it, as a store commits writes in order.
   */
  hold(which?: (ops: WriteOp[]) => boolean): void;
  /** Sends the held writes to the store, in order, and stops holding. */
  release(): void;
  /** Fails the held writes with `error` and stops holding. */
  fail(error: Error): void;
  /** Fails the first held write with `error` alone (as a store fails one call), sends the rest. */
  failFirst(error: Error): void;
  /** Writes held back right now. */
  readonly held: number;
}

/**
 * Wraps a real store so that a test can hold its writes back: held writes have not reached the
 * database, so `crash(engine)` loses them exactly as `kill -9` loses a write still queued for
 * its group commit. Everything else goes straight to the wrapped store.
 */
export function holdingStore(store: Store): HoldingStore {
  let which: ((ops: WriteOp[]) => boolean) | undefined;
  let queue: Array<{
    ops: WriteOp[];
    resolve: (r: OpResult[]) => void;
    reject: (e: unknown) => void;
  }> = [];
  const drain = (): typeof queue => {
    which = undefined;
    const q = queue;
    queue = [];
    return q;
  };
  const extra = {
    write(ops: WriteOp[]): Promise<OpResult[]> {
      if (queue.length === 0 && !which?.(ops)) return store.write(ops);
      return new Promise((resolve, reject) => queue.push({ ops, resolve, reject }));
    },
    hold(w: (ops: WriteOp[]) => boolean = () => true) {
      which = w;
    },
    release() {
      for (const q of drain()) store.write(q.ops).then(q.resolve, q.reject);
    },
    fail(error: Error) {
      for (const q of drain()) q.reject(error);
    },
    failFirst(error: Error) {
      const [first, ...rest] = drain();
      first?.reject(error);
      for (const q of rest) store.write(q.ops).then(q.resolve, q.reject);
    },
    get held() {
      return queue.length;
    },
  };
  return new Proxy(store, {
    get(target, prop) {
      if (prop in extra) return Reflect.get(extra, prop) as unknown;
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as HoldingStore;
}

/**
 * A store whose `getInvocation` of the id `which()` names waits, after reading, for `hold()`:
 * the row read is taken, the caller does not see it yet.
 */
export function pausingReads(
  real: Store,
  which: () => string | undefined,
  hold: () => Promise<unknown>,
): Store {
  return new Proxy(real, {
    get(target, prop) {
      if (prop === 'getInvocation')
        return async (id: string) => {
          const row = await target.getInvocation(id);
          if (id === which()) await hold();
          return row;
        };
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
