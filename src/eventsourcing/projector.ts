/**
 * The projector of an aggregate: one keyed object, `{Aggregate}Projections`, keyed by projection
 * name. Its exclusive handlers are the only writers of a projection's views and cursors (one per
 * aggregate key: the seq of the last event applied), and each step writes the views and the
 * cursor atomically with its journal entry, so every event is applied exactly once, in order per
 * aggregate, whatever crashes: a re-delivery finds the cursor past it.
 */
import type { ObjectContext, ObjectSharedContext } from '../core/context.js';
import { object, shared, type ObjectDefinition } from '../core/definitions.js';
import type { RetryPolicy } from '../core/retry.js';
import type { Duration } from '../core/duration.js';
import { runWithWrites, type StepWrite } from '../core/replay.js';
import type { Store } from '../store/types.js';
import { EventSourcingError } from './errors.js';
import { runtimeOf } from './extension.js';
import { decodeKey, encodeKey, readEvents, readHead, type Head, type Scopes } from './storage.js';
import type { ProjectionConfig } from './types.js';

/** Events applied per step of a delivery (a backlog is caught up in several steps). */
const BATCH = 500;

/** What `deliver` and `catchUp` answer. */
export interface DeliveryReport {
  /** Events applied by this call. */
  applied: number;
}

/** What `rebuild` answers. */
export interface RebuildReport {
  aggregates: number;
  events: number;
  views: number;
}

/** What `view` answers. */
export interface ProjectionView<V = unknown> {
  key: string;
  view: V;
}

function projScopes(aggregate: string, projection: string) {
  return {
    views: `keel.es.${aggregate}.proj.${projection}.views`,
    cursors: `keel.es.${aggregate}.proj.${projection}.cursors`,
  };
}

/** Every row of a scope (`listKv` pages). */
async function listAll(store: Store, scope: string) {
  const out: Array<{ key: string; value: unknown }> = [];
  let after: string | undefined;
  for (;;) {
    const page = await store.listKv(scope, {
      ...(after === undefined ? {} : { after }),
      limit: 500,
    });
    out.push(...page);
    if (page.length < 500) return out;
    after = page[page.length - 1]!.key;
  }
}

const initialView = (p: ProjectionConfig, key: string): unknown =>
  typeof p.initial === 'function'
    ? (p.initial as (k: string) => unknown)(key)
    : structuredClone(p.initial);

const viewKeyOf = (
  p: ProjectionConfig,
  e: Parameters<ProjectionConfig['apply']>[1],
  agg: string,
) => (p.key ? p.key(e, agg) : 'all');

/**
 * Builds the projector definition of aggregate `aggregate` (an internal part of `eventSourced`).
 */
export function projectorOf(
  aggregate: string,
  scopes: Scopes,
  projections: readonly ProjectionConfig[],
  options: { retry?: RetryPolicy; retention?: Duration },
) {
  const byName = new Map(projections.map((p) => [p.name, p]));
  const find = (name: string): ProjectionConfig => {
    const p = byName.get(name);
    if (!p) {
      throw new EventSourcingError(
        'invalid_event_query',
        `${aggregate} has no projection "${name}"; its projections: ${[...byName.keys()].join(', ')}`,
      );
    }
    return p;
  };

  /** Applies the events of one aggregate past the projection's cursor, in steps of BATCH. */
  async function deliverOne(ctx: ObjectContext, p: ProjectionConfig, agg: string): Promise<number> {
    const s = projScopes(aggregate, p.name);
    let applied = 0;
    for (let round = 0; ; round++) {
      const step = await runWithWrites(
        ctx,
        `project ${agg}${round ? ` #${round}` : ''}`,
        async () => {
          const { store } = runtimeOf(ctx);
          const cursor = ((await store.getKv(s.cursors, encodeKey(agg)))?.value as number) ?? 0;
          const head = await readHead(store, scopes, agg);
          if (head.version <= cursor) return { value: { applied: 0, more: false }, writes: [] };
          const to = Math.min(head.version, cursor + BATCH);
          const events = await readEvents(store, scopes, agg, cursor + 1, to);
          const views = new Map<string, unknown>();
          for (const e of events) {
            const vk = viewKeyOf(p, e, agg);
            if (!views.has(vk)) {
              const row = await store.getKv(s.views, vk);
              views.set(vk, row ? row.value : initialView(p, vk));
            }
            views.set(vk, p.apply(views.get(vk), e, agg));
          }
          const last = events.length ? events[events.length - 1]!.seq : cursor;
          const writes: StepWrite[] = [...views].map(([key, value]) => ({
            op: 'kv.put',
            scope: s.views,
            key,
            value,
          }));
          writes.push({ op: 'kv.put', scope: s.cursors, key: encodeKey(agg), value: last });
          return { value: { applied: events.length, more: last < head.version }, writes };
        },
      );
      applied += step.applied;
      if (!step.more) return applied;
    }
  }

  return object({
    name: `${aggregate}Projections`,
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.retention ? { retention: options.retention } : {}),
    handlers: {
      /** Applies the new events of one aggregate (sent by each command that appended). */
      deliver: async (
        ctx: ObjectContext,
        input: { aggregate: string },
      ): Promise<DeliveryReport> => {
        const p = find(ctx.key);
        if (typeof input?.aggregate !== 'string') {
          throw new EventSourcingError(
            'invalid_event_query',
            'deliver takes {"aggregate": "<key>"}',
          );
        }
        return { applied: await deliverOne(ctx, p, input.aggregate) };
      },

      /** Applies whatever any aggregate has that the projection lacks (a projection added later). */
      catchUp: async (ctx: ObjectContext): Promise<DeliveryReport> => {
        const p = find(ctx.key);
        const keys = await ctx.run('list aggregates', async () =>
          (await listAll(runtimeOf(ctx).store, scopes.heads)).map((r) => decodeKey(r.key)),
        );
        let applied = 0;
        for (const agg of keys) applied += await deliverOne(ctx, p, agg);
        return { applied };
      },

      /**
       * Throws the views away and computes them again from every event of every aggregate, in
       * one step: the new views replace the old atomically. Holds all views in memory meanwhile.
       */
      rebuild: async (ctx: ObjectContext): Promise<RebuildReport> => {
        const p = find(ctx.key);
        const s = projScopes(aggregate, p.name);
        return runWithWrites(ctx, 'rebuild', async () => {
          const { store } = runtimeOf(ctx);
          const views = new Map<string, unknown>();
          const cursors = new Map<string, number>();
          let count = 0;
          for (const row of await listAll(store, scopes.heads)) {
            const agg = decodeKey(row.key);
            const head = row.value as Head;
            const events = await readEvents(store, scopes, agg, 1, head.version);
            for (const e of events) {
              const vk = viewKeyOf(p, e, agg);
              const view = views.has(vk) ? views.get(vk) : initialView(p, vk);
              views.set(vk, p.apply(view, e, agg));
            }
            count += events.length;
            cursors.set(encodeKey(agg), events.length ? events[events.length - 1]!.seq : 0);
          }
          const writes: StepWrite[] = [];
          for (const old of await listAll(store, s.views)) {
            if (!views.has(old.key)) writes.push({ op: 'kv.delete', scope: s.views, key: old.key });
          }
          for (const old of await listAll(store, s.cursors)) {
            if (!cursors.has(old.key))
              writes.push({ op: 'kv.delete', scope: s.cursors, key: old.key });
          }
          for (const [key, value] of views)
            writes.push({ op: 'kv.put', scope: s.views, key, value });
          for (const [key, value] of cursors) {
            writes.push({ op: 'kv.put', scope: s.cursors, key, value });
          }
          return { value: { aggregates: cursors.size, events: count, views: views.size }, writes };
        });
      },

      /** One view of the projection (default `'all'`); its initial value before any event. */
      view: shared(async (ctx: ObjectSharedContext, key?: string): Promise<ProjectionView> => {
        const p = find(ctx.key);
        const vk = key ?? 'all';
        if (typeof vk !== 'string' || vk === '') {
          throw new EventSourcingError(
            'invalid_event_query',
            'view takes a view key (a string) or nothing',
          );
        }
        const row = await runtimeOf(ctx).store.getKv(projScopes(aggregate, p.name).views, vk);
        return { key: vk, view: row ? row.value : initialView(p, vk) };
      }),

      /** Every view of the projection, in key order. */
      views: shared(async (ctx: ObjectSharedContext): Promise<ProjectionView[]> => {
        const p = find(ctx.key);
        const rows = await listAll(runtimeOf(ctx).store, projScopes(aggregate, p.name).views);
        return rows.map((r) => ({ key: r.key, view: r.value }));
      }),

      /** How far the projection has applied each aggregate's events: aggregate key → seq. */
      cursors: shared(async (ctx: ObjectSharedContext): Promise<Record<string, number>> => {
        const p = find(ctx.key);
        const rows = await listAll(runtimeOf(ctx).store, projScopes(aggregate, p.name).cursors);
        return Object.fromEntries(rows.map((r) => [decodeKey(r.key), r.value as number]));
      }),
    },
  });
}

/** The type of a projector definition. */
export type ProjectorDefinition = ReturnType<typeof projectorOf>;
export type { ObjectDefinition };
