import { z } from 'zod';
import {
  CancelledError,
  handler,
  saga,
  TerminalError,
  workflow,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '../../src/index.js';
import { body, idMatchingKey, keyId, positive, text } from '../saga-kit/input.js';
import { ClaimPayouts } from './payouts.js';
import { ClaimPolicies } from './policies.js';
import { ClaimMedicalRecords } from './records.js';

/** How long a claim waits for a reviewer's decision. */
export const APPROVAL_TIMEOUT = '30d';

/** The body of `POST /ClaimSaga/{claimId}/run`. */
export const ClaimInput = body(
  {
    /** May repeat the URL key; defaults to it. */
    claimId: keyId(),
    policyId: text(),
    customerId: text(),
    amount: positive(),
    description: z.string().optional(),
  },
  '{"policyId":"pol-123","customerId":"cust-123","amount":1200}',
);
export type ClaimInput = z.infer<typeof ClaimInput>;

/** The body of `approve`. */
export const ApprovalInput = body(
  {
    approved: z.boolean({ error: 'must be true or false' }),
    reviewer: text(),
    reason: z.string().optional(),
  },
  '{"approved":true,"reviewer":"ann"}',
);

/** The body of `reject`. */
export const RejectionInput = body(
  { reviewer: text(), reason: z.string().optional() },
  '{"reviewer":"ann","reason":"not covered"}',
);

/** A claim, as the saga runs it (the id resolved from the URL key). */
export interface Claim {
  claimId: string;
  policyId: string;
  customerId: string;
  amount: number;
  description?: string;
}

/** A reviewer's decision, sent to the `approve` handler. */
export interface Approval {
  approved: boolean;
  reviewer: string;
  reason?: string;
}

/** How a claim ended. */
export interface ClaimResult {
  status:
    | 'paid'
    | 'rejected_invalid'
    | 'rejected'
    | 'timeout'
    | 'payment_failed'
    | 'failed'
    | 'compensation_failed';
  paymentId?: string;
  /** Who approved or rejected it. */
  reviewer?: string;
  reason?: string;
  message?: string;
  /** The steps undone, in the order they were undone. */
  compensated?: string[];
}

type Stage = 'validation' | 'records' | 'approval' | 'payment' | 'closing' | 'closed';

/**
 * Exercise 5: insurance claim processing. Validate the claim (reserving its amount on the
 * policy) → request the medical records → wait for a reviewer's decision, at most 30 days →
 * pay → close the claim.
 *
 * A rejection, an invalid claim, missing records or 30 days without a decision undo what was
 * done: the records copy is purged and the reserved coverage released. An approval cannot be
 * taken back, so a payout that fails after it is not compensated: the claim is parked for
 * manual review (`payment_failed`).
 *
 * The decision is a durable promise: `approve` may be called before `run` reaches the wait
 * (it is kept), and only once (a second decision answers 409).
 *
 * @example
 * ```sh
 * curl -X POST http://localhost:9080/ClaimSaga/claim-001/run/send -H 'Content-Type: application/json' \
 *   -d '{"claimId":"claim-001","policyId":"pol-123","customerId":"cust-123","amount":1200}'
 * curl -X POST http://localhost:9080/ClaimSaga/claim-001/Approve -H 'Content-Type: application/json' \
 *   -d '{"approved":true,"reviewer":"ann"}'
 * ```
 */
export const ClaimSaga = workflow({
  name: 'ClaimSaga',
  run: handler({ input: ClaimInput }, async (ctx: WorkflowContext, input): Promise<ClaimResult> => {
    // Before the first step: a contradicting id fails the run with nothing done (key released).
    const { description, ...fields } = input;
    const claim: Claim = { ...fields, claimId: idMatchingKey(input.claimId, 'claimId', ctx.key) };
    if (description !== undefined) claim.description = description;
    const policy = ctx.objectClient(ClaimPolicies, claim.policyId);
    const records = ctx.objectClient(ClaimMedicalRecords, claim.claimId);

    // Where the claim is, and why it was closed (read by the compensations, which run after).
    const at: { stage: Stage; why: string } = { stage: 'validation', why: '' };
    const enter = (next: Stage): void => {
      at.stage = next;
      ctx.set('stage', next);
    };

    const outcome = await saga(ctx, async (s) => {
      try {
        enter('validation');
        await s.invoke(
          'validate claim',
          () =>
            policy.openClaim({
              claimId: claim.claimId,
              customerId: claim.customerId,
              amount: claim.amount,
            }),
          { undo: () => policy.withdrawClaim({ claimId: claim.claimId, reason: at.why }) },
        );

        enter('records');
        await s.invoke(
          'request medical records',
          () => records.request({ customerId: claim.customerId }),
          {
            undo: () => records.purge(),
          },
        );

        enter('approval');
        const decision = await ctx.race([
          ctx.promise<Approval>('approval').get(),
          ctx.sleep(APPROVAL_TIMEOUT).then(() => 'timeout' as const),
        ]);
        if (decision === 'timeout') {
          throw new TerminalError(`no decision within ${APPROVAL_TIMEOUT}`, {
            code: 'approval_timeout',
            status: 408,
          });
        }
        if (!decision.approved) {
          const why = decision.reason ? `: ${decision.reason}` : '';
          throw new TerminalError(`rejected by ${decision.reviewer}${why}`, {
            code: 'claim_rejected',
            status: 409,
          });
        }
        return decision;
      } catch (err) {
        at.why = (err as Error).message;
        throw err;
      }
    });

    if (outcome.status !== 'completed') {
      ctx.set('outcome', outcome.status);
      const { code, message } = outcome.error;
      return {
        status: outcome.status === 'compensated' ? failureStatus(code) : 'compensation_failed',
        reason: code,
        message,
        compensated: outcome.compensated,
      };
    }

    // Past the approval nothing is undone: an approval cannot be taken back.
    const { reviewer } = outcome.value;
    enter('payment');
    let paymentId: string;
    try {
      ({ paymentId } = await ctx
        .objectClient(ClaimPayouts, claim.claimId)
        .pay({ customerId: claim.customerId, amount: claim.amount }));
    } catch (err) {
      if (!(err instanceof TerminalError) || err instanceof CancelledError) throw err;
      ctx.log.error(
        `claim ${claim.claimId} approved but not paid; parked for manual review: ${err.message}`,
      );
      await policy.markForReview({
        claimId: claim.claimId,
        reason: `approved but payout failed: ${err.message}`,
      });
      ctx.set('outcome', 'payment_failed');
      return { status: 'payment_failed', reviewer, reason: err.code, message: err.message };
    }

    enter('closing');
    await policy.closeClaim({ claimId: claim.claimId, paymentId });
    enter('closed');
    ctx.set('outcome', 'paid');
    return { status: 'paid', paymentId, reviewer };
  }),

  handlers: {
    /** A reviewer's decision. Reachable as `/ClaimSaga/{claimId}/Approve`; a second decision answers 409. */
    approve: handler(
      { input: ApprovalInput },
      async (ctx: WorkflowSharedContext, approval): Promise<Approval> => {
        const decision: Approval = { approved: approval.approved, reviewer: approval.reviewer };
        if (approval.reason !== undefined) decision.reason = approval.reason;
        await ctx.promise<Approval>('approval').resolve(decision);
        return decision;
      },
    ),

    /** Shorthand for `approve` with `"approved": false`. */
    reject: handler(
      { input: RejectionInput },
      async (ctx: WorkflowSharedContext, req): Promise<Approval> => {
        const decision: Approval = { approved: false, reviewer: req.reviewer };
        if (req.reason !== undefined) decision.reason = req.reason;
        await ctx.promise<Approval>('approval').resolve(decision);
        return decision;
      },
    ),

    /** Where the claim is, and the decision if one was made. */
    status: async (ctx: WorkflowSharedContext) => ({
      claimId: ctx.key,
      stage: (await ctx.get<Stage>('stage')) ?? 'not started',
      outcome: (await ctx.get<string>('outcome')) ?? null,
      decision: (await ctx.promise<Approval>('approval').peek()) ?? null,
    }),
  },
});

/** How a compensated claim is reported, by the error that closed it. */
function failureStatus(code: string): ClaimResult['status'] {
  switch (code) {
    case 'invalid_claim':
      return 'rejected_invalid';
    case 'claim_rejected':
      return 'rejected';
    case 'approval_timeout':
      return 'timeout';
    default:
      return 'failed';
  }
}
