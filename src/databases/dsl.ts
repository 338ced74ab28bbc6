/**
 * `database Name { ... }` blocks in an integrations file (and `"databases": [...]` in its JSON
 * form), read with the integrations DSL's own lexer, parser and value reader, so errors carry a
 * line and column the same way. The integrations interpreter skips these blocks; this reads only
 * them.
 *
 * ```text
 * database Orders {
 *   type: postgres                    # postgres | mysql (mariadb) | redis
 *   url: env(ORDERS_DB_URL)           # a literal URL with a password is refused
 *   pool: 10                          # or pool { max: 10, idle_timeout: 30s }
 *   health_check_interval: 30s
 *   statement_timeout: 5s
 *   steps_table: "app.keel_steps"
 * }
 * ```
 */
import { readFile } from 'node:fs/promises';
import type { Pos } from '../integrations/declarations/dsl/lexer.js';
import { tokenize } from '../integrations/declarations/dsl/lexer.js';
import { normalizeKey, Reader } from '../integrations/declarations/dsl/reader.js';
import {
  parseDocument,
  type BlockNode,
  type Field,
  type Node,
} from '../integrations/declarations/dsl/syntax.js';
import { database } from './declare.js';
import { DatabaseConfigError } from './errors.js';
import type { Database, DatabaseConfig, DatabaseType } from './types.js';

/** The top-level block keyword, which the integrations interpreter leaves to this reader. */
export const DATABASE_BLOCK = 'database';

const TYPE_WORDS: Record<string, DatabaseType> = {
  postgres: 'postgres',
  postgresql: 'postgres',
  mysql: 'mysql',
  mariadb: 'mysql',
  redis: 'redis',
};

const FIELDS = [
  'name',
  'type',
  'url',
  'pool',
  'health_check_interval',
  'statement_timeout',
  'steps_table',
];

/**
 * The databases declared in an integrations file's text (DSL or JSON); other blocks are ignored.
 * Throws an `IntegrationDeclarationError` at the line and column of the first problem.
 *
 * @example
 * ```ts
 * const [orders] = parseDatabases(`
 *   database Orders {
 *     type: postgres
 *     url: env(ORDERS_DB_URL)
 *     pool: 10
 *     health_check_interval: 30s
 *   }
 * `);
 * ```
 */
export function parseDatabases(source: string, options: { file?: string } = {}): Database[] {
  const file = options.file;
  const doc = parseDocument(tokenize(source, file), file);
  const r: Reader = new Reader(file, doc.kind);
  const seen = new Map<string, Pos>();
  if (doc.kind === 'dsl') {
    return doc.fields
      .filter((f) => f.key === DATABASE_BLOCK)
      .map((f) => {
        if (f.label === undefined) r.fail(f.keyPos, `write 'database Name { ... }'`);
        return readDatabase(r, f.label.name, f.label.pos, r.block(f.value, 'database'), seen);
      });
  }
  const root = doc.value;
  if (root.kind !== 'block') return [];
  const list = root.fields.find((f) => normalizeKey(f.key) === 'databases');
  if (list === undefined) return [];
  const l = r.one(list.value, 'databases');
  if (l.kind !== 'list') r.fail(l.pos, '"databases" must be a list of database objects');
  return l.items.map((p) => {
    const item = r.one(p, 'databases');
    if (item.kind !== 'block') r.fail(item.pos, 'each database must be an object with a "name"');
    const name = item.fields.find((f) => normalizeKey(f.key) === 'name');
    if (name === undefined) r.fail(item.pos, 'this database has no "name"');
    const n = r.one(name.value, 'name');
    if (n.kind !== 'string') r.fail(n.pos, '"name" must be a string');
    return readDatabase(r, n.value, n.pos, item, seen);
  });
}

/**
 * Reads an integrations file's `database` blocks; errors name the file.
 *
 * @example
 * ```ts
 * const databases = createDatabases(await readDatabasesFile('integrations.cai'));
 * ```
 */
export async function readDatabasesFile(path: string): Promise<Database[]> {
  return parseDatabases(await readFile(path, 'utf8'), { file: path });
}

function readDatabase(
  r: Reader,
  name: string,
  namePos: Pos,
  block: BlockNode,
  seen: Map<string, Pos>,
): Database {
  const where = `database ${name}`;
  const previous = seen.get(name);
  if (previous !== undefined)
    r.fail(
      namePos,
      `${where} is declared twice (first at line ${previous.line}, column ${previous.column})`,
    );
  seen.set(name, namePos);
  r.begin('');
  const fields = r.fields(block, FIELDS, where);
  if (r.mode === 'dsl' && fields.has('name'))
    r.fail(
      fields.get('name')!.keyPos,
      `${where}: the name comes from 'database ${name}'; remove the name field`,
    );
  // Where each TypeScript field came from, to put `database()`'s errors at the right place.
  const origins = new Map<string, Pos>([['name', namePos]]);
  const config: Partial<DatabaseConfig> & { name: string } = { name };
  const label = (key: string): string => `${where}, ${key}`;
  for (const [key, f] of fields) {
    const node = (): Node => r.one(f.value, label(key));
    switch (key) {
      case 'type': {
        const n = node();
        const w = r.wordOf(n);
        const t = w === undefined ? undefined : TYPE_WORDS[w.toLowerCase()];
        if (t === undefined)
          r.fail(n.pos, `${label(key)}: expected postgres, mysql, mariadb or redis`);
        config.type = t;
        origins.set('type', n.pos);
        break;
      }
      case 'url': {
        const n = node();
        const ref = r.envRef(n, label(key));
        if (ref !== undefined) config.url = ref;
        else {
          const text = r.string(n, label(key));
          if (hasPassword(text))
            r.fail(
              n.pos,
              `${label(key)}: a URL with a password in the file is refused: write url: env(NAME) and set the environment variable NAME where Keel runs`,
            );
          config.url = text;
        }
        origins.set('url', n.pos);
        break;
      }
      case 'pool':
        config.pool = readPool(r, f, label(key), origins);
        break;
      case 'health_check_interval':
        config.healthCheckInterval = r.duration(node(), label(key));
        origins.set('healthCheckInterval', f.value.pos);
        break;
      case 'statement_timeout':
        config.statementTimeout = r.duration(node(), label(key));
        origins.set('statementTimeout', f.value.pos);
        break;
      case 'steps_table': {
        const n = node();
        config.stepsTable = r.wordOf(n) ?? r.string(n, label(key));
        origins.set('stepsTable', n.pos);
        break;
      }
      default:
        break;
    }
  }
  if (config.type === undefined)
    r.fail(namePos, `${where}: no type; write type: postgres, mysql or redis`);
  if (config.url === undefined) r.fail(namePos, `${where}: no url; write url: env(NAME)`);
  try {
    return database(config as DatabaseConfig);
  } catch (err) {
    if (!(err instanceof DatabaseConfigError)) throw err;
    const pos = origins.get(err.field) ?? origins.get(err.field.split('.')[0]!) ?? namePos;
    return r.fail(pos, err.message);
  }
}

function readPool(
  r: Reader,
  f: Field,
  label: string,
  origins: Map<string, Pos>,
): DatabaseConfig['pool'] {
  const n = r.one(f.value, label);
  if (n.kind === 'number') {
    origins.set('pool.max', n.pos);
    origins.set('pool', n.pos);
    return { max: n.value };
  }
  if (n.kind !== 'block')
    return r.fail(
      n.pos,
      `${label}: expected a number of connections (pool: 10) or pool { max: 10, idle_timeout: 30s }`,
    );
  origins.set('pool', n.pos);
  const fields = r.fields(n, ['max', 'idle_timeout'], label);
  const pool: { max?: number; idleTimeout?: number | string } = {};
  const max = fields.get('max');
  if (max !== undefined) {
    const v = r.one(max.value, `${label}.max`);
    pool.max = r.number(v, `${label}.max`);
    origins.set('pool.max', v.pos);
  }
  const idle = fields.get('idle_timeout');
  if (idle !== undefined) {
    const v = r.one(idle.value, `${label}.idle_timeout`);
    pool.idleTimeout = r.duration(v, `${label}.idle_timeout`);
    origins.set('pool.idleTimeout', v.pos);
  }
  return pool;
}

function hasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}
