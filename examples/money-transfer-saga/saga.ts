import { z } from 'zod';
import { handler, saga, workflow, type WorkflowContext } from '../../src/index.js';
import { body, idMatchingKey, keyId, money, text } from '../saga-kit/input.js';
import { TransferAccounts } from './accounts.js';
import { LEDGER, TransferLedger } from './ledger.js';

/** The body of `POST /MoneyTransferSaga/{transferId}/run`: the seed's `TransferRequest`. */
export const TransferInput = body(
  {
    /** May repeat the URL key; defaults to it. */
    transferId: keyId(),
    fromAccount: text(),
    toAccount: text(),
    amount: money(),
  },
  '{"fromAccount":"acct-alice","toAccount":"acct-bob","amount":100}',
).refine((t) => t.fromAccount !== t.toAccount, {
  message: '"fromAccount" and "toAccount" must differ',
  path: ['toAccount'],
});
export type TransferInput = z.infer<typeof TransferInput>;

/** The seed's `TransferRequest`, as the saga runs it (the id resolved from the URL key). */
export interface TransferRequest {
  transferId: string;
  fromAccount: string;
  toAccount: string;
  amount: number;
}

/** The seed's `TransferResult`, plus why a failed transfer failed and what it reversed. */
export interface TransferResult {
  status: 'completed' | 'failed' | 'compensation_failed';
  debitTxId?: string;
  creditTxId?: string;
  /** The step that failed: `debit`, `credit` or `record`. */
  failedAt?: Stage;
  /** The error code, e.g. `insufficient_funds`, `account_not_found`, `compliance_hold`. */
  reason?: string;
  message?: string;
  /** The steps reversed, in the order they were reversed. */
  reversed?: string[];
}

type Stage = 'debit' | 'credit' | 'record';

/**
 * Exercise 2: a money transfer, all or nothing. Debit the source → credit the destination →
 * record the transfer. Insufficient funds stop it before anything moved; a failed credit
 * reverses the debit; a refused record reverses the credit, then the debit.
 *
 * Every movement carries a transaction id derived from the transfer id
 * (`{transferId}:debit`, `{transferId}:credit`), so the accounts apply each at most once even
 * if a request is repeated, and the workflow key makes the whole transfer run once.
 *
 * @example
 * ```sh
 * curl -X POST http://localhost:9080/MoneyTransferSaga/tr-001/run -H 'Content-Type: application/json' \
 *   -d '{"transferId":"tr-001","fromAccount":"acct-alice","toAccount":"acct-bob","amount":100}'
 * ```
 */
export const MoneyTransferSaga = workflow({
  name: 'MoneyTransferSaga',
  run: handler(
    { input: TransferInput },
    async (ctx: WorkflowContext, input): Promise<TransferResult> => {
      // Before the first step: a contradicting id fails the run with nothing done (key released).
      const req: TransferRequest = {
        ...input,
        transferId: idMatchingKey(input.transferId, 'transferId', ctx.key),
      };
      const from = ctx.objectClient(TransferAccounts, req.fromAccount);
      const to = ctx.objectClient(TransferAccounts, req.toAccount);
      const ledger = ctx.objectClient(TransferLedger, LEDGER);
      const debitTxId = `${req.transferId}:debit`;
      const creditTxId = `${req.transferId}:credit`;
      const movement = { transferId: req.transferId, amount: req.amount };

      // Which step the saga is in (an object, so the step set inside the saga is seen after it):
      // a failed saga is reported by the step that failed.
      const at: { stage: Stage } = { stage: 'debit' };
      const enter = (next: Stage): void => {
        at.stage = next;
        ctx.set('stage', next);
      };

      const outcome = await saga(ctx, async (s) => {
        enter('debit');
        await s.invoke('debit source', () => from.debit({ txId: debitTxId, ...movement }), {
          undo: () => from.reverse({ txId: debitTxId }),
        });
        enter('credit');
        await s.invoke('credit destination', () => to.credit({ txId: creditTxId, ...movement }), {
          undo: () => to.reverse({ txId: creditTxId }),
        });
        enter('record');
        await s.invoke('record transaction', () =>
          ledger.record({ ...req, debitTxId, creditTxId }),
        );
      });

      ctx.set('outcome', outcome.status);
      if (outcome.status === 'completed') return { status: 'completed', debitTxId, creditTxId };
      return {
        status: outcome.status === 'compensated' ? 'failed' : 'compensation_failed',
        failedAt: at.stage,
        reason: outcome.error.code,
        message: outcome.error.message,
        reversed: outcome.compensated,
      };
    },
  ),

  handlers: {
    /** Where the transfer is: `debit`, `credit` or `record`, and how it ended. */
    status: async (ctx) => ({
      transferId: ctx.key,
      stage: (await ctx.get<Stage>('stage')) ?? 'not started',
      outcome: (await ctx.get<string>('outcome')) ?? null,
    }),
  },
});
