/**
 * AccountService of the bank transfer exercise: one object per account, holding its balance
 * and its ledger. Every movement names the transfer it belongs to and is applied at most once
 * per transfer, so a retried or replayed call can never move money twice.
 */
import { z } from 'zod';
import {
  handler,
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';
import { simulated, simulation, type Simulation } from '../orchestration-kit/simulate.js';

/** One line of an account's ledger. Amounts are whole cents. */
export interface LedgerEntry {
  transferId: string;
  kind: 'deposit' | 'debit' | 'credit' | 'refund';
  amount: number;
  balanceAfter: number;
  at: string;
}

/** An account's durable record. */
export interface Account {
  accountId: string;
  owner: string;
  balance: number;
  /** A frozen account accepts no debit or credit (refunds of its own debits still land). */
  frozen: boolean;
  ledger: LedgerEntry[];
}

/** A debit or credit of one transfer. */
export interface Movement {
  transferId: string;
  amount: number;
  simulate?: Simulation;
}

/** The input schema of `debit` and `credit`. */
const MovementInput = z.object({
  transferId: z.string().min(1),
  amount: z.number(),
  simulate: simulation.optional(),
});

async function opened(ctx: ObjectSharedContext): Promise<Account> {
  const account = await ctx.get<Account>('account');
  if (!account) {
    throw new TerminalError(`account ${ctx.key} does not exist; open it first`, {
      code: 'account_not_found',
      status: 404,
    });
  }
  return account;
}

/** Applies one ledger entry, once per (transfer, kind); returns the entry. */
async function apply(
  ctx: ObjectContext,
  account: Account,
  transferId: string,
  kind: LedgerEntry['kind'],
  delta: number,
): Promise<LedgerEntry> {
  const entry: LedgerEntry = {
    transferId,
    kind,
    amount: Math.abs(delta),
    balanceAfter: account.balance + delta,
    at: new Date(await ctx.now()).toISOString(),
  };
  ctx.set('account', {
    ...account,
    balance: entry.balanceAfter,
    ledger: [...account.ledger, entry],
  });
  return entry;
}

const find = (a: Account, transferId: string, kind: LedgerEntry['kind']) =>
  a.ledger.find((e) => e.transferId === transferId && e.kind === kind);

function refuseFrozen(account: Account): void {
  if (account.frozen) {
    throw new TerminalError(`account ${account.accountId} is frozen`, {
      code: 'account_frozen',
      status: 409,
    });
  }
}

/** Accounts: open, deposit, debit / credit / refund per transfer, freeze. */
export const BankAccounts = object({
  name: 'BankAccounts',
  handlers: {
    /** Opens the account with an initial deposit (in cents); opening it again changes nothing. */
    open: handler(
      { input: z.object({ owner: z.string().min(1), deposit: z.number().int().nonnegative() }) },
      async (ctx: ObjectContext, req): Promise<Account> => {
        const existing = await ctx.get<Account>('account');
        if (existing) return existing;
        const account: Account = {
          accountId: ctx.key,
          owner: req.owner,
          balance: 0,
          frozen: false,
          ledger: [],
        };
        if (req.deposit === 0) {
          ctx.set('account', account);
          return account;
        }
        await apply(ctx, account, `open-${ctx.key}`, 'deposit', req.deposit);
        return opened(ctx);
      },
    ),

    /** Balance and whether the account is frozen (step 1 validates funds with it). */
    balance: shared(async (ctx) => {
      const a = await opened(ctx);
      return { accountId: a.accountId, balance: a.balance, frozen: a.frozen };
    }),

    /** Takes money out for a transfer, once; refuses when frozen or short of funds. */
    debit: handler(
      { input: MovementInput },
      async (ctx: ObjectContext, m): Promise<LedgerEntry> => {
        const account = await opened(ctx);
        const done = find(account, m.transferId, 'debit');
        if (done) return done;
        refuseFrozen(account);
        if (account.balance < m.amount) {
          throw new TerminalError(
            `account ${ctx.key} has ${account.balance}, the transfer needs ${m.amount}`,
            { code: 'insufficient_funds', status: 409 },
          );
        }
        await simulated(ctx, m.simulate, {
          code: 'debit_rejected',
          message: `the core banking system refused to debit ${ctx.key}`,
        });
        return apply(ctx, account, m.transferId, 'debit', -m.amount);
      },
    ),

    /** Puts money in for a transfer, once; refuses when frozen. */
    credit: handler(
      { input: MovementInput },
      async (ctx: ObjectContext, m): Promise<LedgerEntry> => {
        const account = await opened(ctx);
        const done = find(account, m.transferId, 'credit');
        if (done) return done;
        refuseFrozen(account);
        await simulated(ctx, m.simulate, {
          code: 'credit_rejected',
          message: `the core banking system refused to credit ${ctx.key}`,
        });
        return apply(ctx, account, m.transferId, 'credit', m.amount);
      },
    ),

    /**
     * Gives back what a transfer debited, once. A transfer that debited nothing refunds
     * nothing (null). Lands even on a frozen account: it is the owner's own money.
     */
    refund: handler(
      { input: z.string().min(1) },
      async (ctx: ObjectContext, transferId): Promise<LedgerEntry | null> => {
        const account = await opened(ctx);
        const done = find(account, transferId, 'refund');
        if (done) return done;
        const debit = find(account, transferId, 'debit');
        if (!debit) return null;
        return apply(ctx, account, transferId, 'refund', debit.amount);
      },
    ),

    /** Freezes the account: debits and credits fail (how to make a credit fail by hand). */
    freeze: async (ctx: ObjectContext) => {
      ctx.set('account', { ...(await opened(ctx)), frozen: true });
      return { accountId: ctx.key, frozen: true };
    },

    /** Unfreezes it. */
    unfreeze: async (ctx: ObjectContext) => {
      ctx.set('account', { ...(await opened(ctx)), frozen: false });
      return { accountId: ctx.key, frozen: false };
    },

    /** The whole account with its ledger, oldest entry first. */
    statement: shared(async (ctx) => opened(ctx)),
  },
});
