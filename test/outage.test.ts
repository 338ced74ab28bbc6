import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { spawnApp, tempDir } from './helpers.js';
import { tcpProxy, type TcpProxy } from './tcp-proxy.js';

/**
 * PostgreSQL becomes unreachable for a few seconds (longer than the lease) while two processes
 * share it: no process exits on its own, and once it is back every accepted invocation finishes
 * and new requests are served. The outage is a TCP proxy stopped and started by the test, so
 * the server the other tests share keeps running.
 */
const url = inject('postgresUrl');
const schema = `keel_outage_${randomBytes(4).toString('hex')}`;
const tmp = tempDir('keel-outage-');
const children: ChildProcess[] = [];
let proxy: TcpProxy | undefined;

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await proxy?.close();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
  tmp.cleanup();
});

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

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

describe('a PostgreSQL outage', () => {
  it('ends no process: after it, every accepted invocation finishes and requests are served', async () => {
    const server = new URL(url);
    proxy = await tcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
    const through = new URL(url);
    through.hostname = '127.0.0.1';
    through.port = String(proxy.port);
    const start = () =>
      spawnApp(
        join(import.meta.dirname, 'fixtures/cluster-app.ts'),
        {
          KEEL_DATABASE_URL: through.toString(),
          KEEL_DATABASE_SCHEMA: schema,
          KEEL_LEASE: '2s',
          CRASH_LOG: join(tmp.dir, 'executions.log'),
          // KEEL_TEST_LOG=1 shows the apps' logs.
          ...(process.env.KEEL_TEST_LOG ? { KEEL_TEST_LOG: '1' } : {}),
        },
        children,
      );
    const apps = [await start(), await start()];
    const exits: string[] = [];
    for (const app of apps)
      app.child.on('exit', (code, signal) => exits.push(`${app.child.pid}: ${code ?? signal}`));

    // Work in flight across the outage: sleeps that end during it, and increments.
    const accepted = await Promise.all([
      ...Array.from({ length: 8 }, (_, i) =>
        post(apps[i % 2]!.url, `/Flow/o-${i}/run/send`, { sleepMs: 300 + 200 * i }),
      ),
      ...Array.from({ length: 20 }, (_, i) => post(apps[i % 2]!.url, `/Counter/c/add/send`, 1)),
    ]);
    for (const r of accepted) expect(r.status).toBe(202);
    await pause(100);

    // Every connection cut, and none possible, for longer than the lease (2 s).
    await proxy.stop();
    await pause(3000);
    expect(exits, 'a process exited during the outage').toEqual([]);
    await proxy.start();

    // Everything accepted finishes (read directly, not through the apps).
    const ids = accepted.map((r) => r.json.invocationId as string);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    let unfinished: unknown[] = [];
    try {
      for (let i = 0; i < 300; i++) {
        const { rows } = await admin.query(
          `SELECT id, handler, key, status, owner, (SELECT array_agg(id) FROM ${schema}.processes) AS live FROM ${schema}.invocations WHERE id = ANY($1) AND status NOT IN ('completed', 'failed')`,
          [ids],
        );
        unfinished = rows;
        if (rows.length === 0) break;
        await pause(100);
      }
    } finally {
      await admin.end();
    }
    expect(unfinished).toEqual([]);
    const results = await Promise.all(
      accepted.map(async (r, i) => {
        const res = await fetch(
          `${apps[i % 2]!.url}/invocations/${r.json.invocationId as string}/attach`,
        );
        return { status: res.status, body: await res.json() };
      }),
    );
    for (const r of results) expect(r.status).toBe(200);
    for (const r of results.slice(0, 8)) expect(r.body).toBe('s1,s2,s3,s4');
    expect((await post(apps[0]!.url, '/Counter/c/get', null)).json).toBe(20);
    // Both serve new requests, and nothing ended them meanwhile.
    for (const app of apps) expect((await post(app.url, '/Counter/d/add', 1)).status).toBe(200);
    expect(exits).toEqual([]);
  }, 90_000);
});
