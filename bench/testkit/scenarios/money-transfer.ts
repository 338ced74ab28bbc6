/** examples/money-transfer-saga (seed 002, exercise 2), after test/examples/sagas/. */
import { expect } from 'vitest';
import {
  MoneyTransferSaga,
  TransferAccounts,
  TransferLedger,
  moneyTransferSaga,
} from '../../../examples/money-transfer-saga/index.js';
import type { Driver, Scenario } from '../driver.js';

const services = moneyTransferSaga;

const transfer = (d: Driver, transferId: string, from: string, to: string, amount: number) =>
  d.engine
    .client(MoneyTransferSaga, transferId)
    .run({ transferId, fromAccount: from, toAccount: to, amount });
const statement = (d: Driver, id: string) => d.engine.client(TransferAccounts, id).statement();
const balance = async (d: Driver, id: string): Promise<number> => (await statement(d, id)).balance;
/** alice 1000 + bob 500 + carol 0 + ext-dave 0: no scenario may change this. */
const total = async (d: Driver): Promise<number> => {
  const ids = ['acct-alice', 'acct-bob', 'acct-carol', 'ext-dave'];
  const all = await Promise.all(ids.map((id) => balance(d, id)));
  return all.reduce((a, b) => a + b, 0);
};

const moves = (
  id: string,
  from: string,
  to: string,
  amount: number,
  after: [number, number],
): Scenario => ({
  name: `moves ${amount} from ${from} to ${to}, records it, keeps the total`,
  services,
  async run(d) {
    expect(await transfer(d, id, from, to, amount)).toEqual({
      status: 'completed',
      debitTxId: `${id}:debit`,
      creditTxId: `${id}:credit`,
    });
    expect(await balance(d, from)).toBe(after[0]);
    expect(await balance(d, to)).toBe(after[1]);
    expect(await total(d)).toBe(1500);
    expect(await d.engine.client(TransferLedger, 'main').records()).toEqual([
      {
        transferId: id,
        fromAccount: from,
        toAccount: to,
        amountCents: Math.round(amount * 100),
        debitTxId: `${id}:debit`,
        creditTxId: `${id}:credit`,
      },
    ]);
    // The same transfer id again attaches to the finished run: the money moves once.
    expect(await transfer(d, id, from, to, amount)).toMatchObject({ status: 'completed' });
    expect(await balance(d, from)).toBe(after[0]);
  },
});

export const moneyTransferScenarios: Scenario[] = [
  moves('tr-1', 'acct-alice', 'acct-bob', 100.25, [899.75, 600.25]),
  moves('tr-1b', 'acct-bob', 'acct-carol', 500, [0, 500]),
  moves('tr-1c', 'acct-alice', 'acct-carol', 0.01, [999.99, 0.01]),
  {
    name: 'insufficient funds: fails before anything moved, nothing to reverse',
    services,
    async run(d) {
      expect(await transfer(d, 'tr-2', 'acct-bob', 'acct-alice', 500.01)).toMatchObject({
        status: 'failed',
        failedAt: 'debit',
        reason: 'insufficient_funds',
        reversed: [],
      });
      expect(await balance(d, 'acct-bob')).toBe(500);
      expect((await statement(d, 'acct-bob')).transactions).toEqual([]);
      expect(await d.engine.client(TransferLedger, 'main').records()).toEqual([]);
    },
  },
  {
    name: 'credit fails (unknown account): the debit is reversed',
    services,
    async run(d) {
      expect(await transfer(d, 'tr-3', 'acct-alice', 'acct-nobody', 40)).toMatchObject({
        status: 'failed',
        failedAt: 'credit',
        reason: 'account_not_found',
        reversed: ['debit source'],
      });
      expect(await balance(d, 'acct-alice')).toBe(1000);
      expect((await statement(d, 'acct-alice')).transactions).toMatchObject([
        { txId: 'tr-3:debit', kind: 'debit', amount: 40 },
        { txId: 'tr-3:debit:reversal', kind: 'reversal', reverses: 'tr-3:debit', amount: 40 },
      ]);
    },
  },
  {
    name: 'credit fails (frozen account): the debit is reversed',
    services,
    async run(d) {
      await d.engine.client(TransferAccounts, 'acct-carol').freeze();
      expect(await transfer(d, 'tr-4', 'acct-alice', 'acct-carol', 10)).toMatchObject({
        status: 'failed',
        reason: 'account_frozen',
        reversed: ['debit source'],
      });
      expect(await balance(d, 'acct-alice')).toBe(1000);
      expect(await balance(d, 'acct-carol')).toBe(0);
      expect(await total(d)).toBe(1500);
    },
  },
  {
    name: 'record fails: the credit is reversed, then the debit',
    services,
    async run(d) {
      await d.engine
        .client(TransferLedger, 'main')
        .hold({ transferId: 'tr-5', reason: 'AML check' });
      expect(await transfer(d, 'tr-5', 'acct-alice', 'acct-bob', 250)).toMatchObject({
        status: 'failed',
        failedAt: 'record',
        reason: 'compliance_hold',
        message: expect.stringContaining('AML check'),
        reversed: ['credit destination', 'debit source'],
      });
      expect(await balance(d, 'acct-alice')).toBe(1000);
      expect(await balance(d, 'acct-bob')).toBe(500);
      expect((await statement(d, 'acct-bob')).transactions.map((t) => t.kind)).toEqual([
        'credit',
        'reversal',
      ]);
      expect(await d.engine.client(TransferLedger, 'main').records()).toEqual([]);
    },
  },
  {
    name: 'debit, credit and reverse are idempotent by transaction id',
    services,
    async run(d) {
      const alice = d.engine.client(TransferAccounts, 'acct-alice');
      const first = await alice.debit({ txId: 'manual-1', transferId: 'manual', amount: 30 });
      expect(await alice.debit({ txId: 'manual-1', transferId: 'manual', amount: 30 })).toEqual(
        first,
      );
      expect(await balance(d, 'acct-alice')).toBe(970);
      await alice.reverse({ txId: 'manual-1' });
      await alice.reverse({ txId: 'manual-1' });
      expect(await balance(d, 'acct-alice')).toBe(1000);
      const bob = d.engine.client(TransferAccounts, 'acct-bob');
      await bob.credit({ txId: 'manual-2', transferId: 'manual', amount: 5 });
      await bob.credit({ txId: 'manual-2', transferId: 'manual', amount: 5 });
      expect(await balance(d, 'acct-bob')).toBe(505);
      expect((await statement(d, 'acct-alice')).replays).toBe(2);
      expect((await statement(d, 'acct-bob')).replays).toBe(1);
    },
  },
  {
    name: 'stays all-or-nothing under 24 concurrent transfers',
    services,
    async run(d) {
      await d.engine.client(TransferAccounts, 'acct-carol').freeze();
      const accounts = ['acct-alice', 'acct-bob', 'acct-carol'];
      const results = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          transfer(d, `c-${i}`, accounts[i % 3]!, accounts[(i + 1) % 3]!, 150 + i),
        ),
      );
      const statuses = new Set(results.map((r) => r.reason ?? r.status));
      expect(statuses).toEqual(new Set(['completed', 'account_frozen', 'insufficient_funds']));
      for (const id of accounts) expect(await balance(d, id)).toBeGreaterThanOrEqual(0);
      expect(await total(d)).toBe(1500);
      const records = await d.engine.client(TransferLedger, 'main').records();
      expect(records).toHaveLength(results.filter((r) => r.status === 'completed').length);
    },
  },
  {
    name: 'waits durably (2 s) for interbank clearing of an external credit',
    services,
    async run(d) {
      const sent = await d.engine.send({
        service: 'MoneyTransferSaga',
        handler: 'run',
        key: 'tr-ext',
        input: { fromAccount: 'acct-bob', toAccount: 'ext-dave', amount: 75 },
      });
      await d.waitFor(
        async () =>
          (await d.engine.client(MoneyTransferSaga, 'tr-ext').status()).stage === 'credit',
        'the credit is clearing',
      );
      expect(await balance(d, 'acct-bob')).toBe(425); // debited, not yet credited
      expect(await balance(d, 'ext-dave')).toBe(0);
      await d.advance('2s');
      expect(await d.engine.attach(sent.invocationId)).toMatchObject({ status: 'completed' });
      expect(await balance(d, 'ext-dave')).toBe(75);
      expect(await total(d)).toBe(1500);
    },
  },
];
