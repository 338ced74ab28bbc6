import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createDatabases,
  database,
  DatabaseConfigError,
  env,
  parseDatabases,
  type DatabaseConfig,
} from '../../src/databases/index.js';
import { Engine } from '../../src/index.js';
import { IntegrationDeclarationError } from '../../src/integrations/errors.js';
import { parseIntegrations } from '../../src/integrations/declarations/dsl/parse.js';
import { openSqliteStore } from '../../src/store/sqlite/index.js';
import { tempDir } from '../helpers.js';

const refused = (config: unknown): DatabaseConfigError => {
  try {
    database(config as DatabaseConfig);
  } catch (err) {
    expect(err).toBeInstanceOf(DatabaseConfigError);
    return err as DatabaseConfigError;
  }
  throw new Error('accepted');
};

describe('database() validates at the edge', () => {
  const ok = { name: 'orders', type: 'postgres', url: 'postgres://127.0.0.1:5432/app' } as const;

  it('accepts a full declaration and keeps it as given', () => {
    const db = database({
      ...ok,
      url: env('ORDERS_DB_URL'),
      pool: { max: 5, idleTimeout: '10s' },
      healthCheckInterval: '15s',
      statementTimeout: 500,
    });
    expect(db).toMatchObject({
      name: 'orders',
      type: 'postgres',
      config: { url: { env: 'ORDERS_DB_URL' } },
    });
  });

  it.each([
    [{ ...ok, name: '' }, 'name'],
    [{ ...ok, name: 'has space' }, 'name'],
    [{ ...ok, type: 'mongodb' }, 'type'],
    [{ ...ok, url: 42 }, 'url'],
    [{ ...ok, url: 'not a url' }, 'url'],
    [{ ...ok, url: 'mysql://127.0.0.1/app' }, 'url'],
    [{ ...ok, pool: { max: 0 } }, 'pool.max'],
    [{ ...ok, pool: { max: 2.5 } }, 'pool.max'],
    [{ ...ok, pool: { size: 3 } }, 'pool.size'],
    [{ ...ok, pool: { idleTimeout: 'soon' } }, 'pool.idleTimeout'],
    [{ ...ok, healthCheckInterval: '10ms' }, 'healthCheckInterval'],
    [{ ...ok, statementTimeout: '-1s' }, 'statementTimeout'],
    [{ ...ok, stepsTable: 'x; DROP TABLE y' }, 'stepsTable'],
    [{ ...ok, type: 'redis', url: 'redis://127.0.0.1', stepsTable: 'k' }, 'stepsTable'],
    [{ ...ok, poolSize: 3 }, 'poolSize'],
  ])('refuses %j naming the field %s', (config, field) => {
    const err = refused(config);
    expect(err.code).toBe('invalid_database');
    expect(err.field).toBe(field);
    expect(err.message).toContain(field);
  });

  it('names the database and never repeats a password', () => {
    const err = refused({ ...ok, url: 'mysql://app:hunter2-secret@db/app' });
    expect(err.database).toBe('orders');
    expect(err.message).toMatch(/^database orders: url has the scheme mysql:/);
    expect(err.message).not.toContain('hunter2');
  });

  it('fails the engine start when an env() URL is missing, naming the variable', async () => {
    const { dir, cleanup } = tempDir('keel-db-decl-');
    const engine = new Engine({
      services: [],
      store: openSqliteStore({ path: join(dir, 'k.db') }),
      extensions: [
        createDatabases([database({ ...ok, url: env('KEEL_TEST_UNSET_DB_URL') })], { env: {} }),
      ],
      logger: () => undefined,
    });
    try {
      await expect(engine.start()).rejects.toMatchObject({
        code: 'invalid_database',
        database: 'orders',
        field: 'url',
        message: expect.stringContaining('KEEL_TEST_UNSET_DB_URL, which is not set'),
      });
    } finally {
      await engine.stop().catch(() => undefined);
      cleanup();
    }
  });

  it('refuses the same name declared twice differently', () => {
    expect(() => createDatabases([database(ok), database({ ...ok, pool: { max: 2 } })])).toThrow(
      DatabaseConfigError,
    );
    expect(createDatabases([database(ok), database(ok)]).declared).toHaveLength(1);
  });
});

describe('database blocks in an integrations file', () => {
  const file = `
integration Weather {
  type: rest
  base_url: "https://api.example.com"
}

database Orders {
  type: postgres
  url: env(ORDERS_DB_URL)
  pool: 10
  health_check_interval: 30s
}

database Cache {
  type: redis
  url: "redis://127.0.0.1:6379"
  statement_timeout: 2s
}

database Ledger {
  type: mariadb
  url: env(LEDGER_DB_URL)
  pool { max: 3, idle_timeout: 1m }
  steps_table: "ledger.keel_steps"
}
`;

  it('reads each database block; the integrations reader skips them', () => {
    const dbs = parseDatabases(file, { file: 'integrations.cai' });
    expect(dbs.map((d) => d.config)).toEqual([
      {
        name: 'Orders',
        type: 'postgres',
        url: { env: 'ORDERS_DB_URL' },
        pool: { max: 10 },
        healthCheckInterval: 30_000,
      },
      { name: 'Cache', type: 'redis', url: 'redis://127.0.0.1:6379', statementTimeout: 2_000 },
      {
        name: 'Ledger',
        type: 'mysql',
        url: { env: 'LEDGER_DB_URL' },
        pool: { max: 3, idleTimeout: 60_000 },
        stepsTable: 'ledger.keel_steps',
      },
    ]);
    expect(parseIntegrations(file).map((i) => i.name)).toEqual(['Weather']);
  });

  const at = (text: string): IntegrationDeclarationError => {
    try {
      parseDatabases(text, { file: 'f.cai' });
    } catch (err) {
      expect(err).toBeInstanceOf(IntegrationDeclarationError);
      return err as IntegrationDeclarationError;
    }
    throw new Error('accepted');
  };

  it('refuses a literal URL with a password, at its position, without repeating it', () => {
    const err = at('database Orders {\n  type: postgres\n  url: "postgres://app:s3cr3t@db/app"\n}');
    expect([err.line, err.column]).toEqual([3, 8]);
    expect(err.message).toContain(
      'database Orders, url: a URL with a password in the file is refused',
    );
    expect(err.message).not.toContain('s3cr3t');
  });

  it('points at the field at fault, naming the database', () => {
    expect(at('database Orders {\n  type: mongodb\n  url: env(X)\n}').message).toBe(
      'f.cai, line 2, column 9: database Orders, type: expected postgres, mysql, mariadb or redis',
    );
    const unknown = at('database Orders {\n  type: postgres\n  url: env(X)\n  pool_size: 3\n}');
    expect([unknown.line, unknown.column]).toEqual([4, 3]);
    expect(unknown.message).toContain("database Orders: unknown field 'pool_size'");
    const zero = at('database Orders {\n  type: postgres\n  url: env(X)\n  pool: 0\n}');
    expect([zero.line, zero.column]).toEqual([4, 9]);
    expect(zero.message).toContain('database Orders: pool.max is 0');
    const scheme = at('database Orders {\n  type: mysql\n  url: "postgres://db/app"\n}');
    expect(scheme.line).toBe(3);
    expect(at('database Orders {\n  url: env(X)\n}').message).toContain('database Orders: no type');
    expect(
      at('database A {\n type: redis\n url: env(X)\n}\ndatabase A {\n type: redis\n url: env(Y)\n}')
        .message,
    ).toContain('database A is declared twice (first at line 1, column 10)');
  });

  it('reads the JSON form', () => {
    const json = JSON.stringify({
      integrations: [],
      databases: [
        {
          name: 'Orders',
          type: 'postgres',
          url: { env: 'ORDERS_DB_URL' },
          pool: 4,
          health_check_interval: '10s',
        },
      ],
    });
    expect(parseDatabases(json)[0]!.config).toEqual({
      name: 'Orders',
      type: 'postgres',
      url: { env: 'ORDERS_DB_URL' },
      pool: { max: 4 },
      healthCheckInterval: 10_000,
    });
    expect(parseIntegrations(json)).toEqual([]);
    expect(parseIntegrations(JSON.stringify({ databases: [] }))).toEqual([]);
  });

  const tmp = tempDir('keel-db-file-');
  afterAll(() => tmp.cleanup());
  it('loads from a file path', async () => {
    const path = join(tmp.dir, 'integrations.cai');
    writeFileSync(path, file);
    const { readDatabasesFile } = await import('../../src/databases/index.js');
    expect((await readDatabasesFile(path)).map((d) => d.name)).toEqual([
      'Orders',
      'Cache',
      'Ledger',
    ]);
  });
});

describe('database blocks under mutation (seeded)', () => {
  const base = `database Orders {
  type: postgres
  url: env(ORDERS_DB_URL)
  pool { max: 10, idle_timeout: 30s }
  health_check_interval: 30s
  statement_timeout: 5s
  steps_table: "app.keel_steps"
}
database Cache { type: redis, url: "redis://u:hunter2pw@127.0.0.1:6379" }
`;
  const pieces = [
    '{',
    '}',
    ':',
    ',',
    '"',
    '(',
    ')',
    '\n',
    ' ',
    'env',
    '0',
    '-1',
    '1e9',
    'ms',
    'database',
    'pool',
    'x',
    '[',
    ']',
    '#',
    '"redis://a:hunter2pw@h"',
  ];

  it('either parses or throws IntegrationDeclarationError, never repeating a password', () => {
    let seed = 0x2545f491;
    const rand = (n: number): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed % n;
    };
    let parsed = 0;
    for (let i = 0; i < 3000; i++) {
      let text = base;
      for (let m = 0, n = 1 + rand(4); m < n; m++) {
        const at = rand(text.length);
        const kind = rand(3);
        if (kind === 0) text = text.slice(0, at) + text.slice(at + 1 + rand(6));
        else if (kind === 1)
          text = text.slice(0, at) + pieces[rand(pieces.length)]! + text.slice(at);
        else
          text =
            text.slice(0, at) +
            text
              .slice(at, at + rand(20))
              .split('')
              .reverse()
              .join('') +
            text.slice(at + 20);
      }
      try {
        for (const db of parseDatabases(text))
          expect(JSON.stringify(db.config)).not.toContain('hunter2pw');
        parsed++;
      } catch (err) {
        if (!(err instanceof IntegrationDeclarationError))
          throw new Error(`not a declaration error for ${JSON.stringify(text)}: ${String(err)}`);
        expect(err.message).not.toContain('hunter2pw');
      }
    }
    expect(parsed).toBeGreaterThan(0);
  });
});
