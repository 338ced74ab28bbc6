/**
 * Seed 001, exercise 4: CI/CD pipeline orchestration. `PipelineOrchestrator` builds the commit
 * and runs the unit tests in parallel, scans the artifact, deploys it to staging, runs the
 * integration tests there, waits for a human's approval (an awakeable) and deploys to
 * production. A failure after staging rolls staging back (and production, if its deploy is in
 * doubt), so a failed pipeline leaves every environment as it found it.
 */
import { z } from 'zod';
import {
  handler,
  TerminalError,
  TimeoutError,
  workflow,
  type Saga,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '../../src/index.js';
import { orchestrate, readStatus, type RunTracker } from '../orchestration-kit/status.js';
import { simulations } from '../orchestration-kit/simulate.js';
import { PipelineBuild } from './build.js';
import { PipelineDeploy } from './deploy.js';
import { PipelineSecurity } from './security.js';
import { PipelineTests } from './tests.js';

/** How long any stage may take before the pipeline gives up on it. */
export const STAGE_TIMEOUT = '10m';
/** How long the production approval stays open. */
export const APPROVAL_TIMEOUT = '24h';

/** A pipeline run, as `POST /PipelineOrchestrator/{pipelineId}/run` takes it. */
export const PipelineRequest = z.object({
  repo: z.string().regex(/^[\w.-]+$/, 'letters, digits, ".", "_" and "-"'),
  commit: z.string().regex(/^[0-9a-f]{7,40}$/, 'a hex commit sha (7-40 characters)'),
  simulate: simulations([
    'build',
    'unitTests',
    'securityScan',
    'staging',
    'integrationTests',
    'production',
  ]),
});
export type PipelineRequest = z.infer<typeof PipelineRequest>;

/** What an approver sends: `POST /awakeables/{id}/resolve` or the `approve`/`reject` handlers. */
export interface Approval {
  approved: boolean;
  by: string;
  comment?: string;
}

/** What a completed pipeline returns (besides `status: "completed"`). */
export interface PipelineDone {
  pipelineId: string;
  version: string;
  artifact: string;
  approvedBy: string;
}

async function pipeline(ctx: WorkflowContext, s: Saga, tracker: RunTracker, p: PipelineRequest) {
  const pipelineId = ctx.key;
  const version = `${p.repo}@${p.commit.slice(0, 7)}`;
  const tests = ctx.objectClient(PipelineTests, pipelineId);
  const env = (name: 'staging' | 'production') => ctx.objectClient(PipelineDeploy, name);

  // 1 + 2. Build and unit tests at the same time: both calls start before either is awaited.
  const [build] = await s.invoke(
    'build + unit tests',
    () =>
      ctx.all([
        ctx
          .objectClient(PipelineBuild, pipelineId)
          .compile({ repo: p.repo, commit: p.commit, simulate: p.simulate?.build }),
        tests.run({ suite: 'unit', commit: p.commit, simulate: p.simulate?.unitTests }),
      ]),
    { timeout: STAGE_TIMEOUT },
  );

  // 3. Security scan of the artifact.
  await s.invoke(
    'security scan',
    () =>
      ctx
        .objectClient(PipelineSecurity, pipelineId)
        .scan({ artifact: build.artifact, simulate: p.simulate?.securityScan }),
    { timeout: STAGE_TIMEOUT },
  );

  // 4. Staging. From here on a failure rolls staging back.
  await s.invoke(
    'deploy to staging',
    () => env('staging').deploy({ pipelineId, version, simulate: p.simulate?.staging }),
    {
      timeout: STAGE_TIMEOUT,
      undoWhen: 'maybe',
      undoName: 'roll back staging',
      undo: () => env('staging').rollback(pipelineId),
    },
  );

  // 5. Integration tests against staging: the seed's "rollback on test failure".
  await s.invoke(
    'integration tests',
    () =>
      tests.run({ suite: 'integration', commit: p.commit, simulate: p.simulate?.integrationTests }),
    { timeout: STAGE_TIMEOUT },
  );

  // 6a. A human approves (or rejects) the production deploy by resolving an awakeable.
  const approval = await s.invoke('manual approval', async () => {
    const { id, promise } = ctx.awakeable<Approval>();
    await tracker.waiting('a human to approve the production deploy', {
      awakeableId: id,
      timeout: APPROVAL_TIMEOUT,
    });
    let decision: Approval;
    try {
      decision = await promise.orTimeout(APPROVAL_TIMEOUT);
    } catch (err) {
      if (err instanceof TimeoutError) {
        throw new TerminalError(
          `nobody approved the production deploy within ${APPROVAL_TIMEOUT}`,
          {
            code: 'approval_timeout',
            status: 504,
          },
        );
      }
      throw err;
    }
    if (decision?.approved !== true) {
      const who = typeof decision?.by === 'string' ? decision.by : 'the approver';
      throw new TerminalError(
        `${who} rejected the production deploy${decision?.comment ? `: ${decision.comment}` : ''}`,
        { code: 'approval_rejected', status: 403 },
      );
    }
    return decision;
  });

  // 6b. Production. A deploy that does not answer in time is in doubt (`undoWhen: 'maybe'`):
  //     roll it back too.
  await s.invoke(
    'deploy to production',
    () => env('production').deploy({ pipelineId, version, simulate: p.simulate?.production }),
    {
      timeout: STAGE_TIMEOUT,
      undoWhen: 'maybe',
      undoName: 'roll back production',
      undo: () => env('production').rollback(pipelineId),
    },
  );

  return {
    pipelineId,
    version,
    artifact: build.artifact,
    approvedBy: approval.by,
  } satisfies PipelineDone;
}

/** Resolves the awakeable the run waits on for approval; 409 when it is not waiting. */
async function decide(
  ctx: WorkflowSharedContext,
  decision: Approval,
): Promise<{ pipelineId: string; decision: Approval }> {
  const status = await readStatus(ctx);
  const id = status.currentStep === 'manual approval' ? status.waitingFor?.awakeableId : undefined;
  if (!id) {
    throw new TerminalError(`pipeline ${ctx.key} is not waiting for approval (${status.state})`, {
      code: 'not_awaiting_approval',
      status: 409,
    });
  }
  await ctx.resolveAwakeable(id, decision);
  return { pipelineId: ctx.key, decision };
}

/**
 * The CI/CD pipeline orchestrator: one workflow per pipeline id. `status` shows the stage and
 * history (and, while waiting, the approval's awakeable id); `approve` and `reject` resolve
 * that awakeable for you.
 *
 * @example
 * ```sh
 * curl -X POST localhost:9080/PipelineOrchestrator/build-42/run/send -H 'content-type: application/json' \
 *   -d '{"repo":"shop","commit":"9fceb02d0ae598e95dc970b74767f19372d61af8"}'
 * curl -X POST localhost:9080/PipelineOrchestrator/build-42/approve -H 'content-type: application/json' -d '{"by":"ann"}'
 * ```
 */
export const PipelineOrchestrator = workflow({
  name: 'PipelineOrchestrator',
  run: handler({ input: PipelineRequest }, async (ctx: WorkflowContext, p) => {
    return orchestrate(ctx, (s, tracker) => pipeline(ctx, s, tracker, p));
  }),
  handlers: {
    /** The current stage and the history of this pipeline. */
    status: async (ctx: WorkflowSharedContext) => readStatus(ctx),

    /** Approves the production deploy. */
    approve: handler(
      { input: z.object({ by: z.string().min(1), comment: z.string().optional() }) },
      async (ctx: WorkflowSharedContext, req) => decide(ctx, { approved: true, ...req }),
    ),

    /** Rejects it: the pipeline rolls staging back. */
    reject: handler(
      { input: z.object({ by: z.string().min(1), comment: z.string().optional() }) },
      async (ctx: WorkflowSharedContext, req) => decide(ctx, { approved: false, ...req }),
    ),
  },
});
