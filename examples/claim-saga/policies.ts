import { z } from 'zod';
import {
  handler,
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';
import { fromCents, toCents } from '../saga-kit/money.js';

/**
 * Demo policies. `pol-lapsed` is not in force: a claim on it (or on any policy not listed, by
 * someone other than the holder, or above the coverage left) is invalid. `pol-777` and
 * `pol-888` belong to the customers for whom the records request and the payout fail.
 */
export const DEMO_POLICIES: Readonly<
  Record<string, { holder: string; coverage: number; active: boolean }>
> = {
  'pol-123': { holder: 'cust-123', coverage: 10_000, active: true },
  'pol-456': { holder: 'cust-456', coverage: 2_000, active: true },
  'pol-lapsed': { holder: 'cust-789', coverage: 10_000, active: false },
  'pol-777': { holder: 'cust-no-records', coverage: 10_000, active: true },
  'pol-888': { holder: 'cust-payout-fails', coverage: 10_000, active: true },
};

/** Where one claim stands on its policy. */
export type ClaimStatus = 'open' | 'paid' | 'withdrawn' | 'manual_review';

interface PolicyClaim {
  amountCents: number;
  status: ClaimStatus;
  note?: string;
  paymentId?: string;
}

interface Policy {
  holder: string;
  active: boolean;
  coverageCents: number;
  claims: Record<string, PolicyClaim>;
}

const load = async (ctx: ObjectSharedContext): Promise<Policy | undefined> => {
  const stored = await ctx.get<Policy>('policy');
  if (stored) return stored;
  const demo = DEMO_POLICIES[ctx.key];
  return (
    demo && {
      holder: demo.holder,
      active: demo.active,
      coverageCents: toCents(demo.coverage),
      claims: {},
    }
  );
};

/** Coverage not yet paid out or reserved by an open claim. */
const remainingCents = (policy: Policy): number =>
  policy.coverageCents -
  Object.values(policy.claims)
    .filter((c) => c.status !== 'withdrawn')
    .reduce((n, c) => n + c.amountCents, 0);

function invalidClaim(message: string): never {
  throw new TerminalError(message, { code: 'invalid_claim', status: 422 });
}

/**
 * An insurance policy (object keyed by policy id): validates claims and reserves their amount
 * against the coverage, then records how each ends. Opening the same claim twice opens it once.
 *
 * Refuses (422 `invalid_claim`) a claim on an unknown or lapsed policy (`pol-lapsed`), by
 * someone other than the holder, or above the coverage left.
 */
export const ClaimPolicies = object({
  name: 'ClaimPolicies',
  handlers: {
    /** Validates a claim and reserves its amount. */
    openClaim: handler(
      {
        input: z.object({
          claimId: z.string().min(1),
          customerId: z.string().min(1),
          amount: z.number(),
        }),
      },
      async (ctx: ObjectContext, req) => {
        const policy = await load(ctx);
        if (!policy) invalidClaim(`there is no policy ${ctx.key}`);
        const existing = policy.claims[req.claimId];
        if (existing) return { claimId: req.claimId, status: existing.status };
        if (!policy.active) invalidClaim(`policy ${ctx.key} has lapsed`);
        if (policy.holder !== req.customerId)
          invalidClaim(`${req.customerId} does not hold policy ${ctx.key}`);
        const amountCents = toCents(req.amount);
        if (amountCents > remainingCents(policy)) {
          invalidClaim(
            `the claim exceeds the ${fromCents(remainingCents(policy))} coverage left on ${ctx.key}`,
          );
        }
        policy.claims[req.claimId] = { amountCents, status: 'open' };
        ctx.set('policy', policy);
        return { claimId: req.claimId, status: 'open' as ClaimStatus };
      },
    ),

    /** Withdraws an open claim and frees its reserved coverage (compensation; idempotent). */
    withdrawClaim: handler(
      { input: z.object({ claimId: z.string().min(1), reason: z.string() }) },
      async (ctx: ObjectContext, req) => {
        const policy = await load(ctx);
        const claim = policy?.claims[req.claimId];
        if (!policy || !claim) return { claimId: req.claimId, status: 'unknown' };
        if (claim.status === 'open') {
          claim.status = 'withdrawn';
          claim.note = req.reason;
          ctx.set('policy', policy);
        }
        return { claimId: req.claimId, status: claim.status };
      },
    ),

    /** Parks an approved claim whose payment failed for a person to look at. */
    markForReview: handler(
      { input: z.object({ claimId: z.string().min(1), reason: z.string() }) },
      async (ctx: ObjectContext, req) => {
        const policy = await load(ctx);
        const claim = policy?.claims[req.claimId];
        if (!policy || !claim) return { claimId: req.claimId, status: 'unknown' };
        claim.status = 'manual_review';
        claim.note = req.reason;
        ctx.set('policy', policy);
        return { claimId: req.claimId, status: claim.status };
      },
    ),

    /** Closes a paid claim. */
    closeClaim: handler(
      { input: z.object({ claimId: z.string().min(1), paymentId: z.string().min(1) }) },
      async (ctx: ObjectContext, req) => {
        const policy = await load(ctx);
        const claim = policy?.claims[req.claimId];
        if (!policy || !claim) {
          throw new TerminalError(`policy ${ctx.key} has no claim ${req.claimId}`, {
            code: 'claim_not_found',
            status: 404,
          });
        }
        claim.status = 'paid';
        claim.paymentId = req.paymentId;
        ctx.set('policy', policy);
        return { claimId: req.claimId, status: claim.status };
      },
    ),

    /** The policy, its coverage left and its claims. */
    policy: shared(async (ctx) => {
      const policy = await load(ctx);
      if (!policy) return null;
      return {
        policyId: ctx.key,
        holder: policy.holder,
        active: policy.active,
        coverageLeft: fromCents(remainingCents(policy)),
        claims: policy.claims,
      };
    }),
  },
});
