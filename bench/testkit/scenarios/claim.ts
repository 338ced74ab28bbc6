/** examples/claim-saga (seed 002, exercise 5), after test/examples/sagas/claim-saga.test.ts. */
import { expect } from 'vitest';
import {
  ClaimMedicalRecords,
  ClaimPayouts,
  ClaimPolicies,
  ClaimSaga,
  claimSaga,
  type Claim,
} from '../../../examples/claim-saga/index.js';
import { CancelledError } from '../../../src/index.js';
import type { Driver, Scenario } from '../driver.js';

const services = claimSaga;

const claim = (claimId: string, over: Partial<Claim> = {}): Claim => ({
  claimId,
  policyId: 'pol-123',
  customerId: 'cust-123',
  amount: 1200,
  description: 'broken arm',
  ...over,
});
const file = (d: Driver, c: Claim) =>
  d.engine.send({ service: 'ClaimSaga', handler: 'run', key: c.claimId, input: c });
const stage = async (d: Driver, id: string) =>
  (await d.engine.client(ClaimSaga, id).status()).stage;
const waitingForApproval = (d: Driver, id: string) =>
  d.waitFor(async () => (await stage(d, id)) === 'approval', `claim ${id} waits for approval`);
const policy = async (d: Driver, id = 'pol-123') =>
  (await d.engine.client(ClaimPolicies, id).policy())!;
const records = (d: Driver, id: string) => d.engine.client(ClaimMedicalRecords, id).records();

const invalid = (id: string, over: Partial<Claim>): Scenario => ({
  name: `an invalid claim (${JSON.stringify(over)}) is rejected before any records are requested`,
  services,
  async run(d) {
    expect(await d.engine.client(ClaimSaga, id).run(claim(id, over))).toMatchObject({
      status: 'rejected_invalid',
      reason: 'invalid_claim',
      compensated: [],
    });
    expect(await records(d, id)).toBeNull();
    expect((await policy(d, 'pol-456')).coverageLeft).toBe(2000);
  },
});

export const claimScenarios: Scenario[] = [
  {
    name: 'waits (suspended) for the approval, then pays and closes the claim',
    services,
    async run(d) {
      const run = await file(d, claim('claim-1'));
      await waitingForApproval(d, 'claim-1');
      await d.advance('3d');
      expect((await d.engine.getInvocation(run.invocationId))?.status).toBe('suspended');
      expect(await records(d, 'claim-1')).toMatchObject({ status: 'received' });
      expect((await policy(d)).coverageLeft).toBe(8800);
      await d.engine.invoke({
        service: 'ClaimSaga',
        handler: 'Approve',
        key: 'claim-1',
        input: { approved: true, reviewer: 'ann' },
      });
      expect(await d.engine.attach(run.invocationId)).toEqual({
        status: 'paid',
        paymentId: 'clm_pay_claim-1',
        reviewer: 'ann',
      });
      expect((await policy(d)).claims['claim-1']).toMatchObject({ status: 'paid' });
      expect(await d.engine.client(ClaimPayouts, 'claim-1').payout()).toMatchObject({
        amount: 1200,
      });
      expect(await d.engine.client(ClaimSaga, 'claim-1').status()).toMatchObject({
        stage: 'closed',
        outcome: 'paid',
        decision: { approved: true, reviewer: 'ann' },
      });
    },
  },
  invalid('c-lapsed', { policyId: 'pol-lapsed', customerId: 'cust-789' }),
  invalid('c-over', { policyId: 'pol-456', customerId: 'cust-456', amount: 2500 }),
  invalid('c-holder', { customerId: 'cust-456' }),
  invalid('c-none', { policyId: 'pol-999' }),
  {
    name: 'missing medical records fail the claim and release the reserved coverage',
    services,
    async run(d) {
      const c = claim('c-rec', { policyId: 'pol-777', customerId: 'cust-no-records' });
      expect(await d.engine.client(ClaimSaga, 'c-rec').run(c)).toMatchObject({
        status: 'failed',
        reason: 'records_unavailable',
        compensated: ['validate claim'],
      });
      expect((await policy(d, 'pol-777')).claims['c-rec']).toMatchObject({ status: 'withdrawn' });
      expect((await policy(d, 'pol-777')).coverageLeft).toBe(10_000);
    },
  },
  {
    name: 'a rejection purges the records and withdraws the claim',
    services,
    async run(d) {
      const run = await file(d, claim('claim-r'));
      await waitingForApproval(d, 'claim-r');
      await d.engine
        .client(ClaimSaga, 'claim-r')
        .reject({ reviewer: 'bob', reason: 'pre-existing condition' });
      expect(await d.engine.attach(run.invocationId)).toEqual({
        status: 'rejected',
        reason: 'claim_rejected',
        message: 'rejected by bob: pre-existing condition',
        compensated: ['request medical records', 'validate claim'],
      });
      expect(await records(d, 'claim-r')).toMatchObject({ status: 'purged' });
      expect((await policy(d)).coverageLeft).toBe(10_000);
    },
  },
  {
    name: 'a rejection sent before the claim reaches approval is kept and acted on',
    services,
    async run(d) {
      await d.engine.client(ClaimSaga, 'claim-early').approve({ approved: false, reviewer: 'cy' });
      expect(
        await d.engine.client(ClaimSaga, 'claim-early').run(claim('claim-early')),
      ).toMatchObject({
        status: 'rejected',
        compensated: ['request medical records', 'validate claim'],
      });
    },
  },
  {
    name: 'times out after 30 days without a decision, and undoes the claim',
    services,
    async run(d) {
      const run = await file(d, claim('claim-t'));
      await waitingForApproval(d, 'claim-t');
      await d.advance('29d');
      expect((await d.engine.getInvocation(run.invocationId))?.status).toBe('suspended');
      expect(await stage(d, 'claim-t')).toBe('approval');
      await d.advance('1d');
      expect(await d.engine.attach(run.invocationId)).toMatchObject({
        status: 'timeout',
        reason: 'approval_timeout',
        compensated: ['request medical records', 'validate claim'],
      });
      expect(await records(d, 'claim-t')).toMatchObject({ status: 'purged' });
      expect((await policy(d)).claims['claim-t']).toMatchObject({ status: 'withdrawn' });
    },
  },
  {
    name: 'a claim nobody decides ends as a timeout, run to its end',
    services,
    async run(d) {
      const run = await file(d, claim('claim-t2'));
      expect(await d.finish(run.invocationId, '1d')).toMatchObject({
        status: 'timeout',
        reason: 'approval_timeout',
      });
      expect((await policy(d)).coverageLeft).toBe(10_000);
    },
  },
  {
    name: 'a failed payout is not compensated: the approved claim goes to manual review',
    services,
    async run(d) {
      const run = await file(
        d,
        claim('claim-p', { policyId: 'pol-888', customerId: 'cust-payout-fails' }),
      );
      await waitingForApproval(d, 'claim-p');
      await d.engine.client(ClaimSaga, 'claim-p').approve({ approved: true, reviewer: 'ann' });
      expect(await d.engine.attach(run.invocationId)).toEqual({
        status: 'payment_failed',
        reviewer: 'ann',
        reason: 'payout_failed',
        message: 'the bank account of cust-payout-fails is closed',
      });
      expect((await policy(d, 'pol-888')).claims['claim-p']).toMatchObject({
        status: 'manual_review',
      });
      expect((await policy(d, 'pol-888')).coverageLeft).toBe(8800);
      expect(await d.engine.client(ClaimPayouts, 'claim-p').payout()).toBeNull();
    },
  },
  {
    name: 'accepts one decision: a second one answers 409 and changes nothing',
    services,
    async run(d) {
      const run = await file(d, claim('claim-d'));
      await waitingForApproval(d, 'claim-d');
      const client = d.engine.client(ClaimSaga, 'claim-d');
      await client.approve({ approved: true, reviewer: 'ann' });
      await expect(client.approve({ approved: false, reviewer: 'eve' })).rejects.toMatchObject({
        status: 409,
        code: 'promise_already_completed',
      });
      expect(await d.engine.attach(run.invocationId)).toMatchObject({
        status: 'paid',
        reviewer: 'ann',
      });
    },
  },
  {
    name: 'a claim withdrawn (cancelled) while waiting undoes every step',
    services,
    async run(d) {
      const run = await file(d, claim('claim-c'));
      await waitingForApproval(d, 'claim-c');
      await d.engine.cancel(run.invocationId);
      await expect(d.engine.attach(run.invocationId)).rejects.toBeInstanceOf(CancelledError);
      expect(await records(d, 'claim-c')).toMatchObject({ status: 'purged' });
      expect((await policy(d)).coverageLeft).toBe(10_000);
    },
  },
  {
    name: 'a claim waiting for approval across a restart is paid once approved',
    services,
    async run(d) {
      const run = await file(d, claim('claim-x'));
      await waitingForApproval(d, 'claim-x');
      await d.restart();
      await d.engine.client(ClaimSaga, 'claim-x').approve({ approved: true, reviewer: 'ann' });
      expect(await d.engine.attach(run.invocationId)).toMatchObject({ status: 'paid' });
      expect((await policy(d)).claims['claim-x']).toMatchObject({ status: 'paid' });
    },
  },
];
