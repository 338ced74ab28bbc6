import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { spawnApp } from './helpers.js';
import { tcpProxy, type TcpProxy } from './tcp-proxy.js';

/**
 * A process (re)started while PostgreSQL cannot be reached waits for it instead of exiting, and
 * serves once it is back. The database is made unreachable by a TCP proxy the test stops and
 * starts, so the server the other tests share keeps running.
 */
const url = inject('postgresUrl');
const schema = `keel_outage_s_${randomBytes(4).toString('hex')}`;
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

describe('an app started while PostgreSQL is unreachable', () => {
  it('waits for it, with no port bound, then serves', async () => {
    const server = new URL(url);
    proxy = await tcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
    await proxy.stop(); // connections to its port are refused from now on
    const through = new URL(url);
    through.hostname = '127.0.0.1';
    through.port = String(proxy.port);
    const started = spawnApp(
      join(import.meta.dirname, 'fixtures/outage-app.ts'),
      {
        KEEL_DATABASE_URL: through.toString(),
        KEEL_DATABASE_SCHEMA: schema,
        ...(process.env.KEEL_TEST_LOG ? { KEEL_TEST_LOG: '1' } : {}),
      },
      children,
    );
    const child = children[children.length - 1]!;
    let outcome = 'waiting';
    started.then(
      () => (outcome = 'serving'),
      (err: Error) => (outcome = err.message),
    );

    // Several failed attempts (the first pauses are 0.25, 0.5, 1 and 2 s).
    await pause(3000);
    expect(outcome).toBe('waiting');
    expect(child.exitCode).toBeNull();

    await proxy.start();
    const app = await started;
    expect(outcome).toBe('serving');
    const res = await fetch(`${app.url}/Counter/c/add`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '5',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toBe(5);
    expect(child.exitCode).toBeNull();
  }, 60_000);
});
