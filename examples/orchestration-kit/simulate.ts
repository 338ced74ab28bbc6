/**
 * The switch every downstream service of seed 001 honours, so each failure and each timeout of
 * an orchestration can be triggered by hand: an orchestrator request may carry
 * `"simulate": { "<step>": "fail" | "stall" }`, and the orchestrator hands that step's value to
 * the service it calls. Real failures (out of stock, insufficient funds, a frozen account, an
 * offline driver) come from the services' own state instead; see examples/README.md.
 */
import { z } from 'zod';
import { TerminalError, type Context } from '../../src/index.js';

/** `fail`: the service answers with its typical business error. `stall`: it hangs for an hour. */
export type Simulation = 'fail' | 'stall';

/** How long a stalled service hangs: longer than any orchestrator waits for an answer. */
export const STALL_FOR = '1h';

/** The schema of one simulation value. */
export const simulation = z.enum(['fail', 'stall']);

/** The schema of an orchestrator's `simulate` field, for the given step names. */
export function simulations<const K extends string>(steps: readonly K[]) {
  return z
    .partialRecord(z.enum(steps as unknown as [K, ...K[]]), simulation)
    .optional()
    .describe(`per step: "fail" or "stall" (${steps.join(', ')})`);
}

/** The failure a service raises when asked to fail: its usual business error, marked simulated. */
export interface SimulatedFailure {
  code: string;
  message: string;
  /** HTTP status a client sees. Default 502: a dependency failed. */
  status?: number;
}

/**
 * Fails or stalls the calling handler when `mode` asks it to; does nothing otherwise. A stall
 * is a durable sleep, so it holds the handler's object key, as a hung request would.
 *
 * @example
 * ```ts
 * charge: async (ctx, req: { amount: number; simulate?: Simulation }) => {
 *   await simulated(ctx, req.simulate, { code: 'card_declined', message: 'the card was declined', status: 402 });
 *   // ... the real work
 * }
 * ```
 */
export async function simulated(
  ctx: Context,
  mode: Simulation | undefined,
  failure: SimulatedFailure,
): Promise<void> {
  if (mode === 'fail') {
    throw new TerminalError(`${failure.message} (simulated)`, {
      code: failure.code,
      status: failure.status ?? 502,
    });
  }
  if (mode === 'stall') await ctx.sleep(STALL_FOR);
}
