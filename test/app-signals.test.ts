import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { spawnApp, tempDir } from './helpers.js';

// app.closeOnSignals() in a real app process, stopped by real signals.

const FIXTURE = join(import.meta.dirname, 'fixtures/signals-app.ts');
const children: ChildProcess[] = [];
const dirs: Array<{ cleanup: () => void }> = [];

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const dir of dirs) dir.cleanup();
});

function dbPath(): string {
  const dir = tempDir('keel-signals-');
  dirs.push(dir);
  return join(dir.dir, 'keel.db');
}

/** Everything the child writes on stdout from now on, and a wait for a line in it. */
function output(child: ChildProcess): {
  text: () => string;
  waitFor: (s: string) => Promise<void>;
} {
  let text = '';
  const waiters: Array<{ s: string; resolve: () => void }> = [];
  child.stdout!.on('data', (d: Buffer) => {
    text += d.toString();
    for (const w of waiters.splice(0)) {
      if (text.includes(w.s)) w.resolve();
      else waiters.push(w);
    }
  });
  return {
    text: () => text,
    waitFor: (s) =>
      text.includes(s) ? Promise.resolve() : new Promise((resolve) => waiters.push({ s, resolve })),
  };
}

const exitOf = (child: ChildProcess): Promise<{ code: number | null; signal: string | null }> =>
  new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

describe('app.closeOnSignals', () => {
  it('closes the app on SIGTERM and exits 0', async () => {
    const { child, url } = await spawnApp(FIXTURE, { KEEL_DB: dbPath() }, children);
    const out = output(child);
    expect((await fetch(`${url}/health`)).status).toBe(200);
    const exited = exitOf(child);
    child.kill('SIGTERM');
    expect(await exited).toEqual({ code: 0, signal: null });
    expect(out.text()).toContain('app: SIGTERM: closing');
  });

  it('exits at once on a second signal while the close waits for a request', async () => {
    const { child, url } = await spawnApp(FIXTURE, { KEEL_DB: dbPath() }, children);
    const out = output(child);
    // A request the close has to wait for (its grace is 5 s).
    void fetch(`${url}/Hold/forever`, { method: 'POST' }).catch(() => undefined);
    await out.waitFor('HELD');
    const exited = exitOf(child);
    child.kill('SIGINT');
    await out.waitFor('app: SIGINT: closing');
    child.kill('SIGINT');
    // 128 + 2: the second SIGINT, not the end of the close (0) nor the default action.
    expect(await exited).toEqual({ code: 130, signal: null });
    expect(out.text()).toContain('app: SIGINT again');
  });
});
