/**
 * Seed 001, exercise 5 (multi-tenant provisioning). Success criteria:
 * - all resources created   → "provisions a tenant's database, bucket, auth and billing ..."
 * - cleanup on failure      → "cleans up what was created when <step> fails" (each step),
 *                             "cleans up a resource whose creation timed out ..."
 * - idempotent provisioning → "provisions a tenant id once ..."
 * - status tracking         → "provisions ..." and the cleanup cases read `status`; the tenant
 *                             id keys every resource ("tenant ID tracked")
 */
import { describe, expect, it } from 'vitest';
import {
  ProvisioningOrchestrator,
  TenantAuth,
  TenantBilling,
  TenantDatabase,
  TenantMailer,
  TenantStorage,
  tenantProvisioning,
} from '../../../examples/provisioning-orchestrator/index.js';
import type { TenantRequest } from '../../../examples/provisioning-orchestrator/orchestrator.js';
import type { Harness } from '../../helpers.js';
import { driveUntil, events, useHarness } from './support.js';

const start = useHarness(tenantProvisioning);

const tenant = (patch: Partial<TenantRequest> = {}): TenantRequest => ({
  name: 'Acme Corp',
  plan: 'pro',
  adminEmail: 'ops@acme.example',
  ...patch,
});

const FINAL = ['completed', 'compensated', 'compensation_failed'];

/** Starts provisioning and moves the clock until it has finished; returns its result. */
async function provision(h: Harness, id: string, input: TenantRequest, step = '1s') {
  const { invocationId } = await h.engine.send({
    service: 'ProvisioningOrchestrator',
    handler: 'run',
    key: id,
    input,
  });
  const status = () => h.engine.client(ProvisioningOrchestrator, id).status();
  await driveUntil(h, async () => FINAL.includes((await status()).state), 'provisioned', step);
  return { result: (await h.engine.attach(invocationId)) as any, status: await status() };
}

const resources = (h: Harness, id: string) =>
  Promise.all([
    h.engine.client(TenantDatabase, id).get(),
    h.engine.client(TenantStorage, id).get(),
    h.engine.client(TenantAuth, id).get(),
    h.engine.client(TenantBilling, id).get(),
  ]);

const STEPS = [
  ['database', 'create database', 0],
  ['storage', 'create storage bucket', 1],
  ['auth', 'configure authentication', 2],
  ['billing', 'set up billing', 3],
  ['email', 'send welcome email', 4],
] as const;
const UNDOS = ['drop database', 'delete storage bucket', 'remove authentication', 'cancel billing'];

describe('ProvisioningOrchestrator', () => {
  it("provisions a tenant's database, bucket, auth and billing, then welcomes its admin", async () => {
    const h = await start();
    const { result, status } = await provision(h, 'acme', tenant());
    expect(result).toMatchObject({
      status: 'completed',
      tenantId: 'acme',
      plan: 'pro',
      database: 'db.eu-west-1.keel.internal/tenant_acme',
      bucket: 'keel-acme-eu-west-1',
      authRealm: 'tenant-acme',
      subscriptionId: expect.stringMatching(/^sub_/),
    });
    for (const r of await resources(h, 'acme')) {
      expect(r).toMatchObject({ tenantId: 'acme', status: 'active' });
    }
    expect((await h.engine.client(TenantBilling, 'acme').get())?.resource).toMatchObject({
      plan: 'pro',
      monthlyPrice: 4_900,
    });
    const inbox = await h.engine.client(TenantMailer, 'ops@acme.example').inbox();
    expect(inbox.map((m) => m.subject)).toEqual([
      'Welcome to Keel, Acme Corp! Sign in at https://tenant-acme.keel.example',
    ]);
    expect(status.state).toBe('completed');
    expect(events(status).filter((e) => e.endsWith(':completed'))).toEqual([
      ...STEPS.map(([, step]) => `${step}:completed`),
      'run:completed',
    ]);
  });

  it.each(STEPS)('cleans up what was created when %s fails', async (what, step, failedAt) => {
    const h = await start();
    const id = `t-${what}`;
    const { result, status } = await provision(h, id, tenant({ simulate: { [what]: 'fail' } }));
    const created = UNDOS.slice(0, failedAt).reverse();
    expect(result).toMatchObject({ status: 'compensated', failedStep: step, compensated: created });
    expect(status).toMatchObject({ state: 'compensated', failure: { step } });
    // Nothing is left active: what was created is deleted, the rest was never made.
    const after = await resources(h, id);
    after.forEach((r, i) => {
      if (i < failedAt) {
        expect(r?.status).toBe('deleted');
        expect(r?.history.map((e) => e.action)).toEqual(['created', 'deleted']);
      } else {
        expect(r).toBeNull();
      }
    });
  });

  it('cleans up a resource whose creation timed out, once it finally answers', async () => {
    const h = await start();
    const { result } = await provision(
      h,
      't-slow',
      tenant({ simulate: { billing: 'stall' } }),
      '5m',
    );
    expect(result).toMatchObject({
      status: 'compensated',
      failedStep: 'set up billing',
      error: { code: 'timeout' },
      compensated: ['cancel billing', ...UNDOS.slice(0, 3).reverse()],
    });
    // The hung subscription was created an hour later, then cancelled by the cleanup.
    const billing = await h.engine.client(TenantBilling, 't-slow').get();
    expect(billing?.history.map((e) => e.action)).toEqual(['created', 'deleted']);
    expect((await resources(h, 't-slow')).every((r) => r?.status === 'deleted')).toBe(true);
  });

  it('provisions a tenant id once, however often and concurrently it is asked', async () => {
    const h = await start();
    const [a, b] = await Promise.all([
      h.engine.send({
        service: 'ProvisioningOrchestrator',
        handler: 'run',
        key: 'dup',
        input: tenant(),
      }),
      h.engine.send({
        service: 'ProvisioningOrchestrator',
        handler: 'run',
        key: 'dup',
        input: tenant(),
      }),
    ]);
    expect(b.invocationId).toBe(a.invocationId);
    const { result } = await provision(h, 'dup', tenant({ plan: 'enterprise' }));
    expect(result).toMatchObject({ status: 'completed', plan: 'pro' });
    expect(await h.engine.client(ProvisioningOrchestrator, 'dup').run(tenant())).toEqual(result);
    for (const r of await resources(h, 'dup')) expect(r?.history).toHaveLength(1);
    expect(await h.engine.client(TenantMailer, 'ops@acme.example').inbox()).toHaveLength(1);
    // The resource services are idempotent on their own too.
    const db = await h.engine.client(TenantDatabase, 'dup').get();
    const again = h.engine.client(TenantDatabase, 'dup').create({ region: 'us-east-1' });
    await h.clock.advance('1s');
    expect(await again).toEqual(db?.resource);
  });

  it('refuses a create that arrives after its cleanup, so nothing leaks', async () => {
    const h = await start();
    await h.engine.client(TenantStorage, 'ghost').remove();
    const late = h.engine.client(TenantStorage, 'ghost').create({ region: 'eu-west-1' });
    await expect(late).rejects.toMatchObject({ code: 'resource_deleted' });
    expect((await h.engine.client(TenantStorage, 'ghost').get())?.history).toEqual([]);
  });
});
