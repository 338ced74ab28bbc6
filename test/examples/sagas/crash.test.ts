import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { OrderRequest, OrderResult } from '../../../examples/order-saga/index.js';
import type { TransferResult } from '../../../examples/money-transfer-saga/index.js';
import { killHard, spawnApp, tempDir } from '../../helpers.js';

/**
 * kill -9 in the middle of order sagas and money transfers (some waiting on a slow carrier or
 * on interbank clearing, some compensating), then a restart on the same database: every
 * accepted saga finishes, and the downstream state shows each effect exactly once: stock
 * exact, each order charged once and refunded at most once, balances summing to what they
 * did, no request ever answered twice.
 */
const tmp = tempDir('keel-sagas-crash-');
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  tmp.cleanup();
});

const start = () =>
  spawnApp(
    join(import.meta.dirname, 'fixtures/sagas-app.ts'),
    { KEEL_DB: join(tmp.dir, 'keel.db') },
    children,
  );

async function post(url: string, body?: unknown): Promise<any> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = await res.json();
  if (res.status >= 300) throw new Error(`${url}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

// ---- the workload -----------------------------------------------------------------------

const customers = [
  'cust-a',
  'cust-b',
  'cust-c',
  'cust-fail-payment',
  'cust-fail-shipment',
  'cust-slow-shipment',
  'cust-fail-email',
];
const orders: OrderRequest[] = Array.from({ length: 28 }, (_, i) => {
  const customerId = customers[i % customers.length]!;
  const soldOut = i % 9 === 4; // a few orders that cannot be reserved
  return {
    orderId: `o-${i}`,
    customerId,
    items: [
      { sku: 'ITEM-001', quantity: 1 + (i % 3) },
      { sku: soldOut ? 'ITEM-SOLD-OUT' : 'ITEM-002', quantity: 1 },
    ],
    amount: 10 + i + 0.99,
  };
});

const OPENING: Record<string, number> = {
  'acct-alice': 1000,
  'acct-bob': 500,
  'acct-carol': 0,
  'ext-dave': 0,
};
const ring = ['acct-alice', 'acct-bob', 'acct-carol'];
const transfers = [
  // Around the ring: some of Carol's fail for insufficient funds, depending on arrival order.
  ...Array.from({ length: 15 }, (_, i) => ({
    transferId: `t-${i}`,
    fromAccount: ring[i % 3]!,
    toAccount: ring[(i + 1) % 3]!,
    amount: 20 + i + 0.5,
  })),
  // Credits that fail: the debit is reversed.
  { transferId: 't-nobody-1', fromAccount: 'acct-alice', toAccount: 'acct-nobody', amount: 33 },
  { transferId: 't-nobody-2', fromAccount: 'acct-bob', toAccount: 'acct-nobody', amount: 44 },
  // Credits that wait 2 s for clearing: certainly in flight when the process dies.
  { transferId: 't-ext-1', fromAccount: 'acct-alice', toAccount: 'ext-dave', amount: 70 },
  { transferId: 't-ext-2', fromAccount: 'acct-bob', toAccount: 'ext-dave', amount: 80 },
  // Refused by the register: the credit and the debit are reversed.
  { transferId: 't-held', fromAccount: 'acct-alice', toAccount: 'acct-bob', amount: 55 },
];

describe('seed-002 sagas across kill -9', () => {
  it('finishes every order and transfer with exactly-once effects on the downstream state', async () => {
    const first = await start();
    await post(`${first.url}/TransferLedger/main/hold`, {
      transferId: 't-held',
      reason: 'AML check',
    });

    const accepted = await Promise.all([
      ...orders.map((o) => post(`${first.url}/OrderSaga/${o.orderId}/run/send`, o)),
      ...transfers.map((t) => post(`${first.url}/MoneyTransferSaga/${t.transferId}/run/send`, t)),
    ]);
    const ids: string[] = accepted.map((a: { invocationId: string }) => a.invocationId);

    // Crash once some sagas have finished: the rest are between steps, compensating, or
    // waiting on the slow carrier and the clearing.
    const isDone = async (id: string): Promise<boolean> => {
      const info = (await (await fetch(`${first.url}/invocations/${id}`)).json()) as {
        status: string;
      };
      return info.status === 'completed' || info.status === 'failed';
    };
    let done: boolean[] = [];
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      done = await Promise.all(ids.map(isDone));
      if (done.filter(Boolean).length >= 8) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    await killHard(first.child);
    // The crash must interrupt both kinds of saga, or this test proves nothing.
    expect(done.filter(Boolean).length).toBeGreaterThanOrEqual(8);
    expect(done.slice(0, orders.length).includes(false)).toBe(true);
    expect(done.slice(orders.length).includes(false)).toBe(true);

    const second = await start();
    const results = await Promise.all(
      ids.map(async (id) => {
        const res = await fetch(`${second.url}/invocations/${id}/attach`);
        expect(res.status).toBe(200);
        return res.json();
      }),
    );
    const orderResults = results.slice(0, orders.length) as OrderResult[];
    const transferResults = results.slice(orders.length) as TransferResult[];

    // ---- orders: every result as its customer and items dictate ----
    orders.forEach((o, i) => {
      const r = orderResults[i]!;
      const soldOut = o.items.some((it) => it.sku === 'ITEM-SOLD-OUT');
      const expected =
        o.customerId === 'cust-fail-payment'
          ? 'payment_failed'
          : soldOut
            ? 'inventory_failed'
            : o.customerId === 'cust-fail-shipment'
              ? 'shipment_failed'
              : 'completed';
      expect(r.status, o.orderId).toBe(expected);
      if (expected === 'completed') expect(r.emailSent).toBe(o.customerId !== 'cust-fail-email');
    });
    const completed = orders.filter((_, i) => orderResults[i]!.status === 'completed');

    // Stock is exact: only completed orders hold units, and no reservation was applied twice.
    const stock = await post(`${second.url}/OrderSagaInventory/main/stock`);
    const units = (sku: string) =>
      completed
        .flatMap((o) => o.items)
        .filter((it) => it.sku === sku)
        .reduce((n, it) => n + it.quantity, 0);
    expect(stock.available['ITEM-001']).toBe(100 - units('ITEM-001'));
    expect(stock.available['ITEM-002']).toBe(50 - units('ITEM-002'));
    expect(stock.replays).toBe(0);

    // Each order charged once; refunded once exactly when it failed after the payment.
    for (const customerId of customers) {
      const ledger = await post(`${second.url}/OrderSagaPayments/${customerId}/ledger`);
      expect(ledger.replays, customerId).toBe(0);
      const mine = orders.filter((o) => o.customerId === customerId);
      const charged = mine.filter(
        (o) => orderResults[orders.indexOf(o)]!.status !== 'payment_failed',
      );
      expect(ledger.payments.map((p: { orderId: string }) => p.orderId).sort()).toEqual(
        charged.map((o) => o.orderId).sort(),
      );
      for (const p of ledger.payments as Array<{ orderId: string; status: string }>) {
        const status = orderResults[orders.findIndex((o) => o.orderId === p.orderId)]!.status;
        expect(p.status, p.orderId).toBe(status === 'completed' ? 'captured' : 'refunded');
      }
    }

    // ---- transfers: money moved exactly once, or not at all ----
    transfers.forEach((t, i) => {
      const r = transferResults[i]!;
      if (t.toAccount === 'acct-nobody')
        expect(r).toMatchObject({
          status: 'failed',
          reason: 'account_not_found',
          reversed: ['debit source'],
        });
      else if (t.transferId === 't-held')
        expect(r).toMatchObject({
          status: 'failed',
          reason: 'compliance_hold',
          reversed: ['credit destination', 'debit source'],
        });
      else if (t.fromAccount !== 'acct-carol') expect(r.status, t.transferId).toBe('completed');
      else expect(['completed', 'insufficient_funds']).toContain(r.reason ?? r.status);
    });
    const cents = (amount: number): number => Math.round(amount * 100);
    const expected = Object.fromEntries(Object.entries(OPENING).map(([a, v]) => [a, cents(v)]));
    transfers.forEach((t, i) => {
      if (transferResults[i]!.status !== 'completed') return;
      expected[t.fromAccount]! -= cents(t.amount);
      expected[t.toAccount]! += cents(t.amount);
    });
    let total = 0;
    for (const account of Object.keys(OPENING)) {
      const s = await post(`${second.url}/TransferAccounts/${account}/statement`);
      expect(s.replays, account).toBe(0);
      const txIds = (s.transactions as Array<{ txId: string }>).map((t) => t.txId);
      expect(new Set(txIds).size).toBe(txIds.length); // no movement applied twice
      expect(cents(s.balance), account).toBe(expected[account]);
      total += cents(s.balance);
    }
    expect(total).toBe(150_000); // 1500.00, as before
    second.child.kill('SIGTERM');
  }, 60_000);
});
