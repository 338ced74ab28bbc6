/**
 * Gives the syntax tree of an integrations file its meaning: each `integration X { ... }` block
 * (or JSON object) becomes an `IntegrationConfig`, which is then validated by `integration()`.
 * Every error carries the line and column of the field at fault, including the errors found by
 * `integration()`, which are mapped back to the field they came from.
 */
import {
  integration,
  type FallbackConfig,
  type GraphQLVariableConfig,
  type IntegrationConfig,
  type OperationConfig,
} from '../config.js';
import { IntegrationConfigError } from '../../errors.js';
import { readAuth } from './auth.js';
import { readHealthCheck, readHealthCheckField } from './health.js';
import { tokenize, type Pos } from './lexer.js';
import {
  readBatching,
  readCircuitBreaker,
  readDeadLetter,
  readErrorOverrides,
  readFallback,
  readIdempotency,
  readIntegrationCache,
  readRateLimit,
  readRetryFields,
  readSignature,
} from './policies.js';
import { Cursor, normalizeKey, Reader } from './reader.js';
import { parseDocument, type BlockNode, type Field, type Node } from './syntax.js';

/** Parses and interprets a whole document. */
export function interpretDocument(source: string, file: string | undefined): IntegrationConfig[] {
  const doc = parseDocument(tokenize(source, file), file);
  const r = new Reader(file, doc.kind);
  return doc.kind === 'dsl' ? readDslDocument(r, doc.fields) : readJsonDocument(r, doc.value);
}

/**
 * Top-level blocks that other parts of Keel read from the same file, skipped here:
 * `database Name { ... }` (src/databases/dsl.ts), `subscription Name { ... }` (src/buses/dsl.ts).
 */
const OTHER_BLOCKS = new Set(['database', 'subscription']);

function readDslDocument(r: Reader, fields: Field[]): IntegrationConfig[] {
  const out: IntegrationConfig[] = [];
  const seen = new Map<string, Pos>();
  for (const f of fields) {
    if (OTHER_BLOCKS.has(f.key) && f.label !== undefined) continue;
    if (f.key !== 'integration' || f.label === undefined) {
      r.fail(f.keyPos, `expected 'integration Name { ... }' at the top level, found '${f.key}'`);
    }
    const block = r.block(f.value, 'integration');
    out.push(readIntegration(r, f.label.name, f.label.pos, block, seen));
  }
  return out;
}

function readJsonDocument(r: Reader, node: Node): IntegrationConfig[] {
  let items: Node[];
  if (node.kind === 'list') {
    items = node.items.map((p) => r.one(p, 'integrations'));
  } else if (node.kind === 'block') {
    // "databases": read by src/databases/dsl.ts; "subscriptions" by src/buses/dsl.ts.
    const fields = r.fields(node, ['integrations', 'databases', 'subscriptions'], 'the document');
    const list = fields.get('integrations');
    if (list === undefined && (fields.has('databases') || fields.has('subscriptions'))) return [];
    if (list === undefined)
      r.fail(node.pos, 'expected { "integrations": [ ... ] } or a list of integrations');
    const l = r.one(list.value, 'integrations');
    if (l.kind !== 'list') r.fail(l.pos, '"integrations" must be a list of integration objects');
    items = l.items.map((p) => r.one(p, 'integrations'));
  } else {
    return r.fail(node.pos, 'expected { "integrations": [ ... ] } or a list of integrations');
  }
  const seen = new Map<string, Pos>();
  return items.map((item) => {
    if (item.kind !== 'block') r.fail(item.pos, 'each integration must be an object with a "name"');
    const name = item.fields.find((f) => normalizeKey(f.key) === 'name');
    if (name === undefined) r.fail(item.pos, 'this integration has no "name"');
    const n = r.one(name.value, 'name');
    if (n.kind !== 'string') r.fail(n.pos, '"name" must be a string');
    return readIntegration(r, n.value, n.pos, item, seen);
  });
}

function readIntegration(
  r: Reader,
  name: string,
  namePos: Pos,
  block: BlockNode,
  seen: Map<string, Pos>,
): IntegrationConfig {
  r.begin(name);
  const previous = seen.get(name);
  if (previous !== undefined) {
    r.fail(
      namePos,
      `integration ${name} is declared twice (first at line ${previous.line}, column ${previous.column})`,
    );
  }
  seen.set(name, namePos);
  r.origin('', namePos, '');
  r.origin('name', namePos, 'name');

  const allowed = [
    'name',
    'type',
    'base_url',
    'auth',
    'headers',
    'timeout',
    'retry',
    'retry_delays',
    'circuit_breaker',
    'rate_limit',
    'default_cache_ttl',
    'cache',
    'fallback',
    'idempotency',
    'batching',
    'errors',
    'signature',
    'dead_letter',
    'health_check',
    'health_check_path',
    'health_check_interval',
    'operation',
    'operations',
  ];
  const fields = r.fields(block, allowed, '', ['operation']);
  if (r.mode === 'dsl' && fields.has('name')) {
    r.fail(
      fields.get('name')!.keyPos,
      `the name comes from 'integration ${name}'; remove the name field`,
    );
  }
  const config: { -readonly [K in keyof IntegrationConfig]: IntegrationConfig[K] } = { name };

  for (const [key, f] of fields) {
    const v = f.value;
    switch (key) {
      case 'type':
        config.type = r.word(r.one(v, key), key) as IntegrationConfig['type'];
        r.origin('type', v.pos, key);
        break;
      case 'base_url':
        config.baseUrl = r.configurable(r.one(v, key), key);
        r.origin('baseUrl', v.pos, key);
        break;
      case 'auth':
        config.auth = readAuth(r, v);
        break;
      case 'headers':
        config.headers = r.headers(v, 'headers', key);
        break;
      case 'timeout':
        config.timeout = r.duration(r.one(v, key), key);
        r.origin('timeout', v.pos, key);
        break;
      case 'default_cache_ttl':
        if (fields.has('cache')) {
          r.fail(f.keyPos, `${r.ctx(key)}give either default_cache_ttl or cache, not both`);
        }
        config.cache = { defaultTtl: r.duration(r.one(v, key), key) };
        r.origin('cache', v.pos, key);
        break;
      case 'cache': {
        const ttl = readIntegrationCache(r, v);
        if (ttl !== undefined) config.cache = { defaultTtl: ttl };
        r.origin('cache', v.pos, key);
        break;
      }
      case 'circuit_breaker':
        config.circuitBreaker = readCircuitBreaker(r, v);
        break;
      case 'rate_limit':
        config.rateLimit = readRateLimit(r, v);
        break;
      case 'fallback':
        config.fallback = readFallback(r, v, 'fallback', key) as FallbackConfig;
        break;
      case 'idempotency':
        config.idempotency = readIdempotency(r, v);
        break;
      case 'batching':
        config.batching = readBatching(r, v);
        break;
      case 'errors':
        config.errors = readErrorOverrides(r, v, 'errors', key);
        break;
      case 'signature':
        config.signature = readSignature(r, v);
        break;
      case 'dead_letter':
        config.deadLetter = readDeadLetter(r, v);
        break;
      case 'health_check': {
        const hc = readHealthCheck(r, v);
        config.healthCheckPath = hc.path;
        if (hc.interval !== undefined) config.healthCheckInterval = hc.interval;
        break;
      }
      case 'health_check_path':
      case 'health_check_interval':
        readHealthCheckField(r, key, f, fields.has('health_check'), config);
        break;
      default:
        break;
    }
  }
  const retry = readRetryFields(r, fields.get('retry'), fields.get('retry_delays'), 'retry', '');
  if (retry !== undefined) config.retry = retry;

  const operations: Record<string, OperationConfig> = {};
  const opPos = new Map<string, Pos>();
  const addOperation = (opName: string, pos: Pos, body: BlockNode): void => {
    const first = opPos.get(opName);
    if (first !== undefined) {
      r.fail(
        pos,
        `operation ${opName} is declared twice in integration ${name} (first at line ${first.line}, column ${first.column})`,
      );
    }
    opPos.set(opName, pos);
    operations[opName] = readOperation(r, opName, pos, body);
  };
  for (const f of block.fields) {
    if (normalizeKey(f.key) !== 'operation') continue;
    if (f.label === undefined) r.fail(f.keyPos, "write an operation as 'operation name { ... }'");
    addOperation(f.label.name, f.label.pos, r.block(f.value, `operation ${f.label.name}`));
  }
  const opsField = fields.get('operations');
  if (opsField !== undefined) {
    const opsBlock = r.block(opsField.value, 'operations');
    for (const f of opsBlock.fields) {
      addOperation(f.key, f.keyPos, r.block(f.value, `operations.${f.key}`));
    }
  }
  if (opPos.size > 0) config.operations = operations;

  try {
    integration(config);
  } catch (err) {
    if (err instanceof IntegrationConfigError) throw r.relocate(err);
    throw err;
  }
  return config;
}

function readOperation(r: Reader, name: string, pos: Pos, block: BlockNode): OperationConfig {
  const base = `operations.${name}`;
  const label = `operation ${name}`;
  r.origin(base, pos, label);
  const fields = r.fields(
    block,
    [
      'method',
      'path',
      'query',
      'variables',
      'operation_name',
      'body',
      'headers',
      'cache',
      'idempotent',
      'batch',
      'fallback',
      'timeout',
      'retry',
      'retry_delays',
      'errors',
    ],
    label,
  );
  const op: Record<string, unknown> = {};
  for (const [key, f] of fields) {
    const l = `${label}, ${key}`;
    const v = f.value;
    const at = (p: string, n: Node): void => r.origin(`${base}.${p}`, n.pos, l);
    switch (key) {
      case 'method': {
        const n = r.one(v, l);
        op.method = r.word(n, l).toUpperCase();
        at('method', n);
        break;
      }
      case 'path': {
        const n = r.one(v, l);
        op.path = r.string(n, l);
        at('path', n);
        break;
      }
      case 'query': {
        const n = r.one(v, l);
        if (n.kind === 'string') op.query = n.value;
        else if (n.kind === 'block') op.query = r.stringMap(n, l);
        else
          r.fail(
            n.pos,
            `${r.ctx(l)}expected a GraphQL document ("""query ...""") or REST query parameters ({ per_page: "{per_page}" })`,
          );
        at('query', n);
        break;
      }
      case 'variables': {
        const n = r.one(v, l);
        if (n.kind !== 'block')
          r.fail(n.pos, `${r.ctx(l)}write variables: { login: string, required }`);
        const vars: Record<string, GraphQLVariableConfig> = {};
        for (const vf of n.fields) {
          vars[vf.key] = readVariable(r, vf, `${l}.${vf.key}`);
          r.origin(`${base}.variables.${vf.key}`, vf.keyPos, `${l}.${vf.key}`);
        }
        op.variables = vars;
        at('variables', n);
        break;
      }
      case 'operation_name': {
        const n = r.one(v, l);
        op.operationName = r.string(n, l);
        at('operationName', n);
        break;
      }
      case 'body': {
        const n = r.one(v, l);
        op.body = r.json(n, l);
        at('body', n);
        break;
      }
      case 'headers':
        op.headers = r.headers(v, `${base}.headers`, l);
        break;
      case 'cache': {
        const n = r.one(v, l);
        op.cache =
          n.kind === 'ident' && ['none', 'false', 'off', 'never'].includes(n.name)
            ? false
            : r.duration(n, l);
        at('cache', n);
        break;
      }
      case 'idempotent':
      case 'batch': {
        const n = r.one(v, l);
        op[key] = r.bool(n, l);
        at(key, n);
        break;
      }
      case 'fallback':
        op.fallback = readFallback(r, v, `${base}.fallback`, l);
        break;
      case 'timeout': {
        const n = r.one(v, l);
        op.timeout = r.duration(n, l);
        at('timeout', n);
        break;
      }
      case 'errors':
        op.errors = readErrorOverrides(r, v, `${base}.errors`, l);
        break;
      default:
        break;
    }
  }
  const retry = readRetryFields(
    r,
    fields.get('retry'),
    fields.get('retry_delays'),
    `${base}.retry`,
    `${label}, `,
  );
  if (retry !== undefined) op.retry = retry;
  return op as unknown as OperationConfig;
}

function readVariable(r: Reader, f: Field, label: string): GraphQLVariableConfig {
  const value = r.reparse(f.value, label);
  const only =
    value.phrases.length === 1 && value.phrases[0]!.terms.length === 1
      ? value.phrases[0]!.terms[0]!
      : undefined;
  if (only?.kind === 'block') {
    const fields = r.fields(only, ['type', 'required', 'default'], label);
    const t = fields.get('type');
    if (t === undefined) r.fail(only.pos, `${r.ctx(label)}type is missing: write { type: string }`);
    const out: GraphQLVariableConfig = {
      type: readVariableType(r, r.one(t.value, label), label),
    };
    const req = fields.get('required');
    if (req !== undefined) out.required = r.bool(r.one(req.value, label), label);
    const d = fields.get('default');
    if (d !== undefined) out.default = r.json(r.one(d.value, label), label);
    return out;
  }
  const [first, ...more] = value.phrases;
  const c = new Cursor(r, first!, label);
  const typeNode = c.node('a type: string, integer, float, boolean, id, object or list');
  const out: GraphQLVariableConfig = { type: readVariableType(r, typeNode, label) };
  c.end('the variable type');
  for (const p of more) {
    const t = p.terms[0]!;
    if (p.terms.length === 1 && t.kind === 'ident' && t.name === 'required') out.required = true;
    else if (p.terms.length === 1 && t.kind === 'ident' && t.name === 'optional')
      out.required = false;
    else if (
      p.terms.length === 1 &&
      t.kind === 'call' &&
      t.name === 'default' &&
      t.args.length === 1
    ) {
      out.default = r.json(r.one(t.args[0]!, label), label);
    } else if (p.terms.length === 2 && t.kind === 'ident' && t.name === 'default') {
      out.default = r.json(p.terms[1]!, label);
    } else {
      r.fail(p.pos, `${r.ctx(label)}expected required, optional or default(value)`);
    }
  }
  return out;
}

function readVariableType(r: Reader, node: Node, label: string): GraphQLVariableConfig['type'] {
  const w = r.word(node, label).toLowerCase();
  const aliases: Record<string, GraphQLVariableConfig['type']> = {
    string: 'string',
    str: 'string',
    integer: 'integer',
    int: 'integer',
    float: 'float',
    number: 'float',
    boolean: 'boolean',
    bool: 'boolean',
    id: 'id',
    object: 'object',
    list: 'list',
    array: 'list',
  };
  const t = aliases[w];
  if (t === undefined)
    r.fail(
      node.pos,
      `${r.ctx(label)}unknown type '${w}': use string, integer, float, boolean, id, object or list`,
    );
  return t;
}
