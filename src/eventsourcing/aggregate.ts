/**
 * `eventSourced(...)`: an aggregate whose state is the fold of its events, as a keyed object.
 * A command reads the aggregate (latest snapshot + the events after it), decides new events and
 * appends them in ONE step: the events, the new head and (every N events) a snapshot are written
 * with `runWithWrites`, atomically with the step's journal entry. So a crash never leaves half a
 * command, a replay never appends twice, and per-key exclusivity keeps versions gap-free.
 */
import type { ObjectContext, ObjectSharedContext } from '../core/context.js';
import {
  object,
  shared,
  type Definition,
  type ObjectDefinition,
  type WrappedHandler,
} from '../core/definitions.js';
import type { Duration } from '../core/duration.js';
import { runWithWrites, type StepWrite } from '../core/replay.js';
import type { RetryPolicy } from '../core/retry.js';
import { EventSourcingError } from './errors.js';
import { runtimeOf } from './extension.js';
import { projectorOf, type ProjectorDefinition } from './projector.js';
import {
  encodeKey,
  fold,
  readEvents,
  readHead,
  scopesOf,
  seqAtTime,
  seqKey,
  snapshotAtOrBefore,
  type Head,
  type Scopes,
  type Snapshot,
} from './storage.js';
import type {
  CommandResult,
  Decide,
  EventPage,
  NewEvent,
  ProjectionConfig,
  StateView,
  StoredEvent,
} from './types.js';

/** How `eventSourced` is configured. */
export interface AggregateConfig<S, C extends Record<string, Decide<S>>> {
  /** The object's name (`POST /{name}/{key}/{command}`). */
  name: string;
  /** The state before the first event (a JSON value, copied for each aggregate), or a function of the key. */
  initial: S | ((key: string) => S);
  /** The state after `event`. Pure; may mutate `state` (it is a private copy). */
  apply(state: S, event: StoredEvent): S;
  /** The commands: each becomes an exclusive handler of the object. */
  commands: C;
  /** A snapshot of the state is stored after every N-th event (default 100). */
  snapshotEvery?: number;
  /** Read models kept up to date from every aggregate's events. */
  projections?: readonly ProjectionConfig[];
  /** Retry policy of the aggregate's and projector's handlers. */
  retry?: RetryPolicy;
  /** Retention of finished invocations. */
  retention?: Duration;
}

/** `stateAt`'s input: the state after event `seq`, or after the last event at or before `time`. */
export type StateAtQuery = { seq: number } | { time: number | string };

/** `events`' input: a page of the stream from event `from` (default 1), at most `limit` (default 100, max 1000). */
export interface EventsQuery {
  from?: number;
  limit?: number;
}

type CommandInput<D> = D extends Decide<any, infer I> ? I : never;

/** The handlers of an aggregate's object. */
export type AggregateHandlers<S, C> = {
  [K in keyof C]: (
    ctx: ObjectContext,
    input: CommandInput<C[K]> & { expectedVersion?: number },
  ) => Promise<CommandResult<S>>;
} & {
  state: WrappedHandler<ObjectSharedContext, void, StateView<S>>;
  stateAt: WrappedHandler<ObjectSharedContext, StateAtQuery, StateView<S>>;
  events: WrappedHandler<ObjectSharedContext, EventsQuery | undefined, EventPage>;
};

/** What `eventSourced` returns. */
export interface Aggregate<S, C> {
  readonly name: string;
  /** The aggregate's object: one command handler per command, plus `state`, `stateAt`, `events`. */
  readonly definition: ObjectDefinition<string, AggregateHandlers<S, C>>;
  /** The projector (`{name}Projections`, keyed by projection name), if there are projections. */
  readonly projector: ProjectorDefinition | undefined;
  /** Both, for `services`. */
  readonly definitions: Definition[];
}

const RESERVED = new Set(['state', 'stateAt', 'events']);
const NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * Defines an event-sourced aggregate: a keyed object (one per aggregate key) whose commands
 * append events, whose state is rebuilt from the latest snapshot and the events after it, and
 * whose history can be replayed to any point. Serve `definitions` and add the
 * {@link eventSourcing} extension to the engine.
 *
 * Every command's input may carry `expectedVersion`: the command is refused with
 * `version_conflict` (409) unless the aggregate has exactly that many events.
 *
 * @example
 * ```ts
 * const Account = eventSourced({
 *   name: 'Account',
 *   initial: { balance: 0 },
 *   apply: (s, e) => ({ balance: s.balance + (e.type === 'Deposited' ? 1 : -1) * (e.data as number) }),
 *   commands: {
 *     deposit: (s, amount: number) => ({ type: 'Deposited', data: amount }),
 *     withdraw: (s, amount: number) => {
 *       if (amount > s.balance) throw new TerminalError('insufficient funds', { code: 'insufficient_funds', status: 409 });
 *       return { type: 'Withdrawn', data: amount };
 *     },
 *   },
 *   snapshotEvery: 50,
 * });
 * const app = await startApp({ services: Account.definitions, extensions: [eventSourcing()] });
 * // POST /Account/acc-1/deposit 100 → { version: 1, events: [...], state: { balance: 100 } }
 * // POST /Account/acc-1/stateAt {"seq": 1}, POST /Account/acc-1/events {"from": 1}
 * ```
 */
export function eventSourced<S, C extends Record<string, Decide<S>>>(
  config: AggregateConfig<S, C>,
): Aggregate<S, C> {
  const fail = (what: string): never => {
    throw new EventSourcingError('invalid_aggregate', `eventSourced(${config?.name}): ${what}`);
  };
  if (typeof config?.name !== 'string' || !NAME.test(config.name)) {
    fail('name must be letters, digits, "_", "-" or "."');
  }
  if (typeof config.apply !== 'function') fail('apply must be a function (state, event) => state');
  if (config.commands === null || typeof config.commands !== 'object') {
    fail('commands must be an object of functions (state, input, meta) => events');
  }
  for (const [cmd, fn] of Object.entries(config.commands)) {
    if (typeof fn !== 'function') fail(`command ${cmd} is not a function`);
    if (RESERVED.has(cmd))
      fail(`command ${cmd} clashes with a built-in handler (state, stateAt, events)`);
  }
  const every = config.snapshotEvery ?? 100;
  if (!Number.isInteger(every) || every < 1)
    fail(`snapshotEvery must be an integer ≥ 1, got ${every}`);
  const projections = config.projections ?? [];
  const seen = new Set<string>();
  for (const p of projections) {
    if (typeof p?.name !== 'string' || !NAME.test(p.name))
      fail('a projection name must be letters, digits, "_", "-" or "."');
    if (seen.has(p.name)) fail(`two projections are named ${p.name}`);
    seen.add(p.name);
    if (typeof p.apply !== 'function') fail(`projection ${p.name}: apply must be a function`);
  }

  const name = config.name;
  const scopes = scopesOf(name);
  const apply = (state: S, event: StoredEvent): S => config.apply(state, event);
  const initialOf = (key: string): S =>
    typeof config.initial === 'function'
      ? (config.initial as (k: string) => S)(key)
      : structuredClone(config.initial);

  const options = {
    ...(config.retry ? { retry: config.retry } : {}),
    ...(config.retention ? { retention: config.retention } : {}),
  };
  const projector = projections.length
    ? projectorOf(name, scopes, projections, options)
    : undefined;

  const handlers: Record<string, unknown> = {};
  for (const [cmd, decide] of Object.entries(config.commands)) {
    handlers[cmd] = async (ctx: ObjectContext, input: unknown): Promise<CommandResult<S>> => {
      const expected = expectedVersionOf(input);
      const result = await runWithWrites(ctx, cmd, async () => {
        const { store, clock } = runtimeOf(ctx);
        const head = await readHead(store, scopes, ctx.key);
        if (expected !== undefined && expected !== head.version) {
          throw new EventSourcingError(
            'version_conflict',
            `${name} ${ctx.key} is at version ${head.version}, not ${expected}: read it again and decide anew`,
          );
        }
        const state = await loadAt(
          store,
          scopes,
          ctx.key,
          head.version,
          head.snapshot,
          every,
          initialOf,
          apply,
        );
        const now = Math.max(clock.now(), head.time ?? 0);
        const decided = eventsOf(
          decide(state.state, input, { key: ctx.key, version: head.version, now }),
          cmd,
        );
        const events: StoredEvent[] = [];
        const writes: StepWrite[] = [];
        let current = state.state;
        let snapshot = head.snapshot;
        for (const e of decided) {
          const stored: StoredEvent = {
            seq: head.version + events.length + 1,
            type: e.type,
            time: now,
            data: e.data ?? null,
          };
          events.push(stored);
          writes.push({
            op: 'kv.put',
            scope: scopes.events,
            key: seqKey(ctx.key, stored.seq),
            value: stored,
          });
          current = apply(current, stored);
          if (stored.seq % every === 0) {
            snapshot = stored.seq;
            const snap: Snapshot<S> = {
              seq: stored.seq,
              time: now,
              state: structuredClone(current),
            };
            writes.push({
              op: 'kv.put',
              scope: scopes.snapshots,
              key: seqKey(ctx.key, stored.seq),
              value: snap,
            });
          }
        }
        const version = head.version + events.length;
        if (events.length) {
          const next: Head = { version, time: now, snapshot };
          writes.push({ op: 'kv.put', scope: scopes.heads, key: encodeKey(ctx.key), value: next });
        }
        return { value: { version, events, state: current }, writes };
      });
      if (result.events.length && projector) {
        // Journaled sends: a crash after the append sends them on replay; the projector's
        // cursor makes a second delivery of the same events a no-op.
        for (const p of projections) {
          await ctx.objectSendClient(projector, p.name).deliver({ aggregate: ctx.key })
            .invocationId;
        }
      }
      return result;
    };
  }

  handlers.state = shared(async (ctx: ObjectSharedContext): Promise<StateView<S>> => {
    const { store } = runtimeOf(ctx);
    const head = await readHead(store, scopes, ctx.key);
    return loadAt(store, scopes, ctx.key, head.version, head.snapshot, every, initialOf, apply);
  });

  handlers.stateAt = shared(
    async (ctx: ObjectSharedContext, query: StateAtQuery): Promise<StateView<S>> => {
      const { store } = runtimeOf(ctx);
      const head = await readHead(store, scopes, ctx.key);
      const seq = await seqOf(query, head, (t) =>
        seqAtTime(store, scopes, ctx.key, head.version, t),
      );
      const snap = await snapshotAtOrBefore(store, scopes, ctx.key, seq, every);
      return loadAt(store, scopes, ctx.key, seq, snap?.seq ?? 0, every, initialOf, apply, snap);
    },
  );

  handlers.events = shared(
    async (ctx: ObjectSharedContext, query?: EventsQuery): Promise<EventPage> => {
      const { from, limit } = pageOf(query);
      const { store } = runtimeOf(ctx);
      const head = await readHead(store, scopes, ctx.key);
      const events = await readEvents(store, scopes, ctx.key, from, head.version, limit);
      const last = events.length ? events[events.length - 1]!.seq : from - 1;
      return { events, version: head.version, ...(last < head.version ? { next: last + 1 } : {}) };
    },
  );

  const definition = object({
    name,
    ...options,
    handlers: handlers as never,
  }) as unknown as ObjectDefinition<string, AggregateHandlers<S, C>>;
  return {
    name,
    definition,
    projector,
    definitions: projector ? [definition, projector] : [definition],
  };
}

/** The state after event `seq`, from the snapshot at `snapshotSeq` (0: the initial state). */
async function loadAt<S>(
  store: Parameters<typeof readHead>[0],
  scopes: Scopes,
  key: string,
  seq: number,
  snapshotSeq: number,
  every: number,
  initialOf: (key: string) => S,
  apply: (s: S, e: StoredEvent) => S,
  known?: Snapshot,
): Promise<StateView<S>> {
  let snap = known;
  if (!snap && snapshotSeq > 0 && snapshotSeq <= seq) {
    snap = (await store.getKv(scopes.snapshots, seqKey(key, snapshotSeq)))?.value as
      Snapshot | undefined;
    snap ??= await snapshotAtOrBefore(store, scopes, key, seq, every);
  }
  const base = snap ? structuredClone(snap.state as S) : initialOf(key);
  const from = snap ? snap.seq + 1 : 1;
  const events = seq >= from ? await readEvents(store, scopes, key, from, seq) : [];
  if (events.length !== Math.max(0, seq - from + 1)) {
    throw new Error(
      `${key}: events ${from}..${seq} are not all in the store; the stream is damaged`,
    );
  }
  const last = events.length ? events[events.length - 1]! : undefined;
  const time = last?.time ?? snap?.time;
  return {
    version: seq,
    ...(time === undefined ? {} : { time }),
    state: fold(base, events, apply),
  };
}

function expectedVersionOf(input: unknown): number | undefined {
  if (input === null || typeof input !== 'object' || !('expectedVersion' in input))
    return undefined;
  const v = input.expectedVersion;
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || (v as number) < 0) {
    throw new EventSourcingError(
      'invalid_event_query',
      `expectedVersion must be an integer ≥ 0, got ${JSON.stringify(v)}`,
    );
  }
  return v as number;
}

function eventsOf(out: unknown, cmd: string): NewEvent[] {
  const list = out === undefined || out === null ? [] : Array.isArray(out) ? out : [out];
  return list.map((e: unknown, i) => {
    if (
      e === null ||
      typeof e !== 'object' ||
      typeof (e as NewEvent).type !== 'string' ||
      (e as NewEvent).type === ''
    ) {
      throw new EventSourcingError(
        'invalid_event',
        `command ${cmd} returned ${JSON.stringify(e)} as event ${i}; return { type: 'Name', data } (or an array of them)`,
      );
    }
    const { type, data } = e as NewEvent;
    // Events are stored as JSON: what is stored is what is replayed.
    return {
      type,
      data: data === undefined ? null : (JSON.parse(JSON.stringify(data)) as unknown),
    };
  });
}

async function seqOf(
  query: unknown,
  head: Head,
  atTime: (t: number) => Promise<number>,
): Promise<number> {
  const bad = (why: string): never => {
    throw new EventSourcingError(
      'invalid_event_query',
      `stateAt takes {"seq": n} or {"time": epoch ms | ISO date}: ${why}`,
    );
  };
  if (query === null || typeof query !== 'object') return bad(`got ${JSON.stringify(query)}`);
  const q = query as Record<string, unknown>;
  if ('seq' in q) {
    if (!Number.isInteger(q.seq) || (q.seq as number) < 0)
      return bad(`seq ${JSON.stringify(q.seq)} is not an integer ≥ 0`);
    if ((q.seq as number) > head.version)
      return bad(`seq ${String(q.seq)} is past the last event (version ${head.version})`);
    return q.seq as number;
  }
  if ('time' in q) {
    const t = typeof q.time === 'string' ? Date.parse(q.time) : q.time;
    if (typeof t !== 'number' || !Number.isFinite(t))
      return bad(`time ${JSON.stringify(q.time)} is not a date`);
    return atTime(t);
  }
  return bad('neither seq nor time given');
}

function pageOf(query: unknown): { from: number; limit: number } {
  if (query === undefined || query === null) return { from: 1, limit: 100 };
  const bad = (why: string): never => {
    throw new EventSourcingError(
      'invalid_event_query',
      `events takes {"from"?: n ≥ 1, "limit"?: 1..1000}: ${why}`,
    );
  };
  if (typeof query !== 'object') return bad(`got ${JSON.stringify(query)}`);
  const q = query as Record<string, unknown>;
  const from = q.from ?? 1;
  const limit = q.limit ?? 100;
  if (!Number.isInteger(from) || (from as number) < 1) return bad(`from ${JSON.stringify(from)}`);
  if (!Number.isInteger(limit) || (limit as number) < 1 || (limit as number) > 1000)
    return bad(`limit ${JSON.stringify(limit)}`);
  return { from: from as number, limit: limit as number };
}
