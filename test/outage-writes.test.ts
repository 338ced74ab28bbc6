import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { spawnApp } from './helpers.js';
import { tcpProxy, type TcpProxy } from './tcp-proxy.js';

/**
 * PostgreSQL goes away again and again while an app has many writes of every kind in flight
 * (steps, state writes and sends nothing awaits, timers, awakeables, promises, calls, suspends):
 * each failed write must fail or retry its attempt, never end the process with an unhandled
 * rejection, and everything accepted finishes once the database is back. The outages are a TCP
 * proxy the test stops and starts, so the server the other tests share keeps running.
 */
const url = inject('postgresUrl');
const schema = `keel_outage_w_${randomBytes(4).toString('hex')}`;
const children: ChildProcess[] = [];
let proxy: TcpProxy | undefined;

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await proxy?.close();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function post(base: string, path: string, body: unknown): Promise<Response | undefined> {
  try {
    return await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(20_000),
    });
  } catch {
    return undefined; // unknown fate: the invocation may or may not exist
  }
}

/**
 * [work before the cut, length of the cut] in ms. A cut of 0 resets every connection and
 * accepts new ones at once (a failover, a killed backend); the others refuse connections too.
 */
const CUTS: Array<[number, number]> = [
  [400, 0],
  [250, 300],
  [150, 0],
  [300, 1200],
  [200, 0],
  [100, 0],
  [350, 600],
  [250, 0],
  [200, 2000],
  [300, 0],
  [150, 400],
  [250, 0],
];

describe('writes in flight when PostgreSQL goes away', () => {
  it('end no process: every failed write fails its attempt, and all accepted work finishes', async () => {
    const server = new URL(url);
    proxy = await tcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
    const through = new URL(url);
    through.hostname = '127.0.0.1';
    through.port = String(proxy.port);
    const app = await spawnApp(
      join(import.meta.dirname, 'fixtures/outage-app.ts'),
      {
        KEEL_DATABASE_URL: through.toString(),
        KEEL_DATABASE_SCHEMA: schema,
        KEEL_LEASE: '3s',
        // Waiting invocations suspend quickly: more writes (suspends, resumes) in flight.
        KEEL_SUSPEND_AFTER: '20ms',
        ...(process.env.KEEL_TEST_LOG ? { KEEL_TEST_LOG: '1' } : {}),
      },
      children,
    );
    const exits: string[] = [];
    app.child.on('exit', (code, signal) => exits.push(`exited: ${code ?? signal}`));

    // A steady stream of workflows, before, during and after each cut.
    const accepted: Array<{ id: string; n: number }> = [];
    let submitting = true;
    let next = 0;
    const submit = async (): Promise<void> => {
      while (submitting) {
        const n = next++;
        const res = await post(app.url, `/Mix/m-${n}/run/send`, { n });
        if (res?.status === 202) {
          const body = (await res.json()) as { invocationId: string };
          accepted.push({ id: body.invocationId, n });
        } else await res?.body?.cancel();
        await pause(10);
      }
    };
    const submitters = [submit(), submit(), submit()];
    for (const [before, down] of CUTS) {
      await pause(before);
      await proxy.stop();
      if (down > 0) await pause(down);
      await proxy.start();
    }
    // Enough accepted work to check, however slow the machine was meanwhile.
    for (let i = 0; i < 200 && accepted.length < 30; i++) await pause(100);
    submitting = false;
    await Promise.all(submitters);
    expect(exits, 'the app exited during the outages').toEqual([]);
    expect(accepted.length).toBeGreaterThanOrEqual(30);

    // Every workflow in the store (accepted, or of unknown fate) finishes; read directly.
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    let unfinished: unknown[] = [];
    let mixes = 0;
    try {
      for (let i = 0; i < 600; i++) {
        const { rows } = await db.query<{ id: string; service: string; status: string }>(
          `SELECT id, service, handler, status, owner, attempt, modified_at, error FROM ${schema}.invocations WHERE status <> 'completed'`,
        );
        unfinished = rows;
        if (rows.length === 0) break;
        await pause(100);
      }
      if (unfinished.length > 0) {
        app.child.kill('SIGUSR2');
        await pause(200);
        // Who owns what, to tell a stuck owner from a stuck row when this fails.
        const { rows } = await db.query(`SELECT * FROM ${schema}.processes`);
        unfinished.push({ processes: rows, now: Date.now() });
      }
      const { rows } = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM ${schema}.invocations WHERE service = 'Mix'`,
      );
      mixes = Number(rows[0]!.n);
    } finally {
      await db.end();
    }
    expect(unfinished, JSON.stringify(unfinished)).toEqual([]);

    for (const { id, n } of accepted) {
      const res = await fetch(`${app.url}/invocations/${id}/attach`);
      expect(res.status).toBe(200);
      expect(await res.json()).toBe(`${n}:abc:kept:${n * 2}`);
    }
    // Each workflow sent one add to a `now-` and one to a `later-` counter: exactly once.
    const total = async (keys: string[]): Promise<number> => {
      let sum = 0;
      for (const key of keys) {
        const res = await post(app.url, `/Counter/${key}/get`, null);
        sum += (await res!.json()) as number;
      }
      return sum;
    };
    expect(await total(['now-0', 'now-1', 'now-2'])).toBe(mixes);
    expect(await total(['later-0', 'later-1'])).toBe(mixes);
    expect(exits).toEqual([]);
  }, 180_000);
});
