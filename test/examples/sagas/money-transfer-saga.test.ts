import { afterEach, describe, expect, it } from 'vitest';
import {
  MoneyTransferSaga,
  TransferAccounts,
  TransferLedger,
  moneyTransferSaga,
} from '../../../examples/money-transfer-saga/index.js';
import { harness, until, type Harness } from '../../helpers.js';

/**
 * Exercise 2 (Money Transfer Saga): debit → credit → record, all or nothing; insufficient
 * funds; idempotent debit and credit; reversal of what already moved. After every scenario the
 * money in the system is the same as before.
 */
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const start = async (): Promise<Harness> => (h = await harness({ services: moneyTransferSaga }));

const transfer = (transferId: string, fromAccount: string, toAccount: string, amount: number) =>
  h!.engine
    .client(MoneyTransferSaga, transferId)
    .run({ transferId, fromAccount, toAccount, amount });

const statement = (id: string) => h!.engine.client(TransferAccounts, id).statement();
const balance = async (id: string): Promise<number> => (await statement(id)).balance;
/** alice 1000 + bob 500 + carol 0 + ext-dave 0: no scenario may change this. */
const total = async (): Promise<number> => {
  const all = await Promise.all(['acct-alice', 'acct-bob', 'acct-carol', 'ext-dave'].map(balance));
  return all.reduce((a, b) => a + b, 0);
};

describe('MoneyTransferSaga (seed 002, exercise 2)', () => {
  it('moves the money, records the transfer, and keeps the total', async () => {
    await start();
    expect(await transfer('tr-1', 'acct-alice', 'acct-bob', 100.25)).toEqual({
      status: 'completed',
      debitTxId: 'tr-1:debit',
      creditTxId: 'tr-1:credit',
    });
    expect(await balance('acct-alice')).toBe(899.75);
    expect(await balance('acct-bob')).toBe(600.25);
    expect(await total()).toBe(1500);
    expect(await h!.engine.client(TransferLedger, 'main').records()).toEqual([
      {
        transferId: 'tr-1',
        fromAccount: 'acct-alice',
        toAccount: 'acct-bob',
        amountCents: 10025,
        debitTxId: 'tr-1:debit',
        creditTxId: 'tr-1:credit',
      },
    ]);
    // The same transfer id again attaches to the finished run: the money moves once.
    expect(await transfer('tr-1', 'acct-alice', 'acct-bob', 100.25)).toMatchObject({
      status: 'completed',
    });
    expect(await balance('acct-alice')).toBe(899.75);
  });

  it('insufficient funds: fails before anything moved, nothing to reverse', async () => {
    await start();
    expect(await transfer('tr-2', 'acct-bob', 'acct-alice', 500.01)).toMatchObject({
      status: 'failed',
      failedAt: 'debit',
      reason: 'insufficient_funds',
      reversed: [],
    });
    expect(await balance('acct-bob')).toBe(500);
    expect((await statement('acct-bob')).transactions).toEqual([]);
    expect(await h!.engine.client(TransferLedger, 'main').records()).toEqual([]);
  });

  it('credit fails (unknown account, frozen account): the debit is reversed', async () => {
    const { engine } = await start();
    expect(await transfer('tr-3', 'acct-alice', 'acct-nobody', 40)).toMatchObject({
      status: 'failed',
      failedAt: 'credit',
      reason: 'account_not_found',
      reversed: ['debit source'],
    });
    expect(await balance('acct-alice')).toBe(1000);
    expect((await statement('acct-alice')).transactions).toMatchObject([
      { txId: 'tr-3:debit', kind: 'debit', amount: 40 },
      { txId: 'tr-3:debit:reversal', kind: 'reversal', reverses: 'tr-3:debit', amount: 40 },
    ]);

    await engine.client(TransferAccounts, 'acct-carol').freeze();
    expect(await transfer('tr-4', 'acct-alice', 'acct-carol', 10)).toMatchObject({
      status: 'failed',
      reason: 'account_frozen',
      reversed: ['debit source'],
    });
    expect(await balance('acct-alice')).toBe(1000);
    expect(await balance('acct-carol')).toBe(0);
    expect(await total()).toBe(1500);
  });

  it('record fails: the credit is reversed, then the debit', async () => {
    const { engine } = await start();
    await engine.client(TransferLedger, 'main').hold({ transferId: 'tr-5', reason: 'AML check' });
    expect(await transfer('tr-5', 'acct-alice', 'acct-bob', 250)).toMatchObject({
      status: 'failed',
      failedAt: 'record',
      reason: 'compliance_hold',
      message: expect.stringContaining('AML check'),
      reversed: ['credit destination', 'debit source'],
    });
    expect(await balance('acct-alice')).toBe(1000);
    expect(await balance('acct-bob')).toBe(500);
    expect((await statement('acct-bob')).transactions.map((t) => t.kind)).toEqual([
      'credit',
      'reversal',
    ]);
    expect(await h!.engine.client(TransferLedger, 'main').records()).toEqual([]);
  });

  it('debit, credit and reverse are idempotent by transaction id', async () => {
    const { engine } = await start();
    const alice = engine.client(TransferAccounts, 'acct-alice');
    const first = await alice.debit({ txId: 'manual-1', transferId: 'manual', amount: 30 });
    expect(await alice.debit({ txId: 'manual-1', transferId: 'manual', amount: 30 })).toEqual(
      first,
    );
    expect(await balance('acct-alice')).toBe(970);
    await alice.reverse({ txId: 'manual-1' });
    await alice.reverse({ txId: 'manual-1' });
    expect(await balance('acct-alice')).toBe(1000);
    const bob = engine.client(TransferAccounts, 'acct-bob');
    await bob.credit({ txId: 'manual-2', transferId: 'manual', amount: 5 });
    await bob.credit({ txId: 'manual-2', transferId: 'manual', amount: 5 });
    expect(await balance('acct-bob')).toBe(505);
    expect((await statement('acct-alice')).replays).toBe(2);
    expect((await statement('acct-bob')).replays).toBe(1);
  });

  it('stays all-or-nothing under concurrent transfers: no overdraft, the total holds', async () => {
    const { engine } = await start();
    await engine.client(TransferAccounts, 'acct-carol').freeze();
    const accounts = ['acct-alice', 'acct-bob', 'acct-carol'];
    const runs = Array.from({ length: 24 }, (_, i) =>
      transfer(`c-${i}`, accounts[i % 3]!, accounts[(i + 1) % 3]!, 150 + i),
    );
    const results = await Promise.all(runs);
    const statuses = new Set(results.map((r) => r.reason ?? r.status));
    // Alice and Bob can pay at first, then run dry; Carol is frozen both ways.
    expect(statuses).toEqual(new Set(['completed', 'account_frozen', 'insufficient_funds']));
    for (const id of accounts) expect(await balance(id)).toBeGreaterThanOrEqual(0);
    expect(await total()).toBe(1500);
    const records = await engine.client(TransferLedger, 'main').records();
    expect(records).toHaveLength(results.filter((r) => r.status === 'completed').length);
  });

  it('waits durably for interbank clearing of an external credit', async () => {
    const { engine, clock } = await start();
    const sent = await engine.send({
      service: 'MoneyTransferSaga',
      handler: 'run',
      key: 'tr-ext',
      input: { fromAccount: 'acct-bob', toAccount: 'ext-dave', amount: 75 },
    });
    await until(
      async () => (await engine.client(MoneyTransferSaga, 'tr-ext').status()).stage === 'credit',
      'the credit is clearing',
    );
    expect(await balance('acct-bob')).toBe(425); // debited, not yet credited
    expect(await balance('ext-dave')).toBe(0);
    await clock.advance('2s');
    expect(await engine.attach(sent.invocationId)).toMatchObject({ status: 'completed' });
    expect(await balance('ext-dave')).toBe(75);
    expect(await total()).toBe(1500);
  });
});
