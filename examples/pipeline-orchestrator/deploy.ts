import { z } from 'zod';
/**
 * DeployService of the CI/CD exercise: one object per environment (`staging`, `production`),
 * holding the version it runs and every deploy and rollback. Keying by environment makes
 * deploys to one environment take turns, like a deploy lock.
 */
import {
  handler,
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';
import { simulated, type Simulation } from '../orchestration-kit/simulate.js';

/** How long a deploy takes. */
export const DEPLOY_TIME = '500ms';

/** One pipeline's deployment to this environment. */
export interface Deployment {
  version: string;
  /** What ran before, restored by a rollback. */
  previous: string | null;
  /** `cancelled`: rolled back before it happened, so it never will. */
  status: 'deployed' | 'rolled_back' | 'cancelled';
}

/** One line of the environment's history. */
export interface DeployEvent {
  action: 'deploy' | 'rollback';
  pipelineId: string;
  version: string;
  at: string;
}

/** An environment's durable record. */
export interface Environment {
  environment: string;
  current: string | null;
  deployments: Record<string, Deployment>;
  history: DeployEvent[];
}

async function envOf(ctx: ObjectSharedContext): Promise<Environment> {
  return (
    (await ctx.get<Environment>('env')) ?? {
      environment: ctx.key,
      current: null,
      deployments: {},
      history: [],
    }
  );
}

/** Environments: deploy a pipeline's version (once), roll it back (once), read. */
export const PipelineDeploy = object({
  name: 'PipelineDeploy',
  handlers: {
    /** Deploys a pipeline's version; deploying the same pipeline again returns the first. */
    deploy: async (
      ctx: ObjectContext,
      req: { pipelineId: string; version: string; simulate?: Simulation },
    ): Promise<Deployment> => {
      const before = await envOf(ctx);
      const done = before.deployments[req.pipelineId];
      if (done?.status === 'deployed') return done;
      if (done) {
        throw new TerminalError(`the deployment of ${req.pipelineId} was rolled back`, {
          code: 'deployment_cancelled',
          status: 409,
        });
      }
      await simulated(ctx, req.simulate, {
        code: 'deploy_failed',
        message: `${ctx.key} did not become healthy with ${req.version}`,
      });
      await ctx.sleep(DEPLOY_TIME);
      const deployment: Deployment = {
        version: req.version,
        previous: before.current,
        status: 'deployed',
      };
      const at = new Date(await ctx.now()).toISOString();
      ctx.set('env', {
        ...before,
        current: req.version,
        deployments: { ...before.deployments, [req.pipelineId]: deployment },
        history: [
          ...before.history,
          { action: 'deploy', pipelineId: req.pipelineId, version: req.version, at },
        ],
      } satisfies Environment);
      return deployment;
    },

    /**
     * Rolls a pipeline's deployment back to what ran before it; idempotent. A newer version
     * deployed since stays. A deployment that never happened is cancelled, so it never will.
     */
    rollback: handler(
      { input: z.string().min(1) },
      async (ctx: ObjectContext, pipelineId): Promise<Deployment> => {
        const env = await envOf(ctx);
        const done = env.deployments[pipelineId];
        if (done && done.status !== 'deployed') return done;
        if (!done) {
          const cancelled: Deployment = { version: '', previous: null, status: 'cancelled' };
          ctx.set('env', { ...env, deployments: { ...env.deployments, [pipelineId]: cancelled } });
          return cancelled;
        }
        const rolledBack: Deployment = { ...done, status: 'rolled_back' };
        const at = new Date(await ctx.now()).toISOString();
        ctx.set('env', {
          ...env,
          current: env.current === done.version ? done.previous : env.current,
          deployments: { ...env.deployments, [pipelineId]: rolledBack },
          history: [...env.history, { action: 'rollback', pipelineId, version: done.version, at }],
        } satisfies Environment);
        return rolledBack;
      },
    ),

    /** The version running and the history of this environment. */
    status: shared(async (ctx) => envOf(ctx)),
  },
});
