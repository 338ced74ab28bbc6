import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, type App } from '../../../src/app.js';
import { definitions, schedules } from '../../../examples/flow-control/index.js';
import { tempDir, until } from '../../helpers.js';

/**
 * examples/flow-control/README.md's commands, run as written (bash, curl) against the example's
 * definitions and schedule on a real app (ingress and admin API on free ports): the queue's
 * figures, globex served before acme's batch ends, one debounced rebuild with the last text, and
 * the schedule's view and trigger.
 */
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const tmp = tempDir('keel-flow-example-');
let app: App;

beforeAll(async () => {
  app = await startApp({
    services: definitions,
    schedules,
    db: join(tmp.dir, 'keel.db'),
    port: 0,
    adminPort: 0,
    logger: () => undefined,
  });
});

afterAll(async () => {
  await app?.close();
  tmp.cleanup();
});

function blocks(): string[] {
  const text = readFileSync(join(REPO, 'examples/flow-control/README.md'), 'utf8');
  return [...text.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

function run(script: string): Promise<string> {
  const body = `set -eu\n${script
    .replaceAll('http://localhost:9080', app.ingress.url)
    .replaceAll('http://localhost:9070', app.admin.url)}`;
  return new Promise((resolve, reject) => {
    execFile('bash', ['-c', body], { cwd: REPO, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

async function post<T>(path: string): Promise<T> {
  const res = await fetch(`${app.ingress.url}${path}`, { method: 'POST' });
  return (await res.json()) as T;
}

const lines = (out: string): unknown[] =>
  out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as unknown);

describe('examples/flow-control/README.md', () => {
  it('has the three blocks the tests below run', () => {
    expect(blocks()).toHaveLength(3);
  });

  it('queues the mail: two at once, and globex is served while acme’s batch goes on', async () => {
    const out = lines(await run(blocks()[0]!));
    const [ops, ceo, queue, globex, acme] = out as [
      { status: string },
      { status: string },
      { running: number; waiting: number; keys: number; limits: unknown },
      string[],
      string[],
    ];
    // acme's batch waits (one at a time): globex's mail is filed behind it, not started.
    expect(ops.status).toBe('queued');
    expect(ceo.status).toBe('queued');
    expect(queue.running).toBeGreaterThanOrEqual(1);
    expect(queue.running).toBeLessThanOrEqual(2);
    expect(queue.waiting).toBeGreaterThan(0);
    expect(queue.limits).toEqual({
      concurrency: 2,
      perKey: { concurrency: 1, rateLimit: { limit: 30, periodMs: 60_000 } },
    });
    expect(globex.length).toBeLessThanOrEqual(2);
    expect(acme.length).toBeLessThan(20);
    // globex's two finish in the second slot while acme's twenty (500 ms each, one at a time,
    // 10 s in all) are still going: acme has not finished when globex has.
    let seen: string[] = [];
    await until(async () => {
      seen = await post<string[]>('/Outbox/globex/list');
      return seen.length === 2;
    }, 'globex sent both');
    expect([...seen].sort()).toEqual(['ceo@globex.test', 'ops@globex.test']);
    expect((await post<string[]>('/Outbox/acme/list')).length).toBeLessThan(20);
  });

  it('debounces three edits into one rebuild with the last text', async () => {
    const out = lines(await run(blocks()[1]!));
    const sends = out.slice(0, 3) as Array<{ invocationId: string; existing: boolean }>;
    expect(new Set(sends.map((s) => s.invocationId)).size).toBe(1);
    expect(sends.map((s) => s.existing)).toEqual([false, true, true]);
    expect(out[3]).toEqual({ text: 'the final text of the document', words: 6, rebuilds: 1 });
  });

  it('shows the nightly schedule and triggers it', async () => {
    const [view, triggered] = lines(await run(blocks()[2]!)) as [
      { name: string; cron: string; timezone: string; nextFireAt: string },
      { invocationId: string },
    ];
    expect(view).toMatchObject({
      name: 'nightly-digest',
      cron: '0 2 * * *',
      timezone: 'Europe/Berlin',
    });
    // 02:00 in Berlin is 00:00 or 01:00 UTC (summer or winter time).
    expect(view.nextFireAt).toMatch(/T0[01]:00:00\.000Z$/);
    expect(triggered.invocationId).toMatch(/^inv_/);
  });
});
