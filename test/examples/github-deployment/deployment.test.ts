import { describe, expect, it } from 'vitest';
import {
  DEMO_GITHUB_WEBHOOK_SECRET,
  deploymentReceivers,
  deploymentsGitHubMock,
  definitions,
  integrations,
  GitHubDeploymentCallbacks,
  type DeploymentOutcome,
  type DeploymentResult,
} from '../../../examples/github-deployment/index.js';
import { workflow, type WorkflowContext } from '../../../src/index.js';
import { until } from '../../helpers.js';
import { sign$, useApp, whileAdvancing, type App } from '../webhook-aggregator/support.js';

/**
 * Seed 000, exercise 5, GitHub deployments, end to end over HTTP with the GitHub connector in
 * mock mode and the `github` receiver. Success criteria: deployment triggered via the API;
 * awaits the webhook callback; awakeable resolved with the result; timeout handled; all
 * journaled.
 */
/**
 * Registers an awakeable for a deployment id as `GitHubDeployment` does (a journaled step, the
 * awakeable, the registration), and waits for it.
 */
const EarlyWaiter = workflow({
  name: 'EarlyWaiter',
  run: async (ctx: WorkflowContext, deploymentId: string) => {
    await ctx.run('create deployment', () => deploymentId);
    const { id, promise } = ctx.awakeable<DeploymentOutcome>();
    await ctx.objectClient(GitHubDeploymentCallbacks, deploymentId).register(id);
    return promise;
  },
});

const start = useApp({
  definitions: [...definitions, EarlyWaiter],
  integrations,
  receivers: deploymentReceivers({}),
});

const REQUEST = { repository: 'acme/shop', ref: 'v1.4.2', environment: 'production' };
let deliveries = 0;

/** Starts a deployment and waits until it waits for GitHub; returns its invocation and state. */
async function deploy(
  app: App,
  key: string,
  request = REQUEST,
): Promise<{ invocationId: string; state: DeploymentResult }> {
  const res = await app.post(`/GitHubDeployment/${key}/run/send`, request);
  expect(res.status).toBe(202);
  const invocationId = res.json.invocationId as string;
  let state: DeploymentResult | undefined;
  await whileAdvancing(
    app,
    until(async () => {
      const s = await app.post(`/GitHubDeployment/${key}/status`, {});
      state = s.status === 200 ? (s.json as DeploymentResult) : undefined;
      return state !== undefined && state.status !== 'creating';
    }, 'the deployment is created'),
  );
  if (state!.status !== 'pending') return { invocationId, state: state! };
  // The awakeable is registered with the deployment's callbacks object, and the 10-minute
  // timer runs.
  await until(async () => {
    const c = await app.post(`/GitHubDeploymentCallbacks/${state!.id}/status`, {});
    const journal = await app.engine.getJournal(invocationId);
    return c.json?.awakeableId === state!.awakeableId && journal.some((e) => e.kind === 'sleep');
  }, 'the awakeable is registered and the timeout timer set');
  return { invocationId, state: state! };
}

function statusBody(deploymentId: string, state: string, description = `${state}!`): string {
  return JSON.stringify({
    action: 'created',
    deployment_status: { id: ++deliveries, state, description, environment: 'production' },
    deployment: {
      id: Number(deploymentId),
      ref: REQUEST.ref,
      environment: REQUEST.environment,
      payload: {},
    },
    repository: { full_name: REQUEST.repository },
  });
}

async function webhook(
  app: App,
  deploymentId: string,
  state: string,
  secret = DEMO_GITHUB_WEBHOOK_SECRET,
): Promise<{ status: number; json: any }> {
  const body = statusBody(deploymentId, state);
  const signed = sign$.github(body, secret, `delivery-${deliveries}`, 'deployment_status');
  const res = await app.post(signed.path, body, signed.headers);
  if (res.status === 200)
    for (const e of res.json.events as Array<{ invocationId?: string }>)
      if (e.invocationId) await app.engine.attach(e.invocationId);
  return res;
}

describe('GitHub deployment (seed 000, exercise 5)', () => {
  it('triggers the deployment through the GitHub API, waits for the webhook, returns its final status', async () => {
    const app = await start();
    const before = deploymentsGitHubMock.requests.length;
    const { invocationId, state } = await deploy(app, 'deploy-1');

    // Deployment triggered via API: one POST to GitHub's deployments endpoint.
    const calls = deploymentsGitHubMock.requests.slice(before);
    expect(calls.map((r) => `${r.method} ${r.path}`)).toEqual([
      'POST /repos/acme/shop/deployments',
    ]);
    expect(calls[0]!.body).toMatchObject({
      ref: 'v1.4.2',
      environment: 'production',
      required_contexts: [],
      payload: { keel_workflow: 'GitHubDeployment', keel_key: 'deploy-1' },
    });
    expect(state).toMatchObject({ ...REQUEST, status: 'pending' });
    expect(state.id).toMatch(/^\d+$/);
    // The awakeable's id is stored in the workflow's state.
    expect(state.awakeableId).toMatch(/^awk_/);

    // Awaits the webhook: statuses that are not final do not end it.
    expect((await webhook(app, state.id, 'queued')).json.events[0].status).toBe('accepted');
    await webhook(app, state.id, 'in_progress');
    const waiting = await app.engine.listInvocations({ service: 'GitHubDeployment' });
    expect(waiting.invocations.find((i) => i.id === invocationId)?.status).not.toBe('completed');

    // The awakeable is resolved with the result.
    await webhook(app, state.id, 'success');
    const result = (await app.engine.attach(invocationId)) as DeploymentResult;
    expect(result).toMatchObject({
      ...REQUEST,
      id: state.id,
      status: 'success',
      description: 'success!',
    });
    expect((await app.post('/GitHubDeployment/deploy-1/status', {})).json.status).toBe('success');
    const callbacks = await app.post(`/GitHubDeploymentCallbacks/${state.id}/status`, {});
    expect(callbacks.json).toMatchObject({
      statuses: ['queued', 'in_progress', 'success'],
      final: { state: 'success' },
    });
    // One deployment created, ever.
    expect(deploymentsGitHubMock.requests.length - before).toBe(1);
  });

  it.each(['failure', 'error'])(
    'a %s status ends the deployment with that status',
    async (final) => {
      const app = await start();
      const { invocationId, state } = await deploy(app, `deploy-${final}`);
      await webhook(app, state.id, final);
      expect(await app.engine.attach(invocationId)).toMatchObject({ status: final });
    },
  );

  it('times out after 10 minutes without a final status (fake clock), and a late webhook changes nothing', async () => {
    const app = await start();
    const { invocationId, state } = await deploy(app, 'deploy-slow');
    await webhook(app, state.id, 'in_progress');
    // The timeout runs from when the workflow armed it: `deploy` moved the fake clock while it
    // waited for the deployment (a loaded machine moves it further), so read the timer's time.
    const timer = (await app.engine.getJournal(invocationId)).find((e) => e.kind === 'sleep') as
      { wakeAt: number; startedAt: number } | undefined;
    expect(timer!.wakeAt - timer!.startedAt).toBe(10 * 60_000);
    await app.clock.advance(timer!.wakeAt - app.clock.now() - 1000);
    const still = await app.post('/GitHubDeployment/deploy-slow/status', {});
    expect(still.json.status).toBe('pending');
    await app.clock.advance('1s');
    const result = (await app.engine.attach(invocationId)) as DeploymentResult;
    expect(result).toMatchObject({ id: state.id, status: 'timeout' });

    const late = await webhook(app, state.id, 'success');
    expect(late.status).toBe(200);
    expect((await app.post('/GitHubDeployment/deploy-slow/status', {})).json.status).toBe(
      'timeout',
    );
  });

  it('a ref GitHub refuses ends in error without waiting', async () => {
    const app = await start();
    const res = await whileAdvancing(
      app,
      app.post('/GitHubDeployment/deploy-conflict/run', { ...REQUEST, ref: 'conflict-branch' }),
    );
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: 'error', id: '' });
    expect(res.json.reason).toMatch(/409|Conflict/);
  });

  it('refuses an invalid request with 400', async () => {
    const app = await start();
    const res = await app.post('/GitHubDeployment/deploy-bad/run', {
      ...REQUEST,
      repository: 'shop',
    });
    expect(res.status).toBe(400);
  });

  it('the webhook signature is verified: a tampered or wrongly signed webhook is 401 and resolves nothing', async () => {
    const app = await start();
    const { invocationId, state } = await deploy(app, 'deploy-sig');
    const body = statusBody(state.id, 'failure');
    const signed = sign$.github(body, DEMO_GITHUB_WEBHOOK_SECRET, 'd-sig', 'deployment_status');
    const tampered = body.replace('"failure"', '"success"');
    expect((await app.post(signed.path, tampered, signed.headers)).status).toBe(401);
    expect((await webhook(app, state.id, 'success', 'not-the-secret')).status).toBe(401);
    expect((await app.post(signed.path, body, {})).status).toBe(401);

    const callbacks = await app.post(`/GitHubDeploymentCallbacks/${state.id}/status`, {});
    expect(callbacks.json).toMatchObject({ statuses: [], final: null });
    expect((await app.post('/GitHubDeployment/deploy-sig/status', {})).json.status).toBe('pending');
    // The genuine one goes through.
    expect((await app.post(signed.path, body, signed.headers)).status).toBe(200);
    expect(await app.engine.attach(invocationId)).toMatchObject({ status: 'failure' });
  });

  it('a redelivered webhook is a duplicate; other GitHub events are ignored', async () => {
    const app = await start();
    const { invocationId, state } = await deploy(app, 'deploy-dup');
    const body = statusBody(state.id, 'success');
    const signed = sign$.github(body, DEMO_GITHUB_WEBHOOK_SECRET, 'd-dup', 'deployment_status');
    expect((await app.post(signed.path, body, signed.headers)).json.events[0].status).toBe(
      'accepted',
    );
    expect((await app.post(signed.path, body, signed.headers)).json.events[0].status).toBe(
      'duplicate',
    );
    await app.engine.attach(invocationId);
    const push = JSON.stringify({ ref: 'refs/heads/main' });
    const p = sign$.github(push, DEMO_GITHUB_WEBHOOK_SECRET, 'd-push', 'push');
    expect((await app.post(p.path, push, p.headers)).json.events[0].status).toBe('ignored');
    const callbacks = await app.post(`/GitHubDeploymentCallbacks/${state.id}/status`, {});
    expect(callbacks.json.statuses).toEqual(['success']);
  });

  it('a final status that arrives before the workflow registers resolves it at registration', async () => {
    const app = await start();
    expect((await webhook(app, '777', 'success')).status).toBe(200);
    const res = await app.post('/EarlyWaiter/w-777/run', JSON.stringify('777'));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ state: 'success' });
  });

  it('GetDeploymentStatus asks GitHub, as a journaled call', async () => {
    const app = await start();
    const { state } = await deploy(app, 'deploy-get');
    const before = deploymentsGitHubMock.requests.length;
    // The mock's deployer moves the deployment on at each listing: queued, in_progress, success.
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await whileAdvancing(
        app,
        app.post('/GitHubDeployment/deploy-get/getDeploymentStatus', {}),
      );
      expect(res.status).toBe(200);
      expect(res.json.id).toBe(state.id);
      seen.push(res.json.status as string);
    }
    expect(seen).toEqual(['pending', 'in_progress', 'success']);
    expect(
      deploymentsGitHubMock.requests.slice(before).map((r) => `${r.method} ${r.path}`),
    ).toEqual(Array(3).fill(`GET /repos/acme/shop/deployments/${state.id}/statuses`) as string[]);
    const reads = await app.engine.listInvocations({ service: 'GitHubDeployment' });
    const read = reads.invocations.find((i) => i.handler === 'getDeploymentStatus')!;
    const journal = await app.engine.getJournal(read.id);
    expect(journal.map((e) => `${e.kind}:${e.name}`)).toContain(
      'run:GitHubDeployments.list_deployment_statuses',
    );
  });

  it('all journaled: a restart while waiting creates no second deployment, and the webhook still completes it', async () => {
    const app = await start();
    const before = deploymentsGitHubMock.requests.length;
    const { invocationId, state } = await deploy(app, 'deploy-restart');
    const journal = await app.engine.getJournal(invocationId);
    const kinds = journal.map((e) => `${e.kind}:${e.name}`);
    expect(kinds).toContain('run:GitHubDeployments.create_deployment');
    expect(kinds.some((k) => k.startsWith('awakeable:'))).toBe(true);
    expect(
      kinds.some((k) => k.startsWith('call:') && k.includes('GitHubDeploymentCallbacks')),
    ).toBe(true);
    expect(journal.some((e) => e.kind === 'sleep')).toBe(true);

    await app.restart();
    await webhook(app, state.id, 'success');
    expect(await app.engine.attach(invocationId)).toMatchObject({
      id: state.id,
      status: 'success',
    });
    // The replay returned the journaled deployment: GitHub was asked once.
    expect(
      deploymentsGitHubMock.requests
        .slice(before)
        .filter((r) => r.method === 'POST' && r.path.endsWith('/deployments')),
    ).toHaveLength(1);
  });
});
