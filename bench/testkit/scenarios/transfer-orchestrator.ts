/** examples/transfer-orchestrator (seed 001, exercise 2), after test/examples/orchestrators/. */
import { expect } from 'vitest';
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
import type { RunStatus } from '../../../examples/orchestration-kit/status.js';
import type { Driver, Scenario } from '../driver.js';

const services = bankTransfer;
const options = { logger: () => undefined };

async function open(d: Driver, balances: Record<string, number>): Promise<void> {
  for (const [id, deposit] of Object.entries(balances))
    await d.engine.client(BankAccounts, id).open({ owner: id, deposit });
}
const balance = async (d: Driver, id: string) =>
  (await d.engine.client(BankAccounts, id).balance()).balance;
const trail = async (d: Driver, id: string) =>
  (await d.engine.client(BankAudit, id).trail()).map((e) => e.event);
const run = (d: Driver, id: string, t: TransferRequest) =>
  d.engine.client(TransferOrchestrator, id).run(t);
const send = (d: Driver, id: string, input: TransferRequest) =>
  d.engine.send({ service: 'TransferOrchestrator', handler: 'run', key: id, input });
const status = (d: Driver, id: string) => d.engine.client(TransferOrchestrator, id).status();
const events = (s: RunStatus) => s.history.map((e) => `${e.step}:${e.event}`);

const moves = (id: string, amount: number, [alice, bob]: [number, number]): Scenario => ({
  name: `moves ${amount}, confirms to both parties and audits every decision`,
  services,
  options,
  async run(d) {
    await open(d, { alice: 10_000, bob: 500 });
    expect(await run(d, id, { from: 'alice', to: 'bob', amount })).toEqual({
      status: 'completed',
      transferId: id,
      from: 'alice',
      to: 'bob',
      amount,
      fromBalance: alice,
      toBalance: bob,
    });
    expect(await balance(d, 'alice')).toBe(alice);
    expect(await balance(d, 'bob')).toBe(bob);
    expect(await trail(d, id)).toEqual([
      'requested',
      'fraud: allow',
      'compliance: cleared',
      'debited',
      'credited',
      'completed',
    ]);
    const inbox = await d.engine.client(BankNotifications, 'bob').inbox();
    expect(inbox.map((n) => n.message)).toEqual([`You received ${amount} from alice (${id})`]);
    expect((await status(d, id)).state).toBe('completed');
  },
});

export const transferOrchestratorScenarios: Scenario[] = [
  moves('tx-1', 2_500, [7_500, 3_000]),
  moves('tx-1b', 10_000, [0, 10_500]),
  {
    name: 'refunds the debit when the credit fails (a frozen payee)',
    services,
    options,
    async run(d) {
      await open(d, { alice: 10_000, bob: 500 });
      await d.engine.client(BankAccounts, 'bob').freeze();
      expect(await run(d, 'tx-2', { from: 'alice', to: 'bob', amount: 4_000 })).toMatchObject({
        status: 'compensated',
        failedStep: 'credit destination',
        error: { code: 'account_frozen' },
        compensated: ['refund source'],
      });
      expect(await balance(d, 'alice')).toBe(10_000);
      expect(await balance(d, 'bob')).toBe(500);
      expect(await trail(d, 'tx-2')).toEqual([
        'requested',
        'fraud: allow',
        'compliance: cleared',
        'debited',
        'credit failed',
        'refunded',
        'compensated',
      ]);
    },
  },
  {
    name: 'refunds when the credit is refused by the core system (simulated)',
    services,
    options,
    async run(d) {
      await open(d, { alice: 1_000, bob: 0 });
      expect(
        await run(d, 'tx-3', {
          from: 'alice',
          to: 'bob',
          amount: 300,
          simulate: { credit: 'fail' },
        }),
      ).toMatchObject({ status: 'compensated', error: { code: 'credit_rejected' } });
      expect([await balance(d, 'alice'), await balance(d, 'bob')]).toEqual([1_000, 0]);
    },
  },
  {
    name: 'blocks a flagged payer before any money moves',
    services,
    options,
    async run(d) {
      await open(d, { alice: 10_000, bob: 0 });
      await d.engine.client(BankFraudCheck, 'alice').flag({ reason: 'card testing pattern' });
      expect(await run(d, 'tx-4', { from: 'alice', to: 'bob', amount: 100 })).toMatchObject({
        status: 'compensated',
        failedStep: 'fraud check',
        error: { code: 'fraud_blocked', message: 'payer is flagged: card testing pattern' },
        compensated: [],
      });
      expect(await trail(d, 'tx-4')).toEqual(['requested', 'fraud: block', 'compensated']);
    },
  },
  {
    name: 'blocks an amount over the fraud limit',
    services,
    options,
    async run(d) {
      await open(d, { alice: 5_000_000, bob: 0 });
      expect(await run(d, 'tx-5', { from: 'alice', to: 'bob', amount: 1_000_001 })).toMatchObject({
        failedStep: 'fraud check',
        error: { code: 'fraud_blocked' },
      });
      expect(await balance(d, 'alice')).toBe(5_000_000);
    },
  },
  {
    name: 'fails closed when the fraud service errors',
    services,
    options,
    async run(d) {
      await open(d, { alice: 1_000, bob: 0 });
      expect(
        await run(d, 'tx-6', { from: 'alice', to: 'bob', amount: 1, simulate: { fraud: 'fail' } }),
      ).toMatchObject({ error: { code: 'fraud_service_unavailable' } });
    },
  },
  {
    name: 'fails closed when the fraud service does not answer in 10 minutes',
    services,
    options,
    async run(d) {
      await open(d, { alice: 1_000, bob: 0 });
      const { invocationId } = await send(d, 'tx-7', {
        from: 'alice',
        to: 'bob',
        amount: 1,
        simulate: { fraud: 'stall' },
      });
      await d.waitFor(
        async () => (await status(d, 'tx-7')).currentStep === 'fraud check',
        'checking fraud',
      );
      await d.advance('9m');
      expect((await status(d, 'tx-7')).state).toBe('running');
      await d.advance('1m');
      expect(await d.engine.attach(invocationId)).toMatchObject({
        status: 'compensated',
        failedStep: 'fraud check',
        error: { code: 'timeout' },
      });
      expect(await balance(d, 'alice')).toBe(1_000);
    },
  },
  {
    name: 'blocks a sanctioned payee',
    services,
    options,
    async run(d) {
      await open(d, { alice: 1_000, bob: 0 });
      await d.engine.client(BankCompliance, 'bob').sanction({ list: 'OFAC' });
      expect(await run(d, 'tx-8', { from: 'alice', to: 'bob', amount: 10 })).toMatchObject({
        failedStep: 'compliance check',
        error: { code: 'compliance_blocked', message: 'bob is on the OFAC list' },
      });
    },
  },
  {
    name: 'blocks a screening that takes over 10 minutes',
    services,
    options,
    async run(d) {
      await open(d, { alice: 1_000, bob: 0 });
      const { invocationId } = await send(d, 'tx-9', {
        from: 'alice',
        to: 'bob',
        amount: 10,
        simulate: { compliance: 'stall' },
      });
      await d.waitFor(
        async () => (await status(d, 'tx-9')).currentStep === 'compliance check',
        'screening',
      );
      await d.advance('10m');
      expect(await d.engine.attach(invocationId)).toMatchObject({
        failedStep: 'compliance check',
        error: { code: 'timeout' },
      });
      expect(await balance(d, 'alice')).toBe(1_000);
    },
  },
  {
    name: 'rejects a transfer the payer cannot fund, or to an account that does not exist',
    services,
    options,
    async run(d) {
      await open(d, { alice: 100, bob: 0 });
      expect(await run(d, 'tx-10', { from: 'alice', to: 'bob', amount: 101 })).toMatchObject({
        failedStep: 'validate funds',
        error: { code: 'insufficient_funds' },
      });
      expect(await run(d, 'tx-11', { from: 'alice', to: 'carol', amount: 1 })).toMatchObject({
        failedStep: 'validate funds',
        error: { code: 'account_not_found' },
      });
      expect(await trail(d, 'tx-10')).toEqual(['requested', 'rejected', 'compensated']);
    },
  },
  {
    name: 'a cancelled transfer whose debit hung refunds only what was taken',
    services,
    options,
    async run(d) {
      await open(d, { alice: 1_000, bob: 0 });
      const { invocationId } = await send(d, 'tx-12', {
        from: 'alice',
        to: 'bob',
        amount: 400,
        simulate: { debit: 'stall' },
      });
      await d.waitFor(
        async () => (await status(d, 'tx-12')).currentStep === 'debit source',
        'debiting',
      );
      await d.engine.cancel(invocationId);
      await expect(d.engine.attach(invocationId)).rejects.toMatchObject({ code: 'cancelled' });
      await d.advance('2h');
      expect(await balance(d, 'alice')).toBe(1_000);
      expect((await d.engine.client(BankAccounts, 'alice').statement()).ledger).toHaveLength(1);
      expect(await status(d, 'tx-12')).toMatchObject({
        state: 'cancelled',
        failure: { step: 'debit source' },
      });
      expect(events(await status(d, 'tx-12'))).toContain('refund source:compensated');
    },
  },
  {
    name: 'runs a transfer id once, and refunds a debit at most once',
    services,
    options,
    async run(d) {
      await open(d, { alice: 1_000, bob: 0 });
      const first = await run(d, 'tx-13', { from: 'alice', to: 'bob', amount: 100 });
      expect(await run(d, 'tx-13', { from: 'alice', to: 'bob', amount: 900 })).toEqual(first);
      expect(await balance(d, 'alice')).toBe(900);
      const alice = d.engine.client(BankAccounts, 'alice');
      await alice.debit({ transferId: 'manual', amount: 50 });
      await alice.debit({ transferId: 'manual', amount: 50 });
      await alice.refund('manual');
      await alice.refund('manual');
      expect(await balance(d, 'alice')).toBe(900);
      expect(await alice.refund('never-debited')).toBeNull();
    },
  },
];
