/**
 * Issue 11: a write whose connection broke while its batch waited for a lock on the server was
 * reported failed (`store_unavailable`, fate unknown), but its server process went on waiting
 * and committed it later, after writes the store sent since through new connections: an older
 * write overwrote a newer one (a heartbeat shortened a lease; a journal entry could be
 * replaced). The store now ends that server process before it sends the next batch.
 *
 * The broken connection is a TCP proxy that cuts every connection (as a network failure or
 * failover does) while the server's process of the batch waits for a row lock the test holds.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { openPostgresStore } from '../src/store/postgres/index.js';
import { inv } from '../src/store/conformance.js';
import { tcpProxy, type TcpProxy } from './tcp-proxy.js';

const url = inject('postgresUrl');
const schema = `keel_broken_${randomBytes(4).toString('hex')}`;
let proxy: TcpProxy | undefined;

afterAll(async () => {
  await proxy?.close();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await client.end();
});

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('a batch whose connection broke while the server still ran it (PostgreSQL)', () => {
  it('never commits after a write sent later', async () => {
    const server = new URL(url);
    proxy = await tcpProxy({ host: server.hostname, port: Number(server.port || 5432) });
    const through = new URL(url);
    through.hostname = '127.0.0.1';
    through.port = String(proxy.port);
    const store = await openPostgresStore({ url: through.toString(), schema });
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await store.write([
        { op: 'invocation.insert', row: inv('r') },
        { op: 'kv.put', scope: 'z', key: 'k', value: 'first' },
      ]);
      // The test holds a row the next write changes before `k`: its batch waits on the server.
      await admin.query('BEGIN');
      await admin.query(`SELECT 1 FROM ${schema}.invocations WHERE id = 'r' FOR UPDATE`);
      const older = store.write([
        { op: 'invocation.update', id: 'r', set: { modifiedAt: 2 } },
        { op: 'kv.put', scope: 'z', key: 'k', value: 'older' },
      ]);
      const waiting = async (): Promise<boolean> => {
        const { rows } = await admin.query(
          `SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%${schema}".apply(%'`,
        );
        return rows.length > 0;
      };
      for (let i = 0; i < 200 && !(await waiting()); i++) await pause(10);
      expect(await waiting(), 'the batch never waited for the lock').toBe(true);
      // The connection breaks; its server process goes on waiting.
      await proxy.stop();
      await expect(older).rejects.toMatchObject({ code: 'store_unavailable' });
      await proxy.start();
      // A later write; meanwhile the lock goes away (as a slow transaction ends).
      const newer = store.write([{ op: 'kv.put', scope: 'z', key: 'k', value: 'newer' }]);
      await pause(100);
      await admin.query('COMMIT');
      await newer;
      await pause(200);
      // The older write either never committed or committed before the newer one.
      expect((await store.getKv('z', 'k'))?.value).toBe('newer');
    } finally {
      await admin.query('ROLLBACK').catch(() => undefined);
      await admin.end();
      await store.close();
    }
  }, 30_000);
});
