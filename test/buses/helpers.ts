import net from 'node:net';
import { join } from 'node:path';
import { Engine, type Definition, type EngineExtension } from '../../src/index.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { tempDir } from '../helpers.js';

/** Whether a TCP server answers at the URL's host and port (the broker is up). */
export async function reachable(url: string, defaultPort: number): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect(Number(u.port || defaultPort), u.hostname);
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(2000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Polls `cond` until it holds; throws after `ms` with `what` (a deadline, not a timing assertion). */
export async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 30_000) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Engines on one SQLite file: `make()` opens a new engine on it (after a crash, say). */
export function sqliteEngines(
  services: Definition[],
  extensions: () => EngineExtension[],
): { make: () => Promise<Engine>; cleanup: () => void } {
  const { dir, cleanup } = tempDir('keel-buses-');
  const path = join(dir, 'keel.db');
  return {
    async make() {
      const engine = new Engine({
        services,
        store: openSqliteStore({ path }),
        extensions: extensions(),
        logger: process.env.KEEL_TEST_DEBUG ? (l, m, f) => console.log(l, m, f) : () => undefined,
      });
      await engine.start();
      return engine;
    },
    cleanup,
  };
}

export const runId = (): string => `keel_test_${process.pid}_${Date.now().toString(36)}`;
