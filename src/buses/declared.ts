/**
 * Subscriptions declared as data (a `subscription Name { ... }` block of the declaration file,
 * or its JSON form): the target is named by a string (`Service.handler`), and the ordering key
 * and dedupe id by paths into the message (`payload.customerId`, `headers.x-event-id`). They
 * become code subscriptions when the app starts, with errors that name the subscription.
 */
import type { Definition } from '../core/definitions.js';
import { UsageError } from '../core/errors.js';
import type { EngineExtension } from '../engine/extension.js';
import { labelled } from './admin.js';
import { readSubscriptionsFile } from './dsl.js';
import { createBuses, type Buses } from './setup.js';
import type { BusMessage, Subscription } from './types.js';

/** A subscription as a declaration file states it. */
export type DeclaredSubscription = {
  name: string;
  /** `Service.handler`: a service, keyed object or workflow of the app, and its handler. */
  target: string;
  /** Path to the ordering key: `payload.customerId`, `headers.tenant`, `subject`, `id`. */
  key?: string;
  /** Path to the dedupe id (default: the message id). */
  dedupeBy?: string;
  maxAttempts?: number;
  prefetch?: number;
} & (
  | {
      bus: 'rabbitmq';
      exchange: string;
      exchangeType?: 'topic' | 'direct' | 'fanout';
      routingKeys: string[];
      queue: string;
      /** The dead-letter queue. */
      deadLetter?: string;
    }
  | {
      bus: 'nats';
      stream: string;
      subject: string;
      durable: string;
      /** The dead-letter subject. */
      deadLetter?: string;
    }
  | {
      bus: 'mqtt';
      /** The topic filter. */
      topic: string;
      /** The dead-letter topic. */
      deadLetter?: string;
    }
);

/** The roots a key or dedupe path may start from. */
const ROOTS = ['payload', 'headers', 'subject', 'id'];

/** Checks a path (`payload.customerId`); returns why it is wrong, or undefined. */
export function pathProblem(path: string): string | undefined {
  const parts = path.split('.');
  if (!ROOTS.includes(parts[0]!))
    return `a path starts with ${ROOTS.join(', ')} (as in payload.customerId), not "${parts[0]}"`;
  if ((parts[0] === 'subject' || parts[0] === 'id') && parts.length > 1)
    return `${parts[0]} is a string: write ${parts[0]} alone`;
  if (parts[0] === 'headers' && parts.length !== 2) return 'write headers.NAME (one header name)';
  if (parts.some((p) => p === '')) return `"${path}" has an empty segment`;
  return undefined;
}

/** The value at `path` in a message, as a string; throws (dead-lettering it) when missing. */
function pathFn(subscription: string, what: string, path: string): (m: BusMessage) => string {
  const parts = path.split('.');
  return labelled((m: BusMessage) => {
    let v: unknown = m;
    for (const p of parts) {
      v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[p] : undefined;
    }
    if (typeof v === 'string' && v !== '') return v;
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    throw new Error(
      `subscription ${subscription}: the message has no ${what} at ${path} (a non-empty string or number)`,
    );
  }, path);
}

/**
 * Turns declared subscriptions into code subscriptions against the app's definitions. Throws a
 * `UsageError` naming the subscription for a target that does not exist, a handler it lacks,
 * or a keyed target without `key`.
 *
 * @example
 * ```ts
 * const subs = resolveSubscriptions(
 *   [{ name: 'orders', bus: 'rabbitmq', exchange: 'orders', routingKeys: ['order.*'],
 *      queue: 'keel.orders', target: 'Shipping.onOrder', key: 'payload.customerId' }],
 *   [Shipping],
 * );
 * const buses = createBuses({ subscriptions: subs });
 * ```
 */
export function resolveSubscriptions(
  declared: readonly DeclaredSubscription[],
  definitions: readonly Definition[],
): Subscription[] {
  const byName = new Map(definitions.map((d) => [d.name, d]));
  return declared.map((d) => {
    const where = `subscription ${d.name}`;
    const dot = d.target.lastIndexOf('.');
    const service = dot > 0 ? d.target.slice(0, dot) : '';
    const handler = dot > 0 ? d.target.slice(dot + 1) : '';
    if (!service || !handler)
      throw new UsageError(`${where}: target "${d.target}" must be Service.handler`);
    const definition = byName.get(service);
    if (!definition) {
      const known = definitions
        .filter((x) => !x.name.startsWith('keel.'))
        .map((x) => x.name)
        .join(', ');
      throw new UsageError(
        `${where}: target ${d.target}: no service, object or workflow named ${service} in this app (it has: ${known || 'none'})`,
      );
    }
    if (!(handler in definition.handlers))
      throw new UsageError(
        `${where}: target ${d.target}: ${service} has no handler "${handler}" (it has: ${Object.keys(definition.handlers).join(', ')})`,
      );
    for (const [what, path] of [
      ['key', d.key],
      ['dedupe_by', d.dedupeBy],
    ] as const) {
      const problem = path === undefined ? undefined : pathProblem(path);
      if (problem) throw new UsageError(`${where}: ${what}: ${problem}`);
    }
    const base = {
      name: d.name,
      target: { definition, handler },
      ...(d.key !== undefined ? { key: pathFn(d.name, 'key', d.key) } : {}),
      ...(d.dedupeBy !== undefined ? { dedupeBy: pathFn(d.name, 'dedupe id', d.dedupeBy) } : {}),
      ...(d.maxAttempts !== undefined ? { maxAttempts: d.maxAttempts } : {}),
      ...(d.prefetch !== undefined ? { prefetch: d.prefetch } : {}),
    };
    if (d.bus === 'mqtt')
      return {
        ...base,
        bus: 'mqtt' as const,
        topic: d.topic,
        ...(d.deadLetter !== undefined ? { deadLetter: { topic: d.deadLetter } } : {}),
      };
    return d.bus === 'rabbitmq'
      ? {
          ...base,
          bus: 'rabbitmq' as const,
          exchange: d.exchange,
          routingKeys: d.routingKeys,
          queue: d.queue,
          ...(d.exchangeType ? { exchangeType: d.exchangeType } : {}),
          ...(d.deadLetter !== undefined ? { deadLetter: { queue: d.deadLetter } } : {}),
        }
      : {
          ...base,
          bus: 'nats' as const,
          stream: d.stream,
          subject: d.subject,
          durable: d.durable,
          ...(d.deadLetter !== undefined ? { deadLetter: { subject: d.deadLetter } } : {}),
        };
  });
}

/**
 * The subscriptions declared in a declaration file, resolved against the app's services and
 * its extensions' services: the file is read and every target checked before the store opens.
 *
 * @example
 * ```ts
 * const subs = await declaredSubscriptions('integrations.cai', [Shipping], extensions);
 * ```
 */
export async function declaredSubscriptions(
  file: string,
  services: readonly Definition[],
  extensions: readonly EngineExtension[],
): Promise<Subscription[]> {
  const declared = await readSubscriptionsFile(file);
  if (declared.length === 0) return [];
  return resolveSubscriptions(declared, [
    ...services,
    ...extensions.flatMap((e) => e.services ?? []),
  ]);
}

/**
 * The extensions with the declared subscriptions added: to the `buses` extension given in code
 * if there is one (before it is installed), else in a new one.
 *
 * @example
 * ```ts
 * const extensions = withSubscriptions(options.extensions ?? [], subscriptions);
 * ```
 */
export function withSubscriptions(
  extensions: readonly EngineExtension[],
  subscriptions: readonly Subscription[],
): EngineExtension[] {
  if (subscriptions.length === 0) return [...extensions];
  const existing = extensions.find((e) => e.name === 'buses') as Partial<Buses> | undefined;
  if (existing === undefined) return [...extensions, createBuses({ subscriptions })];
  if (typeof existing.declare !== 'function')
    throw new UsageError('buses: the extension named "buses" was not made by createBuses()');
  existing.declare(subscriptions);
  return [...extensions];
}
