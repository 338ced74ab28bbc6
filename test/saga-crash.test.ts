import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killHard, spawnApp, tempDir } from './helpers.js';

/**
 * A saga whose third step fails terminally, killed with SIGKILL while it compensates: after a
 * restart it resumes compensating, and each compensation that finished before the crash does
 * not run again.
 */
const tmp = tempDir('keel-saga-crash-');
const db = join(tmp.dir, 'keel.db');
const recordFile = join(tmp.dir, 'saga.log');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  tmp.cleanup();
});

const startApp = (): Promise<{ child: ChildProcess; url: string }> =>
  spawnApp(
    join(import.meta.dirname, 'fixtures/saga-app.ts'),
    { KEEL_DB: db, CRASH_LOG: recordFile },
    children,
  );

const lines = (): string[] =>
  existsSync(recordFile)
    ? readFileSync(recordFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.slice(l.indexOf(' ') + 1))
    : [];

describe('saga compensation across kill -9', () => {
  it('resumes compensating after a crash, in reverse order, without repeating a finished compensation', async () => {
    const first = await startApp();
    const sent = await fetch(`${first.url}/CrashSaga/s1/run/send`, { method: 'POST' });
    expect(sent.status).toBe(202);
    const { invocationId } = (await sent.json()) as { invocationId: string };
    const deadline = Date.now() + 10_000;
    while (!lines().includes('start undo charge') && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 2));
    await killHard(first.child);
    expect(lines()).toContain('end undo reserve');
    expect(lines()).not.toContain('end undo charge'); // killed in the middle of compensating

    const second = await startApp();
    const res = await fetch(`${second.url}/invocations/${invocationId}/attach`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      status: 'compensated',
      compensated: ['reserve', 'charge'],
      error: { code: 'no_carrier' },
    });
    const all = lines();
    const count = (l: string): number => all.filter((x) => x === l).length;
    expect(count('charge')).toBe(1);
    expect(count('reserve')).toBe(1);
    expect(count('ship')).toBe(1);
    // Finished before the crash: exactly once. Interrupted by it: run again, finished once.
    expect(count('start undo reserve')).toBe(1);
    expect(count('end undo reserve')).toBe(1);
    expect(count('start undo charge')).toBe(2);
    expect(count('end undo charge')).toBe(1);
    // Reverse order: reserve is undone before charge.
    expect(all.indexOf('end undo reserve')).toBeLessThan(all.indexOf('start undo charge'));
    const info = (await (await fetch(`${second.url}/invocations/${invocationId}`)).json()) as {
      outcome?: string;
    };
    expect(info.outcome).toBe('compensated');
    second.child.kill('SIGTERM');
  }, 60_000);
});
