/**
 * Seed 001, exercise 5: multi-tenant SaaS provisioning. `ProvisioningOrchestrator` creates a
 * tenant's database, storage bucket, auth realm and billing subscription, then sends the
 * welcome email. It is all or nothing: when any step fails (or does not answer in time),
 * whatever was created is deleted, newest first. The workflow key is the tenant id, so
 * provisioning a tenant twice returns the first result instead of creating anything again.
 */
import { z } from 'zod';
import {
  handler,
  workflow,
  type Saga,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '../../src/index.js';
import { orchestrate, readStatus } from '../orchestration-kit/status.js';
import { simulations } from '../orchestration-kit/simulate.js';
import {
  TenantAuth,
  TenantBilling,
  TenantDatabase,
  TenantMailer,
  TenantStorage,
  type Plan,
} from './services.js';

/** How long a resource service may take before the tenant is given up (and cleaned up). */
export const STEP_TIMEOUT = '5m';

/** A tenant, as `POST /ProvisioningOrchestrator/{tenantId}/run` takes it. */
export const TenantRequest = z.object({
  name: z.string().min(1),
  plan: z.enum(['free', 'pro', 'enterprise'] satisfies Plan[]),
  adminEmail: z.string().min(3),
  /** Default `eu-west-1`. */
  region: z.string().min(1).optional(),
  simulate: simulations(['database', 'storage', 'auth', 'billing', 'email']),
});
export type TenantRequest = z.infer<typeof TenantRequest>;

async function provision(ctx: WorkflowContext, s: Saga, t: TenantRequest) {
  const tenantId = ctx.key;
  const region = t.region ?? 'eu-west-1';
  const db = ctx.objectClient(TenantDatabase, tenantId);
  const storage = ctx.objectClient(TenantStorage, tenantId);
  const auth = ctx.objectClient(TenantAuth, tenantId);
  const billing = ctx.objectClient(TenantBilling, tenantId);
  // Every undo deletes by tenant id, so it also cleans up a create that timed out (in doubt).
  const cleanup = (name: string, remove: () => PromiseLike<unknown>) => ({
    timeout: STEP_TIMEOUT,
    undoWhen: 'maybe' as const,
    undoName: name,
    undo: remove,
  });

  const database = await s.invoke(
    'create database',
    () => db.create({ region, simulate: t.simulate?.database }),
    cleanup('drop database', () => db.remove()),
  );
  const bucket = await s.invoke(
    'create storage bucket',
    () => storage.create({ region, simulate: t.simulate?.storage }),
    cleanup('delete storage bucket', () => storage.remove()),
  );
  const realm = await s.invoke(
    'configure authentication',
    () => auth.create({ adminEmail: t.adminEmail, simulate: t.simulate?.auth }),
    cleanup('remove authentication', () => auth.remove()),
  );
  const subscription = await s.invoke(
    'set up billing',
    () => billing.create({ plan: t.plan, simulate: t.simulate?.billing }),
    cleanup('cancel billing', () => billing.remove()),
  );
  // The last step has nothing to undo; its failure still cleans up the four above.
  await s.invoke(
    'send welcome email',
    () =>
      ctx.objectClient(TenantMailer, t.adminEmail).send({
        dedupeKey: `welcome-${tenantId}`,
        subject: `Welcome to Keel, ${t.name}! Sign in at https://${realm.realm}.keel.example`,
        simulate: t.simulate?.email,
      }),
    { timeout: STEP_TIMEOUT },
  );

  return {
    tenantId,
    name: t.name,
    plan: t.plan,
    database: `${database.host}/${database.database}`,
    bucket: bucket.bucket,
    authRealm: realm.realm,
    subscriptionId: subscription.subscriptionId,
  };
}

/**
 * The tenant provisioning orchestrator: one workflow per tenant id. `status` shows the step,
 * the history and, after a failure, which step failed and what was cleaned up.
 *
 * @example
 * ```sh
 * curl -X POST localhost:9080/ProvisioningOrchestrator/acme/run -H 'content-type: application/json' \
 *   -d '{"name":"Acme Corp","plan":"pro","adminEmail":"ops@acme.example"}'
 * ```
 */
export const ProvisioningOrchestrator = workflow({
  name: 'ProvisioningOrchestrator',
  run: handler({ input: TenantRequest }, async (ctx: WorkflowContext, t) => {
    return orchestrate(ctx, (s) => provision(ctx, s, t));
  }),
  handlers: {
    /** The current step and the history of this tenant's provisioning. */
    status: async (ctx: WorkflowSharedContext) => readStatus(ctx),
  },
});
