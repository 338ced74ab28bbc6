/**
 * `subscription Name { ... }` blocks in a declaration file (and `"subscriptions": [...]` in its
 * JSON form), read with the integrations DSL's own lexer, parser and value reader, so errors
 * carry a line and column the same way. The integrations interpreter skips these blocks.
 *
 * ```text
 * subscription OrdersCreated {
 *   bus: rabbitmq
 *   exchange: "orders"                 # asserted durable; exchange_type: topic (default), direct, fanout
 *   routing_keys: ["order.created", "order.updated"]
 *   queue: "keel.orders-created"
 *   target: Shipping.onOrder           # Service.handler, resolved when the app starts
 *   key: payload.customerId            # optional: per-key ordering (required for a keyed target)
 *   dedupe_by: payload.eventId         # optional: default the message id
 *   max_attempts: 5
 *   prefetch: 32
 *   dead_letter: "keel.orders-created.dlq"
 * }
 *
 * subscription Payments {
 *   bus: nats
 *   stream: PAYMENTS
 *   subject: "payments.>"
 *   durable: "keel-payments"
 *   target: Account.apply
 *   key: payload.accountId
 *   dead_letter: "payments.dead"
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
  type Node,
} from '../integrations/declarations/dsl/syntax.js';
import { pathProblem, type DeclaredSubscription } from './declared.js';

/** The top-level block keyword, which the integrations interpreter leaves to this reader. */
export const SUBSCRIPTION_BLOCK = 'subscription';

const COMMON = [
  'name',
  'bus',
  'target',
  'key',
  'dedupe_by',
  'max_attempts',
  'prefetch',
  'dead_letter',
];
const RABBIT = ['exchange', 'exchange_type', 'routing_keys', 'routing_key', 'queue'];
const NATS = ['stream', 'subject', 'durable'];
const MQTT = ['topic'];

const BUS_WORDS: Record<string, 'rabbitmq' | 'nats' | 'mqtt'> = {
  rabbitmq: 'rabbitmq',
  amqp: 'rabbitmq',
  nats: 'nats',
  jetstream: 'nats',
  mqtt: 'mqtt',
};
const BUS_FIELDS = { rabbitmq: RABBIT, nats: NATS, mqtt: MQTT } as const;
const BUS_LABELS = { rabbitmq: 'RabbitMQ', nats: 'NATS', mqtt: 'MQTT' } as const;

/**
 * The subscriptions declared in a declaration file's text (DSL or JSON); other blocks are
 * ignored. Throws an `IntegrationDeclarationError` at the line and column of the first problem.
 * Targets are checked when the app starts (`withSubscriptions`).
 *
 * @example
 * ```ts
 * const [orders] = parseSubscriptions(`
 *   subscription Orders {
 *     bus: rabbitmq
 *     exchange: "orders"
 *     routing_keys: "order.*"
 *     queue: "keel.orders"
 *     target: Shipping.onOrder
 *   }
 * `);
 * ```
 */
export function parseSubscriptions(
  source: string,
  options: { file?: string } = {},
): DeclaredSubscription[] {
  const file = options.file;
  const doc = parseDocument(tokenize(source, file), file);
  const r: Reader = new Reader(file, doc.kind);
  const seen = new Map<string, Pos>();
  if (doc.kind === 'dsl') {
    return doc.fields
      .filter((f) => f.key === SUBSCRIPTION_BLOCK)
      .map((f) => {
        if (f.label === undefined) r.fail(f.keyPos, `write 'subscription Name { ... }'`);
        return readSubscription(
          r,
          f.label.name,
          f.label.pos,
          r.block(f.value, 'subscription'),
          seen,
        );
      });
  }
  const root = doc.value;
  if (root.kind !== 'block') return [];
  const list = root.fields.find((f) => normalizeKey(f.key) === 'subscriptions');
  if (list === undefined) return [];
  const l = r.one(list.value, 'subscriptions');
  if (l.kind !== 'list') r.fail(l.pos, '"subscriptions" must be a list of subscription objects');
  return l.items.map((p) => {
    const item = r.one(p, 'subscriptions');
    if (item.kind !== 'block')
      r.fail(item.pos, 'each subscription must be an object with a "name"');
    const name = item.fields.find((f) => normalizeKey(f.key) === 'name');
    if (name === undefined) r.fail(item.pos, 'this subscription has no "name"');
    const n = r.one(name.value, 'name');
    if (n.kind !== 'string') r.fail(n.pos, '"name" must be a string');
    return readSubscription(r, n.value, n.pos, item, seen);
  });
}

/**
 * Reads a declaration file's `subscription` blocks; errors name the file.
 *
 * @example
 * ```ts
 * const declared = await readSubscriptionsFile('integrations.cai');
 * ```
 */
export async function readSubscriptionsFile(path: string): Promise<DeclaredSubscription[]> {
  return parseSubscriptions(await readFile(path, 'utf8'), { file: path });
}

function readSubscription(
  r: Reader,
  name: string,
  namePos: Pos,
  block: BlockNode,
  seen: Map<string, Pos>,
): DeclaredSubscription {
  const where = `subscription ${name}`;
  const previous = seen.get(name);
  if (previous !== undefined)
    r.fail(
      namePos,
      `${where} is declared twice (first at line ${previous.line}, column ${previous.column})`,
    );
  seen.set(name, namePos);
  r.begin('');
  const fields = r.fields(block, [...COMMON, ...RABBIT, ...NATS, ...MQTT], where);
  if (r.mode === 'dsl' && fields.has('name'))
    r.fail(
      fields.get('name')!.keyPos,
      `${where}: the name comes from 'subscription ${name}'; remove the name field`,
    );
  const label = (key: string): string => `${where}, ${key}`;
  const node = (key: string): Node | undefined => {
    const f = fields.get(key);
    return f === undefined ? undefined : r.one(f.value, label(key));
  };
  const text = (key: string): string | undefined => {
    const n = node(key);
    if (n === undefined) return undefined;
    const v = n.kind === 'ident' ? n.name : r.string(n, label(key));
    if (v === '') r.fail(n.pos, `${label(key)}: must not be empty`);
    return v;
  };
  const path = (key: string): string | undefined => {
    const n = node(key);
    if (n === undefined) return undefined;
    const v =
      n.kind === 'ref' ? n.path.join('.') : n.kind === 'ident' ? n.name : r.string(n, label(key));
    const problem = key === 'target' ? undefined : pathProblem(v);
    if (problem) r.fail(n.pos, `${label(key)}: ${problem}`);
    return v;
  };
  const positive = (key: string): number | undefined => {
    const n = node(key);
    if (n === undefined) return undefined;
    const v = r.number(n, label(key));
    if (!Number.isInteger(v) || v < 1)
      r.fail(n.pos, `${label(key)}: expected a whole number of at least 1`);
    return v;
  };

  const busNode = node('bus');
  if (busNode === undefined)
    r.fail(namePos, `${where}: no bus; write bus: rabbitmq, bus: nats or bus: mqtt`);
  const bus = BUS_WORDS[(r.wordOf(busNode) ?? '').toLowerCase()];
  if (bus === undefined) r.fail(busNode.pos, `${label('bus')}: expected rabbitmq, nats or mqtt`);
  for (const other of ['rabbitmq', 'nats', 'mqtt'] as const) {
    if (other === bus) continue;
    for (const k of BUS_FIELDS[other]) {
      const f = fields.get(k);
      if (f)
        r.fail(
          f.keyPos,
          `${label(k)}: is a ${BUS_LABELS[other]} field; this subscription has bus: ${bus}`,
        );
    }
  }
  const target = path('target');
  if (target === undefined) r.fail(namePos, `${where}: no target; write target: Service.handler`);
  if (!/^[^.\s]+\.[^.\s]+$/.test(target))
    r.fail(node('target')!.pos, `${label('target')}: expected Service.handler, got "${target}"`);
  const required = (key: string, example: string): string => {
    const v = text(key);
    if (v === undefined) return r.fail(namePos, `${where}: no ${key}; write ${key}: ${example}`);
    return v;
  };
  const common = {
    name,
    target,
    ...optional('key', path('key')),
    ...optional('dedupeBy', path('dedupe_by')),
    ...optional('maxAttempts', positive('max_attempts')),
    ...optional('prefetch', positive('prefetch')),
    ...optional('deadLetter', text('dead_letter')),
  };
  if (bus === 'mqtt') return { ...common, bus, topic: required('topic', '"orders/+/created"') };
  if (bus === 'nats') {
    return {
      ...common,
      bus,
      stream: required('stream', 'ORDERS'),
      subject: required('subject', '"orders.>"'),
      durable: required('durable', '"keel-orders"'),
    };
  }
  if (fields.has('routing_keys') && fields.has('routing_key'))
    r.fail(
      fields.get('routing_key')!.keyPos,
      `${label('routing_key')}: give routing_keys or routing_key, not both`,
    );
  const rk = fields.has('routing_key') ? 'routing_key' : 'routing_keys';
  const rkNode = node(rk);
  if (rkNode === undefined)
    r.fail(namePos, `${where}: no routing_keys; write routing_keys: ["order.*"] (or "#" for all)`);
  const routingKeys =
    rkNode.kind === 'list'
      ? rkNode.items.map((p) => r.string(r.one(p, label(rk)), label(rk)))
      : [r.string(rkNode, label(rk))];
  if (routingKeys.length === 0) r.fail(rkNode.pos, `${label(rk)}: give at least one routing key`);
  const typeNode = node('exchange_type');
  let exchangeType: 'topic' | 'direct' | 'fanout' | undefined;
  if (typeNode !== undefined) {
    const w = r.wordOf(typeNode);
    if (w !== 'topic' && w !== 'direct' && w !== 'fanout')
      r.fail(typeNode.pos, `${label('exchange_type')}: expected topic, direct or fanout`);
    exchangeType = w;
  }
  return {
    ...common,
    bus,
    exchange: required('exchange', '"orders"'),
    ...optional('exchangeType', exchangeType),
    routingKeys,
    queue: required('queue', '"keel.orders"'),
  };
}

function optional<K extends string, V>(key: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [key]: v }) as { [P in K]?: V };
}
