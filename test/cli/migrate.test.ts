import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { MIGRATIONS as PG_MIGRATIONS } from '../../src/store/postgres/migrations.js';
import {
  MIGRATIONS as SQLITE_MIGRATIONS,
  SCHEMA_VERSION,
} from '../../src/store/sqlite/migrations.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { tempDir } from '../helpers.js';
import { closedPort, json, keel, type Run } from './helpers.js';

/**
 * `keel migrate status|up` on a fresh SQLite file and a fresh PostgreSQL schema: what is
 * pending, applying it, and that a store then opens the result as its own.
 */
const tmp = tempDir('keel-cli-migrate-');
const url = inject('postgresUrl');
const schema = `cli_migrate_${randomBytes(4).toString('hex')}`;

afterAll(async () => {
  tmp.cleanup();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await client.end();
});

function expectExit(r: Run, code: number): void {
  expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toMatchObject({ code });
}

const T = { timeout: 600_000 };

describe('keel migrate on SQLite', () => {
  it('status of a missing file: everything pending, and the file is not created', T, async () => {
    const db = join(tmp.dir, 'fresh', 'keel.db');
    const [human, machine] = await Promise.all([
      keel(['migrate', 'status', '--db', db]),
      keel(['migrate', 'status', '--db', db, '--json']),
    ]);
    expectExit(human, 0);
    expect(human.stdout).toContain('(does not exist yet)');
    expect(human.stdout).toMatch(new RegExp(`version:\\s+0 of ${SCHEMA_VERSION}`));
    expect(human.stdout).toContain(`${SCHEMA_VERSION} pending: keel migrate up applies them`);
    expect(human.stdout).toMatch(/^1\s+init\s+pending$/m);
    expect(json(machine)).toMatchObject({
      store: 'sqlite',
      database: db,
      exists: false,
      version: 0,
      latest: SCHEMA_VERSION,
      applied: [],
      newer: false,
    });
    expect(json(machine).pending).toEqual(
      SQLITE_MIGRATIONS.map(({ version, name }) => ({ version, name })),
    );
    expect(existsSync(db)).toBe(false);
  });

  it('up applies every migration; again applies none; a store opens the file', T, async () => {
    const db = join(tmp.dir, 'up', 'keel.db');
    const up = await keel(['migrate', 'up', '--db', db]);
    expectExit(up, 0);
    for (const m of SQLITE_MIGRATIONS)
      expect(up.stdout).toContain(`applied ${m.version} ${m.name}`);
    expect(up.stdout).toContain(`${db}: migrated from version 0 to ${SCHEMA_VERSION}`);
    const [again, status] = await Promise.all([
      keel(['migrate', 'up', '--db', db, '--json']),
      keel(['migrate', 'status', '--db', db]),
    ]);
    expectExit(again, 0);
    expect(json(again)).toEqual({
      store: 'sqlite',
      database: db,
      from: SCHEMA_VERSION,
      to: SCHEMA_VERSION,
      applied: [],
    });
    expect(status.stdout).toMatch(new RegExp(`version:\\s+${SCHEMA_VERSION} of ${SCHEMA_VERSION}`));
    expect(status.stdout).toContain('up to date');
    const store = openSqliteStore({ path: db });
    await store.close();
  });

  it('up --json lists what it applied', T, async () => {
    const db = join(tmp.dir, 'json', 'keel.db');
    const up = await keel(['migrate', 'up', '--json'], { KEEL_DB: db });
    expectExit(up, 0);
    expect(json(up)).toMatchObject({ store: 'sqlite', database: db, from: 0, to: SCHEMA_VERSION });
    expect(json(up).applied).toHaveLength(SQLITE_MIGRATIONS.length);
  });

  it('bad arguments exit 2', T, async () => {
    const [both, schemaOnly] = await Promise.all([
      keel(['migrate', 'status', '--db', 'x.db', '--database-url', url]),
      keel(['migrate', 'status', '--schema', 'x', '--json']),
    ]);
    expectExit(both, 2);
    expect(both.stderr).toContain('not both');
    expectExit(schemaOnly, 2);
    expect(JSON.parse(schemaOnly.stderr)).toMatchObject({ code: 'usage' });
  });
});

describe('keel migrate on PostgreSQL', () => {
  it('status of a new schema, up, then status again', T, async () => {
    const before = await keel([
      'migrate',
      'status',
      '--database-url',
      url,
      '--schema',
      schema,
      '--json',
    ]);
    expectExit(before, 0);
    expect(json(before)).toMatchObject({ store: 'postgres', schema, exists: false, version: 0 });
    expect(json(before).pending).toHaveLength(PG_MIGRATIONS.length);
    const human = await keel(['migrate', 'status', '--schema', schema], { KEEL_DATABASE_URL: url });
    expect(human.stdout).toMatch(new RegExp(`schema:\\s+${schema} \\(does not exist yet\\)`));

    const up = await keel(['migrate', 'up', '--database-url', url, '--schema', schema]);
    expectExit(up, 0);
    expect(up.stdout).toContain(`migrated from version 0 to ${PG_MIGRATIONS.length}`);
    const [again, after, afterHuman] = await Promise.all([
      keel(['migrate', 'up', '--database-url', url, '--schema', schema, '--json']),
      keel(['migrate', 'status', '--database-url', url, '--schema', schema, '--json']),
      keel(['migrate', 'status', '--database-url', url, '--schema', schema]),
    ]);
    expect(json(again)).toMatchObject({
      store: 'postgres',
      schema,
      from: PG_MIGRATIONS.length,
      applied: [],
    });
    const s = json(after);
    expect(s).toMatchObject({ exists: true, version: PG_MIGRATIONS.length, pending: [] });
    expect(s.applied.map((a: { name: string }) => a.name)).toEqual(
      PG_MIGRATIONS.map((m) => m.name),
    );
    expect(s.applied[0].appliedAt).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    expect(afterHuman.stdout).toContain('up to date');
    expect(afterHuman.stdout).toMatch(/^1\s+init\s+applied \d{4}-/m);
  });

  it(
    'an unreachable server exits 5; a bad schema name exits 2; the password is not printed',
    T,
    async () => {
      const port = await closedPort();
      const [down, badSchema] = await Promise.all([
        keel([
          'migrate',
          'status',
          '--database-url',
          `postgres://u:secret-pw@127.0.0.1:${port}/x`,
          '--json',
        ]),
        keel(['migrate', 'up', '--database-url', url, '--schema', 'Bad-Name']),
      ]);
      expectExit(down, 5);
      expect(JSON.parse(down.stderr)).toMatchObject({ code: 'unreachable' });
      expect(down.stderr).not.toContain('secret-pw');
      expectExit(badSchema, 2);
      expect(badSchema.stderr).toContain('invalid PostgreSQL schema name');
    },
  );
});
