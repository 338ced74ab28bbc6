import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { killHard, spawnApp, tempDir } from './helpers.js';

/**
 * Three processes share one PostgreSQL schema; one of them is killed with SIGKILL while
 * workflows, sleeps and object increments are in flight. The others take over its invocations
 * once its lease expires: everything accepted completes, no completed step runs twice, counter
 * totals are exact, and no two processes ever ran one object key at the same time.
 */
const url = inject('postgresUrl');
const schema = `keel_failover_${randomBytes(4).toString('hex')}`;
const tmp = tempDir('keel-failover-');
const recordFile = join(tmp.dir, 'executions.log');
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
  tmp.cleanup();
});

const start = (): Promise<{ child: ChildProcess; url: string }> =>
  spawnApp(
    join(import.meta.dirname, 'fixtures/cluster-app.ts'),
    {
      KEEL_DATABASE_URL: url,
      KEEL_DATABASE_SCHEMA: schema,
      KEEL_LEASE: '2s',
      CRASH_LOG: recordFile,
    },
    children,
  );

interface Rec {
  pid: string;
  at: number;
  what: string;
  key: string;
  name: string;
}
const records = (): Rec[] =>
  existsSync(recordFile)
    ? readFileSync(recordFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const [pid, at, what, key, name] = l.split(' ');
          return { pid: pid!, at: Number(at), what: what!, key: key!, name: name! };
        })
    : [];

async function post(
  base: string,
  path: string,
  body: unknown,
): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

describe('failover across processes (PostgreSQL)', () => {
  it('finishes the work of a killed process exactly once, with keys never run concurrently', async () => {
    const apps = [await start(), await start(), await start()];
    const workflows = Array.from({ length: 24 }, (_, i) => `wf-${i}`);
    const adds: Record<string, number> = { a: 0, b: 0, c: 0 };
    const accepted = await Promise.all([
      ...workflows.map((k, i) =>
        post(apps[i % 3]!.url, `/Flow/${k}/run/send`, { sleepMs: 100 + 60 * i }),
      ),
      ...Array.from({ length: 90 }, (_, i) => {
        const key = ['a', 'b', 'c'][i % 3]!;
        adds[key]!++;
        return post(apps[(i >> 1) % 3]!.url, `/Counter/${key}/add/send`, 1);
      }),
    ]);
    for (const r of accepted) expect(r.status).toBe(202);
    const ids = accepted.map((r) => r.json.invocationId as string);

    // Kill one process while its work is in flight.
    const victim = apps[1]!;
    const deadline = Date.now() + 15_000;
    while (records().filter((r) => r.name === 's4').length < 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    await killHard(victim.child);
    const deadPid = String(victim.child.pid);
    const killedAt = performance.timeOrigin + performance.now();
    const survivors = [apps[0]!, apps[2]!];

    // Every accepted invocation completes, answered by whichever process is asked.
    const results = await Promise.all(
      ids.map(async (id, i) => {
        const res = await fetch(`${survivors[i % 2]!.url}/invocations/${id}/attach`);
        return { status: res.status, body: await res.json() };
      }),
    );
    for (const r of results) expect(r.status).toBe(200);
    for (const r of results.slice(0, workflows.length)) expect(r.body).toBe('s1,s2,s3,s4');

    for (const [key, n] of Object.entries(adds)) {
      expect((await post(survivors[0]!.url, `/Counter/${key}/get`, null)).json).toBe(n);
    }

    const all = records();
    // Steps: a step the killed process followed with another one was durable: it ran once.
    for (const key of workflows) {
      const mine = all.filter((r) => r.what === 'step' && r.key === key);
      for (const name of ['s1', 's2', 's3', 's4'])
        expect(mine.some((r) => r.name === name)).toBe(true);
      const byVictim = mine.filter((r) => r.pid === deadPid).map((r) => r.name);
      for (const name of ['s1', 's2', 's3', 's4']) {
        const runs = mine.filter((r) => r.name === name).length;
        if (name === byVictim.at(-1)) expect(runs).toBeLessThanOrEqual(2);
        else expect(runs, `${key} ${name}`).toBe(1);
      }
    }

    // Keys: no two executions of one object key overlapped, across all processes.
    for (const key of Object.keys(adds)) {
      const events = all.filter((r) => (r.what === 'enter' || r.what === 'exit') && r.key === key);
      const intervals = new Map<string, { from: number; to: number }>();
      for (const e of events) {
        const id = `${e.pid}:${e.name}`;
        const iv = intervals.get(id) ?? { from: e.at, to: killedAt };
        if (e.what === 'enter') iv.from = e.at;
        else iv.to = e.at;
        intervals.set(id, iv);
      }
      const sorted = [...intervals.entries()]
        .map(([id, iv]) => ({ id, ...iv }))
        .sort((x, y) => x.from - y.from);
      for (let i = 1; i < sorted.length; i++) {
        expect(
          sorted[i]!.from,
          `key ${key}: ${sorted[i]!.id} started before ${sorted[i - 1]!.id} ended`,
        ).toBeGreaterThanOrEqual(sorted[i - 1]!.to);
      }
    }
    const takenOver = all.filter((r) => r.at > killedAt && r.what === 'step').length;
    console.log(
      `failover: ${takenOver} step bodies ran after the kill; ${all.filter((r) => r.pid === deadPid).length} ran in the killed process`,
    );
  }, 90_000);
});
