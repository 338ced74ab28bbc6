import { afterEach, describe, expect, it } from 'vitest';
import {
  DeployDns,
  DeployEnvironments,
  DeployLogs,
  DeploymentSaga,
  deploymentSaga,
} from '../../../examples/deployment-saga/index.js';
import { harness, type Harness } from '../../helpers.js';

/**
 * Exercise 4 (Multi-Stage Deployment Saga): staging → tests → production → DNS. Failing tests
 * roll staging back, a failed production rollout rolls staging back, a failed DNS update rolls
 * production back and then staging; the logs survive every rollback.
 */
let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const start = async (): Promise<Harness> => (h = await harness({ services: deploymentSaga }));

const deploy = (deploymentId: string, version: string, imageTag = `shop:${version}`) =>
  h!.engine.client(DeploymentSaga, deploymentId).run({ deploymentId, version, imageTag });
const env = (name: 'staging' | 'production') => h!.engine.client(DeployEnvironments, name).status();
const live = async (name: 'staging' | 'production') => (await env(name)).live.version;
const dnsVersion = async () =>
  (await h!.engine.client(DeployDns, 'shop.example.com').record())?.version;
const logLines = async (id: string) =>
  (await h!.engine.client(DeployLogs, id).read()).map((l) => `${l.level} ${l.stage}: ${l.message}`);

describe('DeploymentSaga (seed 002, exercise 4)', () => {
  it('deploys through every stage and logs each one', async () => {
    await start();
    expect(await deploy('dep-1', '2.0.0')).toEqual({
      status: 'deployed',
      version: '2.0.0',
      rolledBack: [],
      logs: '/DeployLogs/dep-1/read',
    });
    expect(await live('staging')).toBe('2.0.0');
    expect(await live('production')).toBe('2.0.0');
    expect(await dnsVersion()).toBe('2.0.0');
    expect(await logLines('dep-1')).toEqual([
      'info staging: deploy shop:2.0.0 to staging: started',
      'info staging: deploy shop:2.0.0 to staging: done',
      'info tests: integration tests on staging: started',
      'info tests: 5 passed, 0 failed',
      'info tests: integration tests on staging: done',
      'info production: deploy shop:2.0.0 to production: started',
      'info production: deploy shop:2.0.0 to production: done',
      'info dns: point shop.example.com at 2.0.0: started',
      'info dns: point shop.example.com at 2.0.0: done',
      'info done: 2.0.0 is live on shop.example.com',
    ]);
  });

  it('staging fails: nothing to roll back, production untouched', async () => {
    await start();
    expect(await deploy('dep-s', '2.1.0', 'shop:2.1.0-broken-staging')).toMatchObject({
      status: 'failed',
      failedStage: 'staging',
      reason: 'deploy_failed',
      rolledBack: [],
    });
    expect(await live('staging')).toBe('1.0.0');
    expect(await live('production')).toBe('1.0.0');
    expect((await env('staging')).history).toMatchObject([
      { action: 'deploy_failed', version: '2.1.0' },
    ]);
  });

  it('tests fail: staging is rolled back; the test report stays in the logs', async () => {
    await start();
    expect(await deploy('dep-t', '2.2.0', 'shop:2.2.0-failing-tests')).toMatchObject({
      status: 'tests_failed',
      failedStage: 'tests',
      reason: 'tests_failed',
      message: 'integration tests failed: checkout, refund',
      rolledBack: ['staging'],
    });
    expect(await live('staging')).toBe('1.0.0');
    expect(await live('production')).toBe('1.0.0');
    expect(await dnsVersion()).toBeUndefined();
    const lines = await h!.engine.client(DeployLogs, 'dep-t').read();
    expect(lines.find((l) => l.stage === 'tests' && l.data)?.data).toMatchObject({
      failed: ['checkout', 'refund'],
      passed: ['health check', 'login', 'search'],
    });
    expect((await logLines('dep-t')).slice(-3)).toEqual([
      'error tests: integration tests on staging: failed: integration tests failed: checkout, refund',
      'info tests: rolled staging back from 2.2.0 to 1.0.0',
      'error tests: deployment failed at tests; rolled back: staging',
    ]);
  });

  it('production fails: staging is rolled back', async () => {
    await start();
    expect(await deploy('dep-p', '2.3.0', 'shop:2.3.0-broken-production')).toMatchObject({
      status: 'failed',
      failedStage: 'production',
      reason: 'deploy_failed',
      rolledBack: ['staging'],
    });
    expect(await live('staging')).toBe('1.0.0');
    expect(await live('production')).toBe('1.0.0');
  });

  it('DNS fails: production is rolled back, then staging, and every step is logged', async () => {
    await start();
    await deploy('dep-ok', '2.0.0'); // what the rollbacks must return to
    expect(await deploy('dep-d', '3.0.0', 'shop:3.0.0-bad-dns')).toMatchObject({
      status: 'failed',
      failedStage: 'dns',
      reason: 'dns_update_failed',
      rolledBack: ['production', 'staging'],
    });
    expect(await live('production')).toBe('2.0.0');
    expect(await live('staging')).toBe('2.0.0');
    expect(await dnsVersion()).toBe('2.0.0');
    expect((await logLines('dep-d')).slice(-4)).toEqual([
      'error dns: point shop.example.com at 3.0.0: failed: the DNS provider rejected the change to shop.example.com',
      'info dns: rolled production back from 3.0.0 to 2.0.0',
      'info dns: rolled staging back from 3.0.0 to 2.0.0',
      'error dns: deployment failed at dns; rolled back: production, staging',
    ]);
    // Environment histories keep the rolled-back release too.
    expect((await env('production')).history.map((e) => `${e.action} ${e.version}`)).toEqual([
      'deployed 2.0.0',
      'deployed 3.0.0',
      'rolled_back 3.0.0',
    ]);
    // The logs of the earlier deployment are untouched.
    expect(await logLines('dep-ok')).toHaveLength(10);
  });
});
