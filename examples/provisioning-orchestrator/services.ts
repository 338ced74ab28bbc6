/**
 * The services the provisioning exercise coordinates: a database, a storage bucket, an auth
 * realm and a billing subscription per tenant (see `tenantResource`), and the mailer that
 * sends the welcome email.
 */
import { object, shared, type ObjectContext } from '../../src/index.js';
import { simulated, type Simulation } from '../orchestration-kit/simulate.js';
import { tenantResource } from './resource.js';

/** Monthly price per plan, in whole cents. */
export const PLAN_PRICES = { free: 0, pro: 4_900, enterprise: 49_900 } as const;
export type Plan = keyof typeof PLAN_PRICES;

/** DatabaseService: a schema per tenant on the region's cluster. */
export const TenantDatabase = tenantResource(
  'TenantDatabase',
  'database',
  { code: 'database_failed', message: 'the database cluster refused to create the schema' },
  (ctx, req: { region: string }) => ({
    database: `tenant_${ctx.key.replace(/[^\w]/g, '_')}`,
    host: `db.${req.region}.keel.internal`,
    schemaVersion: 1,
  }),
);

/** StorageService: an S3 bucket per tenant. */
export const TenantStorage = tenantResource(
  'TenantStorage',
  'bucket',
  { code: 'bucket_failed', message: 'S3 refused to create the bucket' },
  (ctx, req: { region: string }) => ({
    bucket: `keel-${ctx.key.toLowerCase()}-${req.region}`,
    region: req.region,
  }),
);

/** AuthService: an identity realm per tenant, with its first admin. */
export const TenantAuth = tenantResource(
  'TenantAuth',
  'auth realm',
  { code: 'auth_failed', message: 'the identity provider refused to create the realm' },
  (ctx, req: { adminEmail: string }) => ({
    realm: `tenant-${ctx.key}`,
    clientId: ctx.uuid(),
    admin: req.adminEmail,
  }),
);

/** BillingService: a subscription per tenant. */
export const TenantBilling = tenantResource(
  'TenantBilling',
  'subscription',
  { code: 'billing_failed', message: 'the billing provider refused the subscription', status: 402 },
  (ctx, req: { plan: Plan }) => ({
    customerId: `cus_${ctx.key}`,
    subscriptionId: `sub_${ctx.uuid().slice(0, 8)}`,
    plan: req.plan,
    monthlyPrice: PLAN_PRICES[req.plan],
  }),
);

/** One delivered email. */
export interface WelcomeEmail {
  dedupeKey: string;
  subject: string;
  sentAt: string;
}

/** The mailer: one inbox per address; sends once per dedupe key. */
export const TenantMailer = object({
  name: 'TenantMailer',
  handlers: {
    send: async (
      ctx: ObjectContext,
      req: { dedupeKey: string; subject: string; simulate?: Simulation },
    ): Promise<WelcomeEmail> => {
      const inbox = (await ctx.get<WelcomeEmail[]>('inbox')) ?? [];
      const already = inbox.find((m) => m.dedupeKey === req.dedupeKey);
      if (already) return already;
      await simulated(ctx, req.simulate, {
        code: 'smtp_unavailable',
        message: 'the mail server refused the welcome email',
      });
      const email: WelcomeEmail = {
        dedupeKey: req.dedupeKey,
        subject: req.subject,
        sentAt: new Date(await ctx.now()).toISOString(),
      };
      ctx.set('inbox', [...inbox, email]);
      return email;
    },

    /** Every email sent to this address. */
    inbox: shared(async (ctx) => (await ctx.get<WelcomeEmail[]>('inbox')) ?? []),
  },
});
