/**
 * Seed 000, exercise 5: a deployment triggered through GitHub's API that waits for GitHub's
 * `deployment_status` webhook.
 *
 * `GitHubDeployment` (a workflow keyed by the deployment request id) creates the deployment
 * with the GitHub connector (a journaled call: never created twice, even across a crash),
 * creates an awakeable and stores its id in its state, registers it with
 * `GitHubDeploymentCallbacks` (an object keyed by GitHub's deployment id: the durable map from
 * deployment to awakeable), and waits up to 10 minutes. The `github` receiver verifies each
 * `deployment_status` webhook and routes it to the callbacks object of its deployment id, which
 * resolves the awakeable with the first final state (`success`, `failure` or `error`). A status
 * that arrives before the workflow has registered is kept and resolves the awakeable at
 * registration, so the order of the two does not matter.
 */
import { z } from 'zod';
import {
  ConflictError,
  handler,
  object,
  shared,
  TerminalError,
  TimeoutError,
  workflow,
  type ObjectContext,
  type ObjectSharedContext,
  type WorkflowContext,
  type WorkflowSharedContext,
} from '../../src/index.js';
import { github, IntegrationCallError, use } from '../../src/integrations/index.js';
import { githubMock } from '../../src/integrations/mocks.js';
import type { InboundEvent } from '../../src/webhooks/index.js';

/** How long a deployment may take before the workflow gives up waiting for GitHub. */
export const DEPLOYMENT_TIMEOUT = '10m';

/** The in-process GitHub the connector answers from in mock mode (its `requests` are a log). */
export const deploymentsGitHubMock = githubMock();

/**
 * Where the deployment flow's GitHub API is: `GITHUB_DEPLOYMENTS_API_URL` when set (a GitHub
 * Enterprise Server is `https://HOST/api/v3`; the real-HTTP tests point it at a local fake),
 * else undefined and the connector's default, `https://api.github.com`. Read once, when this
 * module loads, since the connector is created then.
 *
 * @example
 * ```sh
 * GITHUB_DEPLOYMENTS_API_URL=https://github.example.com/api/v3 GITHUB_TOKEN=... npm start
 * ```
 */
export const DEPLOYMENTS_GITHUB_API_URL: string | undefined =
  process.env.GITHUB_DEPLOYMENTS_API_URL || undefined;

/**
 * The GitHub connector the deployment flow uses (`GITHUB_TOKEN`; in mock mode it answers from
 * {@link deploymentsGitHubMock}; at {@link DEPLOYMENTS_GITHUB_API_URL} when set). Its own name
 * keeps its breaker and rate limit apart from other GitHub integrations in the app.
 */
export const deploymentsGitHub = github({
  name: 'GitHubDeployments',
  mock: deploymentsGitHubMock,
  ...(DEPLOYMENTS_GITHUB_API_URL !== undefined ? { baseUrl: DEPLOYMENTS_GITHUB_API_URL } : {}),
});

/** The seed's `DeploymentRequest`: `POST /GitHubDeployment/{requestId}/run`. */
export const DeploymentRequest = z.object({
  /** `owner/name`. */
  repository: z.string().regex(/^[\w.-]+\/[\w.-]+$/, 'repository must be "owner/name"'),
  ref: z.string().min(1),
  environment: z.string().min(1),
});
export type DeploymentRequest = z.infer<typeof DeploymentRequest>;

/** The seed's `Deployment.Status`, plus the workflow's own outcomes. */
export type DeploymentStatus =
  'creating' | 'pending' | 'in_progress' | 'success' | 'failure' | 'error' | 'timeout';

/** The seed's `Deployment`. */
export interface Deployment {
  /** GitHub's deployment id (as a string, as in the seed). */
  id: string;
  status: DeploymentStatus;
}

/** What the `deployment_status` webhook resolves the awakeable with. */
export interface DeploymentOutcome {
  state: 'success' | 'failure' | 'error';
  description?: string;
  /** The provider's delivery id of the webhook that decided it. */
  eventId: string;
}

/** What `run` returns and `status` reads. */
export interface DeploymentResult extends Deployment {
  repository: string;
  ref: string;
  environment: string;
  awakeableId?: string;
  description?: string;
  /** Why it ended in `error` before GitHub was involved (a refused ref, a conflict). */
  reason?: string;
}

const FINAL = new Set(['success', 'failure', 'error']);

/**
 * GitHub's deployment status states (`GitHubDeploymentState`) in the seed's vocabulary.
 *
 * @example
 * ```ts
 * toDeploymentStatus('queued'); // 'pending'
 * toDeploymentStatus('failure'); // 'failure'
 * ```
 */
export function toDeploymentStatus(state: string): DeploymentStatus {
  if (state === 'queued' || state === 'pending') return 'pending';
  if (state === 'in_progress') return 'in_progress';
  if (state === 'success' || state === 'failure' || state === 'error') return state;
  return 'pending';
}

/** The fields of a `deployment_status` webhook this example reads. */
export interface DeploymentStatusEvent {
  action?: string;
  deployment_status: { state: string; description?: string | null };
  deployment: { id: number; ref?: string; environment?: string };
}

/**
 * Resolves the waiting workflow's awakeable, once. If the workflow has finished meanwhile (it
 * timed out an instant before), the status stays recorded and the webhook is not failed for it.
 */
async function resolve(
  ctx: ObjectContext,
  awakeableId: string,
  outcome: DeploymentOutcome,
): Promise<void> {
  try {
    await ctx.resolveAwakeable(awakeableId, outcome);
  } catch (err) {
    if (!(err instanceof ConflictError)) throw err;
    ctx.log.warn(`deployment ${ctx.key}: ${err.message}`);
  }
  ctx.set('resolved', true);
}

/**
 * The durable map from a GitHub deployment id to the awakeable of the workflow waiting for it,
 * and the deployment's statuses as the webhooks reported them.
 *
 * @example
 * ```sh
 * curl -X POST http://localhost:9080/GitHubDeploymentCallbacks/774661482/status
 * # {"deploymentId":"774661482","awakeableId":"awk_...","statuses":["success"],"final":{"state":"success",...}}
 * ```
 */
export const GitHubDeploymentCallbacks = object({
  name: 'GitHubDeploymentCallbacks',
  handlers: {
    /** The workflow registers its awakeable; a final status that came first resolves it now. */
    register: async (ctx: ObjectContext, awakeableId: string) => {
      ctx.set('awakeableId', awakeableId);
      const early = await ctx.get<DeploymentOutcome>('final');
      if (early !== undefined && !(await ctx.get<boolean>('resolved'))) {
        await resolve(ctx, awakeableId, early);
      }
    },
    /** The workflow gave up (timeout): later statuses are recorded but resolve nothing. */
    expire: async (ctx: ObjectContext) => {
      ctx.set('resolved', true);
    },
    /** A verified `deployment_status` webhook (routed here by the `github` receiver). */
    onStatus: async (ctx: ObjectContext, e: InboundEvent<DeploymentStatusEvent>) => {
      const state = e.data.deployment_status.state;
      const statuses = (await ctx.get<string[]>('statuses')) ?? [];
      ctx.set('statuses', [...statuses, state]);
      if (!FINAL.has(state) || (await ctx.get('final')) !== undefined) return { state };
      const description = e.data.deployment_status.description ?? undefined;
      const outcome: DeploymentOutcome = {
        state: state as DeploymentOutcome['state'],
        eventId: e.id,
        ...(description ? { description } : {}),
      };
      ctx.set('final', outcome);
      const awakeableId = await ctx.get<string>('awakeableId');
      if (awakeableId !== undefined && !(await ctx.get<boolean>('resolved'))) {
        await resolve(ctx, awakeableId, outcome);
      }
      return { state };
    },
    /** What the webhooks reported so far. */
    status: shared(async (ctx: ObjectSharedContext) => ({
      deploymentId: ctx.key,
      awakeableId: (await ctx.get<string>('awakeableId')) ?? null,
      statuses: (await ctx.get<string[]>('statuses')) ?? [],
      final: (await ctx.get<DeploymentOutcome>('final')) ?? null,
    })),
  },
});

function splitRepository(repository: string): { owner: string; repo: string } {
  const [owner = '', repo = ''] = repository.split('/');
  return { owner, repo };
}

async function saveStatus(
  ctx: WorkflowContext,
  result: DeploymentResult,
): Promise<DeploymentResult> {
  ctx.set('deployment', result);
  return result;
}

/**
 * Triggers a deployment through GitHub and returns its final status: `success`, `failure` or
 * `error` as GitHub's `deployment_status` webhook reports it, or `timeout` after 10 minutes
 * without one. A ref GitHub refuses (409 conflict, 422 unknown ref) ends in `error` at once.
 *
 * @example
 * ```sh
 * curl -X POST http://localhost:9080/GitHubDeployment/deploy-1/run -H 'Content-Type: application/json' \
 *   -d '{"repository":"acme/shop","ref":"v1.4.2","environment":"production"}'
 * curl -X POST http://localhost:9080/GitHubDeployment/deploy-1/status
 * ```
 */
export const GitHubDeployment = workflow({
  name: 'GitHubDeployment',
  run: handler(
    { input: DeploymentRequest },
    async (ctx: WorkflowContext, req: DeploymentRequest): Promise<DeploymentResult> => {
      const { owner, repo } = splitRepository(req.repository);
      const base = { repository: req.repository, ref: req.ref, environment: req.environment };
      await saveStatus(ctx, { ...base, id: '', status: 'creating' });

      let deploymentId: string;
      try {
        const created = await use(ctx, deploymentsGitHub).create_deployment({
          owner,
          repo,
          ref: req.ref,
          environment: req.environment,
          auto_merge: false,
          required_contexts: [],
          description: `Keel GitHubDeployment ${ctx.key}`,
          // GitHub echoes the payload in every deployment_status webhook: who is waiting for it.
          payload: { keel_workflow: 'GitHubDeployment', keel_key: ctx.key },
        });
        deploymentId = String(created.id);
      } catch (err) {
        if (err instanceof IntegrationCallError && err.httpStatus !== undefined) {
          return saveStatus(ctx, { ...base, id: '', status: 'error', reason: err.message });
        }
        throw err;
      }

      const { id: awakeableId, promise } = ctx.awakeable<DeploymentOutcome>();
      await saveStatus(ctx, { ...base, id: deploymentId, status: 'pending', awakeableId });
      await ctx.objectClient(GitHubDeploymentCallbacks, deploymentId).register(awakeableId);

      try {
        const outcome = await promise.orTimeout(DEPLOYMENT_TIMEOUT);
        return saveStatus(ctx, {
          ...base,
          id: deploymentId,
          status: outcome.state,
          awakeableId,
          ...(outcome.description !== undefined ? { description: outcome.description } : {}),
        });
      } catch (err) {
        if (!(err instanceof TimeoutError)) throw err;
        await ctx.objectClient(GitHubDeploymentCallbacks, deploymentId).expire();
        return saveStatus(ctx, { ...base, id: deploymentId, status: 'timeout', awakeableId });
      }
    },
  ),
  handlers: {
    /** The deployment as the workflow knows it (no call to GitHub). */
    status: async (ctx: WorkflowSharedContext) => {
      const d = await ctx.get<DeploymentResult>('deployment');
      if (d === undefined)
        throw new TerminalError(`no deployment ${ctx.key}`, { code: 'not_found', status: 404 });
      return d;
    },
    /**
     * The seed's `GetDeploymentStatus`: asks GitHub (a journaled connector call) for the
     * deployment's latest status.
     */
    getDeploymentStatus: async (ctx: WorkflowSharedContext): Promise<Deployment> => {
      const d = await ctx.get<DeploymentResult>('deployment');
      if (d === undefined || d.id === '')
        throw new TerminalError(`deployment ${ctx.key} has not been created`, {
          code: 'not_found',
          status: 404,
        });
      const { owner, repo } = splitRepository(d.repository);
      const statuses = await use(ctx, deploymentsGitHub).list_deployment_statuses({
        owner,
        repo,
        deployment_id: Number(d.id),
      });
      // GitHub lists the newest first.
      const latest = statuses[0];
      return { id: d.id, status: latest ? toDeploymentStatus(latest.state) : 'pending' };
    },
  },
});
