import { object, shared, TerminalError } from '../../src/index.js';
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
    update: async (ctx, req: { deploymentId: string; version: string; imageTag: string }) => {
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

    /** Restores a previous record (only a cancelled deployment needs it). */
    restore: async (ctx, req: { previous: DnsRecord | null }) => {
      if (req.previous) ctx.set('record', req.previous);
      else ctx.clear('record');
      return { hostname: ctx.key, restored: req.previous };
    },

    /** What the hostname serves. */
    record: shared(async (ctx) => (await ctx.get<DnsRecord>('record')) ?? null),
  },
});
