/**
 * SecurityService of the CI/CD exercise: one object per pipeline run, holding its scan report.
 */
import { object, shared, type ObjectContext } from '../../src/index.js';
import { simulated, type Simulation } from '../orchestration-kit/simulate.js';

/** How long a scan takes. */
export const SCAN_TIME = '500ms';

/** A clean scan report. */
export interface ScanReport {
  artifact: string;
  findings: { critical: number; high: number; low: number };
  scannedAt: string;
}

/** Security scans per pipeline id: scan (once), read. */
export const PipelineSecurity = object({
  name: 'PipelineSecurity',
  handlers: {
    /** Scans the artifact; a critical finding fails the call (`vulnerabilities_found`). */
    scan: async (
      ctx: ObjectContext,
      req: { artifact: string; simulate?: Simulation },
    ): Promise<ScanReport> => {
      const done = await ctx.get<ScanReport>('report');
      if (done) return done;
      await ctx.sleep(SCAN_TIME);
      await simulated(ctx, req.simulate, {
        code: 'vulnerabilities_found',
        message: `${req.artifact}: 1 critical vulnerability (CVE-2026-0001 in left-pad)`,
        status: 422,
      });
      const report: ScanReport = {
        artifact: req.artifact,
        findings: { critical: 0, high: 0, low: 2 },
        scannedAt: new Date(await ctx.now()).toISOString(),
      };
      ctx.set('report', report);
      return report;
    },

    /** The report, or null. */
    report: shared(async (ctx) => (await ctx.get<ScanReport>('report')) ?? null),
  },
});
