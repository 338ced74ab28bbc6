/**
 * The shape every tenant resource service of the provisioning exercise shares: one object per
 * tenant id, holding the resource it created for that tenant. `create` makes it once (a second
 * call returns it), `remove` deletes it once, and a `remove` that arrives before its `create`
 * (the create timed out on the orchestrator's side) leaves a tombstone, so the late create is
 * refused instead of leaking a resource nobody will clean up.
 */
import {
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';
import {
  simulated,
  type SimulatedFailure,
  type Simulation,
} from '../orchestration-kit/simulate.js';

/** How long creating a resource takes. */
export const CREATE_TIME = '1s';

/** A tenant's resource record. */
export interface TenantResource<R> {
  tenantId: string;
  status: 'active' | 'deleted';
  /** What was created; absent for a tombstone (deleted before it was created). */
  resource?: R;
  /** Every create and delete that took effect, in order (each at most once). */
  history: Array<{ action: 'created' | 'deleted'; at: string }>;
}

/**
 * Defines a tenant resource service.
 *
 * @example
 * ```ts
 * export const TenantStorage = tenantResource('TenantStorage', 'bucket',
 *   { code: 'bucket_failed', message: 'S3 refused to create the bucket' },
 *   async (ctx, req: { region: string }) => ({ bucket: `keel-${ctx.key}`, region: req.region }));
 * ```
 */
export function tenantResource<N extends string, Req extends object, R>(
  name: N,
  what: string,
  failure: SimulatedFailure,
  make: (ctx: ObjectContext, req: Req) => R | Promise<R>,
) {
  const read = async (ctx: ObjectSharedContext) =>
    (await ctx.get<TenantResource<R>>('resource')) ?? null;
  return object({
    name,
    handlers: {
      /** Creates the tenant's resource, once. */
      create: async (ctx: ObjectContext, req: Req & { simulate?: Simulation }): Promise<R> => {
        const existing = await read(ctx);
        if (existing?.status === 'deleted') {
          throw new TerminalError(`the ${what} of tenant ${ctx.key} was deleted`, {
            code: 'resource_deleted',
            status: 409,
          });
        }
        if (existing?.resource !== undefined) return existing.resource;
        await ctx.sleep(CREATE_TIME);
        await simulated(ctx, req.simulate, failure);
        const resource = await make(ctx, req);
        const at = new Date(await ctx.now()).toISOString();
        ctx.set('resource', {
          tenantId: ctx.key,
          status: 'active',
          resource,
          history: [{ action: 'created', at }],
        } satisfies TenantResource<R>);
        return resource;
      },

      /** Deletes the tenant's resource, once; leaves a tombstone if it never existed. */
      remove: async (ctx: ObjectContext): Promise<TenantResource<R>> => {
        const existing = await read(ctx);
        if (existing?.status === 'deleted') return existing;
        const at = new Date(await ctx.now()).toISOString();
        const deleted: TenantResource<R> = {
          tenantId: ctx.key,
          status: 'deleted',
          ...(existing?.resource === undefined ? {} : { resource: existing.resource }),
          history: [
            ...(existing?.history ?? []),
            ...(existing ? [{ action: 'deleted' as const, at }] : []),
          ],
        };
        ctx.set('resource', deleted);
        return deleted;
      },

      /** The record, or null when nothing was ever created or deleted. */
      get: shared(async (ctx) => read(ctx)),
    },
  });
}
