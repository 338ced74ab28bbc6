import { z } from 'zod';
import {
  handler,
  object,
  shared,
  TerminalError,
  type ObjectContext,
  type ObjectSharedContext,
} from '../../src/index.js';
import { wants } from './faults.js';

/** The version every environment runs before the first deployment. */
export const INITIAL_RELEASE: Release = {
  releaseId: 'rel_initial',
  deploymentId: 'initial',
  version: '1.0.0',
  imageTag: 'shop:1.0.0',
};

/** What an environment runs. */
export interface Release {
  releaseId: string;
  deploymentId: string;
  version: string;
  imageTag: string;
}

/** One line of an environment's history, kept forever (rollbacks add lines, never remove them). */
export interface HistoryEntry {
  at: number;
  action: 'deployed' | 'deploy_failed' | 'rolled_back';
  deploymentId: string;
  version: string;
}

interface EnvironmentState {
  live: Release;
  /** What `live` replaced, newest last: what a rollback goes back to. */
  previous: Release[];
  history: HistoryEntry[];
}

const load = async (ctx: ObjectSharedContext): Promise<EnvironmentState> =>
  (await ctx.get<EnvironmentState>('state')) ?? {
    live: INITIAL_RELEASE,
    previous: [],
    history: [],
  };

/**
 * One environment (object keyed by `staging` or `production`): the release it runs, what it
 * ran before, and its history. `deploy` is idempotent per deployment; `rollback` restores the
 * release a deployment replaced, and rolling back twice changes nothing.
 *
 * Fails when the image tag contains `broken-staging` (on staging) or `broken-production` (on
 * production): 502 `deploy_failed`.
 */
export const DeployEnvironments = object({
  name: 'DeployEnvironments',
  handlers: {
    /** Rolls a version out to this environment. */
    deploy: handler(
      {
        input: z.object({
          deploymentId: z.string().min(1),
          version: z.string().min(1),
          imageTag: z.string().min(1),
        }),
      },
      async (ctx: ObjectContext, req) => {
        const state = await load(ctx);
        const releaseId = `rel_${ctx.key}_${req.deploymentId}`;
        if (state.live.releaseId === releaseId) return state.live;
        const at = await ctx.now();
        const broken =
          (ctx.key === 'staging' && wants(req.imageTag, 'stagingDeploy')) ||
          (ctx.key === 'production' && wants(req.imageTag, 'productionDeploy'));
        if (broken) {
          // The failed attempt stays in the history (each ctx.set is journaled as it happens,
          // so it is kept although the handler then fails): it is what someone debugging needs.
          state.history.push({
            at,
            action: 'deploy_failed',
            deploymentId: req.deploymentId,
            version: req.version,
          });
          ctx.set('state', state);
          throw new TerminalError(
            `${req.imageTag} crashed on start in ${ctx.key} (CrashLoopBackOff)`,
            {
              code: 'deploy_failed',
              status: 502,
            },
          );
        }
        state.previous.push(state.live);
        state.live = {
          releaseId,
          deploymentId: req.deploymentId,
          version: req.version,
          imageTag: req.imageTag,
        };
        state.history.push({
          at,
          action: 'deployed',
          deploymentId: req.deploymentId,
          version: req.version,
        });
        ctx.set('state', state);
        return state.live;
      },
    ),

    /** Goes back to the release this deployment replaced (only if it is still live). */
    rollback: handler(
      { input: z.object({ releaseId: z.string().min(1) }) },
      async (ctx: ObjectContext, req) => {
        const state = await load(ctx);
        const restored = state.previous.at(-1);
        if (state.live.releaseId !== req.releaseId || !restored) {
          return { environment: ctx.key, live: state.live, rolledBack: false };
        }
        const undone = state.live;
        state.previous.pop();
        state.live = restored;
        state.history.push({
          at: await ctx.now(),
          action: 'rolled_back',
          deploymentId: undone.deploymentId,
          version: undone.version,
        });
        ctx.set('state', state);
        return { environment: ctx.key, live: state.live, rolledBack: true };
      },
    ),

    /** The live release and the whole history. */
    status: shared(async (ctx) => {
      const { live, history } = await load(ctx);
      return { environment: ctx.key, live, history };
    }),
  },
});
