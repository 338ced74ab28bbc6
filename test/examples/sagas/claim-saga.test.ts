import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ClaimMedicalRecords,
  ClaimPayouts,
  ClaimPolicies,
  ClaimSaga,
  claimSaga,
  type Claim,
} from '../../../examples/claim-saga/index.js';
import { CancelledError } from '../../../src/index.js';
import { testApp, type TestApp } from '../../../src/testing/index.js';

/**
 * Exercise 5 (Insurance Claim Processing): validate → medical records → approval (a durable
 * promise raced against a 30-day timer, on the fake clock) → payment → close, with rejection
 * handled at any stage and an `Approve` handler.
 */
let t: TestApp;
beforeEach(async () => {
  t = await testApp({ services: claimSaga });
});
afterEach(() => t.close());

const claim = (claimId: string, over: Partial<Claim> = {}): Claim => ({
  claimId,
  policyId: 'pol-123',
  customerId: 'cust-123',
  amount: 1200,
  description: 'broken arm',
  ...over,
});

const file = (c: Claim) => t.workflowSend(ClaimSaga, c.claimId).run(c);
const stage = async (id: string) => (await t.workflow(ClaimSaga, id).status()).stage;
const waitingForApproval = async (id: string) => {
  await t.idle();
  expect(await stage(id)).toBe('approval');
};
const policy = async (id = 'pol-123') => (await t.object(ClaimPolicies, id).policy())!;
const records = (id: string) => t.object(ClaimMedicalRecords, id).records();

describe('ClaimSaga (seed 002, exercise 5)', () => {
  it('waits (suspended) for the approval, then pays and closes the claim', async () => {
    const run = await file(claim('claim-1'));
    await waitingForApproval('claim-1');
    await t.advance('3d');
    expect((await t.engine.getInvocation(run))?.status).toBe('suspended');
    expect(await records('claim-1')).toMatchObject({ status: 'received' });
    expect((await policy()).coverageLeft).toBe(8800); // reserved while open

    // The seed's `Approve` handler, by its capitalised name as over HTTP.
    await t.engine.invoke({
      service: 'ClaimSaga',
      handler: 'Approve',
      key: 'claim-1',
      input: { approved: true, reviewer: 'ann' },
    });
    expect(await t.attach(run)).toEqual({
      status: 'paid',
      paymentId: 'clm_pay_claim-1',
      reviewer: 'ann',
    });
    expect((await policy()).claims['claim-1']).toMatchObject({
      status: 'paid',
      paymentId: 'clm_pay_claim-1',
    });
    expect((await policy()).coverageLeft).toBe(8800);
    expect(await t.object(ClaimPayouts, 'claim-1').payout()).toMatchObject({ amount: 1200 });
    expect(await t.workflow(ClaimSaga, 'claim-1').status()).toMatchObject({
      stage: 'closed',
      outcome: 'paid',
      decision: { approved: true, reviewer: 'ann' },
    });
  });

  it('an invalid claim is rejected before any records are requested', async () => {
    const cases: Array<[string, Partial<Claim>]> = [
      ['c-lapsed', { policyId: 'pol-lapsed', customerId: 'cust-789' }],
      ['c-over', { policyId: 'pol-456', customerId: 'cust-456', amount: 2500 }],
      ['c-holder', { customerId: 'cust-456' }],
      ['c-none', { policyId: 'pol-999' }],
    ];
    for (const [id, over] of cases) {
      expect(await t.workflow(ClaimSaga, id).run(claim(id, over))).toMatchObject({
        status: 'rejected_invalid',
        reason: 'invalid_claim',
        compensated: [],
      });
      expect(await records(id)).toBeNull();
    }
    expect((await policy('pol-456')).coverageLeft).toBe(2000);
  });

  it('missing medical records fail the claim and release the reserved coverage', async () => {
    const c = claim('c-rec', { policyId: 'pol-777', customerId: 'cust-no-records' });
    expect(await t.workflow(ClaimSaga, 'c-rec').run(c)).toMatchObject({
      status: 'failed',
      reason: 'records_unavailable',
      compensated: ['validate claim'],
    });
    expect((await policy('pol-777')).claims['c-rec']).toMatchObject({ status: 'withdrawn' });
    expect((await policy('pol-777')).coverageLeft).toBe(10_000);
  });

  it('a rejection purges the records and withdraws the claim', async () => {
    const run = await file(claim('claim-r'));
    await waitingForApproval('claim-r');
    await t
      .workflow(ClaimSaga, 'claim-r')
      .reject({ reviewer: 'bob', reason: 'pre-existing condition' });
    expect(await t.attach(run)).toEqual({
      status: 'rejected',
      reason: 'claim_rejected',
      message: 'rejected by bob: pre-existing condition',
      compensated: ['request medical records', 'validate claim'],
    });
    expect(await records('claim-r')).toMatchObject({ status: 'purged' });
    expect((await policy()).claims['claim-r']).toMatchObject({
      status: 'withdrawn',
      note: 'rejected by bob: pre-existing condition',
    });
    expect((await policy()).coverageLeft).toBe(10_000);
  });

  it('a rejection sent before the claim reaches approval is kept and acted on', async () => {
    await t.workflow(ClaimSaga, 'claim-early').approve({ approved: false, reviewer: 'cy' });
    expect(await t.workflow(ClaimSaga, 'claim-early').run(claim('claim-early'))).toMatchObject({
      status: 'rejected',
      compensated: ['request medical records', 'validate claim'],
    });
  });

  it('times out after 30 days without a decision, and undoes the claim', async () => {
    const run = await file(claim('claim-t'));
    await waitingForApproval('claim-t');
    await t.advance('29d');
    expect((await t.engine.getInvocation(run))?.status).toBe('suspended');
    expect(await stage('claim-t')).toBe('approval');
    await t.advance('1d');
    expect(await t.attach(run)).toMatchObject({
      status: 'timeout',
      reason: 'approval_timeout',
      compensated: ['request medical records', 'validate claim'],
    });
    expect(await records('claim-t')).toMatchObject({ status: 'purged' });
    expect((await policy()).claims['claim-t']).toMatchObject({ status: 'withdrawn' });
  });

  it('a failed payout is not compensated: the approved claim goes to manual review', async () => {
    const run = await file(
      claim('claim-p', { policyId: 'pol-888', customerId: 'cust-payout-fails' }),
    );
    await waitingForApproval('claim-p');
    await t.workflow(ClaimSaga, 'claim-p').approve({ approved: true, reviewer: 'ann' });
    expect(await t.attach(run)).toEqual({
      status: 'payment_failed',
      reviewer: 'ann',
      reason: 'payout_failed',
      message: 'the bank account of cust-payout-fails is closed',
    });
    expect((await policy('pol-888')).claims['claim-p']).toMatchObject({
      status: 'manual_review',
      note: expect.stringContaining('payout failed'),
    });
    expect((await policy('pol-888')).coverageLeft).toBe(8800); // still reserved for the review
    expect(await records('claim-p')).toMatchObject({ status: 'received' }); // kept for the review
    expect(await t.object(ClaimPayouts, 'claim-p').payout()).toBeNull();
  });

  it('accepts one decision: a second one answers 409 and changes nothing', async () => {
    const run = await file(claim('claim-d'));
    await waitingForApproval('claim-d');
    const client = t.workflow(ClaimSaga, 'claim-d');
    await client.approve({ approved: true, reviewer: 'ann' });
    await expect(client.approve({ approved: false, reviewer: 'eve' })).rejects.toMatchObject({
      status: 409,
      code: 'promise_already_completed',
    });
    expect(await t.attach(run)).toMatchObject({
      status: 'paid',
      reviewer: 'ann',
    });
    await expect(client.approve({ approved: 'yes' } as never)).rejects.toMatchObject({
      status: 400,
    });
  });

  it('a claim withdrawn (cancelled) while waiting undoes every step', async () => {
    const run = await file(claim('claim-c'));
    await waitingForApproval('claim-c');
    await t.cancel(run);
    await expect(t.attach(run)).rejects.toBeInstanceOf(CancelledError);
    expect(await records('claim-c')).toMatchObject({ status: 'purged' });
    expect((await policy()).coverageLeft).toBe(10_000);
  });
});
