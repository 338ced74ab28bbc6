/** examples/pipeline-orchestrator (seed 001, exercise 3), after test/examples/orchestrators/. */
import { expect } from 'vitest';
import {
  deploymentPipeline,
  PipelineBuild,
  PipelineDeploy,
  PipelineOrchestrator,
  PipelineTests,
} from '../../../examples/pipeline-orchestrator/index.js';
import type { PipelineRequest } from '../../../examples/pipeline-orchestrator/orchestrator.js';
import type { RunStatus } from '../../../examples/orchestration-kit/status.js';
import type { Driver, Scenario } from '../driver.js';

const services = deploymentPipeline;
const options = { logger: () => undefined };
const COMMIT = '9fceb02d0ae598e95dc970b74767f19372d61af8';

function launch(d: Driver, id: string, patch: Partial<PipelineRequest> = {}) {
  const input: PipelineRequest = { repo: 'shop', commit: COMMIT, ...patch };
  const sent = d.engine.send({ service: 'PipelineOrchestrator', handler: 'run', key: id, input });
  const status = () => d.engine.client(PipelineOrchestrator, id).status();
  return { sent, status, client: d.engine.client(PipelineOrchestrator, id) };
}

/** Drives the clock until the pipeline waits for approval (or ended); returns its status. */
async function untilSettled(d: Driver, status: () => Promise<RunStatus>): Promise<RunStatus> {
  await d.driveUntil(
    async () => {
      const s = await status();
      return s.state === 'waiting' || ['completed', 'compensated'].includes(s.state);
    },
    'waiting for approval or finished',
    '250ms',
  );
  return status();
}

const env = (d: Driver, name: string) => d.engine.client(PipelineDeploy, name).status();
const actions = async (d: Driver, name: string) =>
  (await env(d, name)).history.map((e) => `${e.action} ${e.pipelineId}`);
const events = (s: RunStatus) => s.history.map((e) => `${e.step}:${e.event}`);

const stopsEarly = (id: string, simulate: PipelineRequest['simulate'], code: string): Scenario => ({
  name: `stops before deploying anything when ${Object.keys(simulate ?? {}).join()} fails`,
  services,
  options,
  async run(d) {
    const p = launch(d, id, { simulate });
    const { invocationId } = await p.sent;
    await untilSettled(d, p.status);
    expect(await d.engine.attach(invocationId)).toMatchObject({
      status: 'compensated',
      error: { code },
      compensated: [],
    });
    expect((await env(d, 'staging')).history).toEqual([]);
  },
});

export const pipelineScenarios: Scenario[] = [
  {
    name: 'builds and unit-tests in parallel: both start at once and overlap',
    services,
    options,
    async run(d) {
      const p = launch(d, 'b-1');
      await p.sent;
      await untilSettled(d, p.status);
      const build = (await d.engine.client(PipelineBuild, 'b-1').get())!;
      const unit = (await d.engine.client(PipelineTests, 'b-1').results()).unit!;
      expect(build.startedAt).toBe(unit.startedAt);
      expect(build.startedAt < unit.finishedAt && unit.startedAt < build.finishedAt).toBe(true);
    },
  },
  {
    name: 'deploys to production once approved, its status tracked at every stage',
    services,
    options,
    async run(d) {
      const p = launch(d, 'b-2');
      const { invocationId } = await p.sent;
      const waiting = await untilSettled(d, p.status);
      expect(waiting).toMatchObject({
        state: 'waiting',
        currentStep: 'manual approval',
        waitingFor: { awakeableId: expect.stringMatching(/^awk_/) },
      });
      expect((await env(d, 'staging')).current).toBe('shop@9fceb02');
      expect((await env(d, 'production')).current).toBeNull();
      expect(await p.client.approve({ by: 'ann', comment: 'ship it' })).toMatchObject({
        decision: { approved: true, by: 'ann' },
      });
      await d.driveUntil(async () => (await p.status()).state === 'completed', 'deployed', '250ms');
      expect(await d.engine.attach(invocationId)).toEqual({
        status: 'completed',
        pipelineId: 'b-2',
        version: 'shop@9fceb02',
        artifact: 'shop:9fceb02',
        approvedBy: 'ann',
      });
      expect((await env(d, 'production')).current).toBe('shop@9fceb02');
      expect(events(await p.status()).filter((e) => e.endsWith(':completed'))).toEqual([
        'build + unit tests:completed',
        'security scan:completed',
        'deploy to staging:completed',
        'integration tests:completed',
        'manual approval:completed',
        'deploy to production:completed',
        'run:completed',
      ]);
      await expect(p.client.approve({ by: 'bob' })).rejects.toMatchObject({
        code: 'not_awaiting_approval',
      });
    },
  },
  {
    name: 'takes an approval straight over the awakeable API',
    services,
    options,
    async run(d) {
      const p = launch(d, 'b-3');
      const { invocationId } = await p.sent;
      const waiting = await untilSettled(d, p.status);
      await d.engine.resolveAwakeable(waiting.waitingFor!.awakeableId!, {
        approved: true,
        by: 'cy',
      });
      await d.driveUntil(async () => (await p.status()).state === 'completed', 'deployed', '250ms');
      expect(await d.engine.attach(invocationId)).toMatchObject({ approvedBy: 'cy' });
    },
  },
  {
    name: 'rolls staging back when the integration tests fail; production is untouched',
    services,
    options,
    async run(d) {
      const p = launch(d, 'b-5', { simulate: { integrationTests: 'fail' } });
      const { invocationId } = await p.sent;
      await untilSettled(d, p.status);
      expect(await d.engine.attach(invocationId)).toMatchObject({
        status: 'compensated',
        failedStep: 'integration tests',
        error: { code: 'tests_failed', message: '3 of 36 integration tests failed (simulated)' },
        compensated: ['roll back staging'],
      });
      expect(await actions(d, 'staging')).toEqual(['deploy b-5', 'rollback b-5']);
      expect(await actions(d, 'production')).toEqual([]);
    },
  },
  {
    name: 'rolls staging back when the approver rejects the deploy',
    services,
    options,
    async run(d) {
      const p = launch(d, 'b-6');
      const { invocationId } = await p.sent;
      await untilSettled(d, p.status);
      await p.client.reject({ by: 'dan', comment: 'not on a Friday' });
      expect(await d.engine.attach(invocationId)).toMatchObject({
        status: 'compensated',
        failedStep: 'manual approval',
        error: {
          code: 'approval_rejected',
          message: 'dan rejected the production deploy: not on a Friday',
        },
        compensated: ['roll back staging'],
      });
      expect((await env(d, 'staging')).current).toBeNull();
    },
  },
  {
    name: 'rolls staging back when nobody approves within 24 hours',
    services,
    options,
    async run(d) {
      const p = launch(d, 'b-7');
      const { invocationId } = await p.sent;
      await untilSettled(d, p.status);
      await d.advance('23h');
      expect((await p.status()).state).toBe('waiting');
      await d.advance('1h');
      expect(await d.engine.attach(invocationId)).toMatchObject({
        failedStep: 'manual approval',
        error: { code: 'approval_timeout' },
        compensated: ['roll back staging'],
      });
      expect(await actions(d, 'staging')).toEqual(['deploy b-7', 'rollback b-7']);
    },
  },
  stopsEarly('b-8', { unitTests: 'fail' }, 'tests_failed'),
  stopsEarly('b-9', { build: 'fail' }, 'compile_error'),
  stopsEarly('b-10', { securityScan: 'fail' }, 'vulnerabilities_found'),
];
