import { z } from 'zod';
import { handler, object, shared, TerminalError, type ObjectContext } from '../../src/index.js';
import { wants } from './faults.js';

/** The public hostname the deployment saga points at production (the object key). */
export const HOSTNAME = 'shop.example.com';

interface DnsRecord {
  /** The version the hostname serves. */
  version: string;
  deploymentId: string;
}

/**
 * The DNS zone of one hostname (object keyed by hostname): which version it serves.
 *
 * Fails when the image tag contains `bad-dns` (503 `dns_update_failed`).
 */
export const DeployDns = object({
  name: 'DeployDns',
  handlers: {
    /** Points the hostname at a version; answers the record it replaced. */
    update: handler(
      {
        input: z.object({
          deploymentId: z.string().min(1),
          version: z.string().min(1),
          imageTag: z.string().min(1),
        }),
      },
      async (ctx: ObjectContext, req) => {
        if (wants(req.imageTag, 'dnsUpdate')) {
          throw new TerminalError(`the DNS provider rejected the change to ${ctx.key}`, {
            code: 'dns_update_failed',
            status: 503,
          });
        }
        const previous = (await ctx.get<DnsRecord>('record')) ?? null;
        ctx.set('record', { version: req.version, deploymentId: req.deploymentId });
        return { hostname: ctx.key, version: req.version, previous };
      },
    ),

    /** Restores a previous record (only a cancelled deployment needs it). */
    restore: handler(
      {
        input: z.object({
          previous: z
            .object({ version: z.string().min(1), deploymentId: z.string().min(1) })
            .nullable(),
        }),
      },
      async (ctx: ObjectContext, req) => {
        if (req.previous) ctx.set('record', req.previous);
        else ctx.clear('record');
        return { hostname: ctx.key, restored: req.previous };
      },
    ),

    /** What the hostname serves. */
    record: shared(async (ctx) => (await ctx.get<DnsRecord>('record')) ?? null),
  },
});
