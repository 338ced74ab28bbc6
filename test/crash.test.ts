import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { killHard, spawnApp, tempDir } from './helpers.js';

/**
 * kill -9 in the middle of multi-step workflows, sleeps and object increments, then restart:
 * every accepted invocation completes, no step that completed before the crash runs again, and
 * counter totals equal the acknowledged increments.
 */
const tmp = tempDir('keel-crash-');
const db = join(tmp.dir, 'keel.db');
const stepLog = join(tmp.dir, 'steps.log');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  tmp.cleanup();
});

const startApp = (): Promise<{ child: ChildProcess; url: string }> =>
  spawnApp(
    join(import.meta.dirname, 'fixtures/crash-app.ts'),
    { KEEL_DB: db, CRASH_LOG: stepLog },
    children,
  );

async function post(url: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

function steps(): Array<{ pid: string; key: string; step: string }> {
  if (!existsSync(stepLog)) return [];
  return readFileSync(stepLog, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [pid, key, step] = l.split(' ');
      return { pid: pid!, key: key!, step: step! };
    });
}

describe('crash and recovery (kill -9)', () => {
  it('finishes every accepted invocation exactly once after a kill -9', async () => {
    const first = await startApp();
    const workflows = Array.from({ length: 30 }, (_, i) => `wf-${i}`);
    const adds: Record<string, number> = { a: 0, b: 0, c: 0 };
    const ids: string[] = [];

    // Accept everything first (202 = durably accepted), then crash while it executes.
    const accepted = await Promise.all([
      // The second half sleeps 3 s more, so a loaded machine that polls late still crashes
      // before they finish (the test needs work cut off by the kill).
      ...workflows.map((k, i) =>
        post(`${first.url}/CrashFlow/${k}/run/send`, { sleepMs: 25 * i + (i >= 15 ? 3000 : 0) }),
      ),
      ...Array.from({ length: 150 }, (_, i) => {
        const key = ['a', 'b', 'c'][i % 3]!;
        adds[key]!++;
        return post(`${first.url}/Counter/${key}/add/send`, 1);
      }),
    ]);
    for (const r of accepted) {
      expect(r.status).toBe(202);
      ids.push(r.json.invocationId as string);
    }
    // Crash once a few workflows have finished: the rest are asleep or between steps.
    const deadline = Date.now() + 10_000;
    while (steps().filter((s) => s.step === 's4').length < 5 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 2));
    await killHard(first.child);
    const firstPid = String(first.child.pid);
    const beforeCrash = steps();
    // The crash must have interrupted work, or this test proves nothing.
    const finishedBefore = new Set(beforeCrash.filter((s) => s.step === 's4').map((s) => s.key));
    expect(finishedBefore.size).toBeLessThan(workflows.length);
    expect(finishedBefore.size).toBeGreaterThan(0);

    const second = await startApp();
    const results = await Promise.all(
      ids.map((id) =>
        fetch(`${second.url}/invocations/${id}/attach`).then(async (r) => ({
          status: r.status,
          body: await r.json(),
        })),
      ),
    );
    for (const r of results) expect(r.status).toBe(200);
    const wfResults = results.slice(0, workflows.length).map((r) => r.body);
    expect(wfResults.every((b) => b === 's1,s2,s3,s4')).toBe(true);

    // Counter totals equal the number of acknowledged adds, per key.
    for (const [key, n] of Object.entries(adds)) {
      const total = await post(`${second.url}/Counter/${key}/get`, null);
      expect(total.json).toBe(n);
    }

    // Steps: every step body ran at least once; a step that a later step followed before the
    // crash (so its result had been durably journaled) ran exactly once.
    const all = steps();
    const rerun = all.length - workflows.length * 4;
    console.log(
      `crash test: ${finishedBefore.size}/${workflows.length} workflows finished before the kill, ${beforeCrash.length} step bodies ran before it, ${rerun} re-ran after it`,
    );
    for (const key of workflows) {
      const mine = all.filter((s) => s.key === key);
      for (const name of ['s1', 's2', 's3', 's4'])
        expect(mine.some((s) => s.step === name)).toBe(true);
      const startedBefore = mine.filter((s) => s.pid === firstPid).map((s) => s.step);
      const lastBefore = startedBefore.at(-1);
      for (const name of startedBefore) {
        if (name === lastBefore) continue; // may have been interrupted before its result was durable
        expect(
          mine.filter((s) => s.step === name),
          `${key} ${name}`,
        ).toHaveLength(1);
      }
      // Nothing runs twice in the process that never crashed.
      for (const name of ['s1', 's2', 's3', 's4']) {
        expect(
          mine.filter((s) => s.step === name && s.pid !== firstPid).length,
        ).toBeLessThanOrEqual(1);
      }
    }
    second.child.kill('SIGTERM');
  }, 60_000);
});
