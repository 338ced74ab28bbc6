/**
 * Seed 001, exercise 2: bank transfer orchestration. `TransferOrchestrator` validates funds,
 * runs the fraud and compliance checks (either blocks the transfer before any money moves),
 * debits the payer, credits the payee and sends confirmations. The transfer is all or nothing:
 * if the credit fails, the debit is refunded. Every decision goes to the transfer's audit trail.
 */
import { z } from 'zod';
import {
  handler,
  TerminalError,
  workflow,
  type Saga,
  type WorkflowContext,
} from '../../src/index.js';
import { orchestrate, readStatus } from '../orchestration-kit/status.js';
import { simulations } from '../orchestration-kit/simulate.js';
import { BankAccounts } from './accounts.js';
import { BankAudit } from './audit.js';
import { BankCompliance } from './compliance.js';
import { BankFraudCheck } from './fraud.js';
import { BankNotifications } from './notifications.js';

/** How long a check may take before the transfer is blocked for want of an answer. */
export const CHECK_TIMEOUT = '10m';

/** A transfer, as `POST /TransferOrchestrator/{transferId}/run` takes it. */
export const TransferRequest = z
  .object({
    from: z.string().min(1),
    to: z.string().min(1),
    /** Whole cents. */
    amount: z.number().int().positive(),
    simulate: simulations(['fraud', 'compliance', 'debit', 'credit', 'confirmation']),
  })
  .refine((t) => t.from !== t.to, { message: 'from and to must be different accounts' });
export type TransferRequest = z.infer<typeof TransferRequest>;

/** What a completed transfer returns (besides `status: "completed"`). */
export interface TransferDone {
  transferId: string;
  from: string;
  to: string;
  amount: number;
  /** Balances right after the debit and the credit. */
  fromBalance: number;
  toBalance: number;
}

const blocked = (code: string, message: string) =>
  new TerminalError(message, { code, status: 403 });

async function transfer(ctx: WorkflowContext, s: Saga, t: TransferRequest) {
  const transferId = ctx.key;
  const payer = ctx.objectClient(BankAccounts, t.from);
  const payee = ctx.objectClient(BankAccounts, t.to);
  const audit = (event: string, detail?: string) =>
    ctx.objectClient(BankAudit, transferId).record({ event, detail });

  await audit('requested', `${t.amount} from ${t.from} to ${t.to}`);

  // 1. Validate: both accounts exist and the payer has the funds now. The debit checks again,
  //    atomically, since another transfer may spend the money in between.
  await s.invoke('validate funds', async () => {
    const [source] = await ctx.all([payer.balance(), payee.balance()]);
    if (source.balance < t.amount) {
      await audit('rejected', `insufficient funds: ${source.balance} available`);
      throw new TerminalError(`${t.from} has ${source.balance}, the transfer needs ${t.amount}`, {
        code: 'insufficient_funds',
        status: 409,
      });
    }
  });

  // 2. Fraud check. No answer in time blocks the transfer too: fail closed.
  await s.invoke(
    'fraud check',
    async () => {
      const fraud = await ctx
        .objectClient(BankFraudCheck, t.from)
        .assess({ transferId, amount: t.amount, simulate: t.simulate?.fraud });
      await audit(
        `fraud: ${fraud.decision}`,
        fraud.decision === 'block' ? fraud.reason : undefined,
      );
      if (fraud.decision === 'block') throw blocked('fraud_blocked', fraud.reason);
    },
    { timeout: CHECK_TIMEOUT },
  );

  // 3. Compliance: screen both parties at once.
  await s.invoke(
    'compliance check',
    async () => {
      const screen = (account: string) =>
        ctx
          .objectClient(BankCompliance, account)
          .screen({ transferId, simulate: t.simulate?.compliance });
      const results = await ctx.all([screen(t.from), screen(t.to)]);
      const refused = results.flatMap((r) => (r.cleared ? [] : [r.reason]));
      await audit(
        refused.length === 0 ? 'compliance: cleared' : 'compliance: blocked',
        refused.join('; ') || undefined,
      );
      if (refused.length > 0) throw blocked('compliance_blocked', refused.join('; '));
    },
    { timeout: CHECK_TIMEOUT },
  );

  // 4. Debit. Its undo refunds it; money movements have no timeout, since a transfer must
  //    end with the money in exactly one place, however long a core system takes.
  const debit = await s.invoke(
    'debit source',
    async () => {
      const entry = await payer.debit({
        transferId,
        amount: t.amount,
        simulate: t.simulate?.debit,
      });
      await audit('debited', `${t.from} balance ${entry.balanceAfter}`);
      return entry;
    },
    {
      // A debit cancelled in flight may still go through: refund it anyway (by transfer id).
      undoWhen: 'maybe',
      undoName: 'refund source',
      undo: async () => {
        const refund = await payer.refund(transferId);
        if (refund) await audit('refunded', `${t.from} balance ${refund.balanceAfter}`);
      },
    },
  );

  // 5. Credit. A failure here (frozen or closed account) triggers the refund above.
  const credit = await s.invoke('credit destination', async () => {
    try {
      const entry = await payee.credit({
        transferId,
        amount: t.amount,
        simulate: t.simulate?.credit,
      });
      await audit('credited', `${t.to} balance ${entry.balanceAfter}`);
      return entry;
    } catch (err) {
      if (err instanceof TerminalError) await audit('credit failed', err.message);
      throw err;
    }
  });

  // 6. Confirm to both parties. Not critical: the money has moved either way.
  await s.invoke(
    'send confirmation',
    () =>
      ctx.all([
        ctx.objectClient(BankNotifications, t.from).send({
          dedupeKey: transferId,
          message: `You sent ${t.amount} to ${t.to} (${transferId})`,
          simulate: t.simulate?.confirmation,
        }),
        ctx.objectClient(BankNotifications, t.to).send({
          dedupeKey: transferId,
          message: `You received ${t.amount} from ${t.from} (${transferId})`,
          simulate: t.simulate?.confirmation,
        }),
      ]),
    { critical: false },
  );

  return {
    transferId,
    from: t.from,
    to: t.to,
    amount: t.amount,
    fromBalance: debit.balanceAfter,
    toBalance: credit.balanceAfter,
  } satisfies TransferDone;
}

/**
 * The bank transfer orchestrator: one workflow per transfer id, so a transfer runs once
 * however often it is submitted. `status` shows the current step and its history; the
 * `BankAudit` object of the same id keeps the audit trail.
 *
 * @example
 * ```sh
 * curl -X POST localhost:9080/TransferOrchestrator/tx-1/run -H 'content-type: application/json' \
 *   -d '{"from":"alice","to":"bob","amount":2500}'
 * curl -X POST localhost:9080/BankAudit/tx-1/trail
 * ```
 */
export const TransferOrchestrator = workflow({
  name: 'TransferOrchestrator',
  run: handler({ input: TransferRequest }, async (ctx: WorkflowContext, t) => {
    const result = await orchestrate(ctx, (s) => transfer(ctx, s, t));
    await ctx
      .objectClient(BankAudit, ctx.key)
      .record(
        result.status === 'completed'
          ? { event: 'completed' }
          : { event: result.status, detail: `${result.failedStep}: ${result.error.message}` },
      );
    return result;
  }),
  handlers: {
    /** The current step and the history of this transfer. */
    status: async (ctx) => readStatus(ctx),
  },
});
