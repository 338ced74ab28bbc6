/** examples/deployment-saga (seed 002, exercise 4), after test/examples/sagas/. */
import { expect } from 'vitest';
import {
  DeployDns,
  DeployEnvironments,
  DeployLogs,
  DeploymentSaga,
  deploymentSaga,
} from '../../../examples/deployment-saga/index.js';
import type { Driver, Scenario } from '../driver.js';

const services = deploymentSaga;

const deploy = (d: Driver, id: string, version: string, imageTag = `shop:${version}`) =>
  d.engine.client(DeploymentSaga, id).run({ deploymentId: id, version, imageTag });
const env = (d: Driver, name: 'staging' | 'production') =>
  d.engine.client(DeployEnvironments, name).status();
const live = async (d: Driver, name: 'staging' | 'production') => (await env(d, name)).live.version;
const dnsVersion = async (d: Driver) =>
  (await d.engine.client(DeployDns, 'shop.example.com').record())?.version;
const logLines = async (d: Driver, id: string) =>
  (await d.engine.client(DeployLogs, id).read()).map((l) => `${l.level} ${l.stage}: ${l.message}`);

const deploys = (id: string, version: string): Scenario => ({
  name: `deploys ${version} through every stage and logs each one`,
  services,
  async run(d) {
    expect(await deploy(d, id, version)).toEqual({
      status: 'deployed',
      version,
      rolledBack: [],
      logs: `/DeployLogs/${id}/read`,
    });
    expect(await live(d, 'staging')).toBe(version);
    expect(await live(d, 'production')).toBe(version);
    expect(await dnsVersion(d)).toBe(version);
    expect(await logLines(d, id)).toEqual([
      `info staging: deploy shop:${version} to staging: started`,
      `info staging: deploy shop:${version} to staging: done`,
      'info tests: integration tests on staging: started',
      'info tests: 5 passed, 0 failed',
      'info tests: integration tests on staging: done',
      `info production: deploy shop:${version} to production: started`,
      `info production: deploy shop:${version} to production: done`,
      `info dns: point shop.example.com at ${version}: started`,
      `info dns: point shop.example.com at ${version}: done`,
      `info done: ${version} is live on shop.example.com`,
    ]);
  },
});

export const deploymentScenarios: Scenario[] = [
  deploys('dep-1', '2.0.0'),
  deploys('dep-2', '2.0.1'),
  deploys('dep-3', '4.1.0'),
  {
    name: 'staging fails: nothing to roll back, production untouched',
    services,
    async run(d) {
      expect(await deploy(d, 'dep-s', '2.1.0', 'shop:2.1.0-broken-staging')).toMatchObject({
        status: 'failed',
        failedStage: 'staging',
        reason: 'deploy_failed',
        rolledBack: [],
      });
      expect(await live(d, 'staging')).toBe('1.0.0');
      expect(await live(d, 'production')).toBe('1.0.0');
      expect((await env(d, 'staging')).history).toMatchObject([
        { action: 'deploy_failed', version: '2.1.0' },
      ]);
    },
  },
  {
    name: 'tests fail: staging is rolled back; the test report stays in the logs',
    services,
    async run(d) {
      expect(await deploy(d, 'dep-t', '2.2.0', 'shop:2.2.0-failing-tests')).toMatchObject({
        status: 'tests_failed',
        failedStage: 'tests',
        reason: 'tests_failed',
        message: 'integration tests failed: checkout, refund',
        rolledBack: ['staging'],
      });
      expect(await live(d, 'staging')).toBe('1.0.0');
      expect(await live(d, 'production')).toBe('1.0.0');
      expect(await dnsVersion(d)).toBeUndefined();
      expect((await logLines(d, 'dep-t')).slice(-3)).toEqual([
        'error tests: integration tests on staging: failed: integration tests failed: checkout, refund',
        'info tests: rolled staging back from 2.2.0 to 1.0.0',
        'error tests: deployment failed at tests; rolled back: staging',
      ]);
    },
  },
  {
    name: 'production fails: staging is rolled back',
    services,
    async run(d) {
      expect(await deploy(d, 'dep-p', '2.3.0', 'shop:2.3.0-broken-production')).toMatchObject({
        status: 'failed',
        failedStage: 'production',
        reason: 'deploy_failed',
        rolledBack: ['staging'],
      });
      expect(await live(d, 'staging')).toBe('1.0.0');
      expect(await live(d, 'production')).toBe('1.0.0');
    },
  },
  {
    name: 'DNS fails: production is rolled back, then staging, and every step is logged',
    services,
    async run(d) {
      await deploy(d, 'dep-ok', '2.0.0');
      expect(await deploy(d, 'dep-d', '3.0.0', 'shop:3.0.0-bad-dns')).toMatchObject({
        status: 'failed',
        failedStage: 'dns',
        reason: 'dns_update_failed',
        rolledBack: ['production', 'staging'],
      });
      expect(await live(d, 'production')).toBe('2.0.0');
      expect(await live(d, 'staging')).toBe('2.0.0');
      expect(await dnsVersion(d)).toBe('2.0.0');
      expect((await env(d, 'production')).history.map((e) => `${e.action} ${e.version}`)).toEqual([
        'deployed 2.0.0',
        'deployed 3.0.0',
        'rolled_back 3.0.0',
      ]);
      expect(await logLines(d, 'dep-ok')).toHaveLength(10);
    },
  },
  {
    name: 'a deployment runs once per id',
    services,
    async run(d) {
      const first = await deploy(d, 'dep-once', '5.0.0');
      expect(await deploy(d, 'dep-once', '5.0.0')).toEqual(first);
      expect((await env(d, 'production')).history.map((e) => `${e.action} ${e.version}`)).toEqual([
        'deployed 5.0.0',
      ]);
    },
  },
];
