/**
 * Seed 004, exercise 2.1: a bank account as an event-sourced aggregate. Every change is an
 * event (`AccountOpened`, `MoneyDeposited`, `MoneyWithdrawn`, `AccountClosed`); the balance is
 * rebuilt from them (from a snapshot every 5 events); any past state can be replayed; and two
 * projections, per-account balances and a bank-wide summary, follow every event exactly once.
 */
import { TerminalError } from '../../src/index.js';
import {
  eventSourced,
  type ProjectionConfig,
  type StoredEvent,
} from '../../src/eventsourcing/index.js';

/** An account's state, rebuilt from its events. */
export interface Account {
  status: 'new' | 'open' | 'closed';
  owner?: string;
  /** In cents. */
  balance: number;
}

/** The events' data. */
export type AccountEvent =
  | { type: 'AccountOpened'; data: { owner: string } }
  | { type: 'MoneyDeposited'; data: { amount: number; reference?: string } }
  | { type: 'MoneyWithdrawn'; data: { amount: number; reference?: string } }
  | { type: 'AccountClosed'; data: { balance: number } };

/** A snapshot every 5 events, so the example shows snapshots after a handful of calls. */
export const SNAPSHOT_EVERY = 5;

/** The most one command moves, in cents (amounts are exact integers: no floats, no overflow to Infinity). */
export const MAX_AMOUNT = 1_000_000_000_000;

const refuse = (message: string, code: string, status = 409): never => {
  throw new TerminalError(message, { code, status });
};

function amountOf(input: unknown): { amount: number; reference?: string } {
  const req = input as { amount?: unknown; reference?: unknown } | null;
  if (
    req === null ||
    typeof req !== 'object' ||
    !Number.isSafeInteger(req.amount) ||
    (req.amount as number) > MAX_AMOUNT ||
    (req.amount as number) <= 0
  ) {
    refuse(
      `takes {"amount": cents (an integer from 1 to ${MAX_AMOUNT}), "reference"?: string}`,
      'invalid_amount',
      400,
    );
  }
  const out: { amount: number; reference?: string } = { amount: req!.amount as number };
  if (typeof req!.reference === 'string') out.reference = req!.reference;
  return out;
}

function mustBeOpen(s: Account): void {
  if (s.status === 'new')
    refuse('the account is not open yet: call open first', 'account_not_open');
  if (s.status === 'closed') refuse('the account is closed', 'account_closed');
}

/** The state after one event. */
export function applyAccount(s: Account, e: StoredEvent): Account {
  const ev = e as unknown as AccountEvent;
  switch (ev.type) {
    case 'AccountOpened':
      return { ...s, status: 'open', owner: ev.data.owner };
    case 'MoneyDeposited':
      return { ...s, balance: s.balance + ev.data.amount };
    case 'MoneyWithdrawn':
      return { ...s, balance: s.balance - ev.data.amount };
    case 'AccountClosed':
      return { ...s, status: 'closed' };
    default:
      return s;
  }
}

/** One account's line in the `balances` projection. */
export interface BalanceLine {
  owner?: string;
  balance: number;
  status: Account['status'];
  transactions: number;
  lastSeq: number;
}

/** Per-account balances: one view per account key. */
export const balances: ProjectionConfig<BalanceLine> = {
  name: 'balances',
  initial: { balance: 0, status: 'new', transactions: 0, lastSeq: 0 },
  key: (_e, account) => account,
  apply: (v, e) => {
    const s = applyAccount(
      { status: v.status, balance: v.balance, ...(v.owner ? { owner: v.owner } : {}) },
      e,
    );
    const moved = e.type === 'MoneyDeposited' || e.type === 'MoneyWithdrawn';
    return { ...s, transactions: v.transactions + (moved ? 1 : 0), lastSeq: e.seq };
  },
};

/** The bank-wide summary (one view, `all`). */
export interface Summary {
  accounts: number;
  open: number;
  totalBalance: number;
  deposited: number;
  withdrawn: number;
  events: number;
}

export const summary: ProjectionConfig<Summary> = {
  name: 'summary',
  initial: { accounts: 0, open: 0, totalBalance: 0, deposited: 0, withdrawn: 0, events: 0 },
  apply: (v, e) => {
    const ev = e as unknown as AccountEvent;
    const out = { ...v, events: v.events + 1 };
    if (ev.type === 'AccountOpened') {
      out.accounts++;
      out.open++;
    } else if (ev.type === 'MoneyDeposited') {
      out.deposited += ev.data.amount;
      out.totalBalance += ev.data.amount;
    } else if (ev.type === 'MoneyWithdrawn') {
      out.withdrawn += ev.data.amount;
      out.totalBalance -= ev.data.amount;
    } else if (ev.type === 'AccountClosed') {
      out.open--;
    }
    return out;
  },
};

/**
 * The aggregate: `POST /BankAccount/{id}/open|deposit|withdraw|close`, the replay handlers
 * `state`, `stateAt`, `events`, and the projector `BankAccountProjections/{balances|summary}`.
 *
 * @example
 * ```sh
 * curl -X POST localhost:9080/BankAccount/acc-1/open -H 'Content-Type: application/json' -d '{"owner":"Ada"}'
 * curl -X POST localhost:9080/BankAccount/acc-1/deposit -H 'Content-Type: application/json' -d '{"amount":5000}'
 * ```
 */
export const BankAccount = eventSourced({
  name: 'BankAccount',
  initial: { status: 'new', balance: 0 },
  apply: applyAccount,
  snapshotEvery: SNAPSHOT_EVERY,
  projections: [balances, summary],
  commands: {
    open: (s: Account, input: { owner: string }) => {
      if (s.status !== 'new') refuse(`the account is already ${s.status}`, 'account_exists');
      if (typeof input?.owner !== 'string' || input.owner.trim() === '') {
        refuse('open takes {"owner": "name"}', 'invalid_owner', 400);
      }
      return { type: 'AccountOpened', data: { owner: input.owner } };
    },
    deposit: (s: Account, input: { amount: number; reference?: string }) => {
      const data = amountOf(input);
      mustBeOpen(s);
      return { type: 'MoneyDeposited', data };
    },
    withdraw: (s: Account, input: { amount: number; reference?: string }) => {
      const data = amountOf(input);
      mustBeOpen(s);
      if (data.amount > s.balance) {
        refuse(
          `insufficient funds: balance ${s.balance}, asked ${data.amount}`,
          'insufficient_funds',
        );
      }
      return { type: 'MoneyWithdrawn', data };
    },
    close: (s: Account, _input: unknown) => {
      mustBeOpen(s);
      if (s.balance !== 0)
        refuse(`withdraw the balance (${s.balance}) before closing`, 'balance_not_zero');
      return { type: 'AccountClosed', data: { balance: 0 } };
    },
  },
});
