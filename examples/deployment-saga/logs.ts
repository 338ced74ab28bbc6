import { z } from 'zod';
import { handler, object, shared, type ObjectContext } from '../../src/index.js';

/** One line of a deployment's log. */
export interface LogLine {
  at: number;
  stage: string;
  level: 'info' | 'error';
  message: string;
  /** Structured detail, e.g. a test report. */
  data?: unknown;
}

/**
 * The log of one deployment (object keyed by deployment id). It lives outside the saga and is
 * never compensated: after a rollback, this is what you debug from.
 */
export const DeployLogs = object({
  name: 'DeployLogs',
  handlers: {
    /** Appends a line. */
    append: handler(
      {
        input: z.object({
          stage: z.string().min(1),
          level: z.enum(['info', 'error']),
          message: z.string(),
          data: z.unknown().optional(),
        }),
      },
      async (ctx: ObjectContext, line) => {
        const lines = (await ctx.get<LogLine[]>('lines')) ?? [];
        lines.push({ at: await ctx.now(), ...line });
        ctx.set('lines', lines);
        return lines.length;
      },
    ),

    /** Every line, oldest first. */
    read: shared(async (ctx) => (await ctx.get<LogLine[]>('lines')) ?? []),
  },
});
