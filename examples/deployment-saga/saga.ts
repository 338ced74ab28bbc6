import { z } from 'zod';
import {
  handler,
  saga,
  TerminalError,
  workflow,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '../../src/index.js';
import { body, idMatchingKey, keyId, text } from '../saga-kit/input.js';
import { DeployDns, HOSTNAME } from './dns.js';
import { DeployEnvironments, type Release } from './environments.js';
import { DeployTestRunner, type TestReport } from './integration-tests.js';
import { DeployLogs, type LogLine } from './logs.js';

/** The body of `POST /DeploymentSaga/{deploymentId}/run`: the seed's `DeploymentRequest`. */
export const DeploymentInput = body(
  {
    /** May repeat the URL key; defaults to it. */
    deploymentId: keyId(),
    version: text(),
    imageTag: text(),
  },
  '{"version":"2.0.0","imageTag":"shop:2.0.0"}',
);
export type DeploymentInput = z.infer<typeof DeploymentInput>;

/** The seed's `DeploymentRequest`, as the saga runs it (the id resolved from the URL key). */
export interface DeploymentRequest {
  deploymentId: string;
  version: string;
  imageTag: string;
}

/** How a deployment ended. */
export interface DeploymentResult {
  status: 'deployed' | 'tests_failed' | 'failed' | 'compensation_failed';
  version: string;
  /** The stage that failed. */
  failedStage?: Stage;
  reason?: string;
  message?: string;
  /** Environments rolled back, in the order they were rolled back. */
  rolledBack: Environment[];
  /** Where the preserved logs are. */
  logs: string;
}

type Stage = 'staging' | 'tests' | 'production' | 'dns' | 'done';
type Environment = 'staging' | 'production';

/**
 * Exercise 4: a multi-stage deployment. Deploy to staging → run the integration tests there →
 * deploy to production → point DNS at it. Failing tests roll staging back; a failed production
 * rollout rolls staging back; a failed DNS update rolls production back, then staging. Every
 * stage, failure and rollback is written to the deployment's log (`DeployLogs`), which no
 * rollback touches.
 *
 * @example
 * ```sh
 * curl -X POST http://localhost:9080/DeploymentSaga/dep-001/run -H 'Content-Type: application/json' \
 *   -d '{"deploymentId":"dep-001","version":"2.0.0","imageTag":"shop:2.0.0"}'
 * curl -X POST http://localhost:9080/DeployLogs/dep-001/read
 * ```
 */
export const DeploymentSaga = workflow({
  name: 'DeploymentSaga',
  run: handler(
    { input: DeploymentInput },
    async (ctx: WorkflowContext, input): Promise<DeploymentResult> => {
      // Before the first step: a contradicting id fails the run with nothing done (key released).
      const req: DeploymentRequest = {
        ...input,
        deploymentId: idMatchingKey(input.deploymentId, 'deploymentId', ctx.key),
      };
      const envs = {
        staging: ctx.objectClient(DeployEnvironments, 'staging'),
        production: ctx.objectClient(DeployEnvironments, 'production'),
      };
      const dns = ctx.objectClient(DeployDns, HOSTNAME);
      const logs = ctx.objectClient(DeployLogs, req.deploymentId);
      const log = (
        stage: Stage,
        message: string,
        level: LogLine['level'] = 'info',
        data?: unknown,
      ) => logs.append({ stage, level, message, ...(data === undefined ? {} : { data }) });

      // Where the saga is (an object, so the stage set inside the steps is seen after them).
      const at: { stage: Stage } = { stage: 'staging' };
      const rolledBack: Environment[] = [];

      /** Runs one stage, logging its start, its failure (before any rollback) or its success. */
      const runStage = async <T>(next: Stage, what: string, fn: () => Promise<T>): Promise<T> => {
        at.stage = next;
        ctx.set('stage', next);
        await log(next, `${what}: started`);
        try {
          const value = await fn();
          await log(next, `${what}: done`);
          return value;
        } catch (err) {
          await log(next, `${what}: failed: ${(err as Error).message}`, 'error');
          throw err;
        }
      };

      /** The compensation of a rollout: back to the release it replaced, logged. */
      const rollback = async (env: Environment, release: Release): Promise<void> => {
        const after = await envs[env].rollback({ releaseId: release.releaseId });
        rolledBack.push(env);
        await log(at.stage, `rolled ${env} back from ${release.version} to ${after.live.version}`);
      };

      const outcome = await saga(ctx, async (s) => {
        await s.invoke(
          'deploy to staging',
          () =>
            runStage('staging', `deploy ${req.imageTag} to staging`, () =>
              envs.staging.deploy(req),
            ),
          { undo: (release) => rollback('staging', release) },
        );

        await s.invoke('integration tests', () =>
          runStage('tests', 'integration tests on staging', async () => {
            const report: TestReport = await ctx
              .serviceClient(DeployTestRunner)
              .run({ environment: 'staging', version: req.version, imageTag: req.imageTag });
            await log(
              'tests',
              `${report.passed.length} passed, ${report.failed.length} failed`,
              'info',
              report,
            );
            if (report.failed.length > 0) {
              throw new TerminalError(`integration tests failed: ${report.failed.join(', ')}`, {
                code: 'tests_failed',
              });
            }
          }),
        );

        await s.invoke(
          'deploy to production',
          () =>
            runStage('production', `deploy ${req.imageTag} to production`, () =>
              envs.production.deploy(req),
            ),
          { undo: (release) => rollback('production', release) },
        );

        // Its undo runs only if the deployment is cancelled after DNS changed: nothing follows it.
        await s.invoke(
          'update DNS',
          () => runStage('dns', `point ${HOSTNAME} at ${req.version}`, () => dns.update(req)),
          { undo: (change) => dns.restore({ previous: change.previous }) },
        );
        at.stage = 'done';
        ctx.set('stage', at.stage);
      });

      ctx.set('outcome', outcome.status);
      const base = {
        version: req.version,
        rolledBack,
        logs: `/DeployLogs/${req.deploymentId}/read`,
      };
      if (outcome.status === 'completed') {
        await log('done', `${req.version} is live on ${HOSTNAME}`);
        return { status: 'deployed', ...base };
      }
      const { stage } = at;
      const undone = rolledBack.join(', ') || 'nothing';
      await log(stage, `deployment failed at ${stage}; rolled back: ${undone}`, 'error');
      let status: DeploymentResult['status'] = stage === 'tests' ? 'tests_failed' : 'failed';
      if (outcome.status === 'compensation_failed') status = 'compensation_failed';
      return {
        status,
        failedStage: stage,
        reason: outcome.error.code,
        message: outcome.error.message,
        ...base,
      };
    },
  ),

  handlers: {
    /** Where the deployment is: `staging`, `tests`, `production`, `dns` or `done`. */
    status: async (ctx: WorkflowSharedContext) => ({
      deploymentId: ctx.key,
      stage: (await ctx.get<Stage>('stage')) ?? 'not started',
      outcome: (await ctx.get<string>('outcome')) ?? null,
    }),
  },
});
