/**
 * Seed 001, exercise 4 (CI/CD pipeline). Success criteria:
 * - parallel execution works   → "builds and unit-tests in parallel ..."
 * - manual approval implemented → "deploys to production once approved", "... over the
 *                                 awakeable API", the rejection and 24-hour timeout cases
 * - rollback on failure        → "rolls staging back when the integration tests fail", the
 *                                 rejection, timeout and production-failure cases
 * - pipeline status tracking   → "deploys to production once approved" reads `status` at
 *                                 each stage; every test checks the environments' history
 * kill -9 in the middle of pipelines: crash.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  deploymentPipeline,
  PipelineBuild,
  PipelineDeploy,
  PipelineOrchestrator,
  PipelineTests,
} from '../../../examples/pipeline-orchestrator/index.js';
import type { PipelineRequest } from '../../../examples/pipeline-orchestrator/orchestrator.js';
import { testApp, type TestApp } from '../../../src/testing/index.js';
import { events } from './support.js';

let t: TestApp;
beforeEach(async () => {
  t = await testApp({ services: deploymentPipeline });
});
afterEach(() => t.close());

const COMMIT = '9fceb02d0ae598e95dc970b74767f19372d61af8';

function launch(id: string, patch: Partial<PipelineRequest> = {}) {
  const input: PipelineRequest = { repo: 'shop', commit: COMMIT, ...patch };
  const sent = t.workflowSend(PipelineOrchestrator, id).run(input);
  const status = () => t.workflow(PipelineOrchestrator, id).status();
  return { sent, status, client: t.workflow(PipelineOrchestrator, id) };
}

/**
 * Runs the pipeline until it waits for approval (or ended), and returns its status: its
 * stages take seconds of fake time, a minute covers them; the approval deadline is a day.
 */
async function untilSettled(status: () => Promise<any>) {
  await t.advance('1m');
  const s = await status();
  expect(s.state === 'waiting' || ['completed', 'compensated'].includes(s.state)).toBe(true);
  return s;
}

const env = (name: string) => t.object(PipelineDeploy, name).status();
const actions = async (name: string) =>
  (await env(name)).history.map((e) => `${e.action} ${e.pipelineId}`);

/** Runs a pipeline to completion with an approval, for a known production baseline. */
async function ship(id: string, commit: string) {
  const p = launch(id, { commit });
  const invocationId = await p.sent;
  await untilSettled(p.status);
  await p.client.approve({ by: 'ann' });
  await t.runUntilIdle({ skipTime: true });
  expect((await p.status()).state).toBe('completed');
  return t.attach(invocationId);
}

describe('PipelineOrchestrator', () => {
  it('builds and unit-tests in parallel: both start at once and overlap', async () => {
    const p = launch('b-1');
    await p.sent;
    await untilSettled(p.status);
    const build = (await t.object(PipelineBuild, 'b-1').get())!;
    const unit = (await t.object(PipelineTests, 'b-1').results()).unit!;
    expect(build.startedAt).toBe(unit.startedAt);
    expect(build.startedAt < unit.finishedAt && unit.startedAt < build.finishedAt).toBe(true);
    // On the fake clock the stage took less than the sum of the two (1s each).
    const stage = (await p.status()).history.filter((e: any) => e.step === 'build + unit tests');
    expect(Date.parse(stage[1]!.at) - Date.parse(stage[0]!.at)).toBeLessThan(2_000);
  });

  it('deploys to production once approved, with its status tracked at every stage', async () => {
    const p = launch('b-2');
    const invocationId = await p.sent;
    await t.idle();
    expect(await p.status()).toMatchObject({ state: 'running', currentStep: 'build + unit tests' });

    const waiting = await untilSettled(p.status);
    expect(waiting).toMatchObject({
      state: 'waiting',
      currentStep: 'manual approval',
      waitingFor: {
        what: 'a human to approve the production deploy',
        awakeableId: expect.stringMatching(/^awk_/),
        deadline: expect.any(String),
      },
    });
    expect((await env('staging')).current).toBe('shop@9fceb02');
    expect((await env('production')).current).toBeNull();
    expect((await t.object(PipelineTests, 'b-2').results()).integration?.failed).toBe(0);

    expect(await p.client.approve({ by: 'ann', comment: 'ship it' })).toMatchObject({
      decision: { approved: true, by: 'ann' },
    });
    await t.runUntilIdle({ skipTime: true });
    expect((await p.status()).state).toBe('completed');
    expect(await t.attach(invocationId)).toEqual({
      status: 'completed',
      pipelineId: 'b-2',
      version: 'shop@9fceb02',
      artifact: 'shop:9fceb02',
      approvedBy: 'ann',
    });
    expect((await env('production')).current).toBe('shop@9fceb02');
    expect(events(await p.status()).filter((e) => e.endsWith(':completed'))).toEqual([
      'build + unit tests:completed',
      'security scan:completed',
      'deploy to staging:completed',
      'integration tests:completed',
      'manual approval:completed',
      'deploy to production:completed',
      'run:completed',
    ]);
    // Approving again is refused: nothing waits any more.
    await expect(p.client.approve({ by: 'bob' })).rejects.toMatchObject({
      code: 'not_awaiting_approval',
    });
  });

  it('takes an approval straight over the awakeable API', async () => {
    const p = launch('b-3');
    const invocationId = await p.sent;
    const waiting = await untilSettled(p.status);
    await t.resolveAwakeable(waiting.waitingFor.awakeableId, { approved: true, by: 'cy' });
    await t.runUntilIdle({ skipTime: true });
    expect((await p.status()).state).toBe('completed');
    expect(await t.attach(invocationId)).toMatchObject({ approvedBy: 'cy' });
  });

  it('rolls staging back when the integration tests fail; production is untouched', async () => {
    await ship('b-4', 'aaaaaaa');
    const p = launch('b-5', { simulate: { integrationTests: 'fail' } });
    const invocationId = await p.sent;
    await untilSettled(p.status);
    expect(await t.attach(invocationId)).toMatchObject({
      status: 'compensated',
      failedStep: 'integration tests',
      error: { code: 'tests_failed', message: '3 of 36 integration tests failed (simulated)' },
      compensated: ['roll back staging'],
    });
    expect((await env('staging')).current).toBe('shop@aaaaaaa');
    expect(await actions('staging')).toEqual(['deploy b-4', 'deploy b-5', 'rollback b-5']);
    expect(await actions('production')).toEqual(['deploy b-4']);
  });

  it('rolls staging back when the approver rejects the deploy', async () => {
    const p = launch('b-6');
    const invocationId = await p.sent;
    await untilSettled(p.status);
    await p.client.reject({ by: 'dan', comment: 'not on a Friday' });
    expect(await t.attach(invocationId)).toMatchObject({
      status: 'compensated',
      failedStep: 'manual approval',
      error: {
        code: 'approval_rejected',
        message: 'dan rejected the production deploy: not on a Friday',
      },
      compensated: ['roll back staging'],
    });
    expect((await env('staging')).current).toBeNull();
  });

  it('rolls staging back when nobody approves within 24 hours', async () => {
    const p = launch('b-7');
    const invocationId = await p.sent;
    await untilSettled(p.status);
    await t.advance('23h');
    expect((await p.status()).state).toBe('waiting');
    await t.advance('1h');
    expect(await t.attach(invocationId)).toMatchObject({
      failedStep: 'manual approval',
      error: { code: 'approval_timeout' },
      compensated: ['roll back staging'],
    });
    expect(await actions('staging')).toEqual(['deploy b-7', 'rollback b-7']);
  });

  it('stops before deploying anything when the unit tests, the build or the scan fail', async () => {
    for (const [id, simulate, code] of [
      ['b-8', { unitTests: 'fail' }, 'tests_failed'],
      ['b-9', { build: 'fail' }, 'compile_error'],
      ['b-10', { securityScan: 'fail' }, 'vulnerabilities_found'],
    ] as const) {
      const p = launch(id, { simulate });
      const invocationId = await p.sent;
      await untilSettled(p.status);
      expect(await t.attach(invocationId)).toMatchObject({
        status: 'compensated',
        error: { code },
        compensated: [],
      });
    }
    expect((await env('staging')).history).toEqual([]);
  });

  it('rolls back staging when the production deploy fails, and production too when it hangs', async () => {
    await ship('b-11', 'bbbbbbb');

    const failing = launch('b-12', { simulate: { production: 'fail' } });
    const failed = await failing.sent;
    await untilSettled(failing.status);
    await failing.client.approve({ by: 'ann' });
    await t.runUntilIdle({ skipTime: true });
    expect((await failing.status()).state).toBe('compensated');
    expect(await t.attach(failed)).toMatchObject({
      failedStep: 'deploy to production',
      error: { code: 'deploy_failed' },
      compensated: ['roll back staging'],
    });

    const hanging = launch('b-13', { simulate: { production: 'stall' } });
    const hung = await hanging.sent;
    await untilSettled(hanging.status);
    await hanging.client.approve({ by: 'ann' });
    await t.runUntilIdle({ skipTime: true });
    expect((await hanging.status()).state).toBe('compensated');
    expect(await t.attach(hung)).toMatchObject({
      failedStep: 'deploy to production',
      error: { code: 'timeout' },
      compensated: ['roll back production', 'roll back staging'],
    });
    // The hung deploy landed after the timeout and was rolled back: b-11 runs everywhere.
    expect(await actions('production')).toEqual(['deploy b-11', 'deploy b-13', 'rollback b-13']);
    expect((await env('production')).current).toBe('shop@bbbbbbb');
    expect((await env('staging')).current).toBe('shop@bbbbbbb');
  });

  it('runs a pipeline id once, and deploys / rolls back once per pipeline', async () => {
    const first = await ship('b-14', 'ccccccc');
    expect(
      await t.workflow(PipelineOrchestrator, 'b-14').run({ repo: 'x', commit: 'ddddddd' }),
    ).toEqual(first);
    const staging = t.object(PipelineDeploy, 'staging');
    await staging.rollback('b-14');
    await staging.rollback('b-14');
    expect(await actions('staging')).toEqual(['deploy b-14', 'rollback b-14']);
    // A rollback that arrives before its deploy cancels it.
    await staging.rollback('b-15');
    await expect(
      staging.deploy({ pipelineId: 'b-15', version: 'shop@eeeeeee' }),
    ).rejects.toMatchObject({ code: 'deployment_cancelled' });
  });
});
