/**
 * Seed 000, exercise 5 over real HTTP: `GitHubDeployment` with its GitHub connector in real mode
 * (a token, `KEEL_MOCK=0`) against a fake GitHub REST API on 127.0.0.1
 * (test/fakes/providers' `fakeGitHub`: Bearer auth and a User-Agent, GitHub's deployment
 * shapes), the example pointed at it with `GITHUB_DEPLOYMENTS_API_URL`. Assertions are about
 * what the fake received; the signed `deployment_status` webhook goes through the ingress. The
 * in-process mock tests are deployment.test.ts.
 */
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../../src/index.js';
import { serve, type IngressServer } from '../../../src/ingress/index.js';
import { createIntegrations, type Integrations } from '../../../src/integrations/index.js';
import { openSqliteStore } from '../../../src/store/sqlite/index.js';
import { FakeClock } from '../../../src/testing/index.js';
import { createWebhooks } from '../../../src/webhooks/index.js';
import { fakeGitHub } from '../../fakes/providers/index.js';
import { tempDir, until } from '../../helpers.js';
import { sign$, whileAdvancing, type App } from '../webhook-aggregator/support.js';

const TOKEN = 'ghp_github_deployment_real_http';
const github = await fakeGitHub(TOKEN);
// The example creates its connector when it loads: point it at the fake first.
const previousUrl = process.env.GITHUB_DEPLOYMENTS_API_URL;
process.env.GITHUB_DEPLOYMENTS_API_URL = github.api.url;
const example = await import('../../../examples/github-deployment/index.js');
type DeploymentResult = import('../../../examples/github-deployment/index.js').DeploymentResult;

afterAll(async () => {
  if (previousUrl === undefined) delete process.env.GITHUB_DEPLOYMENTS_API_URL;
  else process.env.GITHUB_DEPLOYMENTS_API_URL = previousUrl;
  await github.api.close();
});

const ENV = { KEEL_MOCK: '0', GITHUB_TOKEN: TOKEN };
const REQUEST = { repository: 'acme/shop', ref: 'v1.4.2', environment: 'production' };

const open: App[] = [];
afterEach(async () => {
  for (const app of open.splice(0)) await app.close();
});

/** The example on a fresh SQLite file, its connector in real mode; `restart` keeps the file. */
async function start(env: Record<string, string> = ENV): Promise<App> {
  const { dir, cleanup } = tempDir('keel-github-deployment-http-');
  const clock = new FakeClock(Date.parse('2026-03-01T12:00:00Z'));
  const logs: string[] = [];
  const boot = async () => {
    const integrations: Integrations = createIntegrations({
      integrations: example.integrations,
      env,
      log: (level, message) => logs.push(`${level} ${message}`),
    });
    const engine = new Engine({
      services: example.definitions,
      store: openSqliteStore({ path: join(dir, 'keel.db') }),
      clock,
      suspendAfter: '1s',
      logger: (level, message) => logs.push(`${level} ${message}`),
      extensions: [createWebhooks({ receivers: example.deploymentReceivers({}) }), integrations],
    });
    await engine.start();
    const ingress: IngressServer = await serve(engine, { port: 0 });
    return { engine, ingress, integrations };
  };
  let running = await boot();
  const stop = async () => {
    await running.ingress.close().catch(() => undefined);
    await running.engine.stop().catch(() => undefined);
    await running.integrations.runtime.close();
  };
  const app: App = {
    get engine() {
      return running.engine;
    },
    get ingress() {
      return running.ingress;
    },
    clock,
    logs,
    async restart() {
      await stop();
      running = await boot();
    },
    async post(path, body, headers = {}) {
      const res = await fetch(`${running.ingress.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, json: text ? JSON.parse(text) : undefined };
    },
    async close() {
      await stop();
      cleanup();
    },
  };
  open.push(app);
  return app;
}

/** The deployment requests the fake received from now on. */
function deploymentsFrom(before: number) {
  return github.api.requests
    .slice(before)
    .filter((r) => r.method === 'POST' && /\/deployments$/.test(r.rawPath));
}

/** Starts a deployment over the ingress and waits until it waits for GitHub's webhook. */
async function deploy(app: App, key: string) {
  const res = await app.post(`/GitHubDeployment/${key}/run/send`, REQUEST);
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
  expect(state!.status).toBe('pending');
  await until(async () => {
    const c = await app.post(`/GitHubDeploymentCallbacks/${state!.id}/status`, {});
    const journal = await app.engine.getJournal(invocationId);
    return c.json?.awakeableId === state!.awakeableId && journal.some((e) => e.kind === 'sleep');
  }, 'the awakeable is registered and the timeout timer set');
  return { invocationId, state: state! };
}

/** Posts a `deployment_status` webhook signed with the demo secret through the ingress. */
async function statusWebhook(app: App, deploymentId: string, state: string, delivery: string) {
  const body = JSON.stringify({
    action: 'created',
    deployment_status: { id: 1, state, description: `${state}!`, environment: 'production' },
    deployment: { id: Number(deploymentId), ref: REQUEST.ref, environment: REQUEST.environment },
    repository: { full_name: REQUEST.repository },
  });
  const signed = sign$.github(
    body,
    example.DEMO_GITHUB_WEBHOOK_SECRET,
    delivery,
    'deployment_status',
  );
  return app.post(signed.path, body, signed.headers);
}

describe('GitHubDeployment over real HTTP (seed 000, exercise 5)', () => {
  it('creates the deployment with one authenticated POST, survives a restart mid-wait, and the signed webhook resolves it', async () => {
    const app = await start();
    const before = github.api.requests.length;
    const { invocationId, state } = await deploy(app, 'http-deploy-1');

    // What GitHub received: one POST to the repository's deployments, with the token.
    const [created, ...more] = deploymentsFrom(before);
    expect(more).toEqual([]);
    expect(created!.rawPath).toBe('/repos/acme/shop/deployments');
    expect(created!.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(created!.headers['user-agent']).toBeTruthy();
    expect(created!.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(created!.text)).toMatchObject({
      ref: 'v1.4.2',
      environment: 'production',
      auto_merge: false,
      required_contexts: [],
      payload: { keel_workflow: 'GitHubDeployment', keel_key: 'http-deploy-1' },
    });
    // The workflow keeps the id GitHub answered: the fake knows that deployment, with its ref.
    expect(state.id).toMatch(/^\d+$/);
    const known = await fetch(`${github.api.url}/repos/acme/shop/deployments/${state.id}`, {
      headers: { authorization: `Bearer ${TOKEN}`, 'user-agent': 'test' },
    });
    expect(known.status).toBe(200);
    expect(await known.json()).toMatchObject({ id: Number(state.id), ref: 'v1.4.2' });
    expect(state.awakeableId).toMatch(/^awk_/);
    // Nothing was answered in-process: the connector went over the wire.
    expect(example.deploymentsGitHubMock.requests).toHaveLength(0);

    // A new engine on the same database while the workflow waits: no second deployment.
    await app.restart();
    const res = await statusWebhook(app, state.id, 'success', 'http-delivery-1');
    expect(res.status).toBe(200);
    expect(res.json.events[0].status).toBe('accepted');
    const result = (await app.engine.attach(invocationId)) as DeploymentResult;
    expect(result).toMatchObject({
      ...REQUEST,
      id: state.id,
      status: 'success',
      description: 'success!',
    });
    expect(deploymentsFrom(before)).toHaveLength(1);
  });

  it('a wrongly signed webhook is 401 and resolves nothing; the genuine one decides', async () => {
    const app = await start();
    const { invocationId, state } = await deploy(app, 'http-deploy-2');
    const body = JSON.stringify({
      action: 'created',
      deployment_status: { id: 2, state: 'success' },
      deployment: { id: Number(state.id) },
    });
    const forged = sign$.github(body, 'not-the-secret', 'http-delivery-2', 'deployment_status');
    expect((await app.post(forged.path, body, forged.headers)).status).toBe(401);
    const callbacks = await app.post(`/GitHubDeploymentCallbacks/${state.id}/status`, {});
    expect(callbacks.json).toMatchObject({ statuses: [], final: null });
    expect((await statusWebhook(app, state.id, 'failure', 'http-delivery-3')).status).toBe(200);
    expect(await app.engine.attach(invocationId)).toMatchObject({ status: 'failure' });
  });

  it('a token GitHub refuses (401) ends the deployment in error without waiting', async () => {
    const app = await start({ ...ENV, GITHUB_TOKEN: 'ghp_not_the_token' });
    const before = github.api.requests.length;
    const res = await whileAdvancing(app, app.post('/GitHubDeployment/http-deploy-3/run', REQUEST));
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ status: 'error', id: '' });
    expect(res.json.reason).toMatch(/401|Bad credentials/);
    const sent = deploymentsFrom(before);
    expect(sent.length).toBeGreaterThan(0);
    expect(sent[0]!.headers.authorization).toBe('Bearer ghp_not_the_token');
  });
});
