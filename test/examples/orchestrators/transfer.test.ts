/**
 * Seed 001, exercise 2 (bank transfer). Success criteria:
 * - atomic transfers           → "moves the money ...", "refunds the debit when the credit
 *                                 fails", "keeps the total ... under concurrent transfers"
 * - fraud blocking works       → "blocks a flagged payer ...", "blocks ... over the limit",
 *                                 "fails closed ..."
 * - compensation implemented   → "refunds the debit when the credit fails", "... cancelled"
 * - audit trail maintained     → every test reads `BankAudit`; "moves the money ..." checks it
 *                                 event by event
 * Also: compliance blocks (sanctions, 10-minute timeout), idempotency per transfer id.
 * kill -9 in the middle of transfers: crash.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  BankAccounts,
  BankAudit,
  BankCompliance,
  BankFraudCheck,
  BankNotifications,
  bankTransfer,
  TransferOrchestrator,
} from '../../../examples/transfer-orchestrator/index.js';
import type { TransferRequest } from '../../../examples/transfer-orchestrator/orchestrator.js';
import type { Harness } from '../../helpers.js';
import { events, untilStatus, useHarness } from './support.js';

const start = useHarness(bankTransfer);

async function open(h: Harness, balances: Record<string, number>): Promise<void> {
  for (const [id, deposit] of Object.entries(balances))
    await h.engine.client(BankAccounts, id).open({ owner: id, deposit });
}

const balance = async (h: Harness, id: string) =>
  (await h.engine.client(BankAccounts, id).balance()).balance;

const trail = async (h: Harness, id: string) =>
  (await h.engine.client(BankAudit, id).trail()).map((e) => e.event);

const run = (h: Harness, id: string, t: TransferRequest) =>
  h.engine.client(TransferOrchestrator, id).run(t);

describe('TransferOrchestrator', () => {
  it('moves the money, confirms to both parties and audits every decision', async () => {
    const h = await start();
    await open(h, { alice: 10_000, bob: 500 });
    const result = await run(h, 'tx-1', { from: 'alice', to: 'bob', amount: 2_500 });

    expect(result).toEqual({
      status: 'completed',
      transferId: 'tx-1',
      from: 'alice',
      to: 'bob',
      amount: 2_500,
      fromBalance: 7_500,
      toBalance: 3_000,
    });
    expect(await balance(h, 'alice')).toBe(7_500);
    expect(await balance(h, 'bob')).toBe(3_000);
    expect(await trail(h, 'tx-1')).toEqual([
      'requested',
      'fraud: allow',
      'compliance: cleared',
      'debited',
      'credited',
      'completed',
    ]);
    const inbox = await h.engine.client(BankNotifications, 'bob').inbox();
    expect(inbox.map((n) => n.message)).toEqual(['You received 2500 from alice (tx-1)']);
    const status = await h.engine.client(TransferOrchestrator, 'tx-1').status();
    expect(status.state).toBe('completed');
    expect(events(status).filter((e) => e.endsWith(':completed'))).toEqual([
      'validate funds:completed',
      'fraud check:completed',
      'compliance check:completed',
      'debit source:completed',
      'credit destination:completed',
      'send confirmation:completed',
      'run:completed',
    ]);
  });

  it('refunds the debit when the credit fails (a frozen payee): all or nothing', async () => {
    const h = await start();
    await open(h, { alice: 10_000, bob: 500 });
    await h.engine.client(BankAccounts, 'bob').freeze();
    const result = await run(h, 'tx-2', { from: 'alice', to: 'bob', amount: 4_000 });

    expect(result).toMatchObject({
      status: 'compensated',
      failedStep: 'credit destination',
      error: { code: 'account_frozen' },
      compensated: ['refund source'],
    });
    expect(await balance(h, 'alice')).toBe(10_000);
    expect(await balance(h, 'bob')).toBe(500);
    const ledger = (await h.engine.client(BankAccounts, 'alice').statement()).ledger;
    expect(ledger.filter((e) => e.transferId === 'tx-2').map((e) => [e.kind, e.amount])).toEqual([
      ['debit', 4_000],
      ['refund', 4_000],
    ]);
    expect(await trail(h, 'tx-2')).toEqual([
      'requested',
      'fraud: allow',
      'compliance: cleared',
      'debited',
      'credit failed',
      'refunded',
      'compensated',
    ]);
  });

  it('refunds when the credit is refused by the core system (simulated)', async () => {
    const h = await start();
    await open(h, { alice: 1_000, bob: 0 });
    const result = await run(h, 'tx-3', {
      from: 'alice',
      to: 'bob',
      amount: 300,
      simulate: { credit: 'fail' },
    });
    expect(result).toMatchObject({ status: 'compensated', error: { code: 'credit_rejected' } });
    expect([await balance(h, 'alice'), await balance(h, 'bob')]).toEqual([1_000, 0]);
  });

  it('blocks a flagged payer before any money moves', async () => {
    const h = await start();
    await open(h, { alice: 10_000, bob: 0 });
    await h.engine.client(BankFraudCheck, 'alice').flag({ reason: 'card testing pattern' });
    const result = await run(h, 'tx-4', { from: 'alice', to: 'bob', amount: 100 });
    expect(result).toMatchObject({
      status: 'compensated',
      failedStep: 'fraud check',
      error: { code: 'fraud_blocked', message: 'payer is flagged: card testing pattern' },
      compensated: [],
    });
    expect((await h.engine.client(BankAccounts, 'alice').statement()).ledger).toHaveLength(1);
    expect(await trail(h, 'tx-4')).toEqual(['requested', 'fraud: block', 'compensated']);
  });

  it('blocks an amount over the fraud limit', async () => {
    const h = await start();
    await open(h, { alice: 5_000_000, bob: 0 });
    const result = await run(h, 'tx-5', { from: 'alice', to: 'bob', amount: 1_000_001 });
    expect(result).toMatchObject({ failedStep: 'fraud check', error: { code: 'fraud_blocked' } });
    expect(await balance(h, 'alice')).toBe(5_000_000);
  });

  it('fails closed when the fraud service errors or does not answer in 10 minutes', async () => {
    const h = await start();
    await open(h, { alice: 1_000, bob: 0 });
    const down = await run(h, 'tx-6', {
      from: 'alice',
      to: 'bob',
      amount: 1,
      simulate: { fraud: 'fail' },
    });
    expect(down).toMatchObject({ error: { code: 'fraud_service_unavailable' } });

    const { invocationId } = await h.engine.send({
      service: 'TransferOrchestrator',
      handler: 'run',
      key: 'tx-7',
      input: { from: 'alice', to: 'bob', amount: 1, simulate: { fraud: 'stall' } },
    });
    const status = () => h.engine.client(TransferOrchestrator, 'tx-7').status();
    await untilStatus(status, (s) => s.currentStep === 'fraud check', 'checking fraud');
    await h.clock.advance('9m');
    expect((await status()).state).toBe('running');
    await h.clock.advance('1m');
    expect(await h.engine.attach(invocationId)).toMatchObject({
      status: 'compensated',
      failedStep: 'fraud check',
      error: { code: 'timeout' },
    });
    expect(await balance(h, 'alice')).toBe(1_000);
  });

  it('blocks a sanctioned payee, and a screening that takes over 10 minutes', async () => {
    const h = await start();
    await open(h, { alice: 1_000, bob: 0 });
    await h.engine.client(BankCompliance, 'bob').sanction({ list: 'OFAC' });
    expect(await run(h, 'tx-8', { from: 'alice', to: 'bob', amount: 10 })).toMatchObject({
      failedStep: 'compliance check',
      error: { code: 'compliance_blocked', message: 'bob is on the OFAC list' },
    });
    await h.engine.client(BankCompliance, 'bob').lift();

    const { invocationId } = await h.engine.send({
      service: 'TransferOrchestrator',
      handler: 'run',
      key: 'tx-9',
      input: { from: 'alice', to: 'bob', amount: 10, simulate: { compliance: 'stall' } },
    });
    await untilStatus(
      () => h.engine.client(TransferOrchestrator, 'tx-9').status(),
      (s) => s.currentStep === 'compliance check',
      'screening',
    );
    await h.clock.advance('10m');
    expect(await h.engine.attach(invocationId)).toMatchObject({
      failedStep: 'compliance check',
      error: { code: 'timeout' },
    });
    expect(await balance(h, 'alice')).toBe(1_000);
  });

  it('rejects a transfer the payer cannot fund, or to an account that does not exist', async () => {
    const h = await start();
    await open(h, { alice: 100, bob: 0 });
    expect(await run(h, 'tx-10', { from: 'alice', to: 'bob', amount: 101 })).toMatchObject({
      failedStep: 'validate funds',
      error: { code: 'insufficient_funds' },
    });
    expect(await run(h, 'tx-11', { from: 'alice', to: 'carol', amount: 1 })).toMatchObject({
      failedStep: 'validate funds',
      error: { code: 'account_not_found' },
    });
    expect(await trail(h, 'tx-10')).toEqual(['requested', 'rejected', 'compensated']);
  });

  it('undoes nothing twice: a cancelled transfer whose debit hung refunds only what was taken', async () => {
    const h = await start();
    await open(h, { alice: 1_000, bob: 0 });
    const { invocationId } = await h.engine.send({
      service: 'TransferOrchestrator',
      handler: 'run',
      key: 'tx-12',
      input: { from: 'alice', to: 'bob', amount: 400, simulate: { debit: 'stall' } },
    });
    const status = () => h.engine.client(TransferOrchestrator, 'tx-12').status();
    await untilStatus(status, (s) => s.currentStep === 'debit source', 'debiting');
    await h.engine.cancel(invocationId);
    await expect(h.engine.attach(invocationId)).rejects.toMatchObject({ code: 'cancelled' });
    // The cancel reached the hung debit too: nothing was taken, so the refund gave nothing.
    await h.clock.advance('2h');
    expect(await balance(h, 'alice')).toBe(1_000);
    expect((await h.engine.client(BankAccounts, 'alice').statement()).ledger).toHaveLength(1);
    expect(await status()).toMatchObject({ state: 'cancelled', failure: { step: 'debit source' } });
    expect(events(await status())).toContain('refund source:compensated');
  });

  it('runs a transfer id once, and refunds a debit at most once', async () => {
    const h = await start();
    await open(h, { alice: 1_000, bob: 0 });
    const first = await run(h, 'tx-13', { from: 'alice', to: 'bob', amount: 100 });
    expect(await run(h, 'tx-13', { from: 'alice', to: 'bob', amount: 900 })).toEqual(first);
    expect(await balance(h, 'alice')).toBe(900);

    const alice = h.engine.client(BankAccounts, 'alice');
    await alice.debit({ transferId: 'manual', amount: 50 });
    await alice.debit({ transferId: 'manual', amount: 50 });
    await alice.refund('manual');
    await alice.refund('manual');
    expect(await balance(h, 'alice')).toBe(900);
    expect(await alice.refund('never-debited')).toBeNull();
  });

  it('keeps the total and never overdraws under concurrent transfers, some failing', async () => {
    const h = await start();
    await open(h, { a: 1_000, b: 1_000, c: 1_000, frozen: 1_000 });
    await h.engine.client(BankAccounts, 'frozen').freeze();
    const accounts = ['a', 'b', 'c', 'frozen'];
    const sent = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        h.engine.send({
          service: 'TransferOrchestrator',
          handler: 'run',
          key: `cx-${i}`,
          input: {
            from: accounts[i % 3]!,
            to: accounts[((i % 3) + 1 + (i % 2)) % 4]!,
            amount: 150,
          },
        }),
      ),
    );
    const results = (await Promise.all(sent.map((s) => h.engine.attach(s.invocationId)))) as Array<{
      status: string;
    }>;
    const balances = await Promise.all(accounts.map((id) => balance(h, id)));
    expect(balances.reduce((x, y) => x + y, 0)).toBe(4_000);
    expect(Math.min(...balances)).toBeGreaterThanOrEqual(0);
    expect(results.some((r) => r.status === 'completed')).toBe(true);
    expect(results.some((r) => r.status === 'compensated')).toBe(true);
    expect(await balance(h, 'frozen')).toBe(1_000);
  });
});
