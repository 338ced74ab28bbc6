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
 * Demo accounts, opened with these balances on first use. Any other account must be opened
 * with `open` first: a transfer to an account that does not exist fails at the credit step,
 * which is how to try the "reverse the debit" path.
 */
export const DEMO_ACCOUNTS: Readonly<Record<string, number>> = {
  'acct-alice': 1000,
  'acct-bob': 500,
  'acct-carol': 0,
  'ext-dave': 0,
};

/** Accounts whose id starts with this are at another bank: a credit waits for clearing. */
export const EXTERNAL_BANK_PREFIX = 'ext-';
/** How long interbank clearing takes (a durable sleep: the transfer survives a restart). */
export const CLEARING_DELAY = '2s';

/** One movement of money on an account, identified by the id the caller chose. */
export interface Transaction {
  txId: string;
  kind: 'debit' | 'credit' | 'reversal';
  transferId: string;
  amountCents: number;
  /** For a reversal: the transaction it undoes. */
  reverses?: string;
}

interface Account {
  balanceCents: number;
  frozen: boolean;
  transactions: Transaction[];
  /** Requests answered from the record instead of moving money again (see `debit`). */
  replays: number;
}

/** A debit or credit: `txId` makes it apply at most once. */
const Movement = z.object({
  txId: z.string().min(1),
  transferId: z.string().min(1),
  amount: z.number(),
});

const load = async (ctx: ObjectSharedContext): Promise<Account | undefined> => {
  const stored = await ctx.get<Account>('account');
  if (stored) return stored;
  const opening = DEMO_ACCOUNTS[ctx.key];
  if (opening === undefined) return undefined;
  return { balanceCents: toCents(opening), frozen: false, transactions: [], replays: 0 };
};

const mustLoad = async (ctx: ObjectSharedContext): Promise<Account> => {
  const account = await load(ctx);
  if (!account) {
    throw new TerminalError(`account ${ctx.key} does not exist; open it first`, {
      code: 'account_not_found',
      status: 404,
    });
  }
  return account;
};

/**
 * The transaction this request already made, if any: the idempotency check. A debit or credit
 * carries a transaction id chosen by the caller (the saga derives it from the transfer id), so
 * a retried request answers the first result instead of moving the money twice.
 */
const replayOf = (ctx: ObjectContext, account: Account, txId: string): Transaction | undefined => {
  const done = account.transactions.find((t) => t.txId === txId);
  if (done) {
    account.replays++;
    ctx.set('account', account);
  }
  return done;
};

const checkOpen = (ctx: ObjectSharedContext, account: Account): void => {
  if (account.frozen) {
    throw new TerminalError(`account ${ctx.key} is frozen`, {
      code: 'account_frozen',
      status: 423,
    });
  }
};

const receipt = (ctx: ObjectSharedContext, account: Account, tx: Transaction) => ({
  txId: tx.txId,
  accountId: ctx.key,
  balance: fromCents(account.balanceCents),
});

/**
 * A bank account, one keyed object per account id. Debits and credits are idempotent by
 * transaction id; `reverse` undoes one of them (also idempotent), and always goes through,
 * even on a frozen or overdrawn account, because a compensation must not fail.
 *
 * Fails: a debit over the balance (409 `insufficient_funds`), any account that was never
 * opened (404 `account_not_found`), a frozen account (423 `account_frozen`, see `freeze`).
 * Stalls: a credit to an `ext-` account waits {@link CLEARING_DELAY} for clearing.
 */
export const TransferAccounts = object({
  name: 'TransferAccounts',
  handlers: {
    /** Admin: opens an account with an initial balance. */
    open: handler(
      { input: z.object({ initialBalance: z.number().optional() }).optional() },
      async (ctx: ObjectContext, req) => {
        if (await ctx.get<Account>('account')) {
          throw new TerminalError(`account ${ctx.key} is already open`, {
            code: 'account_exists',
            status: 409,
          });
        }
        const account: Account = {
          balanceCents: toCents(req?.initialBalance ?? 0),
          frozen: false,
          transactions: [],
          replays: 0,
        };
        ctx.set('account', account);
        return { accountId: ctx.key, balance: fromCents(account.balanceCents) };
      },
    ),

    /** Takes money out; refuses to overdraw. */
    debit: handler({ input: Movement }, async (ctx: ObjectContext, req) => {
      const account = await mustLoad(ctx);
      const done = replayOf(ctx, account, req.txId);
      if (done) return receipt(ctx, account, done);
      checkOpen(ctx, account);
      const amountCents = toCents(req.amount);
      if (account.balanceCents < amountCents) {
        throw new TerminalError(
          `insufficient funds in ${ctx.key}: balance ${fromCents(account.balanceCents)}, debit ${req.amount}`,
          { code: 'insufficient_funds', status: 409 },
        );
      }
      const tx: Transaction = {
        txId: req.txId,
        kind: 'debit',
        transferId: req.transferId,
        amountCents,
      };
      account.balanceCents -= amountCents;
      account.transactions.push(tx);
      ctx.set('account', account);
      return receipt(ctx, account, tx);
    }),

    /** Puts money in. */
    credit: handler({ input: Movement }, async (ctx: ObjectContext, req) => {
      const account = await mustLoad(ctx);
      const done = replayOf(ctx, account, req.txId);
      if (done) return receipt(ctx, account, done);
      checkOpen(ctx, account);
      if (ctx.key.startsWith(EXTERNAL_BANK_PREFIX)) await ctx.sleep(CLEARING_DELAY);
      const amountCents = toCents(req.amount);
      const tx: Transaction = {
        txId: req.txId,
        kind: 'credit',
        transferId: req.transferId,
        amountCents,
      };
      account.balanceCents += amountCents;
      account.transactions.push(tx);
      ctx.set('account', account);
      return receipt(ctx, account, tx);
    }),

    /** Undoes a debit or credit of this account. Reversing twice reverses once. */
    reverse: handler(
      { input: z.object({ txId: z.string().min(1) }) },
      async (ctx: ObjectContext, req) => {
        const account = await mustLoad(ctx);
        const reversalId = `${req.txId}:reversal`;
        const done = replayOf(ctx, account, reversalId);
        if (done) return receipt(ctx, account, done);
        const original = account.transactions.find((t) => t.txId === req.txId);
        if (!original) {
          throw new TerminalError(`account ${ctx.key} has no transaction ${req.txId}`, {
            code: 'transaction_not_found',
            status: 404,
          });
        }
        const tx: Transaction = {
          txId: reversalId,
          kind: 'reversal',
          transferId: original.transferId,
          amountCents: original.amountCents,
          reverses: original.txId,
        };
        account.balanceCents +=
          original.kind === 'debit' ? original.amountCents : -original.amountCents;
        account.transactions.push(tx);
        ctx.set('account', account);
        return receipt(ctx, account, tx);
      },
    ),

    /** Admin: freezes the account (debits and credits fail until `unfreeze`). */
    freeze: async (ctx) => {
      const account = await mustLoad(ctx);
      account.frozen = true;
      ctx.set('account', account);
      return { accountId: ctx.key, frozen: true };
    },

    /** Admin: lifts a freeze. */
    unfreeze: async (ctx) => {
      const account = await mustLoad(ctx);
      account.frozen = false;
      ctx.set('account', account);
      return { accountId: ctx.key, frozen: false };
    },

    /** Balance, state and every transaction. */
    statement: shared(async (ctx) => {
      const account = await mustLoad(ctx);
      return {
        accountId: ctx.key,
        balance: fromCents(account.balanceCents),
        frozen: account.frozen,
        replays: account.replays,
        transactions: account.transactions.map((t) => ({ ...t, amount: fromCents(t.amountCents) })),
      };
    }),
  },
});
