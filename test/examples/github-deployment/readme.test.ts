import { describe, expect, it } from 'vitest';
import {
  deploymentReceivers,
  definitions,
  integrations,
} from '../../../examples/github-deployment/index.js';
import { until } from '../../helpers.js';
import {
  readmeCommands,
  runCommands,
  useApp,
  whileAdvancing,
} from '../webhook-aggregator/support.js';

/**
 * The README's commands, run as written (bash, openssl, node, curl) against an app with the
 * demo webhook secret and the connector in mock mode, the ingress URL aside.
 */
const start = useApp({ definitions, integrations, receivers: deploymentReceivers({}) });

describe('examples/github-deployment/README.md', () => {
  it('triggers, signs the deployment_status webhook by hand, and ends as documented', async () => {
    const app = await start();
    const blocks = readmeCommands('examples/github-deployment/README.md');
    expect(blocks).toHaveLength(3);
    // The connector's rate limiter paces calls on the app's (fake) clock: keep it moving.
    const ticker = setInterval(() => void app.clock.advance('1s'), 100);
    let out: string;
    try {
      out = await runCommands(blocks.join('\n'), app.ingress.url);
    } finally {
      clearInterval(ticker);
    }
    expect(out).toMatch(/"status":"pending".*"awakeableId":"awk_/);
    expect(out).toContain('"events":[{"id":"demo-');
    expect(out).toContain('"status":"accepted"');
    expect(out).toMatch(
      /"status":"success","awakeableId":"awk_\w+","description":"Deployed v1.4.2"/,
    );
    expect(out).toMatch(/"statuses":\["success"\]/);
    expect(out).toMatch(/"status":"error".*409/);

    // deploy-3 gets no webhook: after 10 minutes it is a timeout.
    await whileAdvancing(
      app,
      until(async () => {
        const j = await app.post('/GitHubDeployment/deploy-3/status', {});
        return j.json?.status === 'pending';
      }, 'deploy-3 waits'),
    );
    await app.clock.advance('10m');
    await until(async () => {
      const j = await app.post('/GitHubDeployment/deploy-3/status', {});
      return j.json?.status === 'timeout';
    }, 'deploy-3 times out');
  });
});
